"""HTTP gateways against a local aiohttp server playing the provider, and through the real queue."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from mailsms.config import Config, GatewayConfig, QueueConfig
from mailsms.daemon import Daemon
from mailsms.queue_admin import QueueAdmin
from mailsms.store import DEFERRED, FAILED, SUBMITTED
from tests.support.lmtp import LmtpClient
from tests.support.proc import free_port
from tests.support.wait import async_wait_until
from tests.support.web import http_peer, running
from transports import registry
from transports.base import Outcome, OutgoingPart, OutgoingSms, TransportContext
from transports.http import HttpTransport, Options

UDH_1 = bytes.fromhex("0500037F0201")
UDH_2 = bytes.fromhex("0500037F0202")
SECRET_TEXT = "The vault code is 4711"


def two_parts(queue_id: str = "4F2A1C") -> OutgoingSms:
    return OutgoingSms(
        queue_id=queue_id,
        to="+15551234567",
        parts=(OutgoingPart(1, "Hello ", UDH_1), OutgoingPart(2, "world", UDH_2)),
        total=2,
        encoding="gsm7",
    )


def one_part(text: str = "Hi") -> OutgoingSms:
    return OutgoingSms(queue_id="7E3B", to="+15551234567", parts=(OutgoingPart(1, text),), total=1, encoding="gsm7")


@dataclass(frozen=True)
class Seen:
    """One request as the provider got it."""

    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client_port: int


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(status: int = 202, text: str = "0: Accepted for delivery", **headers: str) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=text, headers=headers)

    return answer


@dataclass
class Provider:
    """Answers with the scripted answers in order, then with ``default``; records every request."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=reply)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(
                request.method,
                request.path,
                request.rel_url.raw_query_string,
                dict(request.query),
                dict(request.headers),
                await request.read(),
                peer[1] if peer else 0,
            )
        )
        answer = self.script.pop(0) if self.script else self.default
        return await answer(request)

    async def hang(self, request: web.Request) -> web.StreamResponse:
        await self.release.wait()
        return web.Response(status=202)


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    playing = Provider()
    async with http_peer(playing.handle) as url:
        playing.url = url
        try:
            yield playing
        finally:
            playing.release.set()


@asynccontextmanager
async def gateway(tmp_path: Path, public_url: str = "", **keys: object) -> AsyncIterator[HttpTransport]:
    options = Options(**keys)  # type: ignore[arg-type]
    assert options.validate() == []
    transport = registry.create("http", options, TransportContext("gw", tmp_path, public_url=public_url))
    assert isinstance(transport, HttpTransport)
    await transport.start()
    try:
        yield transport
    finally:
        await transport.close()


# -- answers ---------------------------------------------------------------------------------------


async def test_2xx_submits_every_part_under_mailsms_ids(provider: Provider, tmp_path: Path) -> None:
    async with gateway(tmp_path, url=provider.url + "/send?to=%number%&text=%data%") as http:
        results = await http.submit(two_parts())
    assert [(r.seq, r.outcome, r.message_id) for r in results] == [
        (1, Outcome.SUBMITTED, "4F2A1C.1"),
        (2, Outcome.SUBMITTED, "4F2A1C.2"),
    ]
    assert [s.query for s in provider.seen] == [
        {"to": "+15551234567", "text": "Hello "},
        {"to": "+15551234567", "text": "world"},
    ]
    assert provider.seen[0].raw_query == "to=%2B15551234567&text=Hello%20"


async def test_success_regex_failing_is_permanent(provider: Provider, tmp_path: Path) -> None:
    provider.default = reply(200, "ERR: 114, Cannot route message")
    async with gateway(tmp_path, url=provider.url + "/send?t=%data%", success_regex="^ID: ") as http:
        (result,) = await http.submit(two_parts())
    assert result.outcome is Outcome.PERMANENT
    assert result.reason == "provider answered 200 OK without success_regex matching: ERR: 114, Cannot route message"
    assert len(provider.seen) == 1  # the second part is not tried


async def test_500_is_temporary_and_ends_the_attempt_at_that_part(provider: Provider, tmp_path: Path) -> None:
    provider.script = [reply(202, "OK"), reply(500, "database down")]
    async with gateway(tmp_path, url=provider.url + "/send?t=%data%") as http:
        results = await http.submit(two_parts())
    assert [(r.seq, r.outcome) for r in results] == [(1, Outcome.SUBMITTED), (2, Outcome.TEMPORARY)]
    assert results[1].reason == "provider answered 500 Internal Server Error: database down"
    assert results[1].dsn == "4.3.0"


async def test_4xx_is_permanent_and_the_reason_hides_the_text(provider: Provider, tmp_path: Path) -> None:
    provider.default = reply(400, f"rejected: text '{SECRET_TEXT}' has a banned word")
    async with gateway(tmp_path, url=provider.url + "/send?t=%data%") as http:
        (result,) = await http.submit(one_part(SECRET_TEXT))
    assert result.outcome is Outcome.PERMANENT
    assert result.reason == "provider answered 400 Bad Request: rejected: text '(redacted)' has a banned word"


