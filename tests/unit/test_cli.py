from __future__ import annotations

from pathlib import Path

import pytest

from mailsms import __version__
from mailsms.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mailsms {__version__}"


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "serve" in out and "check" in out


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 64
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 64


def test_check_accepts_no_configuration(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILSMS_CONFIG", raising=False)
    assert main(["check"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_check_reports_every_problem_by_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[server]\nlmtp_listn = 'x'\nmax_recipients = 'x'\n")
    assert main(["check", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert f"{path}:2: server.lmtp_listn: unknown key" in err
    assert f"{path}:3: server.max_recipients: expected an integer" in err
    assert "2 problems" in err


def test_check_reads_mailsms_config_from_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[bogus]\n")
    monkeypatch.setenv("MAILSMS_CONFIG", str(path))
    assert main(["check"]) == 78
    assert "bogus: unknown section" in capsys.readouterr().err


def test_config_option_works_before_the_subcommand(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[state]\ndir = '/x'\n")
    assert main(["--config", str(path), "check"]) == 0


def test_unexpected_error_prints_one_line_and_writes_crash_report(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailsms.cmd_check

    def boom(args: object) -> int:
        raise RuntimeError("kaboom pass=secret")

    monkeypatch.setattr(mailsms.cmd_check, "run", boom)
    assert main(["check"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err and "kaboom" not in err
    report = Path(err.rsplit(" ", 1)[1].strip())
    assert "RuntimeError" in report.read_text()
    assert "secret" not in report.read_text()
    report.unlink()


def test_serve_rejects_malformed_listen_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--lmtp-listen", "nonsense"])
    assert info.value.code == 64
    assert "bad listen address 'nonsense'" in capsys.readouterr().err
