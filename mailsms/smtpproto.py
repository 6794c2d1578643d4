"""aiosmtpd's SMTP and LMTP, with the parts that mailsms must get right.

* MAIL and RCPT take the DSN parameters (RET, ENVID, NOTIFY, ORCPT) and
  parse ``<address> PARAMS`` on a fast path (aiosmtpd's ``_getaddr`` is the
  largest cost per message).
* DATA reads the message itself and always answers with exactly one reply
  per accepted recipient under LMTP, whatever goes wrong: aiosmtpd's own
  error paths send one reply for N recipients and desynchronise the client.
* The size limit is enforced here, per recipient (552 5.3.4), after the
  whole message was read, so the session stays in step.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

log = logging.getLogger("mailsms.server")


def _quiet_aiosmtpd() -> None:
    """aiosmtpd's ``mail.log`` logs every command line at INFO, ``RCPT TO:<...pass=...>`` included:
    keep only its warnings, redacted."""
    from mailsms.log import RedactingFilter

    raw = logging.getLogger("mail.log")
    raw.setLevel(logging.WARNING)
    if not any(isinstance(f, RedactingFilter) for f in raw.filters):
        raw.addFilter(RedactingFilter())


_quiet_aiosmtpd()

MAIL_PARAMS = frozenset({"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH"})
RCPT_PARAMS = frozenset({"NOTIFY", "ORCPT"})
REPLY_SYNTAX_MAIL = "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
REPLY_SYNTAX_RCPT = "501 5.5.4 Syntax: RCPT TO:<address> [parameters]"


class SmsEnvelope(Envelope):
    """aiosmtpd's envelope plus what mailsms decides at RCPT time."""

    def __init__(self) -> None:
        super().__init__()
        self.mail_params: dict[str, str] = {}
        self.accepted: list[Any] = []  # the handler's parsed recipients, in RCPT order
        self.rcpt_params: list[dict[str, str]] = []
        self.channel = "lmtp"  # or "smtp": which listener took the mail
        self.client: str | None = None  # the peer's address
        self.auth_user = ""  # the account authenticated by SMTP AUTH for this session


class Policy(Protocol):
    """What the protocol asks of the handler (mailsms.server.Handler)."""

    def check_mail(self, envelope: SmsEnvelope, sender: str, params: dict[str, str]) -> str | None: ...

    async def check_rcpt(self, envelope: SmsEnvelope, address: str, params: dict[str, str]) -> str: ...

    async def deliver(
        self, session: Session, envelope: SmsEnvelope, content: bytes, *, all_or_nothing: bool
    ) -> list[str]: ...

    @property
    def message_size_limit(self) -> int: ...

    async def check_login(self, server: Any, session: Session, mechanism: str, auth_data: Any) -> Any: ...


def split_path(arg: str) -> tuple[str, str] | None:
    """``<addr> PARAMS`` -> (addr, params); quoted local parts may hold ``>`` and spaces."""
    text = arg.strip()
    if not text.startswith("<"):
        address, _, rest = text.partition(" ")
        return (address, rest) if address else None
    quoted = False
    escaped = False
    for index in range(1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return text[1:index], text[index + 1 :].strip()
    return None


def parse_esmtp_params(text: str, allowed: frozenset[str]) -> dict[str, str] | str:
    """Keyword=value parameters (RFC 5321); returns them, or the error reply."""
    params: dict[str, str] = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        key = key.upper()
        if not key.isalnum() or (eq and not value):
            return "501 5.5.4 malformed parameter"
        if key not in allowed:
            return f"555 5.5.4 parameter {key} not supported"
        params[key] = value if eq else ""
    return params


@dataclass
class _DataReader:
    """Reads DATA up to the lone dot, counting bytes past the limit without keeping them."""

    reader: asyncio.StreamReader
    limit: int
    size: int = 0
    chunks: list[bytes] = field(default_factory=list)

    @property
    def too_big(self) -> bool:
        return self.size > self.limit

    async def read(self) -> None:
        at_line_start = True
        while True:
            try:
                line = await self.reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as exc:  # a very long line: take what is buffered
                line = await self.reader.readexactly(exc.consumed)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionResetError("connection closed during DATA") from exc
            if at_line_start and line == b".\r\n":
                return
            ends_line = line.endswith(b"\r\n")
            if at_line_start and line.startswith(b"."):
                line = line[1:]
            at_line_start = ends_line
            self.size += len(line)
            if not self.too_big:
                self.chunks.append(line)
            elif self.chunks:
                self.chunks.clear()  # drop early: memory stays flat for a 50 MB body


# aiosmtpd's own error replies carry no enhanced status code; ours all do.
_ENHANCED_FOR = {
    "421": "4.3.0", "451": "4.3.0", "452": "4.3.1", "454": "4.7.0", "500": "5.5.2", "501": "5.5.4", "502": "5.5.1",
    "503": "5.5.1", "504": "5.5.4", "550": "5.0.0", "552": "5.3.4", "553": "5.1.3", "554": "5.0.0",
    "555": "5.5.4",
}  # fmt: skip
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}\b")
# Command lines up to this long are read (RFC 5321 says 512; sms: addresses with
# their parameters are longer, as Postfix's line_length_limit of 2048 allows).
COMMAND_LINE_LIMIT = 4096


