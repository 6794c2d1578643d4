"""Kannel's ``sendsms`` interface: one HTTP request per SMS part, reports back by ``dlr-url``.

mailsms splits and numbers the parts itself and hands Kannel each one with
its UDH, because Kannel's own splitting cuts UCS-2 texts inside a surrogate
pair (an emoji).  Every request asks for every delivery report
(``dlr-mask=31``) at a ``dlr-url`` that names mailsms's own part id
``<queue_id>.<seq>``: the id Kannel would put in ``%I`` is a new one for
each report and cannot be matched.  The reports land at ``/dlr/<gateway-id>``
of mailsms's web listener (``web.public_url``).

Traps of Kannel 1.4.5 this module handles: the query is encoded here, by
hand, once (``+`` in ``to=`` must arrive as ``%2B``; ``udh=`` is the raw
bytes percent-encoded, hex is refused with 400); every 2xx answer counts as
accepted (``202 0: Accepted for delivery``, older "Sent." or
"3: Queued for later delivery").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from mailsms.errors import TransportDown
from mailsms.schema import bounded, duration
from transports.base import Outcome, OutgoingPart, OutgoingSms, PartResult, TransportContext
from transports.http_exchange import describe, excerpt, part_id

log = logging.getLogger("mailsms.kannel")

# Kannel's "coding": 0 = GSM 03.38 (text sent as UTF-8), 1 = 8-bit data, 2 = UCS-2.
_CODING = {"gsm7": 0, "binary": 1, "ucs2": 2}
# Kannel's DLR types: 1 delivered, 2 failed, 4 buffered, 8 submitted to the SMSC, 16 rejected by it.
DLR_ALL = 31
DLR_FINAL = 1 | 2 | 16  # delivered, failed, rejected by the SMSC: the reports that settle a part
MAX_ANSWER = 4096  # bytes of an answer read
# Answers that mean "not now" rather than "never": a busy or rate-limiting Kannel, a
# wrong password (a configuration mistake must not bounce every queued message).
_TEMPORARY_4XX = {401: "4.3.5", 403: "4.3.5", 408: "4.4.2", 429: "4.3.2"}


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "kannel"``: where Kannel's smsbox takes ``sendsms`` and as whom."""

    url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    username: str = ""
    password: str = field(default="", repr=False)
    # from= when the message names no sender; "" leaves it to the sendsms-user's default-sender.
    sender: str = ""
    # smsc= : the Kannel smsc-id to send through; "" lets Kannel route.
    smsc: str = ""
    # Delivery reports to ask for (sum of 1, 2, 4, 8, 16); 0 asks for none.
    dlr_mask: int = bounded(DLR_ALL, 0, DLR_ALL)
    timeout: float = duration("30s")
    # Open connections to smsbox at most (kept alive and reused).
    connections: int = bounded(16, 1, 1000)

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``."""
        problems: list[tuple[str, str]] = []
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(("url", "must be an http:// or https:// URL, e.g. http://127.0.0.1:13013/cgi-bin/sendsms"))
        elif parts.query:
            problems.append(("url", "must not carry a query: username and password have their own keys"))
        if not self.username:
            problems.append(("username", "required: a sendsms-user of Kannel"))
        if self.timeout <= 0:
            problems.append(("timeout", "must be more than 0"))
        return problems


def dlr_url(public_url: str, gateway_id: str, message_id: str, secret: str = "") -> str:
    """Where Kannel reports on one part: ``%d`` is the DLR type, ``%A`` the SMSC's answer."""
    url = f"{public_url}/dlr/{quote(gateway_id, safe='')}?id={quote(message_id, safe='')}&status=%d&reason=%A"
    return f"{url}&secret={quote(secret, safe='')}" if secret else url


def _payload(sms: OutgoingSms, part: OutgoingPart) -> tuple[bytes, str]:
    """The bytes for ``text=`` and the ``charset=`` naming them ("" for 8-bit data)."""
    if sms.encoding == "binary":
        return part.data or b"", ""
    if sms.encoding == "ucs2":
        # The exact UCS-2 octets (with surrogate pairs): nothing left for Kannel to convert.
        return part.text.encode("utf-16-be"), "UTF-16BE"
    return part.text.encode("utf-8"), "UTF-8"


def sendsms_query(options: Options, sms: OutgoingSms, part: OutgoingPart, report_url: str) -> str:
    """The query string for one part, every value percent-encoded exactly once."""
    text, charset = _payload(sms, part)
    fields: list[tuple[str, str | bytes]] = [
        ("username", options.username),
        ("password", options.password),
        ("to", sms.to),
    ]
    sender = sms.sender or options.sender
    if sender:
        fields.append(("from", sender))
    fields += [("text", text), ("coding", str(_CODING.get(sms.encoding, 0)))]
    if charset:
        fields.append(("charset", charset))
    if part.udh:
        fields.append(("udh", part.udh))
    if sms.flash:
        fields.append(("mclass", "0"))
    if sms.pid is not None:
        fields.append(("pid", str(sms.pid)))
    if options.smsc:
        fields.append(("smsc", options.smsc))
    if options.dlr_mask and report_url:
        fields += [("dlr-mask", str(options.dlr_mask)), ("dlr-url", report_url)]
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in fields)


