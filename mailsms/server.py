"""LMTP and SMTP listeners: the policy half (the protocol half is mailsms.smtpproto).

Recipients are checked at RCPT with the error tree's replies.  After DATA
the text is composed once, split per recipient, and every recipient's rows
are committed in one group commit before any 250 is sent.  No SMS is sent
here: the scheduler works from the queue only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.smtp import Session

from mailsms import __version__
from mailsms.accounts import Account, verify_password
from mailsms.address import SmsAddress, parse_address, redact
from mailsms.compose import Composed, compose
from mailsms.config import Config, QueueConfig
from mailsms.errors import (
    AuthRequired,
    BadAddressSyntax,
    BadContent,
    ConfigError,
    MailsmsError,
    NotReady,
    QuotaExceeded,
    UnknownDomain,
)
from mailsms.fallback import alternate_for
from mailsms.ingest import Recipient, build_message, new_queue_id, segment_for
from mailsms.intercept import Interceptor, MtMessage, Rejected, ScriptFailed
from mailsms.log import event
from mailsms.log import redact as redact_text
from mailsms.metrics import Metrics
from mailsms.mta_auth import AUTH_HEADER, auth_header_values, policy_request, rejudge, strip_auth_header
from mailsms.policy import PolicyEngine, Verdict, check_account, check_destination
from mailsms.routing import DEFAULT_TARGET, Router, RouteRequest
from mailsms.segment import ReferenceCounter
from mailsms.smtpproto import GatewayLMTP, GatewaySMTP, SmsEnvelope
from mailsms.store import NewMessage
from mailsms.store.accounts import get_account
from mailsms.store.queue import QueueStore
from mailsms.store.reports import KeptOriginal
from mailsms.values import in_networks
from replylog.origin import authenticated_sender

log = logging.getLogger("mailsms.server")

REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 too many recipients"
REPLY_RCPT_OK = "250 2.1.5 recipient OK"
REPLY_AUTH_NEEDS_TLS = "538 5.7.11 Encryption required for requested authentication mechanism"
_NUMBER = re.compile(r"^(\+[1-9][0-9]{4,14}|[0-9]{3,8})$")  # what an interception script may set


class Handler:
    """Decides each reply; aiosmtpd (through mailsms.smtpproto) speaks the protocol."""

    def __init__(
        self,
        config: Config,
        store: QueueStore | None,
        wake: Callable[[], None],
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_queue_id,
    ) -> None:
        self.store = store
        self.wake = wake
        self.clock = clock
        self.new_id = new_id
        self.metrics = Metrics()  # counters for /metrics; the daemon gives it the shared one
        self.references = ReferenceCounter(config.segment.reference_bits)
        self.inbound_wake: Callable[[], None] = _nothing  # the inbound pipeline's, once the daemon runs it
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """Take ``config`` (at start, and on SIGHUP): rules, policy and scripts apply to the next RCPT.

        Rate-limit buckets start afresh; counts kept in the queue (monthly limits) are unaffected."""
        self.config = config
        self.router = Router(config.routes, config.gateways, config.groups)
        # What id=, an account or a script may name: a gateway or a group.
        self._gateway_ids = {t for t in self.router.targets() if t != DEFAULT_TARGET}
        self.policy = PolicyEngine(config.policy, self.account, clock=self.clock)
        self.share_limits()
        intercept = config.intercept
        self.mt_intercept = Interceptor[MtMessage](intercept.mt, "mt", intercept.timeout) if intercept.mt else None

    def share_limits(self) -> None:
        """With a queue that several nodes share, the hourly rate limits are counted in it."""
        store = getattr(self, "store", None)
        if store is not None and store.node:
            from mailsms.store.buckets import SharedBuckets

            self.policy.share(functools.partial(SharedBuckets, store.conn))

    @property
    def message_size_limit(self) -> int:
        return self.config.server.message_size_limit

    def check_mail(self, envelope: SmsEnvelope, sender: str, params: dict[str, str]) -> str | None:
        size = params.get("SIZE", "")
        if size and (not size.isdigit() or int(size) > self.message_size_limit):
            return "552 5.3.4 message size exceeds fixed maximum message size"
        return None

    def account(self, user: str) -> Account | None:
        """The account named ``user``, read now: a change made with ``mailsms accounts`` applies at once."""
        if self.store is None:
            return None
        return get_account(self.store.conn, user)

    async def check_rcpt(
        self, envelope: SmsEnvelope, address: str, params: dict[str, str], *, take_tokens: bool = True
    ) -> str:
        """The RCPT reply for ``address``; ``take_tokens=False`` judges without using up rate
        limits (the milter looks ahead of the LMTP delivery that counts)."""
        limit = self.config.server.max_recipients
        if self.config.policy.max_recipients_per_message:
            limit = min(limit, self.config.policy.max_recipients_per_message)
        if len(envelope.accepted) >= limit:
            return REPLY_TOO_MANY_RECIPIENTS
        shown = redact(address)
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        try:
            trusted = self.policy.trusted(envelope.client)
            parsed = parse_address(
                address, self.config.address, default_maxmsgs=self.config.segment.maxmsgs, trusted=trusted
            )
            self.check_gateway(parsed)
            request = policy_request(envelope, parsed, sender, trusted=trusted, session_user=envelope.auth_user)
            name = envelope.auth_user or request.user
            already = sum(1 for r in envelope.accepted if name and r.account == name)
            try:
                verdict = await self.policy.check(request, already=already, take=take_tokens)
            except AuthRequired:
                # A trusted MTA may name the account in X-Mailsms-Auth: judged again after DATA
                # (judged_by_mta).  The milter's look-ahead (take_tokens=False) knows the login already.
                if not take_tokens or not in_networks(envelope.client, self.config.server.trusted_mta):
                    raise
                verdict = self.policy.admit(request, Verdict(), None, already=already, take=take_tokens)
            self.check_account_gateway(verdict)
            self.check_number_cap(parsed.number, envelope)
        except MailsmsError as exc:
            log.info("reject: RCPT from=<%s> to=<%s> client=%s: %s", sender, shown, envelope.client, exc.reply())
            self.metrics.rejected(exc.reply())
            return exc.reply()
        envelope.accepted.append(
            Recipient(address=parsed, shown=shown, dsn=params, account=verdict.account, gateway=verdict.gateway,
                      authenticated=verdict.authenticated)
        )  # fmt: skip
        envelope.rcpt_tos.append(shown)
        return REPLY_RCPT_OK

    async def judged_by_mta(self, envelope: SmsEnvelope, content: bytes) -> list[Recipient | MailsmsError]:
        """The recipients as judged with the login in X-Mailsms-Auth when a trusted MTA sent the mail.

        From server.trusted_mta the header counts as SMTP AUTH at mailsms (mailsms.mta_auth); from
        anyone else it is ignored.  Without a header, a trusted MTA's recipients that were let through
        at RCPT for lack of credentials are judged again, and refused now.
        """
        accepted: list[Recipient | MailsmsError] = list(envelope.accepted)
        values = auth_header_values(content)
        if not in_networks(envelope.client, self.config.server.trusted_mta):
            if values:
                log.info("%s from untrusted client %s ignored", AUTH_HEADER, envelope.client or "-")
            return accepted
        login = values[0] if values and not envelope.auth_user else ""
        if len(set(values)) > 1:
            log.warning("%d different %s headers from %s: none is used", len(set(values)), AUTH_HEADER, envelope.client)
            login = ""
        if login and self.account(login) is None:
            log.info("%s names no account %r: the mail is not authenticated", AUTH_HEADER, login[:64])
            login = ""
        if not login and not self.config.policy.require_auth:
            return accepted
        return await rejudge(self.policy, envelope, login or envelope.auth_user, self.check_account_gateway)

    def check_number_cap(self, number: str, envelope: SmsEnvelope) -> None:
        """``queue.max_messages_per_number``: a number with that many messages waiting takes no more
        for now (QuotaExceeded, 452 4.2.2), counting those of this transaction."""
        cap = self.config.queue.max_messages_per_number
        if not cap or self.store is None:
            return
        waiting = self.store.waiting_for(number) + sum(1 for r in envelope.accepted if r.address.number == number)
        if waiting >= cap:
            raise QuotaExceeded(f"{number} has {waiting} messages waiting to be sent (at most {cap}); try again later")

    def check_account_gateway(self, verdict: Verdict) -> None:
        """An account's gateway must be configured (ConfigError, 451 4.3.5, until it is)."""
        if verdict.gateway and verdict.gateway not in self._gateway_ids:
            log.warning("account %r names gateway %r, which is not configured", verdict.account, verdict.gateway)
            raise ConfigError(f"the gateway of account {verdict.account!r} is not configured")

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
        judged = await self.judged_by_mta(envelope, content)
        recipients = [r if isinstance(r, Recipient) else a for r, a in zip(judged, recipients, strict=True)]
        replies: list[str] = []
        rows: list[NewMessage] = []
        authenticated = authenticated_sender(content, envelope.mail_params)  # for the reply log
        headers = scrubbed(composed.original_headers)  # the same for every recipient
        for accepted, judgement in zip(recipients, judged, strict=True):
            recipient = accepted
            try:
                if isinstance(judgement, MailsmsError):
                    raise judgement
                text = accepted.address.params.body or composed.text
                recipient, text = await self.intercepted(accepted, sender, text)
                row = self._row(recipient, sender, composed, envelope, now, text=text, headers=headers,
                                authenticated=authenticated)  # fmt: skip
                self.policy.charge_parts(sender, _verdict(recipient), len(row.parts))
                rows.append(row)
                replies.append("")
            except MailsmsError as exc:
                log.info("reject: from=<%s> to=<%s>: %s", sender, recipient.shown, exc.reply())
                self.metrics.rejected(exc.reply())
                replies.append(exc.reply())
        if all_or_nothing and any(replies):
            failure = next(r for r in replies if r)
            return [failure] * len(recipients)
        if rows:
            rows = same_mail(rows)
            counted = [r for r, reply in zip(recipients, replies, strict=True) if not reply]
            try:
                original = kept_original(rows, envelope.mail_params, content, self.config.queue)
                await self.commit(rows, original, recipients=counted)
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
        text: str,
        headers: tuple[tuple[str, str], ...],
        authenticated: bool = False,
    ) -> NewMessage:
        dsn = {k: v for k, v in envelope.mail_params.items() if k in ("RET", "ENVID")}
        return self.new_message(
            recipient,
            sender,
            text,
            now,
            envelope_dsn=dsn,
            headers=headers,
            auto_submitted=composed.auto_submitted,
            authenticated=authenticated,
            not_before=composed.deferred_delivery,
        )

    # -- shared with the HTTP send API (mailsms.web_send) --------------------------

    async def intercepted(self, recipient: Recipient, sender: str, text: str) -> tuple[Recipient, str]:
        """The recipient and text as ``intercept.mt`` leaves them (Rejected, ScriptFailed: its replies).

        A new number is judged again by the destination rules: a script cannot open a premium range.
        """
        if self.mt_intercept is None:
            return recipient, text
        address = recipient.address
        given = MtMessage(address.number, address.params.sender or "", text, recipient.gateway, sender)
        result = await self.mt_intercept.apply(given)
        if result.number != given.number:
            if not _NUMBER.match(result.number):
                log.warning("intercept.mt: %r is no E.164 number or short code", result.number[:40])
                raise ScriptFailed()
            check_destination(result.number, self.config.policy)
        if result.route and result.route not in self._gateway_ids:
            log.warning("intercept.mt: route %r is no configured gateway", result.route[:64])
            raise ScriptFailed()
        if (result.number, result.sender, result.route) != (given.number, given.sender, given.route):
            params = dataclasses.replace(address.params, sender=result.sender or None)
            address = dataclasses.replace(address, number=result.number, params=params)
            recipient = dataclasses.replace(recipient, address=address, gateway=result.route)
        return recipient, result.text

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
        not_before: float | None = None,
    ) -> NewMessage:
        """The queue rows for ``text`` to one recipient: split, with a fresh queue id (MessageTooLong etc.).

        ``not_before`` (the Deferred-Delivery header) schedules it for later unless ``at=`` does."""
        recipient = self.routed(recipient, sender, text, now)
        address = recipient.address
        scheduled = scheduled_time(address.params.at, not_before, now)
        segmentation = segment_for(address, text, self.config.segment, self.references.next(address.number))
        message = build_message(
            queue_id=self.new_id(),
            now=now,
            sender=sender,
            recipient=recipient,
            text=text,
            segmentation=segmentation,
            envelope_dsn=envelope_dsn or {},
            headers=headers,
            auto_submitted=auto_submitted,
            delay_warning_time=self.config.queue.delay_warning_time,
            authenticated=authenticated or recipient.authenticated or address.skip_authentication,
            gateway=recipient.gateway,
            not_before=scheduled,
        )
        fallback = alternate_for(self.config.fallbacks, address.number, recipient.account)
        if fallback is None or fallback.alternate == address.number:
            return message
        return dataclasses.replace(message, alternate=fallback.alternate, fallback_after=fallback.after)

    def routed(self, recipient: Recipient, sender: str, text: str, now: float) -> Recipient:
        """The recipient as the ``[[route]]`` rules leave it: its number rewritten, its sender set, and
        its ``gateway`` the target (a gateway, a group or "*"); Rejected or BadNumber when a rule says so."""
        address = recipient.address
        decision = self.router.route(
            RouteRequest(
                number=address.number,
                sender=sender,
                account=recipient.account,
                text=text,
                pinned=address.params.gateway_id or recipient.gateway,
                local_time=_local_time(now),
            )
        )
        if decision.reject is not None:
            reject = decision.reject
            log.info("route %r rejects to=<%s>: %s", reject.rule, recipient.shown, reject.reply())
            raise Rejected(reject.code, reject.enhanced, reject.text)
        if decision.number != address.number:
            check_destination(decision.number, self.config.policy)  # a rule cannot open a premium range
            address = dataclasses.replace(address, number=decision.number)
        if decision.sender is not None:
            address = dataclasses.replace(address, params=dataclasses.replace(address.params, sender=decision.sender))
        return dataclasses.replace(recipient, address=address, gateway=decision.target)

    async def commit(
        self, rows: list[NewMessage], original: KeptOriginal | None = None, *, recipients: Sequence[Recipient] = ()
    ) -> None:
        """Commit ``rows`` durably, counted against the accounts of ``recipients`` in the same
        transaction, then wake the scheduler; raises MailsmsError (QueueFull, NotReady, a monthly
        limit that concurrent sessions used up since RCPT, ...): then nothing was queued."""
        if self.store is None:
            raise NotReady()
        counts: dict[str, int] = {}
        for recipient in recipients:
            if recipient.account:
                counts[recipient.account] = counts.get(recipient.account, 0) + 1
        now = self.clock()
        policy = self.config.policy

        def within_limits(account: Account, messages: int) -> None:
            check_account(account, now, policy, already=messages - 1)

        try:
            await self.store.enqueue(rows, original, counts=counts, now=now, check=within_limits)
        except MailsmsError as exc:
            log.warning("queue commit failed for %d recipient(s): %s", len(rows), exc.reply())
            self.metrics.rejected(exc.reply(), len(rows))
            raise
        self.metrics.accepted(len(rows))
        self.wake()

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: SmsEnvelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        extra = ["250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250-DSN", f"250-SIZE {self.message_size_limit}"]
        rest = responses[1:]
        if not auth_allowed(server, session):
            rest = [r for r in rest if not r.startswith("250-AUTH")]
        return [responses[0], *extra, *rest]

    async def auth_failed(self, client: str | None) -> None:
        """An SMTP AUTH attempt failed: counted per client; past a few, the session waits
        ``policy.auth_failure_delay``, doubling, before its next command."""
        await self.policy.failed(client)

    async def check_login(self, server: Any, session: Session, mechanism: str, auth_data: Any) -> Any:
        """SMTP AUTH PLAIN/LOGIN (from GatewaySMTP): the session's account, or 535 5.7.8.

        Allowed after STARTTLS or from loopback only (538 5.7.11 otherwise): a
        password must not cross a network in clear.  The hash is checked in a
        thread, never on the event loop; for an unknown user too (a dummy
        hash), so the time taken tells nothing.  The session keeps the
        account's name, never the password.
        """
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not auth_allowed(server, session):
            return AuthResult(success=False, handled=False, message=REPLY_AUTH_NEEDS_TLS)
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        account = self.account(user)
        password = auth_data.password.decode("utf-8", "replace")
        ok = await asyncio.to_thread(verify_password, account.password_hash if account else "", password)
        client = session.peer[0] if isinstance(session.peer, tuple) else None
        if not ok or account is None:
            log.info("reject: AUTH %s from %s: 535 5.7.8 authentication failed for %r", mechanism, client, user[:64])
            vars(session)["auth_failures"] = getattr(session, "auth_failures", 0) + 1  # for smtp_AUTH's penalty
            return AuthResult(success=False, handled=False)
        log.info("AUTH %s from %s: account %r", mechanism, client, account.user)
        return AuthResult(success=True, auth_data=account.user)


