"""An aiosmtpd SMTP or LMTP sink on 127.0.0.1:0 that records mail and answers RCPT from a script."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    login: str


@dataclass
class SinkHandler:
    """``rcpt_replies`` answer RCPT commands in turn ("250 ..." accepts); then every RCPT is accepted."""

    rcpt_replies: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    rcpt_attempts: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.rcpt_attempts.append(address)
        reply = self.rcpt_replies.pop(0) if self.rcpt_replies else "250 2.1.5 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = str(session.auth_data or "") if session.authenticated else ""
        self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content, login))
        return f"250 2.0.0 Ok: queued as SINK{len(self.received)}"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            self.logins.append((user, password))
            return AuthResult(success=password == "sesame", handled=False, auth_data=user)
        return AuthResult(success=False, handled=False)


@dataclass
class Sink:
    handler: SinkHandler
    port: int

    @property
    def relay(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def smtp_sink(*rcpt_replies: str, lmtp: bool = False) -> AsyncIterator[Sink]:
    """A running sink; SMTP AUTH (PLAIN, LOGIN; password "sesame") is offered without TLS."""
    handler = SinkHandler(list(rcpt_replies))
    cls = LMTP if lmtp else SMTP

    def factory() -> asyncio.Protocol:
        protocol: asyncio.Protocol = cls(
            handler, hostname="sink.example.test", authenticator=handler.authenticate, auth_require_tls=False
        )
        return protocol

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    try:
        yield Sink(handler, int(server.sockets[0].getsockname()[1]))
    finally:
        server.close()
        await server.wait_closed()
