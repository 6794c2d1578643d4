"""``mailsms address [--json] ADDRESS``: the contract scripts rely on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailsms.cli import main

SECRET = "s3cretPW"
FULL = (
    f'"sms:+15551234567?maxmsgs=3&user=alice&pass={SECRET}&sender=+15550001111'
    '&value=a&value=b%26c&flash=1&udh=0a"@sms.example.com'
)


@pytest.fixture(autouse=True)
def _no_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILSMS_CONFIG", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["address", *argv])
    out, err = capsys.readouterr()
    assert SECRET not in out
    assert SECRET not in err
    return code, out, err


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mailsms.toml"
    path.write_text(text)
    return str(path)


def test_json_prints_number_domain_and_the_given_params_with_their_types(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--json", FULL)
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "number": "+15551234567",
        "domain": "sms.example.com",
        "params": {
            "user": "alice",
            "pass": "(set)",
            "maxmsgs": 3,
            "udh": "0A",
            "sender": "+15550001111",
            "value": ["a", "b&c"],
            "flash": True,
        },
    }
    assert out.count("\n") == 1


def test_json_params_are_empty_when_none_were_given(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "<sms:+1 555 123 4567@SMS.example.com>")
    assert code == 0
    assert json.loads(out) == {"number": "+15551234567", "domain": "sms.example.com", "params": {}}


def test_plain_output_is_a_key_value_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, FULL)
    assert code == 0
    assert out.splitlines() == [
        "number: +15551234567",
        "domain: sms.example.com",
        "user: alice",
        "pass: (set)",
        "maxmsgs: 3",
        "udh: 0A",
        "sender: +15550001111",
        "value: a",
        "value: b&c",
        "flash: 1",
    ]


def test_plain_output_shows_the_default_maxmsgs_and_keeps_a_body_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "sms:+15551234567?body=a%0Ab@x.example")
    assert code == 0
    assert out.splitlines() == ["number: +15551234567", "domain: x.example", "maxmsgs: 1 (default)", "body: a\\nb"]


@pytest.mark.parametrize(
    ("address", "line"),
    [
        (
            "sms:+15551234567?maxmsgs=500@x.example",
            "mailsms: 5.1.3 bad parameter 'maxmsgs': must be an integer 1..128",
        ),
        ("sms:+1555@x.example", "mailsms: 5.1.1 bad number '+1555'"),
        ("+15551234567@x.example", "mailsms: 5.1.1 a plain number as local part needs address.sms_domains"),
        (f"sms:+15551234567?pass={SECRET}&colour=red@x.example", "mailsms: 5.1.3 bad parameter after 'pass'"),
    ],
)
def test_a_refused_address_exits_65_with_one_line_holding_the_enhanced_code(
    capsys: pytest.CaptureFixture[str], address: str, line: str
) -> None:
    code, out, err = run(capsys, "--json", address)
    assert code == 65
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(line)


def test_the_configuration_file_gives_sms_domains_and_the_default_maxmsgs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, '[address]\nsms_domains = ["sms.example.com"]\n[segment]\nmaxmsgs = 4\n')
    code, out, _ = run(capsys, "--config", path, "15551234567@SMS.example.com")
    assert code == 0
    assert out.splitlines() == ["number: +15551234567", "domain: sms.example.com", "maxmsgs: 4 (default)"]
    code, _, err = run(capsys, "--config", path, "sms:+15551234567@other.example")
    assert code == 65
    assert err == "mailsms: 5.1.1 domain 'other.example' is not an SMS domain here (address.sms_domains)\n"


def test_the_configuration_may_come_from_mailsms_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILSMS_CONFIG", config_file(tmp_path, '[address]\ndefault_region = "GB"\n'))
    code, out, _ = run(capsys, "--json", "sms:07700 900123@x.example")
    assert code == 0
    assert json.loads(out)["number"] == "+447700900123"


def test_a_broken_configuration_exits_78_with_its_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, "[address]\nsms_domain = 1\n")
    code, out, err = run(capsys, "--config", path, "sms:+15551234567@x.example")
    assert code == 78
    assert out == ""
    assert f"{path}:2: address.sms_domain: unknown key" in err
    assert err.endswith(f"mailsms: 1 problem in {path}\n")


def test_an_unknown_default_region_exits_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, '[address]\ndefault_region = "XX"\n')
    code, _, err = run(capsys, "--config", path, "sms:5551234567@x.example")
    assert code == 78
    assert "mailsms.toml:2: address.default_region: unknown region 'XX'" in err


def test_the_command_starts_fast_and_imports_no_server_or_number_library() -> None:
    code = (
        "import sys, json\n"
        "from mailsms.cli import main\n"
        "rc = main(['address', '--json', '\"sms:+15551234567?maxmsgs=3\"@x.example'])\n"
        "heavy = ('aiohttp', 'aiosmtpd', 'phonenumbers', 'email_validator', 'sqlite3')\n"
        "print(json.dumps([rc, sorted(m for m in heavy if m in sys.modules)]))\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )
    elapsed = time.monotonic() - started
    assert json.loads(result.stdout.splitlines()[-1]) == [0, []]
    assert elapsed < 2.0  # generous for a loaded CI machine; about 0.1 s when quiet
