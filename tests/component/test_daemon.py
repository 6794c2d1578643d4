"""The daemon in-process: listeners, health endpoint, state directory, clean failure."""

from __future__ import annotations

import dataclasses
import json
import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from mailsms.config import Config, StateConfig
from mailsms.daemon import Daemon, ListenError, StateDirError
from mailsms.values import ListenAddress
from tests.conftest import replace_server
from tests.support.lmtp import LmtpClient


async def test_lmtp_answers_lhlo(daemon: Daemon) -> None:
    lmtp = daemon.bound["lmtp"]
    client = await LmtpClient.connect(lmtp.host, lmtp.port)
    assert client.greeting is not None and client.greeting.code == 220
    reply = await client.command("LHLO mta.example.test")
    assert reply.code == 250
    assert "8BITMIME" in reply.lines and "SMTPUTF8" in reply.lines
    await client.close()


async def test_healthz_answers_json(daemon: Daemon) -> None:
    http = daemon.bound["http"]
    async with aiohttp.ClientSession() as session, session.get(f"http://{http.host}:{http.port}/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"


async def test_http_errors_have_a_json_body(daemon: Daemon) -> None:
    http = daemon.bound["http"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{http.host}:{http.port}/nope") as resp:
            assert resp.status == 404
            assert json.loads(await resp.text()) == {"error": "Not Found", "status": "5.5.1"}
        async with session.post(f"http://{http.host}:{http.port}/healthz") as resp:
            assert resp.status == 405
            assert await resp.json() == {"error": "Method Not Allowed", "status": "5.5.1"}
            assert "GET" in resp.headers["Allow"]


async def test_state_dir_is_created_with_mode_0700(daemon: Daemon, state_dir: Path) -> None:
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


async def test_port_in_use_names_the_address_and_creates_nothing(config: Config, state_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = Daemon(replace_server(config, lmtp_listen=ListenAddress("127.0.0.1", port)))
        with pytest.raises(ListenError) as info:
            await daemon.start()
    assert f"127.0.0.1:{port} (server.lmtp_listen)" in info.value.reason
    assert info.value.exit_code == 69
    assert not state_dir.exists()
    assert daemon.servers == [] and daemon.runner is None


async def test_http_port_in_use_closes_the_lmtp_listener(config: Config) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = Daemon(replace_server(config, http_listen=ListenAddress("127.0.0.1", port)))
        with pytest.raises(ListenError, match=r"server\.http_listen"):
            await daemon.start()
    assert daemon.servers == []


async def test_state_dir_that_cannot_be_created_is_named(config: Config, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    daemon = Daemon(dataclasses.replace(config, state=StateConfig(dir=str(blocker / "var"))))
    with pytest.raises(StateDirError, match=r"state\.dir") as info:
        await daemon.start()
    assert info.value.exit_code == 73
    assert daemon.servers == []


async def test_listeners_can_be_turned_off(config: Config) -> None:
    daemon = Daemon(replace_server(config, http_listen=None))
    await daemon.start()
    try:
        assert set(daemon.bound) == {"lmtp"}
    finally:
        await daemon.stop()


async def test_smtp_listener_when_configured(config: Config) -> None:
    daemon = Daemon(replace_server(config, smtp_listen=ListenAddress("127.0.0.1", 0)))
    await daemon.start()
    try:
        smtp = daemon.bound["smtp"]
        client = await LmtpClient.connect(smtp.host, smtp.port)
        assert (await client.command("EHLO mta")).code == 250
        await client.close()
    finally:
        await daemon.stop()
