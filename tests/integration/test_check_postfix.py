"""``mailsms check --postfix`` against real Postfix configuration directories (postconf -c, postmap -q)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mailsms import postfix_check
from mailsms.cli import main

POSTCONF = "/usr/sbin/postconf"
MASTER_DIST = Path("/usr/share/postfix/master.cf.dist")
REPO_CONF = Path(__file__).resolve().parents[2] / "conf" / "postfix"


@pytest.fixture(autouse=True)
def _postfix_installed() -> None:
    assert Path(POSTCONF).exists(), "Postfix is needed for these tests (Debian: apt install postfix)"


def mailsms_config(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "mailsms.toml"
    path.write_text(
        f"[state]\ndir = '{tmp_path / 'var'}'\n[address]\nsms_domains = ['sms.example.com']\n"
        f"[server]\nlmtp_listen = '127.0.0.1:2424'\n{extra}"
    )
    return str(path)


def postfix_dir(tmp_path: Path, main_cf: str, *, services: str = "", maps: dict[str, str] | None = None) -> str:
    directory = tmp_path / "postfix"
    directory.mkdir()
    (directory / "main.cf").write_text(f"compatibility_level = 3.6\n{main_cf}")
    (directory / "master.cf").write_text(MASTER_DIST.read_text() + services)
    for name, content in (maps or {}).items():
        (directory / name).write_text(content)
    return str(directory)


def check(capsys: pytest.CaptureFixture[str], config: str, directory: str) -> tuple[int, str, str]:
    code = main(["check", "--postfix", "--postconf-dir", directory, "--config", config])
    out, err = capsys.readouterr()
    return code, out, err


GOOD_MAP = '/^"?sms:/i lmtp:inet:127.0.0.1:2424\n/@sms\\.example\\.com$/i lmtp:inet:127.0.0.1:2424\n'


def test_complete_setup_with_regexp_map_and_milter_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main_cf = (
        "transport_maps = regexp:$config_directory/transport_sms\n"
        "relay_domains = sms.example.com\n"
        "lmtp_destination_recipient_limit = 100\n"
        "smtpd_milters = inet:127.0.0.1:8891\nmilter_protocol = 6\nmilter_default_action = tempfail\n"
    )
    directory = postfix_dir(tmp_path, main_cf, maps={"transport_sms": GOOD_MAP})
    config = mailsms_config(tmp_path, "[milter]\nlisten = 'inet:127.0.0.1:8891'\n")
    code, out, _ = check(capsys, config, directory)
    assert code == 0, out
    assert 'ok: "sms:+15551234567"@sms.example.com -> lmtp:inet:127.0.0.1:2424' in out
    assert "ok: +15551234567@sms.example.com -> lmtp:inet:127.0.0.1:2424" in out
    assert "ok: lmtp_destination_recipient_limit = 100" in out
    assert "missing" not in out
    assert out.rstrip().endswith("mailsms: Postfix hands SMS mail to mailsms")


def test_bare_postfix_lists_each_missing_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = postfix_dir(tmp_path, "milter_default_action = accept\n")
    config = mailsms_config(tmp_path, "[milter]\nlisten = 'inet:127.0.0.1:8891'\n")
    code, out, _ = check(capsys, config, directory)
    assert code == 78
    assert "  add to main.cf: transport_maps = regexp:/etc/postfix/transport_sms" in out
    assert '  add to regexp:/etc/postfix/transport_sms: /^"?sms:/i lmtp:inet:127.0.0.1:2424' in out
    assert "  add to regexp:/etc/postfix/transport_sms: /@sms\\.example\\.com$/i lmtp:inet:127.0.0.1:2424" in out
    assert "  add to main.cf: relay_domains = sms.example.com" in out
    assert "  add to main.cf: smtpd_milters = inet:127.0.0.1:8891" in out
    assert "  add to main.cf: milter_default_action = tempfail" in out
    assert "milter_protocol" not in out  # Postfix 3's default is 6 already
    assert out.rstrip().endswith("mailsms: 6 problems in the Postfix configuration")


def test_dedicated_service_with_a_texthash_map_and_too_high_recipient_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_cf = (
        "transport_maps = texthash:$config_directory/transport\n"
        "relay_domains = texthash:$config_directory/relay\n"
        "mailsms_destination_recipient_limit = 5000\n"
    )
    directory = postfix_dir(
        tmp_path,
        main_cf,
        services="mailsms   unix  -       -       n       -       -       lmtp\n",
        maps={"transport": "sms.example.com mailsms:inet:127.0.0.1:2424\n", "relay": "sms.example.com OK\n"},
    )
    config = mailsms_config(tmp_path)
    code, out, _ = check(capsys, config, directory)
    assert code == 78
    assert "ok: +15551234567@sms.example.com -> mailsms:inet:127.0.0.1:2424" in out
    assert "mailsms_destination_recipient_limit = 5000" in out
    assert "  add to main.cf: mailsms_destination_recipient_limit = 1000" in out
    assert out.rstrip().endswith("mailsms: 1 problem in the Postfix configuration")


def test_a_route_to_another_port_is_not_mailsms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = GOOD_MAP.replace("2424", "2525")
    main_cf = "transport_maps = regexp:$config_directory/transport_sms\nrelay_domains = sms.example.com\n"
    directory = postfix_dir(tmp_path, main_cf, maps={"transport_sms": wrong})
    code, out, _ = check(capsys, mailsms_config(tmp_path), directory)
    assert code == 78
    assert "sends +15551234567@sms.example.com to 'lmtp:inet:127.0.0.1:2525', which is not mailsms" in out


def test_shipped_snippets_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """conf/postfix/ as an administrator would install it: main.cf and master.cf lines appended;
    with a milter, main.cf's commented milter lines taken in too."""
    main_cf = (REPO_CONF / "main.cf").read_text()
    for milter, lines in (("", main_cf), ("[milter]\nlisten = 'inet:127.0.0.1:8891'\n", uncommented(main_cf))):
        case = tmp_path / ("milter" if milter else "plain")
        directory = case / "postfix"
        directory.mkdir(parents=True)
        (directory / "main.cf").write_text(
            "compatibility_level = 3.6\n" + lines.replace("/etc/postfix", str(directory))
        )
        (directory / "master.cf").write_text(MASTER_DIST.read_text() + (REPO_CONF / "master.cf").read_text())
        shutil.copy(REPO_CONF / "transport_sms", directory / "transport_sms")
        code, out, _ = check(capsys, mailsms_config(case, milter), str(directory))
        assert code == 0, out


def uncommented(text: str) -> str:
    return re.sub(r"^#(\w+ = )", r"\1", text, flags=re.MULTILINE)


def test_missing_directory_is_no_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, mailsms_config(tmp_path), str(tmp_path / "nowhere"))
    assert code == 66
    assert "no main.cf" in err


def test_without_postconf_the_check_is_unavailable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postfix_check, "_tool", lambda name: None)
    code = main(["check", "--postfix", "--config", mailsms_config(tmp_path)])
    assert code == 69
    assert "postconf not found" in capsys.readouterr().err
