"""``mailsms route test``: what the rules decide, printed for people and for scripts; nothing is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailsms.cli import main

CONFIG = """\
[state]
dir = "{state}"

[[gateway]]
id = "a"
type = "outbox"
weight = 3
[[gateway]]
id = "b"
type = "outbox"
[[gateway]]
id = "uk"
type = "outbox"
prefixes = ["+44"]

[[group]]
id = "main"
gateways = ["a", "b", "uk"]

[[route]]
name = "trunk"
number = '\\+440(\\d+)'
rewrite = '+44\\1'
[[route]]
name = "uk"
number = '\\+44\\d+'
gateway = "uk"
set_sender = "ACME"
[[route]]
name = "us"
number = '\\+1.*'
gateway = "main"
[[route]]
name = "no-fr"
number = '\\+33.*'
reject = "550 5.7.1 no SMS to France"
[[route]]
name = "night"
hours = "22:00-06:00"
text = "wake"
gateway = "b"
[[route]]
name = "broken"
number = '\\+99(\\d+)'
rewrite = '\\1'
"""


@pytest.fixture(autouse=True)
def _no_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILSMS_CONFIG", raising=False)


@pytest.fixture
def conf(tmp_path: Path) -> str:
    path = tmp_path / "mailsms.toml"
    path.write_text(CONFIG.format(state=tmp_path / "var"))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], conf: str, *argv: str) -> tuple[int, str, str]:
    code = main(["route", "test", "--config", conf, "--at", "12:00", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_rewrite_and_rule_gateway_are_shown(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, err = run(capsys, conf, "+44 07700 900123")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "matched: trunk, uk",
        "number: +447700900123 (rewritten from +4407700900123)",
        "sender: ACME",
        "gateway: uk",
    ]


def test_group_shows_its_eligible_members_and_the_first_one(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, _ = run(capsys, conf, "+15551234567")
    assert code == 0
    assert out.splitlines() == [
        "matched: us",
        "number: +15551234567",
        "target: main (group), weighted",
        "members: a, b",
        "first: a (with every breaker closed)",
    ]


def test_no_rule_uses_every_gateway_first_available_first(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, _ = run(capsys, conf, "+4912345678")
    assert code == 0
    assert "matched: (no rule)" in out
    assert "target: * (every gateway of weight > 0), priority" in out
    assert "first: a (with every breaker closed)" in out


def test_a_reject_is_an_answer_and_exits_0(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, _ = run(capsys, conf, "+33612345678")
    assert code == 0
    assert "reject: 550 5.7.1 no SMS to France (route no-fr)" in out
    assert "gateway" not in out


def test_json_is_one_object(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, _ = run(capsys, conf, "--json", "--sender", "x@example.com", "+4407700900123")
    assert code == 0
    assert out.count("\n") == 1
    assert json.loads(out) == {
        "number": "+447700900123",
        "original": "+4407700900123",
        "matched": ["trunk", "uk"],
        "sender": "ACME",
        "target": "uk",
        "pinned": False,
        "kind": "gateway",
        "balance": "priority",
        "members": ["uk"],
        "first": "uk",
        "reject": None,
    }


def test_json_reject(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    _, out, _ = run(capsys, conf, "--json", "+33612345678")
    assert json.loads(out)["reject"] == {"code": 550, "enhanced": "5.7.1", "text": "no SMS to France", "rule": "no-fr"}


def test_hours_and_text_take_part(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code = main(["route", "test", "--config", conf, "--at", "23:00", "--text", "WAKE up", "--json", "+4912345678"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["target"] == "b"
    _, out, _ = run(capsys, conf, "--text", "wake up", "--json", "+4912345678")
    assert json.loads(out)["target"] == "*"


def test_pinned_gateway_wins_and_says_so(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, _ = run(capsys, conf, "--gateway", "b", "+447700900123")
    assert code == 0
    assert "gateway: b (pinned: id= or the account's gateway)" in out
    assert "matched: uk" in out


def test_pinned_gateway_that_does_not_take_the_number_would_wait(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    _, out, _ = run(capsys, conf, "--gateway", "uk", "+15551234567")
    assert "first: none takes this number; the message would wait" in out


def test_the_accounts_gateway_pins(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    assert main(["accounts", "add", "alice", "--config", conf, "--no-password", "--gateway", "b"]) == 0
    capsys.readouterr()
    _, out, _ = run(capsys, conf, "--account", "alice", "--json", "+15551234567")
    assert (json.loads(out)["target"], json.loads(out)["pinned"]) == ("b", True)
    _, out, _ = run(capsys, conf, "--account", "bob", "--json", "+15551234567")
    assert json.loads(out)["target"] == "main"


def test_unknown_pinned_gateway_is_a_usage_error(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, _, err = run(capsys, conf, "--gateway", "zz", "+15551234567")
    assert code == 64
    assert err == "mailsms: unknown gateway or group 'zz'\n"


def test_a_number_that_is_not_a_number_exits_65(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, err = run(capsys, conf, "abc")
    assert (code, out) == (65, "")
    assert err.startswith("mailsms: 5.1.1 bad number 'abc'")


def test_a_rewrite_to_a_non_number_exits_65_naming_the_rule(capsys: pytest.CaptureFixture[str], conf: str) -> None:
    code, out, err = run(capsys, conf, "+991234567")
    assert (code, out) == (65, "")
    assert err.startswith("mailsms: 5.1.1 route 'broken' rewrote the number")


def test_bad_configuration_exits_78_listing_the_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[route]]\nname = "r"\ngateway = "nowhere"\n')
    code = main(["route", "test", "--config", str(path), "+15551234567"])
    assert code == 78
    assert "route[0].gateway: unknown gateway or group 'nowhere'" in capsys.readouterr().err


def test_check_prints_routing_problems_with_their_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[group]]\nid = "g"\n[[route]]\nname = "r"\nrewrite = \'+1\\1\'\n')
    assert main(["check", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert f"{path}:1: group[0].gateways: a group needs at least one gateway" in err
    assert f"{path}:5: route[0].rewrite: needs a number regex to rewrite with" in err
