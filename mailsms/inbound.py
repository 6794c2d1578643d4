"""The inbound pipeline: every committed MO reassembled, routed and made into a mail (a daemon task).

Gateways commit MOs in state ``received`` (``mailsms.web_hooks``); this task
takes them oldest first:

1. a part of a concatenated SMS waits for its siblings (``mailsms.reassembly``);
   the last one makes the whole SMS, a new MO that goes through the steps
   below; parts still missing after ``inbound.reassembly_timeout`` are given
   up and the rest goes on with ``inbound.incomplete_marker``;
2. an empty SMS is dropped, with a log line (IceWarp: "to trash");
3. the route is decided (``replylog.route``): an ``#email#`` tag at a local
   domain, the reply log's one live link, a conflict (several links: the
   replier gets ``replylog.conflict_message`` by SMS), or the unmatched
   recipient;
4. the mail is composed (``mailsms.inbound_mail``), signed by the mail-out when DKIM is
   configured, and committed to the mail-out queue in the same transaction
   as the MO's new state (``mailsms.store.inbound_flow``).

An MO the pipeline fails on is put on ``hold`` with a traceback in the log,
never retried in a loop; a store that cannot commit (disk full) stops the
pass, which is tried again a little later.  Expired reply links are purged
here too, every ``replylog.purge_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailsms.config import Config
from mailsms.errors import InternalError, MailsmsError, QueueFull
from mailsms.inbound_mail import SmsMail, compose_mail
from mailsms.intercept import Interceptor, MoMessage, Rejected, ScriptFailed
from mailsms.log import event
from mailsms.mailout import Mailout
from mailsms.metrics import Metrics
from mailsms.reassembly import concat_of
from mailsms.server import Handler
from mailsms.store import NewMessage
from mailsms.store import inbound_flow as flow
from mailsms.store.mailout import NewMail
from mailsms.store.queue import QueueStore
from replylog import store as links_store
from replylog.route import Route, decide, local_domain_set, reply_number

log = logging.getLogger("mailsms.inbound")

BATCH = 100  # MOs taken per pass
IDLE_WAKE = 5.0  # seconds between passes when nothing wakes the pipeline
STORE_RETRY = 5.0  # seconds before trying again after the store could not commit
PURGE_BATCH = 1000  # expired links deleted per transaction: the writer is shared with ingest


@dataclass
class InboundPipeline:
    config: Config
    store: QueueStore
    mailout: Mailout
    handler: Handler  # builds and commits conflict SMS like any message; its ids and clock
    clock: Callable[[], float] = time.time
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _next_purge: float = 0.0
    _local: frozenset[str] = frozenset()
    _intercept: Interceptor[MoMessage] | None = None
    metrics: Metrics = field(default_factory=Metrics)  # counters for /metrics (the daemon shares one)
    _conflicts: dict[str, float] = field(default_factory=dict)  # number -> when its last conflict SMS was queued

    def __post_init__(self) -> None:
        self._local = local_domain_set(self.config.inbound.local_domains)
        settings = self.config.intercept
        if settings.mo:
            self._intercept = Interceptor[MoMessage](settings.mo, "mo", settings.timeout)

    @property
    def keep_seconds(self) -> float:
        return self.config.replylog.keep_minutes * 60.0

    def wake(self) -> None:
        """An MO was committed: look at it now."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                more = await self.run_once()
                timeout = self._sleep_time(self.clock())
            except ScriptFailed:  # logged by the interceptor; the MO stays received, in order
                more, timeout = False, STORE_RETRY
            except (QueueFull, InternalError) as exc:
                log.warning("inbound: the store cannot commit now (%s); trying again in %.0fs", exc.reply(),
                            STORE_RETRY)  # fmt: skip
                more, timeout = False, STORE_RETRY
            except Exception:  # a read that failed (a locked or damaged file): never end the task
                log.exception("inbound: a pass failed; trying again in %.0fs", STORE_RETRY)
                more, timeout = False, STORE_RETRY
            if more:
                await asyncio.sleep(0)  # let listeners and the scheduler in between batches
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(timeout, 0.01))

    async def run_once(self) -> bool:
        """One pass: the pending MOs, parts that waited too long, the purge; True when more work is waiting."""
        now = self.clock()
        rows = flow.pending(self.store.conn, BATCH)
        made_whole = False
        for mo in rows:
            if self._stopping:
                return False
            made_whole |= await self.process(mo)
        made_whole |= await self._give_up_stale(now)
        await self._purge_if_due(now)
        return len(rows) == BATCH or made_whole

    def _sleep_time(self, now: float) -> float:
        waits = [IDLE_WAKE, self._next_purge - now]
        oldest = flow.oldest_waiting(self.store.conn)
        if oldest is not None:
            waits.append(oldest[1] + self.config.inbound.reassembly_timeout - now)
        return min(waits)

    async def _purge_if_due(self, now: float) -> None:
        """Delete expired reply links, a batch per transaction, every ``replylog.purge_interval``."""
        if now < self._next_purge:
            return
        self._next_purge = now + self.config.replylog.purge_interval
        before = now - self.keep_seconds
        total = 0
        while not self._stopping:
            gone = await self.store.write(functools.partial(links_store.purge, before=before, limit=PURGE_BATCH))
            total += gone
            if gone < PURGE_BATCH:
                break
            await asyncio.sleep(0)
        if total:
            log.info("reply log: %d expired link%s purged", total, "s" * (total != 1))

    # -- one MO ---------------------------------------------------------------------------------

    async def process(self, mo: flow.StoredMo) -> bool:
        """Reassemble or route ``mo``; True when it completed a concatenated SMS (a new MO to route)."""
        try:
            return await self._process(mo)
        except (QueueFull, InternalError, ScriptFailed):
            raise
        except Exception:
            log.exception("%s: the inbound pipeline failed on this SMS; it is kept on hold", mo.id)
            await self.store.write(functools.partial(flow.hold, mo_id=mo.id))
            return False

    async def _process(self, mo: flow.StoredMo) -> bool:
        now = self.clock()
        concat = concat_of(mo.udh)
        if concat is not None:
            return await self._file_part(mo, now)
        self.metrics.inbound(mo.gateway)
        if not mo.text.strip():
            await self._settle(mo, flow.DROPPED, "", status="dropped", reason="empty SMS")
            return False
        if self._intercept is not None:
            try:
                mo = await self._intercepted(mo)
            except Rejected as exc:
                await self._settle(mo, flow.DROPPED, "", status="dropped", reason=f"intercept.mo: {exc.reply()}")
                return False
        number = reply_number(mo.sender, self.config.address)
        record = self.config.replylog.record
        links = (
            links_store.live_links(self.store.conn, number, now, self.keep_seconds)
            if number is not None and record != "off"
            else []
        )
        route = decide(mo.text, links, now=now, keep_seconds=self.keep_seconds, local_domains=self._local,
                       unmatched=self.config.inbound.unmatched_recipient)  # fmt: skip
        self.metrics.routed(route.kind)
        for why in route.ignored_tags:
            log.info("%s: %s: ignored", mo.id, why)
        await self._deliver(mo, route, number, now)
        return False

    async def _intercepted(self, mo: flow.StoredMo) -> flow.StoredMo:
        """The MO as ``intercept.mo`` leaves it (Rejected: drop it; ScriptFailed: try again later)."""
        assert self._intercept is not None
        result = await self._intercept.apply(MoMessage(mo.sender, mo.to, mo.text, mo.gateway))
        return dataclasses.replace(mo, sender=result.sender, to=result.to, text=result.text)

    async def _file_part(self, mo: flow.StoredMo, now: float) -> bool:
        """File a part with its siblings; True when it completed them (the whole SMS waits to be routed)."""
        settings = self.config.inbound
        op = functools.partial(flow.file_part, mo_id=mo.id, new_id=self.handler.new_id(),
                               marker=settings.incomplete_marker, since=now - settings.reassembly_timeout)  # fmt: skip
        filed = await self.store.write(op)
        if filed.outcome == "duplicate":
            log.info(event(mo.id, sender=mo.sender, relay=mo.gateway, status="duplicate",
                           reason=f"part received before as {filed.other_id}; ignored"))  # fmt: skip
        elif filed.outcome == "complete":
            log.info(event(mo.id, sender=mo.sender, relay=mo.gateway, parts=f"{filed.have}/{filed.total}",
                           status="reassembled", reason=f"whole SMS {filed.other_id}"))  # fmt: skip
        elif filed.outcome == "waiting":
            log.info(event(mo.id, sender=mo.sender, relay=mo.gateway, parts=f"{filed.have}/{filed.total}",
                           status="waiting", reason="part of a concatenated SMS"))  # fmt: skip
        return filed.outcome == "complete"

    async def _give_up_stale(self, now: float) -> bool:
        """Join the parts of every SMS whose oldest part waited longer than the timeout; True when any was."""
        timeout = self.config.inbound.reassembly_timeout
        joined = False
        while not self._stopping:
            oldest = flow.oldest_waiting(self.store.conn)
            if oldest is None or oldest[1] > now - timeout:
                return joined
            op = functools.partial(flow.give_up, part_id=oldest[0], new_id=self.handler.new_id(),
                                   marker=self.config.inbound.incomplete_marker)  # fmt: skip
            given = await self.store.write(op)
            if given is None:
                continue
            joined = True
            missing = ", ".join(str(seq) for seq in given.missing)
            reason = f"parts {missing} missing after {timeout:.0f}s; delivered with a marker"
            log.warning(event(given.whole_id, parts=f"{given.have}/{given.total}", status="incomplete", reason=reason))
        return joined

    async def _deliver(self, mo: flow.StoredMo, route: Route, number: str | None, now: float) -> None:
        if route.kind == "drop":
            reason = "no #email# tag and no reply link; inbound.unmatched_recipient is not set"
            await self._settle(mo, flow.DROPPED, "", status="dropped", reason=reason)
            return
        sms: list[NewMessage] = []
        if route.kind == "conflict":
            sms = self._conflict_sms(mo, number, now)
        mail = self._mail(mo, route, now) if route.recipient else None
        state = flow.MAILED if mail is not None else flow.CONFLICT
        reason = {
            "tag": "#email# tag",
            "reply": f"reply log, in reply to {route.link.message_id or 'a mail without Message-ID'}"
            if route.link
            else "reply log",
            "conflict": f"{route.links} senders wrote to this number; asked for #email#"
            + ("" if sms else " (cannot: no number to answer)"),
            "unmatched": "no #email# tag and no reply link: inbound.unmatched_recipient",
        }[route.kind]
        if mail is not None:
            reason += f"; mail {mail.id}"
        await self._settle(mo, state, route.recipient, status=state, reason=reason, mail=mail, sms=sms)

    async def _settle(
        self,
        mo: flow.StoredMo,
        state: str,
        routed_to: str,
        *,
        status: str,
        reason: str,
        mail: NewMail | None = None,
        sms: list[NewMessage] | None = None,
    ) -> None:
        op = functools.partial(flow.settle, mo_id=mo.id, state=state, routed_to=routed_to, mail=mail, sms=sms or ())
        if not await self.store.write(op):
            return  # moved on already (another pipeline, a tool): nothing was added
        line = event(mo.id, sender=mo.sender, to=routed_to or None, relay=mo.gateway, status=status, reason=reason)
        (log.warning if state in (flow.DROPPED, flow.CONFLICT) else log.info)(line)
        if mail is not None:
            self.mailout.queued(mail)
        for row in sms or ():
            log.info(event(row.id, sender="", to=row.recipient, relay=row.gateway, parts=len(row.parts),
                           status="queued", reason=f"conflict message for {mo.id}"))  # fmt: skip
        if sms:
            self.handler.wake()

    # -- what an MO causes -------------------------------------------------------------------------

    def _mail(self, mo: flow.StoredMo, route: Route, now: float) -> NewMail:
        settings = self.config.inbound
        mail_id = self.mailout.new_id()
        link = route.link
        content = compose_mail(
            SmsMail(sender=mo.sender, to=mo.to, gateway=mo.gateway, text=route.text, recipient=route.recipient,
                    received=mo.received, in_reply_to=link.message_id if link else "",
                    original_subject=link.subject if link else ""),
            settings,
            message_id=self.mailout.message_id(mail_id),
        )  # fmt: skip
        content = self.mailout.sign(content)
        origin = f"SMS {mo.id} from {mo.sender[:40]}"
        return NewMail(mail_id, now, settings.envelope_sender, (route.recipient,), content, origin)

    def _conflict_sms(self, mo: flow.StoredMo, number: str | None, now: float) -> list[NewMessage]:
        """The conflict message to the replier, through the gateway the reply came from (when it can send)."""
        if number is None:
            return []
        if self._conflict_sent_lately(number, now):
            log.warning("%s: no conflict message to %s: one went out less than replylog.conflict_interval ago",
                        mo.id, number)  # fmt: skip
            return []
        from mailsms.address import number_address
        from mailsms.address_params import MAXMSGS_CAP, encode
        from mailsms.ingest import Recipient

        sending = {g.id for g in self.config.gateways}
        query = f"id={encode(mo.gateway)}" if mo.gateway in sending else ""
        lenient = dataclasses.replace(self.config.address, strict_numbers=False)  # it wrote to us: answer it
        try:
            address = number_address(number, query, lenient, default_maxmsgs=MAXMSGS_CAP)
            row = self.handler.new_message(
                Recipient(address=address, shown=address.redacted()), "", self.config.replylog.conflict_message, now
            )
        except MailsmsError as exc:
            log.warning("%s: conflict message to %s not queued: %s", mo.id, number, exc.reply())
            return []
        self._conflicts[number] = now
        return [row]

    def _conflict_sent_lately(self, number: str, now: float) -> bool:
        """Whether ``number`` got a conflict message within ``replylog.conflict_interval`` (kept in
        memory: after a restart one more may go out)."""
        interval = self.config.replylog.conflict_interval
        if interval <= 0:
            return False
        if len(self._conflicts) > 10_000:  # forget the old ones
            self._conflicts = {n: t for n, t in self._conflicts.items() if now - t < interval}
        last = self._conflicts.get(number)
        return last is not None and now - last < interval
