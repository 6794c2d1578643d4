"""Several gateways through the real daemon: two HTTP providers on loopback, one failing.

Traffic moves to the healthy provider once the failing one's circuit opens,
comes back after it recovers (a half-open probe), a message pinned by ``id=``
to the failing one waits for it, and the fallback number gets the text once
when no delivery report arrives in time.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from mailsms.config import Config, FallbackConfig, GatewayConfig, GroupConfig, QueueConfig, RouteConfig
from mailsms.daemon import Daemon
from mailsms.store import DEFERRED, QUEUED, SUBMITTED
from tests.support.lmtp import LmtpClient
from tests.support.replies import wait_mail
from tests.support.reports import recipient_blocks
from tests.support.wait import async_wait_until
from tests.support.web import http_peer, running
from transports import fake
from transports.http import Options

NUMBER = "+15551234567"
ALTERNATE = "+15557654321"


@dataclass
class Provider:
    """An HTTP SMS provider that answers 500 while ``failing``; records the numbers it took."""

    name: str
    failing: bool = False
    url: str = ""
    refused: int = 0
    taken: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        if self.failing:
            self.refused += 1
            return web.Response(status=500, text="maintenance")
        self.taken.append(request.query["text"])
        return web.Response(status=202, text="0: Accepted for delivery")


@asynccontextmanager
async def serving(provider: Provider) -> AsyncIterator[Provider]:
    async with http_peer(provider.handle) as url:
        provider.url = url + "/send?to=%number%&text=%data%"
        yield provider


@pytest.fixture
async def providers() -> AsyncIterator[tuple[Provider, Provider]]:
    async with serving(Provider("a")) as a, serving(Provider("b")) as b:
        yield a, b


def http_gateway(provider: Provider, **keys: object) -> GatewayConfig:
    return GatewayConfig(
        id=provider.name,
        type="http",
        options=Options(url=provider.url, timeout=2.0),
        **keys,  # type: ignore[arg-type]
    )


def two_provider_config(config: Config, a: Provider, b: Provider) -> Config:
    breaker = {"breaker_threshold": 2, "breaker_reset": 0.3}
    return dataclasses.replace(
        config,
        gateways=(http_gateway(a, **breaker), http_gateway(b, **breaker)),
        groups=(GroupConfig(id="main", gateways=("a", "b")),),
        routes=(RouteConfig(name="everything", gateway="main"),),
        queue=QueueConfig(minimal_backoff_time=0.2, maximal_backoff_time=0.2, queue_run_delay=0.05),
    )


async def send(daemon: Daemon, text: str, address: str = f'"sms:{NUMBER}"@sms.example.test') -> str:
    addr = daemon.bound["lmtp"]
    client = await LmtpClient.connect(addr.host, addr.port)
    try:
        await client.command("LHLO mta.example.test")
        message = f"From: alice@example.com\r\nTo: x\r\nSubject: \r\n\r\n{text}\r\n".encode()
        _, _, (data,) = await client.send("alice@example.com", [address], message)
    finally:
        await client.close()
    assert data.code == 250, data.text
    return data.text.split()[1]


def state(daemon: Daemon, queue_id: str) -> str:
    assert daemon.store is not None
    message = daemon.store.load(queue_id)
    assert message is not None
    return message.state


async def submitted(daemon: Daemon, queue_id: str) -> None:
    await async_wait_until(lambda: state(daemon, queue_id) == SUBMITTED, what=f"{queue_id} submitted")


def via(daemon: Daemon, queue_id: str) -> str:
    assert daemon.store is not None
    message = daemon.store.load(queue_id)
    assert message is not None
    return message.via


def breaker(daemon: Daemon, gateway: str) -> str:
    assert daemon.scheduler is not None
    return daemon.scheduler.breaker_states()[gateway]


async def test_traffic_fails_over_and_comes_back_after_recovery(
    providers: tuple[Provider, Provider], config: Config
) -> None:
    a, b = providers
    a.failing = True
    async with running(two_provider_config(config, a, b)) as daemon:
        first = [await send(daemon, f"before {n}") for n in range(6)]
        for queue_id in first:
            await submitted(daemon, queue_id)
        # Every message went out through b, none was lost or deferred; a was tried until its circuit opened.
        assert sorted(b.taken) == sorted(f"before {n}" for n in range(6))
        assert {via(daemon, q) for q in first} == {"b"}
        assert a.refused == 2 and a.taken == []
        assert breaker(daemon, "a") in ("open", "half-open")

        a.failing = False  # a recovers: after breaker_reset one message probes it, then it shares the load
        sent = 0
        while len(a.taken) < 2:
            queue_id = await send(daemon, f"after {sent}")
            sent += 1
            await submitted(daemon, queue_id)
            assert sent < 200, "a never took traffic again"
        assert breaker(daemon, "a") == "closed"
    # Each text was taken exactly once, by one provider.
    everything = a.taken + b.taken
    assert len(everything) == len(set(everything)) == 6 + sent


async def test_a_message_pinned_to_the_failing_gateway_waits_for_it(
    providers: tuple[Provider, Provider], config: Config
) -> None:
    a, b = providers
    a.failing = True
    async with running(two_provider_config(config, a, b)) as daemon:
        pinned = await send(daemon, "only through a", f'"sms:{NUMBER}?id=a"@sms.example.test')
        await async_wait_until(lambda: a.refused >= 2, what="a refused the pinned message twice")
        await async_wait_until(lambda: breaker(daemon, "a") != "closed", what="a's circuit open")
        other = await send(daemon, "anywhere")
        await async_wait_until(lambda: state(daemon, other) == SUBMITTED, what="the unpinned message submitted")
        assert state(daemon, pinned) in (QUEUED, DEFERRED)
        assert "only through a" not in b.taken
        a.failing = False
        await async_wait_until(lambda: state(daemon, pinned) == SUBMITTED, what="the pinned message submitted")
    assert a.taken == ["only through a"]
    assert b.taken == ["anywhere"]


def fallback_config(config: Config, after: float) -> Config:
    slow = fake.Options(report="delivered", report_delay=3600.0)  # a report that never comes in time
    return dataclasses.replace(
        config,
        gateways=(GatewayConfig(id="net", type="fake", options=slow),),
        fallbacks=(FallbackConfig(number=NUMBER, alternate=ALTERNATE, after=after),),
        queue=QueueConfig(queue_run_delay=0.05),
    )


async def test_the_fallback_number_gets_the_text_once_when_no_report_comes(config: Config, state_dir: Path) -> None:
    async with running(fallback_config(config, after=0.3)) as daemon:
        original = await send(daemon, "Call me back")
        await async_wait_until(
            lambda: [r["to"] for r in fake.read_sent(state_dir)] == [NUMBER, ALTERNATE], what="sent to the alternate"
        )
        assert daemon.store is not None
        message = daemon.store.load(original)
        assert message is not None
        assert "fallback number" in message.reason and ALTERNATE in message.reason
        copy_id = message.reason.rsplit(" as ", 1)[1]
        copy = daemon.store.load(copy_id)
        assert copy is not None
        assert (copy.number, copy.text) == (ALTERNATE, message.text)
        assert copy.recipient == message.recipient.replace(NUMBER, ALTERNATE)
        orcpt = message.recipient.replace("+", "+2B")  # xtext (RFC 3461)
        assert json.loads(copy.dsn)["ORCPT"] == f"rfc822;{orcpt}"  # its reports name the original
        await async_wait_until(lambda: state(daemon, copy_id) == SUBMITTED, what="the copy submitted")
        # The copy has no fallback of its own, and the original falls back only once.
        assert daemon.store.due_fallbacks(float("inf")) == []
    assert [r["to"] for r in fake.read_sent(state_dir)] == [NUMBER, ALTERNATE]


async def test_a_delivery_report_in_time_cancels_the_fallback(config: Config, state_dir: Path) -> None:
    quick = fake.Options(report="delivered", report_delay=0.0)
    configured = dataclasses.replace(
        fallback_config(config, after=0.5), gateways=(GatewayConfig(id="net", type="fake", options=quick),)
    )
    async with running(configured) as daemon:
        original = await send(daemon, "Call me back")
        await async_wait_until(lambda: state(daemon, original) == "delivered", what="delivered")
        assert daemon.store is not None
        assert daemon.store.due_fallbacks(float("inf")) == []
    assert [r["to"] for r in fake.read_sent(state_dir)] == [NUMBER]


async def test_a_report_after_the_fallback_says_the_fallback_number_was_used(config: Config, state_dir: Path) -> None:
    late = fake.Options(report="delivered", report_delay=1.0)  # after the fallback's 0.3 s
    configured = dataclasses.replace(
        fallback_config(config, after=0.3), gateways=(GatewayConfig(id="net", type="fake", options=late),)
    )
    async with running(configured) as daemon:
        addr = daemon.bound["lmtp"]
        client = await LmtpClient.connect(addr.host, addr.port)
        try:
            await client.command("LHLO mta.example.test")
            await client.command("MAIL FROM:<alice@example.com>")
            rcpt = await client.command(f'RCPT TO:<"sms:{NUMBER}"@sms.example.test> NOTIFY=SUCCESS,FAILURE')
            assert rcpt.code == 250, rcpt.text
            await client.command("DATA")
            client.writer.write(b"From: alice@example.com\r\nSubject: \r\n\r\nCall me back\r\n.\r\n")
            assert (await client.read_reply()).code == 250
        finally:
            await client.close()
        reports = await wait_mail(state_dir, "alice@example.com", count=2)  # the original's and the copy's
    blocks = {str(block["Final-Recipient"]): block for report in reports for block in recipient_blocks(report)}
    original = next(b for name, b in blocks.items() if NUMBER in name)
    copy = next(b for name, b in blocks.items() if ALTERNATE in name)
    assert original["Action"] == "delivered"
    assert "fallback number" in str(original["Diagnostic-Code"]) and ALTERNATE in str(original["Diagnostic-Code"])
    assert NUMBER in str(copy["Original-Recipient"])
