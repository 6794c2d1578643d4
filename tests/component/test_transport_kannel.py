"""The Kannel transport against a local aiohttp server that answers like smsbox's sendsms."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from aiohttp import web

from tests.support.proc import free_port
from transports import kannel
from transports.base import Outcome, OutgoingPart, OutgoingSms, TransportContext

PASSWORD = "pw-never-logged"
TEXT_1, TEXT_2 = "Secret meeting at noon, ", "bring the keys"
Answer = Callable[[web.Request], Awaitable[web.Response]]


class FakeSmsbox:
    """Records every sendsms request (raw query, connection) and answers with ``answer``."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.queries: list[str] = []
        self.peers: set[object] = set()
        self.answer: Answer = self.accept
        self.port = 0
        self.release = asyncio.Event()

    async def accept(self, request: web.Request) -> web.Response:
        return web.Response(status=202, text="0: Accepted for delivery")

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        self.queries.append(request.raw_path.partition("?")[2])  # as on the wire
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return await self.answer(request)

    def field(self, index: int, name: str) -> bytes:
        """One field of request ``index`` as Kannel decodes it (percent-decoding once)."""
        pairs = dict(item.split("=", 1) for item in self.queries[index].split("&"))
        return unquote_to_bytes(pairs[name])


@pytest.fixture
async def smsbox() -> AsyncIterator[FakeSmsbox]:
    box = FakeSmsbox()
    app = web.Application()
    app.router.add_get("/cgi-bin/sendsms", box.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    box.port = free_port()
    await web.TCPSite(runner, "127.0.0.1", box.port).start()
    yield box
    box.release.set()
    await runner.cleanup()


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[kannel.KannelTransport]]]:
    started: list[kannel.KannelTransport] = []

    async def build(port: int, **changes: object) -> kannel.KannelTransport:
        fields: dict[str, object] = {
            "url": f"http://127.0.0.1:{port}/cgi-bin/sendsms",
            "username": "mailsms",
            "password": PASSWORD,
        }
        fields.update(changes)
        context = TransportContext("kannel", tmp_path, public_url="http://127.0.0.1:8025")
        transport = kannel.create(kannel.Options(**fields), context)  # type: ignore[arg-type]
        await transport.start()
        started.append(transport)
        return transport

    yield build
    for transport in started:
        await transport.close()


def two_parts(to: str = "+15551234567") -> OutgoingSms:
    return OutgoingSms(
        queue_id="4F2A1",
        to=to,
        parts=(
            OutgoingPart(1, TEXT_1, bytes.fromhex("0500037f0201")),
            OutgoingPart(2, TEXT_2, bytes.fromhex("0500037f0202")),
        ),
        total=2,
        encoding="gsm7",
    )


async def test_each_part_is_one_request_in_order_on_one_kept_alive_connection(
    smsbox: FakeSmsbox, make: Callable[..., Awaitable[kannel.KannelTransport]]
) -> None:
    transport = await make(smsbox.port)

    first = await transport.submit(two_parts())
    second = await transport.submit(two_parts("+15557654321"))

    assert [(r.outcome, r.message_id) for r in first] == [
        (Outcome.SUBMITTED, "4F2A1.1"),
        (Outcome.SUBMITTED, "4F2A1.2"),
    ]
    assert all(r.outcome is Outcome.SUBMITTED for r in second)
    assert [smsbox.field(i, "udh") for i in range(2)] == [bytes.fromhex("0500037f0201"), bytes.fromhex("0500037f0202")]
    assert [smsbox.field(i, "text").decode() for i in range(2)] == [TEXT_1, TEXT_2]
    assert len(smsbox.peers) == 1  # four requests, one TCP connection


async def test_the_query_reaches_kannel_encoded_exactly_once(
    smsbox: FakeSmsbox, make: Callable[..., Awaitable[kannel.KannelTransport]]
) -> None:
    transport = await make(smsbox.port)

    await transport.submit(two_parts())

    raw = smsbox.queries[0]
    assert "to=%2B15551234567" in raw and "udh=%05%00%03%7F%02%01" in raw
    assert smsbox.field(0, "dlr-url").decode() == "http://127.0.0.1:8025/dlr/kannel?id=4F2A1.1&status=%d&reason=%A"
    assert smsbox.field(1, "dlr-mask") == b"31"


