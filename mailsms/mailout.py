"""Mail-out: the durable queue for mail that mailsms sends itself (delivery reports, replies).

``enqueue`` commits the mail (through the store's group-committing writer)
before anything is sent; callers that must commit a mail together with
their own change (a report and the mark that it was made) insert it in
their own operation with ``mailsms.store.mailout.insert`` and then call
``queued``.  A worker task, woken on every enqueue, delivers through the
agent ``mailout.mode`` names (``mailsms.mailout_agents``).  A temporary
failure is retried with the queue's Postfix-like backoff until
``queue.maximal_queue_lifetime``; a permanent failure is logged and the mail
dropped: no report is ever made about a report.  A mail leaves the queue
only once every recipient was accepted or refused for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mailsms.dkim_sign import DkimSigner
from mailsms.ingest import new_queue_id
from mailsms.log import event
from mailsms.mailout_agents import Agent, RecipientResult
from mailsms.scheduler import RetryPolicy
from mailsms.store import mailout as mailout_store
from mailsms.store.mailout import NewMail, QueuedMail
from mailsms.store.queue import QueueStore

STORE_RETRY = 1.0  # seconds before the next look when the queue could not be read
log = logging.getLogger("mailsms.mailout")

IDLE_WAKE = 60.0  # seconds between looks at the queue when nothing wakes the worker


def local_hostname(configured: str) -> str:
    """``mailout.hostname``, or this host's fully qualified name."""
    return configured or socket.getfqdn()


@dataclass
class Mailout:
    store: QueueStore
    agent: Agent
    hostname: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 4
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = new_queue_id
    signer: DkimSigner | None = None  # mailout.dkim_*: every mail made here is signed
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _stopping: bool = False

    # -- putting mail in ------------------------------------------------------------------

    def new_mail(self, sender: str, recipients: Sequence[str], message: bytes, origin: str = "") -> NewMail:
        """A mail ready to insert, with a fresh id, due now."""
        if not recipients:
            raise ValueError("a mail needs at least one recipient")
        return NewMail(self.new_id(), self.clock(), sender, tuple(recipients), self.sign(message), origin)

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature header when ``mailout.dkim_*`` is configured."""
        return self.signer.sign(message) if self.signer is not None else message

    def message_id(self, mail_id: str) -> str:
        """A Message-ID for a mail made here, from its queue id."""
        return f"<{mail_id}@{self.hostname}>"

    async def enqueue(self, sender: str, recipients: Sequence[str], message: bytes, origin: str = "") -> str:
        """Commit a mail durably and wake the worker; its id.  Raises QueueFull/InternalError."""
        mail = self.new_mail(sender, recipients, message, origin)
        await self.store.write(functools.partial(mailout_store.insert, mail=mail))
        self.queued(mail)
        return mail.id

    def queued(self, mail: NewMail) -> None:
        """A mail was committed (by ``enqueue`` or inside another operation): log it and wake the worker."""
        origin = f", origin={mail.origin}" if mail.origin else ""
        log.info(f"{mail.id}: from=<{mail.sender}>, size={len(mail.message)}, nrcpt={len(mail.recipients)}{origin}")
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    # -- the worker ---------------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopping:
            now = self.clock()
            room = self.concurrency - len(self._in_flight)
            try:
                self._keep_claims()
                for mail in self._due(now, room) if room > 0 else ():
                    task = asyncio.create_task(self._deliver_guarded(mail), name=f"mailout-{mail.id}")
                    self._in_flight[mail.id] = task
                    task.add_done_callback(functools.partial(self._landed, mail.id))
                timeout = self._sleep_time(now)
            except sqlite3.Error as exc:  # the queue cannot be read now (PostgreSQL restarting): never end the task
                log.warning("mail-out: cannot read its queue (%s); trying again in %.0fs", exc, STORE_RETRY)
                timeout = STORE_RETRY
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _due(self, now: float, room: int) -> list[QueuedMail]:
        """Mail to send now; with several nodes, claimed for this one."""
        exclude = tuple(self._in_flight)
        if self.store.lease_seconds:
            lease = self.store.lease_seconds
            return mailout_store.claim(self.store.conn, now, room, exclude, node=self.store.node, lease=lease)
        return mailout_store.due(self.store.conn, now, room, exclude=exclude)

    def _keep_claims(self) -> None:
        """Several nodes: renew the claim on the mail being sent (a slow relay must not let another
        node send it too); the pass after comes within a third of a lease while any is in flight."""
        if self.store.lease_seconds and self._in_flight:
            mailout_store.renew(self.store.conn, list(self._in_flight), node=self.store.node,
                                lease=self.store.lease_seconds)  # fmt: skip

    def _sleep_time(self, now: float) -> float:
        # What is due by ``now`` is in flight or waits for room, and a landing wakes us.
        next_due = mailout_store.next_due_time(self.store.conn, after=now)
        longest = IDLE_WAKE
        if self.store.lease_seconds and self._in_flight:
            longest = min(longest, self.store.lease_seconds / 3)
        return longest if next_due is None else min(next_due - now, longest)

    def _landed(self, mail_id: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(mail_id, None)
        self._wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking mail; deliveries in flight get ``grace`` seconds (an unfinished one is sent again later)."""
        self._stopping = True
        self._wake.set()
        pending = list(self._in_flight.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)

    async def _deliver_guarded(self, mail: QueuedMail) -> None:
        try:
            results = await self.agent.deliver(mail.sender, mail.recipients, mail.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s: delivery agent raised unexpectedly", mail.id)
            reason = f"delivery agent error: {type(exc).__name__}"
            results = [RecipientResult(r, "temporary", "4.3.0", reason) for r in mail.recipients]
        await self._settle(mail, results)

    async def _settle(self, mail: QueuedMail, results: Sequence[RecipientResult]) -> None:
        now = self.clock()
        delay = now - mail.created
        relay = self.agent.relay
        left = [r.recipient for r in results if r.outcome == "temporary"]
        expired = bool(left) and delay >= self.policy.maximal_queue_lifetime
        for result in results:
            status = {"accepted": "sent", "permanent": "bounced", "temporary": "deferred"}[result.outcome]
            if result.outcome == "temporary" and expired:
                status = "expired"
            line = event(mail.id, to=result.recipient, relay=relay, delay=delay, dsn=result.dsn, status=status,
                         reason=result.reply)  # fmt: skip
            if result.outcome == "accepted":
                log.info(line)
            else:
                log.warning(line)
        if left and not expired:
            next_attempt = now + self.policy.backoff(mail.attempts + 1)
            reason = next(r.reply for r in results if r.outcome == "temporary")
            op = functools.partial(
                mailout_store.retry, mail_id=mail.id, recipients=left, next_attempt=next_attempt, reason=reason, now=now
            )
            await self.store.write(op)
            return
        if any(r.outcome != "accepted" for r in results) and not mail.sender:
            log.warning(f"{mail.id}: undeliverable report dropped: no report is made about a report")
        accepted = all(r.outcome == "accepted" for r in results)
        await self.store.write(functools.partial(mailout_store.finish, mail_id=mail.id, accepted=accepted))
        log.info(f"{mail.id}: removed")
