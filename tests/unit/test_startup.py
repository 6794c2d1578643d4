"""Start-up checks: each failure one clear line and the right exit code, no traceback."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import pytest

from mailsms import config
from mailsms.cli import main
from mailsms.config import GatewayConfig
from mailsms.errors import EX_CANTCREAT, EX_CONFIG, EX_IOERR, EX_NOPERM, EX_UNAVAILABLE
from mailsms.startup import (
    Problem,
    StartupFailed,
    check_database,
    check_gateways,
    check_listeners,
    check_state_dir,
    run_checks,
)
from mailsms.store.schema import SCHEMA_VERSION
from mailsms.store.sqlite import SqliteStore
from transports import registry


def denied(*paths: Path | str):  # type: ignore[no-untyped-def]
    """os.access as for a user who may not use ``paths`` (tests run as root)."""
    refused = {str(p) for p in paths}
    return lambda path, mode: str(path) not in refused and os.access(path, mode)


def gateway(kind: str, **options: object) -> GatewayConfig:
    options_class = registry.options_class(kind)
    assert options_class is not None
    return GatewayConfig(id=f"{kind}-1", type=kind, options=options_class(**options))


def config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "m.toml"
    path.write_text(f"[state]\ndir = '{tmp_path / 'var'}'\n{extra}")
    return path


# -- state directory -------------------------------------------------------------------------


def test_writable_state_dir_and_a_creatable_one_pass(tmp_path: Path) -> None:
    assert list(check_state_dir(tmp_path)) == []
    assert list(check_state_dir(tmp_path / "a" / "b")) == []


def test_state_dir_not_writable_is_cantcreat(tmp_path: Path) -> None:
    (problem,) = check_state_dir(tmp_path, access=denied(tmp_path))
    assert problem.exit_code == EX_CANTCREAT
    assert f"state directory {tmp_path} (state.dir) is not writable" in problem.message


def test_state_dir_under_an_unwritable_parent_cannot_be_created(tmp_path: Path) -> None:
    (problem,) = check_state_dir(tmp_path / "new" / "var", access=denied(tmp_path))
    assert problem.exit_code == EX_CANTCREAT
    assert f"{tmp_path} is not writable" in problem.message


def test_a_file_where_the_state_dir_should_be(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("")
    (problem,) = check_state_dir(tmp_path / "var")
    assert "is not a directory" in problem.message


# -- the queue file -----------------------------------------------------------------------------


def make_queue(state: Path, messages: int = 0) -> Path:
    state.mkdir(exist_ok=True)
    SqliteStore.open(state).close()
    path = state / "queue.sqlite"
    if messages:
        with sqlite3.connect(path) as conn:
            conn.executemany(
                "INSERT INTO message (id, created, sender, recipient, number, gateway, state, next_attempt)"
                " VALUES (?, 0, '', '', ?, 'outbox', 'queued', 0)",
                [(f"{n:016X}", f"+1555{n:07d}") for n in range(messages)],
            )
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_a_sound_queue_and_no_queue_pass(tmp_path: Path) -> None:
    assert list(check_database(tmp_path)) == []
    make_queue(tmp_path, messages=50)
    assert list(check_database(tmp_path)) == []


def test_damaged_index_pages_fail_quick_check(tmp_path: Path) -> None:
    path = make_queue(tmp_path, messages=3000)
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'message_due_at'").fetchone()
    with path.open("r+b") as handle:  # scribble over the index's root page, keeping the file's header
        handle.seek((root - 1) * page_size + 8)
        handle.write(b"\xff" * 64)
    (problem,) = check_database(tmp_path)
    assert problem.exit_code == EX_IOERR
    assert "is damaged (PRAGMA quick_check: *** in database main *** On tree page" in problem.message
    assert problem.message.endswith("restore it from a backup")
    assert "\n" not in problem.message


def test_a_file_that_is_no_database_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "queue.sqlite").write_bytes(b"this is not a database\n" * 100)
    (problem,) = check_database(tmp_path)
    assert problem.exit_code == EX_IOERR


def test_a_queue_from_a_newer_mailsms_is_refused(tmp_path: Path) -> None:
    path = make_queue(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    (problem,) = check_database(tmp_path)
    assert problem.exit_code == EX_CONFIG
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this mailsms knows ({SCHEMA_VERSION})" in problem.message


# -- gateways -------------------------------------------------------------------------------


def smstools_spool(tmp_path: Path) -> Path:
    for folder in ("outgoing", "checked", "incoming", "sent", "failed"):
        (tmp_path / "sms" / folder).mkdir(parents=True)
    return tmp_path / "sms"


def test_complete_smstools_spool_passes(tmp_path: Path) -> None:
    spool = smstools_spool(tmp_path)
    assert list(check_gateways([gateway("smstools", spool=str(spool))])) == []


def test_missing_spool_and_missing_folder_name_the_path(tmp_path: Path) -> None:
    (problem,) = check_gateways([gateway("smstools", spool=str(tmp_path / "none"))])
    assert problem.message == f"gateway smstools-1: spool directory {tmp_path / 'none'} (spool) does not exist; " \
        "is smstools installed?"  # fmt: skip
    spool = smstools_spool(tmp_path)
    (spool / "failed").rmdir()
    (problem,) = check_gateways([gateway("smstools", spool=str(spool))])
    assert f"{spool / 'failed'} does not exist" in problem.message
    assert problem.exit_code == EX_CONFIG


def test_spool_folder_without_permission_is_noperm(tmp_path: Path) -> None:
    spool = smstools_spool(tmp_path)
    (problem,) = check_gateways([gateway("smstools", spool=str(spool))], access=denied(spool / "sent"))
    assert problem.exit_code == EX_NOPERM
    assert f"no permission to read and write {spool / 'sent'}" in problem.message


def test_gammu_inbox_is_not_needed_when_not_receiving(tmp_path: Path) -> None:
    for folder in ("outbox", "sent", "error"):
        (tmp_path / "gammu" / folder).mkdir(parents=True)
    spool = str(tmp_path / "gammu")
    assert list(check_gateways([gateway("gammu", spool=spool, receive=False)])) == []
    (problem,) = check_gateways([gateway("gammu", spool=spool)])
    assert "inbox" in problem.message


def test_modem_device_missing_is_a_warning_unusable_is_an_error(tmp_path: Path) -> None:
    (missing,) = check_gateways([gateway("modem", device=str(tmp_path / "ttyUSB9"))])
    assert missing.warning
    assert list(check_gateways([gateway("modem", device="/dev/null")])) == []
    (locked,) = check_gateways([gateway("modem", device="/dev/null")], access=denied("/dev/null"))
    assert (locked.exit_code, locked.warning) == (EX_NOPERM, False)
    assert "dialout" in locked.message
    (tmp_path / "plain").write_text("")
    (plain,) = check_gateways([gateway("modem", device=str(tmp_path / "plain"))])
    assert "not a serial device" in plain.message


# -- listeners -------------------------------------------------------------------------------


def test_a_port_in_use_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        loaded = config.load(config_file(tmp_path, f"[server]\nlmtp_listen = '127.0.0.1:{port}'\nhttp_listen = ''\n"))
        (problem,) = check_listeners(loaded)
    assert problem.exit_code == EX_UNAVAILABLE
    assert problem.message.startswith(f"cannot listen on 127.0.0.1:{port} (server.lmtp_listen): ")


# -- serve and check --startup ------------------------------------------------------------------


def test_run_checks_raises_every_error_with_the_first_ones_code(tmp_path: Path) -> None:
    make_queue(tmp_path / "var")
    with sqlite3.connect(tmp_path / "var" / "queue.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    extra = f"[[gateway]]\nid = 'sms'\ntype = 'smstools'\nspool = '{tmp_path / 'none'}'\n"
    with pytest.raises(StartupFailed) as failed:
        run_checks(config.load(config_file(tmp_path, extra)))
    assert failed.value.exit_code == EX_CONFIG
    assert len(failed.value.details()) == 2


def test_serve_refuses_a_newer_queue_with_one_line_and_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_queue(tmp_path / "var")
    with sqlite3.connect(tmp_path / "var" / "queue.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    path = config_file(tmp_path, "[server]\nlmtp_listen = '127.0.0.1:0'\nhttp_listen = ''\n")
    code = main(["serve", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == EX_CONFIG
    lines = [line for line in err.splitlines() if line.startswith("mailsms: ")]
    assert len(lines) == 1 and "newer than this mailsms knows" in lines[0]
    assert "Traceback" not in err


def test_check_startup_lists_problems_and_exits_with_the_first_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = f"[server]\nlmtp_listen = '127.0.0.1:0'\nhttp_listen = ''\n[[gateway]]\nid = 'gsm'\ntype = 'modem'\n" \
        f"device = '{tmp_path / 'ttyUSB0'}'\n"  # fmt: skip
    path = config_file(tmp_path, extra)
    code = main(["check", "--startup", "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "warning: gateway gsm: modem device" in err
    assert "start-up checks passed" in out
    (tmp_path / "var").write_text("")
    code = main(["check", "--startup", "--config", str(path)])
    assert code == EX_CANTCREAT
    assert "(state.dir) is not a directory" in capsys.readouterr().err


def test_problem_lines_are_single_lines() -> None:
    assert "\n" not in Problem("x").message
