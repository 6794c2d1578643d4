"""mailsms's milter against opendkim's ``miltertest`` (Debian package miltertest): an independent MTA side."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proc import MAILSMS, free_port, port_open
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).parent / "miltertest"


@pytest.fixture
def milter(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """``mailsms milter`` on a free loopback port, with built-in defaults and no state; (port, its log)."""
    port = free_port()
    log = tmp_path / "milter.log"
    config = tmp_path / "mailsms.toml"
    config.write_text(f'[state]\ndir = "{tmp_path / "var"}"\n')
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*MAILSMS, "milter", "--config", str(config), "--listen", f"inet:127.0.0.1:{port}"],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, timeout=15, what="the milter")
        assert proc.poll() is None, f"mailsms milter exited {proc.returncode}: {log.read_text()}"
        yield port, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def miltertest(script: Path, port: int) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("miltertest")
    assert tool, "miltertest not found: install it (apt-get install miltertest; make debs)"
    return subprocess.run(
        [tool, "-v", "-D", f"port={port}", "-s", str(script)], capture_output=True, text=True, timeout=60, check=False
    )


def test_rcpt_checks_and_header_changes_as_miltertest_sees_them(milter: tuple[int, Path]) -> None:
    port, log = milter
    result = miltertest(SCRIPTS / "rcpt_checks.lua", port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rcpt_checks: all passed" in result.stdout
    # miltertest sees only that a reply code came (SMFIR_REPLYCODE); which one, the milter's log says
    wait_until(lambda: "550 5.7.1" in log.read_text(), timeout=5, what="the premium refusal in the log")
    logged = log.read_text()
    assert "553 5.1.3 bad parameter 'maxmsgs'" in logged
    assert "s3cret" not in logged


def test_a_wrong_expectation_makes_miltertest_fail(milter: tuple[int, Path], tmp_path: Path) -> None:
    """The harness can fail: a script expecting the forged login to survive exits non-zero."""
    script = tmp_path / "wrong.lua"
    script.write_text(
        'local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 20, 0.25)\n'
        'mt.conninfo(conn, "client.example.test", "192.0.2.10")\n'
        'mt.mailfrom(conn, "<eve@client.example.test>")\n'
        "mt.rcptto(conn, '<\"sms:+15551234567\"@sms.example.test>')\n"
        'mt.header(conn, "X-Mailsms-Auth", "alice")\n'
        "mt.eom(conn)\n"
        'if mt.eom_check(conn, MT_HDRDELETE, "X-Mailsms-Auth") then\n'
        '  mt.echo("deleted, as it should be")\n'
        '  error("the script expected it kept")\n'
        "end\n"
    )
    result = miltertest(script, milter[0])
    assert "deleted, as it should be" in result.stdout  # miltertest prints no error text, only exits 1
    assert result.returncode != 0
