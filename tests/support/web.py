"""Talk to the daemon's HTTP listener in tests: one call, its status, JSON body and headers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from mailsms.config import Config, GatewayConfig
from mailsms.daemon import Daemon
from mailsms.values import parse_networks
from tests.support import db
from transports import outbox


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


async def call(
    daemon: Daemon,
    path: str,
    *,
    method: str = "GET",
    data: Any = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """``path`` is sent as written (``+`` and ``%XX`` untouched), as a gateway or a script would send it."""
    addr = daemon.bound["http"]
    url = URL(f"http://{addr.host}:{addr.port}{path}", encoded=True)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, json=json_body, headers=headers) as resp,
    ):
        text = await resp.text()
        return Answer(resp.status, json.loads(text) if text else None, dict(resp.headers))


def with_web(config: Config, **changes: Any) -> Config:
    """``config`` with [web] keys changed; ``trusted_networks`` may be given as a list of strings."""
    if isinstance(changes.get("trusted_networks"), list):
        changes["trusted_networks"] = parse_networks(changes["trusted_networks"])
    return dataclasses.replace(config, web=dataclasses.replace(config.web, **changes))


def outbox_gateway(gateway_id: str = "outbox", *, allow: list[str] | None = None, secret: str = "") -> GatewayConfig:
    return GatewayConfig(
        id=gateway_id,
        type="outbox",
        options=outbox.Options(),
        webhook_allow=parse_networks(allow or []),
        webhook_secret=secret,
    )


def with_gateways(config: Config, *gateways: GatewayConfig) -> Config:
    return dataclasses.replace(config, gateways=gateways)


def rows(where: Config | Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Read the queue as another process would: the store of a configuration, whichever engine,
    or the default SQLite queue of a bare state directory."""
    config = where if isinstance(where, Config) else db.state_config(where)
    return [tuple(row) for row in db.rows(config, sql, params)]


@asynccontextmanager
async def http_peer(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """An HTTP server on a free loopback port answering every path with ``handler``: its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[Daemon]:
    """A daemon started in this event loop with ``config``, stopped when the block ends."""
    daemon = Daemon(config)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()