def with_enhanced_code(status: str) -> str:
    """A one-line 4xx/5xx reply with an enhanced status code, adding the usual one if missing."""
    code = status[:3]
    enhanced = _ENHANCED_FOR.get(code)
    if enhanced is None or "\n" in status or _HAS_ENHANCED.match(status):
        return status
    return f"{code} {enhanced} {status[4:]}" if len(status) > 4 else f"{code} {enhanced}"


class GatewayMixin:
    """Overrides shared by the SMTP and LMTP protocols."""

    command_size_limit = COMMAND_LINE_LIMIT
    line_length_limit = COMMAND_LINE_LIMIT  # aiosmtpd's stream limit: a longer command gets 500 5.5.2
    command_size_limits: collections.defaultdict[str, int]

    event_handler: Policy
    envelope: SmsEnvelope | None
    session: Session | None
    _reader: asyncio.StreamReader
    lmtp: bool = False

    if TYPE_CHECKING:  # provided by aiosmtpd.SMTP; declared for the type checker only

        async def check_helo_needed(self, helo: str = "HELO") -> bool: ...

        def _set_post_data_state(self) -> None: ...

    def _create_envelope(self) -> SmsEnvelope:
        return SmsEnvelope()

    def _set_rset_state(self) -> None:
        # aiosmtpd keeps per-command limits in a dict shared by every session; ours is our own
        self.command_size_limits = collections.defaultdict(lambda: COMMAND_LINE_LIMIT)
        super()._set_rset_state()  # type: ignore[misc]

    async def push(self, status: str) -> None:
        await super().push(with_enhanced_code(status))  # type: ignore[misc]

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if self.envelope.mail_from is not None:
            await self.push("503 5.5.1 nested MAIL command")
            return
        if not arg or arg[:5].upper() != "FROM:":
            await self.push(REPLY_SYNTAX_MAIL)
            return
        path = split_path(arg[5:])
        if path is None:
            await self.push(REPLY_SYNTAX_MAIL)
            return
        address, rest = path
        params = parse_esmtp_params(rest, MAIL_PARAMS)
        if isinstance(params, str):
            await self.push(params)
            return
        refusal = self.event_handler.check_mail(self.envelope, address, params)
        if refusal:
            await self.push(refusal)
            return
        self.envelope.mail_from = address or "<>"
        self.envelope.mail_params = params
        self.envelope.smtp_utf8 = "SMTPUTF8" in params
        await self.push("250 2.1.0 OK")

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if self.envelope.mail_from is None:
            await self.push("503 5.5.1 need MAIL command")
            return
        if not arg or arg[:3].upper() != "TO:":
            await self.push(REPLY_SYNTAX_RCPT)
            return
        path = split_path(arg[3:])
        if path is None or not path[0]:
            await self.push(REPLY_SYNTAX_RCPT)
            return
        address, rest = path
        params = parse_esmtp_params(rest, RCPT_PARAMS)
        if isinstance(params, str):
            await self.push(params)
            return
        assert self.session is not None
        self.envelope.channel = "lmtp" if self.lmtp else "smtp"
        peer = self.session.peer
        self.envelope.client = str(peer[0]) if isinstance(peer, tuple) and peer else None
        auth = self.session.auth_data if self.session.authenticated else None
        self.envelope.auth_user = auth if isinstance(auth, str) else ""
        await self.push(await self.event_handler.check_rcpt(self.envelope, address, params))

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        assert self.session is not None
        if not self.envelope.accepted:
            await self.push("503 5.5.1 need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = _DataReader(self._reader, self.event_handler.message_size_limit)
        await reader.read()  # a reset connection ends the session; nothing was accepted
        envelope, count = self.envelope, len(self.envelope.accepted)
        if reader.too_big:
            replies = ["552 5.3.4 message size exceeds fixed maximum message size"] * count
        else:
            try:
                replies = await self.event_handler.deliver(
                    self.session, envelope, b"".join(reader.chunks), all_or_nothing=not self.lmtp
                )
            except Exception:
                log.exception("internal error handling DATA")
                replies = ["451 4.3.0 internal error, try again later"] * count
        if len(replies) != count:  # a bug must never desynchronise the client
            log.error("handler gave %d replies for %d recipients", len(replies), count)
            replies = ["451 4.3.0 internal error, try again later"] * count
        self._set_post_data_state()
        if self.lmtp:
            await self.push("\r\n".join(replies))  # one reply per recipient, in one write
        else:
            await self.push(_smtp_reply(replies))


def _smtp_reply(replies: list[str]) -> str:
    """SMTP has one reply for all recipients; the handler committed all of them or none."""
    return next((r for r in replies if not r.startswith("2")), replies[0])


# What ``GatewaySMTP._authenticate`` answers aiosmtpd's mechanism: the check comes after it returns.
_CHECK_LATER = AuthResult(success=False, handled=True)


class GatewayLMTP(GatewayMixin, LMTP):  # type: ignore[misc]
    lmtp = True


class GatewaySMTP(GatewayMixin, SMTP):  # type: ignore[misc]
    """SMTP with AUTH PLAIN/LOGIN checked by the handler's ``check_login`` coroutine.

    aiosmtpd parses the mechanisms and calls its authenticator synchronously;
    a password hash (argon2, a tenth of a second) must not stop the event loop
    for every other session, so the parsed credentials are kept and checked
    after aiosmtpd's mechanism returns, by awaiting the handler.
    """

    lmtp = False
    _credentials: tuple[str, Any] | None = None

    def _authenticate(self, mechanism: str, auth_data: Any) -> Any:
        self._credentials = (mechanism, auth_data)
        return _CHECK_LATER

    async def _checked(self, result: Any) -> Any:
        credentials, self._credentials = self._credentials, None
        if result is not _CHECK_LATER or credentials is None or self.session is None:
            return result
        return await self.event_handler.check_login(self, self.session, *credentials)

    async def auth_PLAIN(self, server: Any, args: list[str]) -> Any:
        return await self._checked(await super().auth_PLAIN(server, args))

    async def auth_LOGIN(self, server: Any, args: list[str]) -> Any:
        return await self._checked(await super().auth_LOGIN(server, args))

    async def smtp_AUTH(self, arg: str) -> None:
        """aiosmtpd's AUTH, then, after a failed attempt, the handler's penalty: past a few failures
        from one client its next command waits longer and longer (slows password guessing)."""
        failures = getattr(self.session, "auth_failures", 0)
        await super().smtp_AUTH(arg)
        if getattr(self.session, "auth_failures", 0) > failures:
            penalty = getattr(self.event_handler, "auth_failed", None)
            peer = self.session.peer if self.session is not None else None
            if penalty is not None:
                await penalty(peer[0] if isinstance(peer, tuple) and peer else None)
