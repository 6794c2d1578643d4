"""Kannel's sendsms request, built by hand: what each part's query says, and what Kannel's answers mean."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.schema import Problem, build
from transports import kannel, registry
from transports.base import Outcome, OutgoingPart, OutgoingSms, TransportContext

UDH_1 = bytes.fromhex("0500032a0201")
DLR_URL = "http://127.0.0.1:8025/dlr/kannel?id=Q1.1&status=%d&reason=%A"


def options(**changes: object) -> kannel.Options:
    fields: dict[str, object] = {"username": "mailsms", "password": "s3cret&x=1"}
    fields.update(changes)
    return kannel.Options(**fields)  # type: ignore[arg-type]


def sms(text: str = "Hello", encoding: str = "gsm7", udh: bytes = b"", **changes: object) -> OutgoingSms:
    fields: dict[str, object] = {
        "queue_id": "Q1",
        "to": "+15551234567",
        "parts": (OutgoingPart(1, text, udh),),
        "total": 1,
        "encoding": encoding,
    }
    fields.update(changes)
    return OutgoingSms(**fields)  # type: ignore[arg-type]


def query(message: OutgoingSms, opts: kannel.Options | None = None, report_url: str = DLR_URL) -> dict[str, bytes]:
    """The query as Kannel decodes it: split at "&" and "=", each value percent-decoded once."""
    text = kannel.sendsms_query(opts or options(), message, message.parts[0], report_url)
    pairs = [item.split("=", 1) for item in text.split("&")]
    assert all(len(pair) == 2 for pair in pairs), text
    assert "+" not in text and " " not in text  # Kannel would read "+" as a space
    return {key: unquote_to_bytes(value) for key, value in pairs}


def test_plus_in_the_number_is_sent_as_percent_2b() -> None:
    text = kannel.sendsms_query(options(), sms(), sms().parts[0], "")
    assert "to=%2B15551234567" in text


def test_gsm_text_goes_as_utf8_with_coding_0() -> None:
    fields = query(sms("Price {5} 10€ ^ ~ Ç"))
    assert fields["text"] == "Price {5} 10€ ^ ~ Ç".encode()
    assert (fields["coding"], fields["charset"]) == (b"0", b"UTF-8")


def test_ucs2_text_goes_as_its_utf16_octets_with_coding_2() -> None:
    fields = query(sms("hi \U0001f600", "ucs2"))
    assert fields["text"] == "hi \U0001f600".encode("utf-16-be")
    assert (fields["coding"], fields["charset"]) == (b"2", b"UTF-16BE")


def test_udh_is_the_raw_bytes_encoded_once_not_hex() -> None:
    text = kannel.sendsms_query(options(), sms(udh=UDH_1), sms(udh=UDH_1).parts[0], "")
    assert "udh=%05%00%03%2A%02%01" in text


def test_a_single_part_has_no_udh_field() -> None:
    assert "udh" not in query(sms())


def test_binary_parts_go_as_8bit_data_without_charset() -> None:
    message = sms("", "binary", parts=(OutgoingPart(1, "", UDH_1, data=b"\x00\xff+ "),))
    fields = query(message)
    assert fields["text"] == b"\x00\xff+ "
    assert fields["coding"] == b"1"
    assert "charset" not in fields


def test_credentials_with_special_characters_survive() -> None:
    fields = query(sms())
    assert (fields["username"], fields["password"]) == (b"mailsms", b"s3cret&x=1")


def test_every_report_is_asked_for_at_a_dlr_url_carrying_the_part_id() -> None:
    fields = query(sms())
    assert fields["dlr-mask"] == b"31"
    # Kannel fills %d and %A itself: they must reach it as written, once decoded.
    assert fields["dlr-url"].decode() == DLR_URL


def test_dlr_url_names_the_gateway_and_the_part() -> None:
    assert kannel.dlr_url("http://gw.example.test:8025", "kannel-1", "Q1.2") == (
        "http://gw.example.test:8025/dlr/kannel-1?id=Q1.2&status=%d&reason=%A"
    )


def test_dlr_url_carries_the_webhook_secret_when_there_is_one() -> None:
    url = kannel.dlr_url("http://127.0.0.1:8025", "kannel", "Q1.1", secret="a&b c")
    assert url == "http://127.0.0.1:8025/dlr/kannel?id=Q1.1&status=%d&reason=%A&secret=a%26b%20c"


def test_no_dlr_fields_without_a_report_url_or_with_mask_0() -> None:
    assert "dlr-mask" not in query(sms(), report_url="")
    assert "dlr-url" not in query(sms(), options(dlr_mask=0))


def test_sender_comes_from_the_message_then_the_gateway_else_kannels_default() -> None:
    assert query(sms(sender="Alice"), options(sender="12345"))["from"] == b"Alice"
    assert query(sms(), options(sender="+15550001111"))["from"] == b"+15550001111"
    assert "from" not in query(sms())


def test_flash_pid_and_smsc_are_passed_on() -> None:
    fields = query(sms(flash=True, pid=65), options(smsc="operator-a"))
    assert (fields["mclass"], fields["pid"], fields["smsc"]) == (b"0", b"65", b"operator-a")


@given(st.text(min_size=1, max_size=70), st.binary(max_size=12))
def test_any_text_and_udh_come_back_exactly_as_sent(text: str, udh: bytes) -> None:
    fields = query(sms(text, "ucs2", udh=udh))
    assert fields["text"].decode("utf-16-be", "surrogatepass") == text
    assert fields.get("udh", b"") == udh


@pytest.mark.parametrize(
    ("status", "body"),
    [(202, "0: Accepted for delivery"), (200, "Sent."), (202, "3: Queued for later delivery"), (200, "")],
)
def test_every_2xx_answer_means_submitted_with_mailsms_own_part_id(status: int, body: str) -> None:
    result = kannel.judge(status, body, 2, "Q1.2")
    assert (result.outcome, result.message_id, result.seq) == (Outcome.SUBMITTED, "Q1.2", 2)


def test_4xx_is_permanent_with_kannels_own_words() -> None:
    result = kannel.judge(400, "Number(s) has/have been denied by white- and/or black-lists.\n", 1, "Q1.1")
    assert result.outcome is Outcome.PERMANENT
    assert result.reason == "kannel: 400 Number(s) has/have been denied by white- and/or black-lists."
    assert result.dsn == "5.0.0"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_such_as_a_full_queue_is_temporary(status: int) -> None:
    result = kannel.judge(status, "4: Message queue full", 1, "Q1.1")
    assert (result.outcome, result.reason) == (Outcome.TEMPORARY, f"kannel: {status} 4: Message queue full")


@pytest.mark.parametrize(("status", "dsn"), [(403, "4.3.5"), (401, "4.3.5"), (429, "4.3.2"), (408, "4.4.2")])
def test_a_wrong_password_or_rate_limit_defers_instead_of_bouncing(status: int, dsn: str) -> None:
    result = kannel.judge(status, "Authorization failed for sendsms", 1, "Q1.1")
    assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, dsn)


def test_reasons_are_one_short_line() -> None:
    result = kannel.judge(400, "x\n" * 500, 1, "Q1.1")
    assert "\n" not in result.reason and len(result.reason) <= len("kannel: 400 ") + 120


def test_reasons_never_quote_the_password_or_the_text() -> None:
    result = kannel.judge(400, "bad request for pw-123: Hello there", 1, "Q1.1", ("Hello there", "pw-123"))
    assert "pw-123" not in result.reason and "Hello there" not in result.reason


def test_registry_knows_the_kannel_type() -> None:
    assert registry.options_class("kannel") is kannel.Options


def build_options(table: dict[str, object]) -> tuple[kannel.Options, list[Problem]]:
    problems: list[Problem] = []
    built = build(kannel.Options, table, "gateway[0]", problems, lambda _key: None)
    problems += [Problem(f"gateway[0].{key}", message) for key, message in built.validate()]
    return built, problems


def test_three_lines_of_config_are_enough() -> None:
    built, problems = build_options({"url": "http://127.0.0.1:13013/cgi-bin/sendsms", "username": "u", "password": "p"})
    assert problems == []
    assert (built.dlr_mask, built.timeout) == (31, 30.0)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"url": "ftp://127.0.0.1/x", "username": "u"}, "url"),
        ({"url": "127.0.0.1:13013", "username": "u"}, "url"),
        ({"url": "http://127.0.0.1:13013/cgi-bin/sendsms?username=u", "username": "u"}, "url"),
        ({"url": "http://127.0.0.1:13013/cgi-bin/sendsms"}, "username"),
        ({"username": "u", "dlr_mask": 32}, "dlr_mask"),
        ({"username": "u", "timeout": 0}, "timeout"),
    ],
)
def test_bad_options_are_named(table: dict[str, object], key: str) -> None:
    _, problems = build_options(table)
    assert [p.key for p in problems] == [f"gateway[0].{key}"]


def test_options_never_show_the_password() -> None:
    assert "s3cret" not in repr(options())


@pytest.mark.parametrize(
    ("public_url", "mask", "expected"),
    [("http://127.0.0.1:8025", 31, True), ("http://127.0.0.1:8025", 8, False), ("", 31, False)],
)
def test_reports_are_expected_only_with_a_dlr_url_and_a_final_type_in_the_mask(
    tmp_path: Path, public_url: str, mask: int, expected: bool
) -> None:
    context = TransportContext("kannel", tmp_path, public_url=public_url)
    assert kannel.create(options(dlr_mask=mask), context).delivery_reports is expected


def test_the_scheduler_may_hand_over_twice_as_many_messages_as_there_are_connections(tmp_path: Path) -> None:
    transport = kannel.create(options(connections=8), TransportContext("kannel", tmp_path))
    assert transport.concurrency == 16
