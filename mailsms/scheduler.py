"""The scheduler: claims due messages from the queue and sends their parts.

It works from the queue only (never from a live SMTP session).  A part's
``sending`` state is committed before the transport is called; after a
crash, parts found in ``sending`` are settled with the transport's help or
retried once and flagged as possible duplicates.  Retries back off like
Postfix; an unexpected transport error puts the message on ``hold`` so it
never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mailsms.log import event
from mailsms.store import EXPIRED, FAILED, HOLD, PART_QUEUED, PART_SENDING, StoredMessage
from mailsms.store.sqlite import SqliteStore
from transports.base import DeliveryReport, Outcome, OutgoingPart, OutgoingSms, PartResult, Transport

log = logging.getLogger("mailsms.scheduler")


@dataclass(frozen=True)
class RetryPolicy:
    """Postfix's names and meanings."""

    minimal_backoff_time: float = 300.0
    maximal_backoff_time: float = 4000.0
    maximal_queue_lifetime: float = 7200 * 60.0
    queue_run_delay: float = 1.0  # how often due messages are looked for when nothing wakes us

    def backoff(self, attempts: int) -> float:
        """Double from minimal_backoff_time up to maximal_backoff_time."""
        step = self.minimal_backoff_time * float(2 ** max(attempts - 1, 0))
        return min(max(step, self.minimal_backoff_time), self.maximal_backoff_time)


def outgoing(message: StoredMessage, seqs: set[int]) -> OutgoingSms:
    """The transport's view of a stored message: only the parts in ``seqs``."""
    params = json.loads(message.params or "{}")
    return OutgoingSms(
        queue_id=message.id,
        to=message.number,
        parts=tuple(
            OutgoingPart(seq=p.seq, text=p.text, udh=p.udh, data=p.data) for p in message.parts if p.seq in seqs
        ),
        total=len(message.parts),
        encoding=message.encoding,
        sender=str(params.get("sender", "")),
        pid=params.get("pid"),
        dcs=params.get("dcs"),
        flash=bool(params.get("flash", False)),
        values=tuple(params.get("value", ())),
        possible_duplicate=message.possible_duplicate,
    )