async def test_4xx_can_be_made_temporary(provider: Provider, tmp_path: Path) -> None:
    provider.default = reply(402, "no credit")
    async with gateway(tmp_path, url=provider.url + "/s?t=%data%", temporary_statuses=["402"]) as http:
        (result,) = await http.submit(one_part())
    assert result.outcome is Outcome.TEMPORARY


async def test_429_is_temporary_and_retry_after_pauses_the_gateway(provider: Provider, tmp_path: Path) -> None:
    provider.script = [reply(429, "slow down", **{"Retry-After": "60"})]
    async with gateway(tmp_path, url=provider.url + "/send?t=%data%") as http:
        (first,) = await http.submit(one_part())
        (second,) = await http.submit(one_part())
    assert first.outcome is Outcome.TEMPORARY
    assert first.reason == "provider answered 429 Too Many Requests (retry after 60s): slow down"
    assert second.outcome is Outcome.TEMPORARY
    assert second.reason.startswith("provider asked to wait (Retry-After): ")
    assert len(provider.seen) == 1  # the paused gateway was not called again


async def test_a_hanging_provider_times_out_as_temporary(provider: Provider, tmp_path: Path) -> None:
    provider.default = provider.hang
    started = time.monotonic()
    async with gateway(tmp_path, url=provider.url + "/send?t=%data%", timeout=0.3) as http:
        (result,) = await http.submit(one_part())
    assert result.outcome is Outcome.TEMPORARY
    assert result.reason == f"no answer from {provider.url} within 0.3s"
    assert 0.3 <= time.monotonic() - started < 5


async def test_a_refused_connection_is_temporary(tmp_path: Path) -> None:
    port = free_port()
    async with gateway(tmp_path, url=f"http://127.0.0.1:{port}/send?t=%data%", password="pw") as http:
        (result,) = await http.submit(one_part(SECRET_TEXT))
    assert result.outcome is Outcome.TEMPORARY
    assert result.reason.startswith(f"cannot reach http://127.0.0.1:{port}: ClientConnectorError")
    assert result.dsn == "4.4.1"
    assert "4711" not in result.reason


async def test_provider_message_id_is_captured(provider: Provider, tmp_path: Path) -> None:
    provider.script = [reply(200, "ID: a1b2c3"), reply(200, "ID: d4e5f6")]
    async with gateway(tmp_path, url=provider.url + "/s?t=%data%", message_id_regex=r"^ID: (\w+)") as http:
        results = await http.submit(two_parts())
    assert [r.message_id for r in results] == ["a1b2c3", "d4e5f6"]


# -- requests --------------------------------------------------------------------------------------


async def test_per_part_requests_carry_the_udh(provider: Provider, tmp_path: Path) -> None:
    url = provider.url + "/http/sendmsg?to=%number;interprefix=%&udh=%udh;len;hex%&concat=%parts%&text=%data%"
    async with gateway(tmp_path, url=url) as http:
        await http.submit(two_parts())
    assert [s.query["udh"] for s in provider.seen] == ["0500037F0201", "0500037F0202"]
    assert [s.query["concat"] for s in provider.seen] == ["2", "2"]
    assert provider.seen[0].query["to"] == "15551234567"


async def test_whole_text_mode_sends_one_request(provider: Provider, tmp_path: Path) -> None:
    provider.default = reply(200, '{"id": "m-99"}')
    async with gateway(
        tmp_path, url=provider.url + "/s?t=%data%&udh=%udh%", split="provider", message_id_regex=r'"id": "([^"]+)"'
    ) as http:
        results = await http.submit(two_parts())
    assert [s.query for s in provider.seen] == [{"t": "Hello world", "udh": ""}]
    assert [(r.outcome, r.message_id) for r in results] == [(Outcome.SUBMITTED, "m-99"), (Outcome.SUBMITTED, "m-99")]


async def test_post_json_body(provider: Provider, tmp_path: Path) -> None:
    body = '{"to": "%number%", "text": "%data%", "parts": %parts%}'
    async with gateway(
        tmp_path, url=provider.url + "/v1/sms", method="POST", content_type="json", body=body, split="provider"
    ) as http:
        await http.submit(one_part('He said "hi"\n'))
    (seen,) = provider.seen
    assert (seen.method, seen.path, seen.headers["Content-Type"]) == ("POST", "/v1/sms", "application/json")
    assert json.loads(seen.body) == {"to": "+15551234567", "text": 'He said "hi"\n', "parts": 1}


async def test_post_form_body(provider: Provider, tmp_path: Path) -> None:
    async with gateway(tmp_path, url=provider.url + "/send", method="POST", body="to=%number%&text=%data%") as http:
        await http.submit(one_part("a&b=c"))
    (seen,) = provider.seen
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.body == b"to=%2B15551234567&text=a%26b%3Dc"


async def test_basic_auth_and_headers_are_sent(provider: Provider, tmp_path: Path) -> None:
    async with gateway(
        tmp_path, url=provider.url + "/s", username="mailsms", password="s3cret", headers=["X-Api-Version: 2"]
    ) as http:
        await http.submit(one_part())
    (seen,) = provider.seen
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(b"mailsms:s3cret").decode()
    assert seen.headers["X-Api-Version"] == "2"


