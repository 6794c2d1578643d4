"""HTTP gateways defined by a URL template, as IceWarp's "HTTP Request" gateway defines them.

A ``[[gateway]] type = "http"`` names its provider's URL (and optionally a
query, a body, headers) as templates (``transports.template``), or takes a
``preset`` (``kannel``, ``clickatell``, ``icewarp``) whose defaults its own
keys override.  Each part goes out as one request with its UDH
(``split = "mailsms"``), or the whole text as one request that the provider
splits (``split = "provider"``).

What an answer means: 2xx is success (and, with ``success_regex``, only if
the body matches); 5xx, 408, 425 and 429, timeouts and connection errors are
temporary; other statuses and a body failing ``success_regex`` are permanent
(``temporary_statuses`` / ``permanent_statuses`` / ``temporary_regex`` change
that).  A ``Retry-After`` pauses the whole gateway for that long.  Reasons
quote the status and the start of the body, never the text or the password.

One ``aiohttp.ClientSession`` per gateway keeps connections alive and reuses
them, at most ``connections`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from yarl import URL

from mailsms.errors import ConfigError, TransportDown
from mailsms.schema import bounded, duration
from transports.base import Outcome, OutgoingPart, OutgoingSms, PartResult, TransportContext
from transports.http_exchange import Request, Verdict, build_request, describe, judge, part_id
from transports.http_settings import Settings, resolve
from transports.template import RenderError

log = logging.getLogger("mailsms.http")

MAX_ANSWER = 64 * 1024  # bytes of a provider's answer read; the rest is not needed


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "http"``; an empty value means the preset's, else the built-in default."""

    preset: Literal["", "kannel", "clickatell", "icewarp"] = ""
    url: str = ""
    method: Literal["", "GET", "POST"] = ""
    query: str = ""
    body: str = ""
    content_type: Literal["", "form", "json"] = ""
    headers: tuple[str, ...] = ()
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    split: Literal["", "mailsms", "provider"] = ""
    timeout: float = duration("30s")
    connections: int = bounded(10, 1, 1000)
    success_regex: str = ""
    message_id_regex: str = ""
    temporary_regex: str = ""
    temporary_statuses: tuple[str, ...] = ()
    permanent_statuses: tuple[str, ...] = ()

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``: templates, regexes, statuses, what the preset needs."""
        return resolve(self)[1]


class HttpTransport:
    """Sends parts (or whole texts) as HTTP requests on one client session."""

    def __init__(self, settings: Settings, context: TransportContext) -> None:
        self.gateway_id = context.gateway_id
        self.settings = settings
        self._home = context
        self._session: aiohttp.ClientSession | None = None
        self._paused_until = 0.0  # loop time before which the provider asked not to be called

    @property
    def detects_duplicates(self) -> bool:
        return False  # a provider cannot be asked whether it already took a part

    @property
    def delivery_reports(self) -> bool:
        """True when the provider is given a URL to report back to (``%dlr_url%`` or the kannel preset)."""
        asks = self.settings.builder == "kannel" or "dlr_url" in self._variables()
        return asks and bool(self._home.public_url)

    async def start(self) -> None:
        """Open the client session; the provider itself may come up later (a submit then defers)."""
        if not self._home.public_url and "dlr_url" in self._variables():
            log.warning(
                "http gateway %s: %%dlr_url%% is empty: no web.public_url and no HTTP listener", self.gateway_id
            )
        connector = aiohttp.TCPConnector(limit=self.settings.connections, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    def _variables(self) -> frozenset[str]:
        templates = [self.settings.url, self.settings.query, self.settings.body, *(t for _, t in self.settings.headers)]
        return frozenset().union(*(t.variables for t in templates if t is not None))

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """Each part in order (or the whole text at once); the first part not taken ends the attempt."""
        if not sms.parts:
            return []
        if self.settings.split == "provider":
            return await self._submit_whole(sms)
        results: list[PartResult] = []
        for part in sms.parts:
            verdict = await self._send(sms, [part])
            mine = part_id(sms.queue_id, part.seq)
            results.append(_result(part.seq, verdict, mine))
            if verdict.outcome is not Outcome.SUBMITTED:
                break
        return results

    async def _submit_whole(self, sms: OutgoingSms) -> list[PartResult]:
        """One request for every part given: all of them are taken, or the first one fails."""
        verdict = await self._send(sms, sms.parts)
        if verdict.outcome is not Outcome.SUBMITTED:
            return [_result(sms.parts[0].seq, verdict, "")]
        # One id for the whole message: a report on it settles every part.
        return [_result(part.seq, verdict, sms.queue_id) for part in sms.parts]

    async def _send(self, sms: OutgoingSms, parts: Sequence[OutgoingPart]) -> Verdict:
        if self._session is None:
            raise TransportDown(f"http gateway {self.gateway_id} is not started")
        left = self._paused_until - asyncio.get_running_loop().time()
        if left > 0:
            return Verdict(Outcome.TEMPORARY, f"provider asked to wait (Retry-After): {left:.0f}s left", "4.3.2")
        try:
            request = build_request(self.settings, sms, parts, self._home)
        except RenderError as exc:
            return Verdict(Outcome.PERMANENT, f"cannot fill in the gateway's template: {exc}", "5.6.0")
        verdict = await self._exchange(self._session, request)
        if verdict.retry_after:
            self._paused_until = asyncio.get_running_loop().time() + verdict.retry_after
        if verdict.outcome is Outcome.SUBMITTED and self.settings.message_id is not None and not verdict.message_id:
            log.debug("%s: http gateway %s: message_id_regex found no id; using %s",
                      sms.queue_id, self.gateway_id, request.message_id)  # fmt: skip
        return verdict

    async def _exchange(self, session: aiohttp.ClientSession, request: Request) -> Verdict:
        """Make the request; only the network and the answer's bytes happen here."""
        try:
            url = URL(request.url, encoded=True)
            where = str(url.origin())
        except ValueError as exc:
            return Verdict(Outcome.PERMANENT, f"the gateway's URL is not usable: {describe(exc)}", "5.3.5")
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with session.request(
                request.method, url, headers=list(request.headers), data=request.body
            ) as response:
                answer = await _read_some(response, MAX_ANSWER)
                status, phrase = response.status, response.reason or ""
                charset = response.charset or "utf-8"
                wait = response.headers.get("Retry-After")
        except TimeoutError:
            reason = f"no answer from {where} within {self.settings.timeout:g}s"
            return Verdict(Outcome.TEMPORARY, reason, "4.4.2")
        except aiohttp.ClientConnectionError as exc:
            return Verdict(Outcome.TEMPORARY, f"cannot reach {where}: {describe(exc)}", "4.4.1")
        except aiohttp.ClientError as exc:
            return Verdict(Outcome.TEMPORARY, f"bad answer from {where}: {describe(exc)}", "4.4.2")
        log.debug("http gateway %s: %s %s -> %d in %.3fs",
                  self.gateway_id, request.method, where, status, loop.time() - started)  # fmt: skip
        try:
            body = answer.decode(charset, "replace")
        except LookupError:
            body = answer.decode("utf-8", "replace")
        return judge(self.settings, status, phrase, body, retry_after_header=wait, secrets=request.secrets)

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        return {}  # HTTP cannot ask a provider what it took

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_some(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body (a provider's answer is short; a huge one is cut)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _result(seq: int, verdict: Verdict, own_id: str) -> PartResult:
    if verdict.outcome is Outcome.SUBMITTED:
        return PartResult(seq, Outcome.SUBMITTED, message_id=verdict.message_id or own_id)
    return PartResult(seq, verdict.outcome, verdict.reason, dsn=verdict.dsn)


def create(options: Options, context: TransportContext) -> HttpTransport:
    """The HTTP transport for one ``[[gateway]]``."""
    settings, problems = resolve(options)
    if settings is None:
        listed = "; ".join(f"{key}: {message}" for key, message in problems)
        raise ConfigError(f"http gateway {context.gateway_id}: {listed}")
    return HttpTransport(settings, context)
