"""sd_notify: READY=1 / STOPPING=1 as datagrams to $NOTIFY_SOCKET, path or abstract name."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsms import sdnotify


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_ready_with_status_reaches_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert sdnotify.notify("READY=1\nSTATUS=lmtp on 127.0.0.1:2424", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=lmtp on 127.0.0.1:2424"


def test_abstract_socket_name_starts_with_at() -> None:
    name = f"mailsms-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"


def test_ready_and_stopping_use_the_environment(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.ready("up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"
    assert sdnotify.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    assert sdnotify.notify("READY=1", {}) is False


def test_a_socket_nobody_listens_on_is_a_warning_not_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert "cannot tell systemd READY=1" in caplog.text
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}) is False


async def test_the_daemon_says_ready_once_serving_and_stopping_when_it_stops(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    from mailsms.config import Config, ServerConfig, StateConfig
    from mailsms.daemon import Daemon
    from mailsms.values import ListenAddress

    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    config = Config(server=ServerConfig(lmtp_listen=ListenAddress("127.0.0.1", 0), smtp_listen=None,
                                        http_listen=None), state=StateConfig(dir=str(state_dir)))  # fmt: skip
    daemon = Daemon(config)
    await daemon.start()
    try:
        ready = sock.recv(4096).decode()
        assert ready.startswith("READY=1\nSTATUS=lmtp on 127.0.0.1:")
        port = int(ready.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # it serves once READY is sent
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"220 ")
        writer.close()
    finally:
        await daemon.stop()
    assert sock.recv(4096) == b"STOPPING=1"


def test_the_shipped_unit_is_type_notify_and_verifies(tmp_path: Path) -> None:
    """conf/mailsms.service passes systemd-analyze verify (Debian's systemd, in the Makefile's DEBS)."""
    import shutil
    import subprocess

    unit = Path(__file__).resolve().parents[2] / "conf" / "mailsms.service"
    text = unit.read_text()
    assert "\nType=notify\n" in text
    assert "\nProtectSystem=strict\n" in text and "\nReadWritePaths=/var/lib/mailsms\n" in text
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: `make debs` installs Debian's systemd"
    mailsms = Path(sys.executable).with_name("mailsms")
    local = tmp_path / "mailsms.service"
    local.write_text(text.replace("/usr/bin/mailsms", str(mailsms)))
    done = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "mailsms.service" not in done.stderr, done.stderr