def _verdict(recipient: Recipient) -> Verdict:
    return Verdict(recipient.account, recipient.gateway, recipient.authenticated)


def auth_allowed(server: Any, session: Session) -> bool:
    """SMTP AUTH only over TLS or from this machine."""
    if getattr(server, "_tls_protocol", None) is not None:
        return True
    peer = session.peer
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        return ipaddress.ip_address(str(peer[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


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
    return KeptOriginal(rows[0].mail_id or rows[0].id, scrub_mail(content))


def scrubbed(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Headers kept for reports, with every ``pass=`` value removed: To:/Cc: carry the sms: addresses too."""
    return tuple((name, redact_text(value)) for name, value in headers)


def scrub_mail(content: bytes) -> bytes:
    """The mail kept for RET=FULL reports, its header section without ``pass=`` values."""
    content = strip_auth_header(content)  # the MTA's word to mailsms, not part of the mail
    head, sep, body = content.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = content.partition(b"\n\n")
    cleaned = redact_text(head.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return cleaned + sep + body


def _hostname() -> str:
    return socket.getfqdn()


def protocol_factory(
    handler: Handler, lmtp: bool, tls_context: ssl.SSLContext | None = None
) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for ``loop.create_server``; ``tls_context`` offers STARTTLS (SMTP only)."""
    hostname = _hostname()
    cls = GatewayLMTP if lmtp else GatewaySMTP

    # SMTP AUTH on the SMTP listener only; Handler.check_login allows it after STARTTLS or on loopback.
    auth: dict[str, Any] = {} if lmtp else {"auth_require_tls": False}
    if tls_context is not None and not lmtp:  # LMTP from the local MTA stays plain
        auth["tls_context"] = tls_context

    def make() -> asyncio.Protocol:
        proto: asyncio.Protocol = cls(
            handler,
            data_size_limit=None,  # enforced per recipient by smtpproto (INTEROP.md)
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=f"mailsms {__version__}",
            **auth,
        )
        return proto

    return make


async def listen(factory: Callable[[], asyncio.Protocol], host: str, port: int) -> asyncio.Server:
    """Bind one listener without serving yet; OSError propagates for the caller to name the address."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, port, start_serving=False)


def _local_time(now: float) -> datetime.time:
    """The server's local wall-clock time at ``now`` (for ``hours`` in routes)."""
    return datetime.datetime.fromtimestamp(now).time()


MAX_SCHEDULE_AHEAD = 366 * 86400.0  # seconds: a send time later than this is a mistake


def scheduled_time(at: float | None, header: float | None, now: float) -> float | None:
    """When a message may go: ``at=`` first, else the Deferred-Delivery header; None: now.

    A time in the past means now; one more than a year ahead is refused (BadAddressSyntax for
    ``at=``, BadContent for the header)."""
    if at is not None:
        if at > now + MAX_SCHEDULE_AHEAD:
            raise BadAddressSyntax("parameter 'at': the send time is more than a year ahead")
        return at if at > now else None
    if header is not None:
        if header > now + MAX_SCHEDULE_AHEAD:
            raise BadContent("Deferred-Delivery: the send time is more than a year ahead")
        return header if header > now else None
    return None
