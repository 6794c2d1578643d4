"""HTTP gateways without the network: presets, configuration problems, requests, what answers mean."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

import pytest

from mailsms import config
from mailsms.cli import main
from mailsms.config import ConfigInvalid
from transports.base import Outcome, OutgoingPart, OutgoingSms, TransportContext
from transports.http import Options
from transports.http_exchange import build_request, describe, excerpt, judge, retry_after
from transports.http_settings import Settings, StatusRule, resolve

UDH_1 = bytes.fromhex("0500037F0201")
UDH_2 = bytes.fromhex("0500037F0202")
TWO_PARTS = OutgoingSms(
    queue_id="4F2A1C",
    to="+15551234567",
    parts=(OutgoingPart(1, "Grüße ", UDH_1), OutgoingPart(2, "😀 und mehr", UDH_2)),
    total=2,
    encoding="ucs2",
)


def settings(**keys: object) -> Settings:
    resolved, problems = resolve(Options(**keys))  # type: ignore[arg-type]
    assert problems == []
    assert resolved is not None
    return resolved


def problems_of(**keys: object) -> list[tuple[str, str]]:
    return resolve(Options(**keys))[1]  # type: ignore[arg-type]


def home(gateway_id: str, public_url: str = "", secret: str = "") -> TransportContext:
    return TransportContext(gateway_id, Path("."), public_url=public_url, webhook_secret=secret)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def raw_query(url: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in urlsplit(url).query.split("&"))


# -- presets ---------------------------------------------------------------------------------


def test_kannel_preset_needs_only_credentials() -> None:
    gateway = settings(preset="kannel", username="mailsms", password="s3cret")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts[:1], home("kannel", "http://127.0.0.1:8025"))
    assert request.method == "GET"
    assert request.url.startswith("http://127.0.0.1:13013/cgi-bin/sendsms?")
    fields = raw_query(request.url)
    assert fields["to"] == "%2B15551234567"
    assert unquote_to_bytes(fields["udh"]) == UDH_1  # raw bytes, URL-encoded once
    assert fields["coding"] == "2"
    assert fields["dlr-mask"] == "31"
    assert query(request.url)["dlr-url"] == "http://127.0.0.1:8025/dlr/kannel?id=4F2A1C.1&status=%d&reason=%A"
    assert not gateway.basic_auth  # Kannel takes them in the query


def test_kannel_preset_without_username_is_a_problem() -> None:
    assert problems_of(preset="kannel") == [("username", "required by preset 'kannel'")]


def test_kannel_preset_refuses_provider_splitting() -> None:
    assert [key for key, _ in problems_of(preset="kannel", username="u", split="provider")] == ["split"]


def test_clickatell_preset_posts_json_with_the_api_key() -> None:
    gateway = settings(preset="clickatell", password="API-KEY")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts, home("ct", ""))
    assert (request.method, request.url) == ("POST", "https://platform.clickatell.com/messages")
    assert dict(request.headers) == {
        "Content-Type": "application/json",
        "Authorization": "API-KEY",
        "Accept": "application/json",
    }
    assert request.body is not None
    assert json.loads(request.body) == {
        "to": ["15551234567"],
        "content": "Grüße 😀 und mehr",
        "binary": False,
        "clientMessageId": "4F2A1C",
    }
    answer = '{"messages":[{"apiMessageId":"abc123","accepted":true,"to":"15551234567"}],"error":null}'
    verdict = judge(gateway, 202, "Accepted", answer)
    assert (verdict.outcome, verdict.message_id) == (Outcome.SUBMITTED, "abc123")
    refused = '{"messages":[{"accepted":false,"error":"Invalid destination"}]}'
    assert judge(gateway, 202, "Accepted", refused).outcome is Outcome.PERMANENT


def test_clickatell_preset_sends_a_sender_only_when_there_is_one() -> None:
    gateway = settings(preset="clickatell", password="k", sender="+15550000000")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts, home("ct", ""))
    assert request.body is not None
    assert json.loads(request.body)["from"] == "+15550000000"


def test_icewarp_preset_speaks_the_seeds_own_api() -> None:
    gateway = settings(preset="icewarp", url="http://127.0.0.1:8025/sms/", username="app", password="pw")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts, home("iw", ""))
    assert query(request.url) == {
        "number": "+15551234567",
        "data": "Grüße 😀 und mehr",
        "binary": "0",
        "dcs": "8",
        "maxmsgs": "2",
        "msgid": "4F2A1C",
        "user": "app",
        "pass": "pw",
    }
    assert judge(gateway, 200, "OK", '{"queue_id": "9A8B7C"}').message_id == "9A8B7C"


def test_icewarp_preset_needs_a_url() -> None:
    assert problems_of(preset="icewarp") == [("url", "required by preset 'icewarp'")]


def test_explicit_keys_override_the_preset_and_headers_merge_by_name() -> None:
    gateway = settings(
        preset="clickatell", password="k", url="http://127.0.0.1:9/m", headers=("authorization: Bearer x", "X-A: 1")
    )
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts, home("ct", ""))
    assert request.url == "http://127.0.0.1:9/m"
    assert dict(request.headers) == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "authorization": "Bearer x",
        "X-A": "1",
    }


# -- configuration problems, as mailsms check shows them ----------------------------------------


def test_bad_template_is_named_by_gateway_key_and_line() -> None:
    text = "[[gateway]]\nid = 'sms'\ntype = 'http'\nurl = 'https://sms.example.com/?to=%numbr%&t=%data;hx%'\n"
    with pytest.raises(ConfigInvalid) as info:
        config.parse(text, "f.toml")
    (found,) = [p.render("f.toml") for p in info.value.problems]
    assert found.startswith("f.toml:4: gateway[0].url: unknown variable %numbr% (did you mean 'number'?)")


def test_check_exits_78_for_an_unknown_modifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[[gateway]]\nid = 'sms'\ntype = 'http'\nurl = 'http://h/'\nquery = 'to=%number;hx%'\n")
    assert main(["check", "--config", str(path)]) == 78
    assert "gateway[0].query: unknown modifier ;hx in %number;hx%" in capsys.readouterr().err


def test_a_three_line_preset_gateway_loads() -> None:
    loaded = config.parse("[[gateway]]\nid = 'k'\ntype = 'http'\npreset = 'kannel'\nusername = 'u'\npassword = 'p'\n")
    (gateway,) = loaded.gateways
    assert gateway.options == Options(preset="kannel", username="u", password="p")
    assert "password='p'" not in repr(gateway.options)


def test_example_configuration_documents_every_key_and_parses_uncommented() -> None:
    import dataclasses
    import re

    text = (Path(__file__).resolve().parents[2] / "conf" / "mailsms.toml").read_text()
    start = text.index('# [[gateway]]\n# id = "provider"\n# type = "http"')
    block = []
    for line in text[start:].splitlines():
        if not line.startswith("#"):
            break
        if re.match(r"^# (\[\[gateway\]\]|[a-z_]+ = )", line):
            block.append(line[2:])
    keys = {line.split(" = ")[0] for line in block if " = " in line}
    assert keys == {"id", "type"} | {f.name for f in dataclasses.fields(Options)}
    (gateway,) = config.parse("\n".join(block) + "\n").gateways
    assert gateway.type == "http"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, ("url", "required: the provider's URL (a template), unless a preset gives one")),
        ({"url": "ftp://h/"}, ("url", "must be an http:// or https:// URL with a host")),
        ({"url": "http://h/", "body": "x=%data%"}, ("body", 'a GET request has no body: set method = "POST"')),
        ({"url": "http://h/", "success_regex": "("}, ("success_regex", "bad regular expression")),
        ({"url": "http://h/", "message_id_regex": "[a"}, ("message_id_regex", "bad regular expression")),
        ({"url": "http://h/", "headers": ("no colon",)}, ("headers", 'each header is "Name: value"')),
        ({"url": "http://h/", "headers": ("X: %nope%",)}, ("headers", "unknown variable %nope%")),
        ({"url": "http://h/", "temporary_statuses": ("42",)}, ("temporary_statuses", "'42' is not a status")),
        (
            {"url": "http://h/", "temporary_statuses": ("4xx",), "permanent_statuses": ("4xx", "503")},
            ("permanent_statuses", "4xx also listed in temporary_statuses"),
        ),
        ({"url": "http://h/", "timeout": 0.0}, ("timeout", "must be more than 0")),
        (
            {"url": "http://h/", "method": "POST", "content_type": "json", "body": '{"t": %data%}'},
            ("body", "not JSON once filled in (gsm7 sample message)"),
        ),
    ],
)
def test_configuration_problems_name_their_key(keys: dict[str, object], expected: tuple[str, str]) -> None:
    (found,) = problems_of(**keys)
    assert found[0] == expected[0]
    assert found[1].startswith(expected[1])


def test_credentials_go_as_basic_auth_unless_a_template_uses_them() -> None:
    assert settings(url="http://h/", username="u", password="p").basic_auth
    assert not settings(url="http://h/?u=%username%&p=%password%", username="u", password="p").basic_auth
    assert not settings(url="http://h/", headers=("Authorization: Bearer %password%",), password="p").basic_auth
    assert not settings(url="http://h/").basic_auth


# -- requests ------------------------------------------------------------------------------------


def test_per_part_request_carries_its_udh_and_own_id() -> None:
    gateway = settings(url="http://h/s?to=%number%&udh=%udh;len;hex%&id=%msgid%&n=%parts%&dlr=%dlr_url%")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts[1:], home("gw 1", "http://127.0.0.1:8025"))
    assert query(request.url) == {
        "to": "+15551234567",
        "udh": "0500037F0202",
        "id": "4F2A1C.2",
        "n": "2",
        "dlr": "http://127.0.0.1:8025/dlr/gw%201?id=4F2A1C.2",
    }
    assert request.message_id == "4F2A1C.2"


def test_dlr_url_carries_the_webhook_secret() -> None:
    gateway = settings(url="http://h/s?cb=%dlr_url%")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts[:1], home("gw", "https://sms.example.com", "k&y"))
    assert query(request.url) == {"cb": "https://sms.example.com/dlr/gw?id=4F2A1C.1&secret=k%26y"}
    kannel = settings(preset="kannel", username="u")
    request = build_request(kannel, TWO_PARTS, TWO_PARTS.parts[:1], home("k", "https://sms.example.com", "s3"))
    assert query(request.url)["dlr-url"].endswith("&secret=s3")


def test_whole_text_request_has_all_text_and_no_udh() -> None:
    gateway = settings(url="http://h/s?t=%data%&udh=%udh%&id=%msgid%", split="provider")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts, home("gw", ""))
    assert query(request.url) == {"t": "Grüße 😀 und mehr", "udh": "", "id": "4F2A1C"}


def test_query_is_appended_to_a_url_that_has_one() -> None:
    gateway = settings(url="http://h/s?api=1", query="to=%number%")
    assert (
        build_request(gateway, TWO_PARTS, TWO_PARTS.parts[:1], home("gw", "")).url
        == "http://h/s?api=1&to=%2B15551234567"
    )


def test_form_body_with_its_content_type() -> None:
    gateway = settings(url="http://h/", method="POST", body="to=%number%&text=%data%")
    request = build_request(gateway, TWO_PARTS, TWO_PARTS.parts[:1], home("gw", ""))
    assert request.body == b"to=%2B15551234567&text=Gr%C3%BC%C3%9Fe%20"
    assert ("Content-Type", "application/x-www-form-urlencoded") in request.headers


def test_gateway_sender_is_used_when_the_message_has_none() -> None:
    gateway = settings(url="http://h/?from=%sender%", sender="Alerts")
    assert query(build_request(gateway, TWO_PARTS, TWO_PARTS.parts[:1], home("gw", "")).url) == {"from": "Alerts"}


# -- answers -------------------------------------------------------------------------------------


PLAIN = settings(url="http://h/")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUBMITTED),
        (202, Outcome.SUBMITTED),
        (204, Outcome.SUBMITTED),
        (301, Outcome.PERMANENT),
        (400, Outcome.PERMANENT),
        (401, Outcome.PERMANENT),
        (404, Outcome.PERMANENT),
        (408, Outcome.TEMPORARY),
        (429, Outcome.TEMPORARY),
        (500, Outcome.TEMPORARY),
        (502, Outcome.TEMPORARY),
        (503, Outcome.TEMPORARY),
    ],
)
def test_status_decides_by_default(status: int, outcome: Outcome) -> None:
    assert judge(PLAIN, status, "", "").outcome is outcome


def test_listed_statuses_override_codes_before_classes() -> None:
    rule = StatusRule(
        temporary_codes=frozenset({403}), permanent_codes=frozenset({503}), temporary_classes=frozenset({4})
    )
    assert [rule.classify(s) for s in (400, 403, 503, 500, 200)] == [
        "temporary",
        "temporary",
        "permanent",
        "temporary",
        "success",
    ]


def test_success_regex_failing_is_permanent_unless_temporary_regex_matches() -> None:
    gateway = settings(url="http://h/", success_regex="^OK", temporary_regex="(?i)throttl")
    assert judge(gateway, 200, "OK", "OK: 12").outcome is Outcome.SUBMITTED
    failed = judge(gateway, 200, "OK", "ERR: 001 Authentication failed")
    assert failed.outcome is Outcome.PERMANENT
    assert failed.reason == "provider answered 200 OK without success_regex matching: ERR: 001 Authentication failed"
    assert judge(gateway, 200, "OK", "ERR: throttled").outcome is Outcome.TEMPORARY


def test_retry_after_is_read_from_a_temporary_answer() -> None:
    verdict = judge(PLAIN, 429, "Too Many Requests", "slow down", retry_after_header="30")
    assert (verdict.outcome, verdict.retry_after, verdict.dsn) == (Outcome.TEMPORARY, 30.0, "4.3.2")
    assert verdict.reason == "provider answered 429 Too Many Requests (retry after 30s): slow down"


def test_retry_after_takes_seconds_or_a_date_and_is_capped() -> None:
    assert retry_after("120") == 120.0
    assert retry_after("999999") == 3600.0
    assert retry_after(email.utils.formatdate(1_000_060, usegmt=True), now=1_000_000) == 60.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_message_id_capture_prefers_group_id_then_group_1_then_the_match() -> None:
    body = "OK id=77 ref=A1"
    assert judge(settings(url="http://h/", message_id_regex=r"ref=(?P<id>\w+)"), 200, "", body).message_id == "A1"
    assert judge(settings(url="http://h/", message_id_regex=r"id=(\d+)"), 200, "", body).message_id == "77"
    assert judge(settings(url="http://h/", message_id_regex=r"\d+"), 200, "", body).message_id == "77"
    assert judge(settings(url="http://h/", message_id_regex=r"nope=(\d+)"), 200, "", body).message_id == ""


def test_reasons_never_quote_the_text_or_the_password() -> None:
    body = "400 bad text 'Meet me at 10, code 4711' for user bob pass=hunter2 (key hunter2)"
    said = excerpt(body, ("Meet me at 10, code 4711", "hunter2"))
    assert "4711" not in said and "hunter2" not in said
    assert said == "400 bad text '(redacted)' for user bob pass=(set) (key (redacted))"


def test_reasons_leave_out_an_answer_that_holds_a_very_short_text() -> None:
    assert excerpt("you sent: ok", ("ok",)) == "(answer not shown: it may quote the message)"


def test_excerpt_is_one_short_line() -> None:
    said = excerpt("<html>\n<body>\n" + "x" * 500)
    assert "\n" not in said and len(said) == 120 and said.endswith("...")


def test_client_errors_lose_url_queries() -> None:
    error = ValueError("bad URL http://h/send?user=u&password=s3cret&text=hello")
    assert describe(error) == "ValueError: bad URL http://h/send?..."
