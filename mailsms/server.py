"""LMTP and SMTP listeners on aiosmtpd.

The handler keeps protocol and policy apart: aiosmtpd speaks the protocol,
``Handler`` decides each reply.  Until the durable queue is in place a
recipient is deferred (451 4.3.2) at RCPT, so the MTA keeps the mail and
nothing that was accepted can be lost.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailsms import __version__
from mailsms.config import ServerConfig
from mailsms.log import redact

log = logging.getLogger("mailsms.server")

REPLY_NOT_READY = "451 4.3.2 mailsms cannot queue SMS yet: try again later"


class Handler:
    """Decides the reply to each command; protocol details stay in aiosmtpd."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        log.info("%s: to=<%s>, status=deferred (%s)", session.peer, redact(address), REPLY_NOT_READY[4:])
        return REPLY_NOT_READY

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Unreachable while every RCPT is deferred; kept explicit so DATA never gets a 250 by accident.
        return "\r\n".join(REPLY_NOT_READY for _ in envelope.rcpt_tos) or "503 5.5.1 no valid recipients"


def _hostname() -> str:
    return socket.getfqdn()


def lmtp_factory(handler: Handler) -> Any:
    """A protocol factory for ``loop.create_server``."""
    hostname = _hostname()

    def make() -> LMTP:
        return LMTP(
            handler,
            data_size_limit=None,  # enforced per recipient by the handler (INTEROP.md)
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=f"mailsms {__version__}",
        )

    return make


def smtp_factory(handler: Handler) -> Any:
    hostname = _hostname()

    def make() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=None,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=f"mailsms {__version__}",
        )

    return make


async def listen(factory: Any, host: str, port: int) -> asyncio.Server:
    """Bind one listener; OSError propagates for the caller to name the address."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, port)
