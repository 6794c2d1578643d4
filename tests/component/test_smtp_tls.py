"""STARTTLS on the SMTP listener with a throwaway self-signed certificate, then SMTP AUTH."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiosmtplib
import pytest

from mailsms.cli import main
from mailsms.config import Config
from mailsms.daemon import Daemon
from mailsms.server import auth_allowed
from mailsms.values import ListenAddress
from tests.component.test_ingest import outbox_files
from tests.component.test_policy_ingest import NUMBER, PASSWORD, add_account, alice, rcpt, with_policy
from tests.conftest import replace_server
from tests.support.wait import async_wait_until


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key, made now by openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_daemon(config: Config, tmp_path: Path) -> AsyncIterator[Daemon]:
    cert, key = self_signed(tmp_path)
    changed = replace_server(
        with_policy(config, require_auth=True, auth_failure_delay=0.0),
        smtp_listen=ListenAddress("127.0.0.1", 0),
        tls_cert=str(cert),
        tls_key=str(key),
    )
    running = Daemon(changed)
    await running.start()
    add_account(running, alice())
    try:
        yield running
    finally:
        await running.stop()


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own throwaway certificate
    return context


async def test_starttls_then_auth_plain_sends_and_lmtp_offers_no_starttls(tls_daemon: Daemon, state_dir: Path) -> None:
    smtp = tls_daemon.bound["smtp"]
    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, start_tls=False, timeout=10)
    await client.connect()
    try:
        await client.ehlo(hostname="client.example.test")
        assert client.supports_extension("starttls")
        await client.starttls(tls_context=client_context())
        await client.ehlo(hostname="client.example.test")
        assert not client.supports_extension("starttls")
        assert "plain" in client.server_auth_methods
        wrong = await client.execute_command(b"AUTH", b"PLAIN", _plain("alice", "nope"))
        assert (wrong.code, wrong.message[:5]) == (535, "5.7.8")
        assert (await client.auth_plain("alice", PASSWORD)).code == 235
        errors, _ = await client.sendmail("a@example.com", [rcpt()], b"Subject: hi\r\n\r\nover TLS\r\n")
        assert errors == {}
    finally:
        await client.quit()
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    assert outbox_files(state_dir)[0]["to"] == NUMBER
    lmtp = tls_daemon.bound["lmtp"]
    plain = aiosmtplib.SMTP(hostname=lmtp.host, port=lmtp.port, start_tls=False, timeout=10)
    await plain.connect()
    try:
        await plain.execute_command(b"LHLO", b"mta.example.test")
        answer = await plain.execute_command(b"STARTTLS")
        assert (answer.code, answer.message[:5]) == (454, "4.7.0")  # LMTP from the local MTA stays plain
    finally:
        plain.close()


def _plain(user: str, password: str) -> bytes:
    import base64

    return base64.b64encode(f"\0{user}\0{password}".encode())


@pytest.mark.parametrize(
    ("peer", "tls", "allowed"),
    [("192.0.2.7", False, False), ("192.0.2.7", True, True), ("127.0.0.1", False, True), ("::1", False, True)],
)
def test_auth_is_allowed_after_starttls_or_from_loopback(peer: str, tls: bool, allowed: bool) -> None:
    server = SimpleNamespace(_tls_protocol=object() if tls else None)
    session = SimpleNamespace(peer=(peer, 25))
    assert auth_allowed(server, session) is allowed  # type: ignore[arg-type]


def test_check_names_unreadable_or_mismatched_tls_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = self_signed(tmp_path)
    config_file = tmp_path / "m.toml"
    config_file.write_text(f"[server]\ntls_cert = '{cert}'\ntls_key = '{tmp_path / 'missing.pem'}'\n")
    assert main(["check", "--config", str(config_file)]) == 78
    assert "server.tls_key: cannot read" in capsys.readouterr().err
    config_file.write_text(f"[server]\ntls_cert = '{cert}'\n")
    assert main(["check", "--config", str(config_file)]) == 78
    assert "server.tls_key: required with server.tls_cert" in capsys.readouterr().err
    config_file.write_text(f"[server]\ntls_cert = '{key}'\ntls_key = '{key}'\n")
    assert main(["check", "--config", str(config_file)]) == 78
    assert "server.tls_cert:" in capsys.readouterr().err
    config_file.write_text(f"[server]\ntls_cert = '{cert}'\ntls_key = '{key}'\n")
    assert main(["check", "--config", str(config_file)]) == 0


def test_check_names_a_broken_interception_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "mt.py"
    script.write_text("def intercept(message)\n    pass\n")
    config_file = tmp_path / "m.toml"
    config_file.write_text(f"[intercept]\nmt = '{script}'\nmo = '{tmp_path / 'none.py'}'\n")
    assert main(["check", "--config", str(config_file)]) == 78
    err = capsys.readouterr().err
    assert "intercept.mt: interception script" in err and "not valid Python: line 1" in err
    assert "intercept.mo: cannot read interception script" in err