def judge(status: int, body: str, seq: int, message_id: str, secrets: Sequence[str] = ()) -> PartResult:
    """What Kannel's answer to one ``sendsms`` request means for the part (``secrets`` never quoted)."""
    if 200 <= status < 300:
        return PartResult(seq, Outcome.SUBMITTED, message_id=message_id)
    reason = f"kannel: {status} {excerpt(body, secrets) or 'no text'}"
    if status in _TEMPORARY_4XX:
        return PartResult(seq, Outcome.TEMPORARY, reason, dsn=_TEMPORARY_4XX[status])
    if 400 <= status < 500:
        return PartResult(seq, Outcome.PERMANENT, reason, dsn="5.0.0")
    # 5xx: Kannel's queue is full, sendsms is disabled, no SMSC is up...; anything else is odd.
    return PartResult(seq, Outcome.TEMPORARY, reason, dsn="4.3.0" if status >= 500 else "4.0.0")


class KannelTransport:
    """Sends each part as one ``GET /cgi-bin/sendsms`` on kept-alive connections."""

    def __init__(self, options: Options, context: TransportContext) -> None:
        self.gateway_id = context.gateway_id
        self.options = options
        self._public_url = context.public_url
        self._secret = context.webhook_secret
        base = URL(options.url)
        self._endpoint = str(base.with_query(None).with_fragment(None))
        # The URL as reasons may show it: no credentials.
        self._where = str(base.with_user(None).with_password(None).with_query(None))
        self._session: aiohttp.ClientSession | None = None

    @property
    def detects_duplicates(self) -> bool:
        return False  # Kannel cannot be asked whether it already took a part

    @property
    def delivery_reports(self) -> bool:
        """True when Kannel is asked for final reports and has a dlr-url to send them to."""
        return bool(self._public_url) and bool(self.options.dlr_mask & DLR_FINAL)

    @property
    def concurrency(self) -> int:
        """Messages the scheduler may hand over at once: twice the connections.

        A message spends part of its turn committing its state before and after
        the requests; the second half keeps every connection busy meanwhile.
        Kannel still never sees more than ``connections`` requests at once.
        """
        return 2 * self.options.connections

    async def start(self) -> None:
        """Open the client session; Kannel itself may come up later (a submit then defers)."""
        if not self._public_url and self.options.dlr_mask:
            log.warning(
                "kannel gateway %s: no web.public_url and no HTTP listener: delivery reports cannot come back",
                self.gateway_id,
            )
        connector = aiohttp.TCPConnector(limit=self.options.connections, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=self.options.timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """One request per part, in order; the first part not accepted ends the attempt."""
        results: list[PartResult] = []
        for part in sms.parts:
            result = await self._send(sms, part)
            results.append(result)
            if result.outcome is not Outcome.SUBMITTED:
                break
        return results

    async def _send(self, sms: OutgoingSms, part: OutgoingPart) -> PartResult:
        if self._session is None:
            raise TransportDown(f"kannel gateway {self.gateway_id} is not started")
        message_id = part_id(sms.queue_id, part.seq)
        report_url = dlr_url(self._public_url, self.gateway_id, message_id, self._secret) if self._public_url else ""
        url = URL(f"{self._endpoint}?{sendsms_query(self.options, sms, part, report_url)}", encoded=True)
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                body = await response.content.read(MAX_ANSWER)  # Kannel's answers are one short line
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason, dsn = self._network_failure(exc)
            return PartResult(part.seq, Outcome.TEMPORARY, f"kannel: {reason}", dsn=dsn)
        secrets = tuple(s for s in (part.text, self.options.password, self._secret) if s)
        return judge(status, body.decode("utf-8", "replace"), part.seq, message_id, secrets)

    def _network_failure(self, exc: BaseException) -> tuple[str, str]:
        """Why no answer came, and its RFC 3463 code; never the query (password, text)."""
        if isinstance(exc, TimeoutError):
            return f"no answer from {self._where} within {self.options.timeout:g}s", "4.4.2"
        if isinstance(exc, aiohttp.ClientConnectionError):
            return f"cannot reach {self._where}: {describe(exc)}", "4.4.1"
        return f"bad answer from {self._where}: {describe(exc)}", "4.4.2"

    async def already_submitted(self, sms: OutgoingSms) -> set[int]:
        return set()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def create(options: Options, context: TransportContext) -> KannelTransport:
    """The Kannel transport for one ``[[gateway]]``."""
    return KannelTransport(options, context)
