"""LMTP and SMTP listeners: the policy half (the protocol half is mailsms.smtpproto).

Recipients are checked at RCPT with the error tree's replies.  After DATA
the text is composed once, split per recipient, and every recipient's rows
are committed in one group commit before any 250 is sent.  No SMS is sent
here: the scheduler works from the queue only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import Session

from mailsms import __version__
from mailsms.address import SmsAddress, parse_address, redact
from mailsms.compose import Composed, compose
from mailsms.config import Config, QueueConfig
from mailsms.errors import MailsmsError, NotReady, UnknownDomain
from mailsms.ingest import Recipient, build_message, choose_gateway, new_queue_id, segment_for
from mailsms.log import event
from mailsms.segment import ReferenceCounter
from mailsms.smtpproto import GatewayLMTP, GatewaySMTP, SmsEnvelope
from mailsms.store import NewMessage
from mailsms.store.reports import KeptOriginal
from mailsms.store.sqlite import SqliteStore
from replylog.origin import authenticated_sender

log = logging.getLogger("mailsms.server")

REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 too many recipients"
REPLY_RCPT_OK = "250 2.1.5 recipient OK"


class Handler:
    """Decides each reply; aiosmtpd (through mailsms.smtpproto) speaks the protocol."""

    def __init__(
        self,
        config: Config,
        store: SqliteStore | None,
        wake: Callable[[], None],
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_queue_id,
    ) -> None:
        self.config = config
        self.store = store
        self.wake = wake
        self.clock = clock
        self.new_id = new_id
        self.references = ReferenceCounter(config.segment.reference_bits)
        self.inbound_wake: Callable[[], None] = _nothing  # the inbound pipeline's, once the daemon runs it
        self._gateway_ids = {g.id for g in config.gateways}

    @property
    def message_size_limit(self) -> int:
        return self.config.server.message_size_limit

    def check_mail(self, envelope: SmsEnvelope, sender: str, params: dict[str, str]) -> str | None:
        size = params.get("SIZE", "")
        if size and (not size.isdigit() or int(size) > self.message_size_limit):
            return "552 5.3.4 message size exceeds fixed maximum message size"
        return None

    def check_rcpt(self, envelope: SmsEnvelope, address: str, params: dict[str, str]) -> str:
        if len(envelope.accepted) >= self.config.server.max_recipients:
            return REPLY_TOO_MANY_RECIPIENTS
        shown = redact(address)
        try:
            parsed = parse_address(address, self.config.address, default_maxmsgs=self.config.segment.maxmsgs)
            self.check_gateway(parsed)
        except MailsmsError as exc:
            log.info("reject: RCPT to=<%s>: %s", shown, exc.reply())
            return exc.reply()
        envelope.accepted.append(Recipient(address=parsed, shown=shown, dsn=params))
        envelope.rcpt_tos.append(shown)
        return REPLY_RCPT_OK

    async def deliver(
        self, session: Session, envelope: SmsEnvelope, content: bytes, *, all_or_nothing: bool
    ) -> list[str]:
        recipients: list[Recipient] = envelope.accepted
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        composed = compose(content, self.config.compose)
        if (not sender or composed.auto_submitted) and not self.config.compose.text_bounces:
            why = "null sender" if not sender else "auto-submitted"
            log.info("discarded: from=<%s>, nrcpt=%d: %s mail is never sent as SMS", sender, len(recipients), why)
            return ["250 2.0.0 accepted; a bounce or auto-reply is not sent as SMS"] * len(recipients)
        now = self.clock()
        replies: list[str] = []
        rows: list[NewMessage] = []
        authenticated = authenticated_sender(content, envelope.mail_params)  # for the reply log
        for recipient in recipients:
            try:
                rows.append(self._row(recipient, sender, composed, envelope, now, authenticated=authenticated))
                replies.append("")
            except MailsmsError as exc:
                replies.append(exc.reply())
        if all_or_nothing and any(replies):
            failure = next(r for r in replies if r)
            return [failure] * len(recipients)
        if rows:
            rows = same_mail(rows)
            try:
                await self.commit(rows, kept_original(rows, envelope.mail_params, content, self.config.queue))
            except MailsmsError as exc:
                return [r or exc.reply() for r in replies]
        queued = iter(rows)
        result = []
        for reply in replies:
            if reply:
                result.append(reply)
                continue
            row = next(queued)
            log.info(event(row.id, sender=sender, to=row.recipient, relay=row.gateway, parts=len(row.parts),
                           size=len(content), status="queued"))  # fmt: skip
            result.append(f"250 2.0.0 {row.id} queued as SMS ({len(row.parts)} part{'s' * (len(row.parts) != 1)})")
        return result

    def _row(
        self,
        recipient: Recipient,
        sender: str,
        composed: Composed,
        envelope: SmsEnvelope,
        now: float,
        *,
        authenticated: bool = False,
    ) -> NewMessage:
        address = recipient.address
        text = address.params.body if address.params.body else composed.text
        dsn = {k: v for k, v in envelope.mail_params.items() if k in ("RET", "ENVID")}
        return self.new_message(
            recipient,
            sender,
            text,
            now,
            envelope_dsn=dsn,
            headers=composed.original_headers,
            auto_submitted=composed.auto_submitted,
            authenticated=authenticated,
        )

    # -- shared with the HTTP send API (mailsms.web_send) --------------------------

    def check_gateway(self, address: SmsAddress) -> None:
        """An ``id=`` parameter must name a configured gateway (UnknownDomain, 5.1.1)."""
        wanted = address.params.gateway_id
        if wanted and wanted not in self._gateway_ids:
            raise UnknownDomain(f"no gateway with id {wanted!r} (parameter id)")

    def new_message(
        self,
        recipient: Recipient,
        sender: str,
        text: str,
        now: float,
        *,
        envelope_dsn: dict[str, str] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        auto_submitted: bool = False,
        authenticated: bool = False,
    ) -> NewMessage:
        """The queue rows for ``text`` to one recipient: split, with a fresh queue id (MessageTooLong etc.)."""
        address = recipient.address
        segmentation = segment_for(address, text, self.config.segment, self.references.next(address.number))
        return build_message(
            queue_id=self.new_id(),
            now=now,
            sender=sender,
            recipient=recipient,
            text=text,
            segmentation=segmentation,
            gateway=choose_gateway(address, self.config.gateways),
            envelope_dsn=envelope_dsn or {},
            headers=headers,
            auto_submitted=auto_submitted,
            delay_warning_time=self.config.queue.delay_warning_time,
            authenticated=authenticated or address.skip_authentication,
        )

    async def commit(self, rows: list[NewMessage], original: KeptOriginal | None = None) -> None:
        """Commit ``rows`` durably, then wake the scheduler; raises MailsmsError (QueueFull, NotReady, ...)."""
        if self.store is None:
            raise NotReady()
        try:
            await self.store.enqueue(rows, original)
        except MailsmsError as exc:
            log.warning("queue commit failed for %d recipient(s): %s", len(rows), exc.reply())
            raise
        self.wake()

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: SmsEnvelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        extra = ["250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250-DSN", f"250-SIZE {self.message_size_limit}"]
        return [responses[0], *extra, *responses[1:]]


def _nothing() -> None:
    """No inbound pipeline (tests without a daemon): an MO waits in the store."""


def same_mail(rows: list[NewMessage]) -> list[NewMessage]:
    """Rows of one mail with several recipients share the first one's id as ``mail_id``: one report lists all."""
    if len(rows) < 2:
        return rows
    return [dataclasses.replace(row, mail_id=rows[0].id) for row in rows]


def kept_original(
    rows: list[NewMessage], mail_params: dict[str, str], content: bytes, queue: QueueConfig
) -> KeptOriginal | None:
    """The whole mail, kept for reports when the sender asked RET=FULL and it is small enough."""
    if mail_params.get("RET", "").upper() != "FULL" or len(content) > queue.bounce_size_limit:
        return None
    if not any(row.notify for row in rows):
        return None
    return KeptOriginal(rows[0].mail_id or rows[0].id, content)


def _hostname() -> str:
    return socket.getfqdn()


def protocol_factory(handler: Handler, lmtp: bool) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for ``loop.create_server``."""
    hostname = _hostname()
    cls = GatewayLMTP if lmtp else GatewaySMTP

    def make() -> asyncio.Protocol:
        proto: asyncio.Protocol = cls(
            handler,
            data_size_limit=None,  # enforced per recipient by smtpproto (INTEROP.md)
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=f"mailsms {__version__}",
        )
        return proto

    return make


async def listen(factory: Callable[[], asyncio.Protocol], host: str, port: int) -> asyncio.Server:
    """Bind one listener without serving yet; OSError propagates for the caller to name the address."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, port, start_serving=False)