async def test_a_part_kannel_refuses_ends_the_attempt_with_kannels_reason(
    smsbox: FakeSmsbox, make: Callable[..., Awaitable[kannel.KannelTransport]]
) -> None:
    async def refuse_second(request: web.Request) -> web.Response:
        if len(smsbox.requests) == 2:
            return web.Response(status=400, text="Number(s) has/have been denied by white- and/or black-lists.")
        return await smsbox.accept(request)

    smsbox.answer = refuse_second
    transport = await make(smsbox.port)

    results = await transport.submit(two_parts())

    assert [r.outcome for r in results] == [Outcome.SUBMITTED, Outcome.PERMANENT]
    assert results[1].reason == "kannel: 400 Number(s) has/have been denied by white- and/or black-lists."


async def test_a_full_kannel_queue_defers(
    smsbox: FakeSmsbox, make: Callable[..., Awaitable[kannel.KannelTransport]]
) -> None:
    async def full(request: web.Request) -> web.Response:
        return web.Response(status=503, text="4: Message queue full")

    smsbox.answer = full
    transport = await make(smsbox.port)

    [result] = await transport.submit(two_parts())

    assert (result.outcome, result.seq, result.dsn) == (Outcome.TEMPORARY, 1, "4.3.0")


async def test_no_answer_within_the_timeout_defers(
    smsbox: FakeSmsbox, make: Callable[..., Awaitable[kannel.KannelTransport]]
) -> None:
    async def hang(request: web.Request) -> web.Response:
        await smsbox.release.wait()
        return await smsbox.accept(request)

    smsbox.answer = hang
    transport = await make(smsbox.port, timeout=0.2)

    [result] = await transport.submit(two_parts())

    assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, "4.4.2")
    assert "within 0.2s" in result.reason


async def test_kannel_down_defers_without_showing_password_or_text(
    make: Callable[..., Awaitable[kannel.KannelTransport]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = await make(free_port())  # nothing listens there

    [result] = await transport.submit(two_parts())

    assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, "4.4.1")
    assert result.reason.startswith("kannel: cannot reach http://127.0.0.1:")
    for shown in (result.reason, caplog.text):
        assert PASSWORD not in shown and "Secret" not in shown


async def test_requests_run_in_parallel_for_different_messages(
    smsbox: FakeSmsbox, make: Callable[..., Awaitable[kannel.KannelTransport]]
) -> None:
    inside = 0
    most = 0
    full = asyncio.Event()  # set once as many requests are inside as the limit allows

    async def slow(request: web.Request) -> web.Response:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        if inside >= 4:
            full.set()
        await asyncio.wait_for(full.wait(), timeout=10)  # held until the others arrive: they overlap
        inside -= 1
        return await smsbox.accept(request)

    smsbox.answer = slow
    transport = await make(smsbox.port, connections=4)

    await asyncio.gather(*(transport.submit(two_parts(f"+1555000000{i}")) for i in range(6)))

    assert most == 4  # the connection limit, no more


async def test_a_refused_binary_part_still_shows_kannels_words(
    smsbox: FakeSmsbox, make: Callable[..., Awaitable[kannel.KannelTransport]]
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=400, text="UDH field misformed, rejected")

    smsbox.answer = refuse
    transport = await make(smsbox.port, password="")
    message = OutgoingSms("4F2A2", "+15551234567", (OutgoingPart(1, "", b"\x06\x05\x04\x0b\x84\x23\xf0", b"\x01"),), 1,
                          "binary")  # fmt: skip

    [result] = await transport.submit(message)

    assert result.reason == "kannel: 400 UDH field misformed, rejected"
    assert smsbox.field(0, "coding") == b"1" and smsbox.field(0, "text") == b"\x01"