async def test_one_connection_is_reused_for_several_parts_and_messages(provider: Provider, tmp_path: Path) -> None:
    async with gateway(tmp_path, url=provider.url + "/s?t=%data%") as http:
        for queue_id in ("A1", "A2", "A3"):
            await http.submit(two_parts(queue_id))
    assert len(provider.seen) == 6
    assert len({s.client_port for s in provider.seen}) == 1


async def test_kannel_preset_against_a_kannel_lookalike(provider: Provider, tmp_path: Path) -> None:
    async with gateway(
        tmp_path, "http://127.0.0.1:8025", preset="kannel", url=provider.url + "/cgi-bin/sendsms", username="u"
    ) as http:
        results = await http.submit(two_parts())
    assert [r.message_id for r in results] == ["4F2A1C.1", "4F2A1C.2"]
    first = provider.seen[0]
    assert first.path == "/cgi-bin/sendsms"
    assert re.search(r"(^|&)to=%2B15551234567(&|$)", first.raw_query)
    assert "udh=%05%00%03%7F%02%01" in first.raw_query
    assert first.query["dlr-url"] == "http://127.0.0.1:8025/dlr/gw?id=4F2A1C.1&status=%d&reason=%A"


# -- through the queue -----------------------------------------------------------------------------


def http_config(config: Config, provider: Provider, backoff: float, **keys: object) -> Config:
    keys = {"timeout": 2.0, **keys}
    options = Options(url=provider.url + "/send?to=%number%&text=%data%", **keys)  # type: ignore[arg-type]
    return dataclasses.replace(
        config,
        gateways=(GatewayConfig(id="provider", type="http", options=options),),
        queue=QueueConfig(minimal_backoff_time=backoff, maximal_backoff_time=backoff, queue_run_delay=0.05),
    )


async def send_mail(daemon: Daemon, text: str = "Meet at ten") -> str:
    addr = daemon.bound["lmtp"]
    client = await LmtpClient.connect(addr.host, addr.port)
    await client.command("LHLO mta.example.test")
    message = f"From: alice@example.com\r\nTo: x\r\nSubject: \r\n\r\n{text}\r\n".encode()
    _, _, (data,) = await client.send("alice@example.com", ['"sms:+15551234567"@sms.example.test'], message)
    await client.close()
    assert data.code == 250, data.text
    return data.text.split()[1]  # "2.0.0 <queue id> queued as SMS (1 parts)"


def state_of(daemon: Daemon, queue_id: str) -> tuple[str, int, str]:
    assert daemon.store is not None
    message = daemon.store.load(queue_id)
    assert message is not None
    return message.state, message.attempts, message.reason


async def test_queue_defers_on_500_and_submits_after_queue_retry(
    provider: Provider, config: Config, state_dir: Path
) -> None:
    provider.script = [reply(500, "maintenance")]
    async with running(http_config(config, provider, backoff=3600)) as daemon:
        queue_id = await send_mail(daemon)
        await async_wait_until(lambda: state_of(daemon, queue_id)[0] == DEFERRED, what="deferred")
        assert state_of(daemon, queue_id) == (DEFERRED, 1, "provider answered 500 Internal Server Error: maintenance")
        admin = QueueAdmin.open(state_dir, config.store.url)
        assert admin is not None
        try:
            assert admin.retry(queue_id)  # what `mailsms queue retry ID` does
        finally:
            admin.close()
        await async_wait_until(lambda: state_of(daemon, queue_id)[0] == SUBMITTED, what="submitted")
    assert [s.query["text"] for s in provider.seen] == ["Meet at ten", "Meet at ten"]
    assert state_of_closed(config, queue_id)[1] == 2


def state_of_closed(config: Config, queue_id: str) -> tuple[str, int]:
    admin = QueueAdmin.open(config.state_dir, config.store.url)
    assert admin is not None
    try:
        message = admin.store.load(queue_id)
        assert message is not None
        return message.state, message.attempts
    finally:
        admin.close()


async def test_queue_retries_by_itself_after_a_timeout_and_a_429(provider: Provider, config: Config) -> None:
    provider.script = [provider.hang, reply(429, "busy")]
    async with running(http_config(config, provider, backoff=0.2, timeout=0.5)) as daemon:
        queue_id = await send_mail(daemon)
        await async_wait_until(lambda: state_of(daemon, queue_id)[0] == SUBMITTED, timeout=15, what="submitted")
        assert state_of(daemon, queue_id)[1] == 3
    assert len(provider.seen) == 3


async def test_queue_fails_the_message_on_400(provider: Provider, config: Config) -> None:
    provider.default = reply(400, "invalid destination")
    async with running(http_config(config, provider, backoff=3600)) as daemon:
        queue_id = await send_mail(daemon)
        await async_wait_until(lambda: state_of(daemon, queue_id)[0] == FAILED, what="failed")
        assert state_of(daemon, queue_id) == (FAILED, 1, "provider answered 400 Bad Request: invalid destination")
    assert len(provider.seen) == 1