@dataclass
class Scheduler:
    store: SqliteStore
    transports: Mapping[str, Transport]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 4  # parallel submits per gateway
    clock: Callable[[], float] = time.time
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _stopping: bool = False

    def wake(self) -> None:
        """New mail was committed: look for due messages now."""
        self._wake.set()

    async def run(self) -> None:
        await self.recover()
        while not self._stopping:
            self._claim_due()
            timeout = self._sleep_time()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _sleep_time(self) -> float:
        next_due = self.store.next_due_time()
        if next_due is None:
            return self.policy.queue_run_delay
        return min(max(next_due - self.clock(), 0.0), self.policy.queue_run_delay)

    def _claim_due(self) -> None:
        limit = self.concurrency * max(len(self.transports), 1) * 2
        for message_id in self.store.due(self.clock(), limit + len(self._in_flight)):
            if message_id in self._in_flight:
                continue
            task = asyncio.create_task(self._deliver_guarded(message_id), name=f"deliver-{message_id}")
            self._in_flight[message_id] = task
            task.add_done_callback(functools.partial(self._landed, message_id))

    def _landed(self, message_id: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(message_id, None)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop claiming; let messages in flight finish (up to ``grace`` seconds), then cancel."""
        self._stopping = True
        self._wake.set()
        pending = list(self._in_flight.values())
        if pending:
            log.info("stopping: waiting for %d message(s) in flight", len(pending))
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)

    # -- one message ------------------------------------------------------------

    def _limit(self, gateway: str) -> asyncio.Semaphore:
        if gateway not in self._limits:
            self._limits[gateway] = asyncio.Semaphore(self.concurrency)
        return self._limits[gateway]

    async def _deliver_guarded(self, message_id: str) -> None:
        message = self.store.load(message_id)
        if message is None:
            return
        try:
            async with self._limit(message.gateway):
                await self.deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s: transport raised unexpectedly; message put on hold", message_id)
            reason = f"held after an unexpected error: {type(exc).__name__}"
            await self.store.finish(message_id, HOLD, reason, "4.3.0", self.clock())
            log.warning(event(message_id, to=message.number, relay=message.gateway, status="hold", reason=reason))

    async def deliver(self, message: StoredMessage) -> None:
        transport = self.transports.get(message.gateway)
        if transport is None:
            reason = f"gateway {message.gateway!r} is not configured"
            await self.store.finish(message.id, HOLD, reason, "4.3.5", self.clock())
            log.warning(event(message.id, to=message.number, relay=message.gateway, status="hold", reason=reason))
            return
        todo = {p.seq for p in message.parts if p.state == PART_QUEUED}
        if not todo:
            return
        start = self.clock()
        await self.store.mark_sending(message.id, sorted(todo), start)
        results = await transport.submit(outgoing(message, todo))
        await self._apply(message, results, start)

    async def _apply(self, message: StoredMessage, results: list[PartResult], start: float) -> None:
        now = self.clock()
        delay = now - message.created
        submitted = [(r.seq, r.message_id) for r in results if r.outcome is Outcome.SUBMITTED]
        if submitted:
            await self.store.record_submitted(message.id, submitted, now)
        failure = next((r for r in results if r.outcome is not Outcome.SUBMITTED), None)
        done = len(submitted) + sum(1 for p in message.parts if p.state not in (PART_QUEUED, PART_SENDING))
        parts = f"{done}/{len(message.parts)}"
        if failure is None and len(results) < len([p for p in message.parts if p.state in (PART_QUEUED, PART_SENDING)]):
            failure = PartResult(seq=0, outcome=Outcome.TEMPORARY, reason="gateway returned fewer results than parts")
        if failure is None:
            ids = ", ".join(mid for _, mid in submitted if mid)
            log.info(
                event(message.id, to=message.number, relay=message.gateway, parts=parts, delay=delay, dsn="2.0.0",
                      status="sent", reason=f"gateway id {ids}" if ids else "submitted")
            )  # fmt: skip
            return
        if failure.outcome is Outcome.PERMANENT:
            dsn = failure.dsn or "5.0.0"
            await self.store.finish(message.id, FAILED, failure.reason, dsn, now)
            log.info(event(message.id, to=message.number, relay=message.gateway, parts=parts, delay=delay, dsn=dsn,
                           status="bounced", reason=failure.reason))  # fmt: skip
            return
        if delay >= self.policy.maximal_queue_lifetime:
            reason = f"message expired after {delay / 60:.0f} minutes: {failure.reason}"
            await self.store.finish(message.id, EXPIRED, reason, "4.4.7", now)
            log.info(event(message.id, to=message.number, relay=message.gateway, parts=parts, delay=delay,
                           dsn="4.4.7", status="expired", reason=reason))  # fmt: skip
            return
        dsn = failure.dsn or "4.0.0"
        next_attempt = now + self.policy.backoff(message.attempts + 1)
        await self.store.defer(message.id, next_attempt, failure.reason, dsn, now)
        log.info(event(message.id, to=message.number, relay=message.gateway, parts=parts, delay=delay, dsn=dsn,
                       status="deferred", reason=failure.reason))  # fmt: skip

    # -- crash recovery and reports ------------------------------------------------

    async def recover(self) -> None:
        """Settle parts left in ``sending`` by a crash (ARCHITECTURE.md, "Durable queue")."""
        for message_id in self.store.messages_with_sending_parts():
            message = self.store.load(message_id)
            if message is None:
                continue
            sending = {p.seq for p in message.parts if p.state == PART_SENDING}
            transport = self.transports.get(message.gateway)
            known: set[int] = set()
            if transport is not None and transport.detects_duplicates:
                known = await transport.already_submitted(outgoing(message, sending)) & sending
            now = self.clock()
            if known:
                await self.store.record_submitted(message_id, [(seq, message_id) for seq in sorted(known)], now)
            unknown = sorted(sending - known)
            if not unknown:
                log.info(event(message_id, to=message.number, relay=message.gateway, status="recovered",
                               reason="parts found in sending had reached the gateway"))  # fmt: skip
                continue
            maybe_sent = transport is None or not transport.detects_duplicates
            await self.store.requeue_parts(message_id, unknown, possible_duplicate=maybe_sent, now=now)
            if maybe_sent:
                log.warning(
                    event(message_id, to=message.number, relay=message.gateway, parts=f"{len(unknown)}",
                          status="possible duplicate", reason="part found in sending after a restart is sent again")
                )  # fmt: skip

    async def on_report(self, report: DeliveryReport) -> None:
        """A delivery report from a transport: mark the part delivered or failed."""
        dsn = report.dsn or ("2.0.0" if report.delivered else "5.0.0")
        message_id = await self.store.record_report(
            report.gateway_id,
            report.message_id,
            delivered=report.delivered,
            reason=report.reason,
            dsn_code=dsn,
            now=self.clock(),
        )
        if message_id is None:
            log.info("delivery report for unknown id %s from %s ignored", report.message_id, report.gateway_id)
            return
        status = "delivered" if report.delivered else "bounced"
        log.info(
            event(
                message_id, relay=report.gateway_id, dsn=dsn, status=status, reason=report.reason or "delivery report"
            )
        )
