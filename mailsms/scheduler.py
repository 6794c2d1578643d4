"""The scheduler: claims due messages from the queue and sends their parts.

It works from the queue only (never from a live SMTP session).  A part's
``sending`` state is committed before the transport is called; after a
crash, parts found in ``sending`` are settled with the transport's help or
retried once and flagged as possible duplicates.  Retries back off like
Postfix; an unexpected transport error puts the message on ``hold`` so it
never blocks the others.  On every pass the reporter sends the delivery
status notifications that are due (``mailsms.reporter``): the store records
each event in the same transaction as the state change that made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailsms.dispatch import GatewayPool, plain_pool
from mailsms.errors import InternalError, MailsmsError, QueueFull
from mailsms.log import event
from mailsms.metrics import Metrics
from mailsms.store import EXPIRED, FAILED, HOLD, PART_QUEUED, PART_SENDING, StoredMessage
from mailsms.store.queue import KEPT, EarlyReport, QueueStore
from transports.base import DeliveryReport, Outcome, OutgoingPart, OutgoingSms, PartResult, Transport

if TYPE_CHECKING:
    from mailsms.reporter import Reporter

log = logging.getLogger("mailsms.scheduler")

WAKE_GATHER = 0.01  # seconds a wake-up waits for others before the queue is looked at
ORPHAN_CHECK_INTERVAL = 60.0  # seconds between looks for messages of unconfigured gateways
STORE_RETRY = 1.0  # seconds before the next pass when the queue could not be read
NOT_STARTED_RETRY = 5.0  # at most this long before a message whose sending could not be committed is tried again


class _NotStarted(Exception):
    """The queue could not record ``sending`` (locked, full): no part went out."""


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


def gives_reports(transport: Transport | None) -> bool:
    """Whether a gateway sends delivery reports (a transport's ``delivery_reports``; False when it does not say).

    Without them, a part taken by the gateway is the last word on it: the
    sender who asked NOTIFY=SUCCESS hears "relayed" then.
    """
    return bool(getattr(transport, "delivery_reports", False))


@dataclass
class Scheduler:
    store: QueueStore
    transports: Mapping[str, Transport]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 4  # parallel submits per gateway
    clock: Callable[[], float] = time.time
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _busy: dict[str | None, set[str]] = field(default_factory=dict)  # in flight, by gateway (None: unconfigured)
    _stopping: bool = False
    _orphans_due: float = float("-inf")
    _released: list[str] = field(default_factory=list)  # landed since the last pass: their claims to give up
    _unrecorded: set[str] = field(default_factory=set)  # sent, but the outcome could not be committed
    # Makes the delivery status notifications that are due, on every pass (mailsms.reporter).
    reporter: Reporter | None = None
    # Targets, breakers, weights and rates (mailsms.dispatch); default: each transport its own target.
    pool: GatewayPool | None = None
    # Makes the fallback number's copy of a message (mailsms.fallback), on every pass.
    fallbacks: Callable[[float], None] | None = None
    metrics: Metrics = field(default_factory=Metrics)  # counters for /metrics (the daemon shares one)

    _plain: tuple[tuple[str, ...], GatewayPool] | None = None
    passes: int = 0  # looks at the queue so far, for tests that wait for one

    @property
    def gateways(self) -> GatewayPool:
        """The pool; without one configured, each transport is its own target (kept in step with them)."""
        if self.pool is not None:
            return self.pool
        ids = tuple(self.transports)
        if self._plain is None or self._plain[0] != ids:
            self._plain = (ids, plain_pool(ids, self.clock))
        return self._plain[1]

    def reconfigure(self, policy: RetryPolicy, concurrency: int, pool: GatewayPool) -> None:
        """A reloaded configuration: new retry rules, concurrency and gateway pool from the next pass
        (submits in flight finish under the limits they started with)."""
        self.policy, self.concurrency, self.pool = policy, concurrency, pool
        self._limits.clear()
        self.wake()

    def breaker_states(self) -> Mapping[str, str]:
        """Every gateway's circuit breaker: "closed", "open" or "half-open" (for metrics and /status)."""
        return self.gateways.states()

    def wake(self) -> None:
        """New mail was committed: look for due messages now."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.recover()
                break
            except (sqlite3.Error, QueueFull, InternalError) as exc:  # the queue is not reachable yet
                log.warning("scheduler: cannot settle parts left in sending yet (%s); trying again in %.0fs", exc,
                            STORE_RETRY)  # fmt: skip
                await asyncio.sleep(STORE_RETRY)
        keeper = asyncio.create_task(self._keep_claims(), name="keep-claims") if self.store.lease_seconds else None
        try:
            await self._passes()
        finally:
            if keeper is not None:
                keeper.cancel()

    async def _passes(self) -> None:
        while not self._stopping:
            now = self.clock()
            try:
                timeout = self._pass(now)
            except sqlite3.Error as exc:  # the queue cannot be read now (PostgreSQL restarting): never end the task
                log.warning("scheduler: cannot read the queue (%s); trying again in %.0fs", exc, STORE_RETRY)
                timeout = STORE_RETRY
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            if self._wake.is_set() and not self._stopping:
                # Woken by a commit: let the commits of the next few milliseconds join this
                # pass, so a busy listener costs one look at the queue per batch, not per mail.
                await asyncio.sleep(WAKE_GATHER)

    def _pass(self, now: float) -> float:
        """One look at the queue: start what is due, reports and fallbacks; how long to sleep after."""
        self._release_landed()
        self._claim_due(now)
        self.passes += 1
        if self.reporter is not None:
            self.reporter.sweep(now)
        if self.fallbacks is not None:
            self.fallbacks(now)
        return self._sleep_time(now)

    def _sleep_time(self, now: float) -> float:
        # What is due by ``now`` is in flight or waits for room, and a landing wakes us:
        # counting it (its state stays queued/deferred while in flight) would poll.
        next_due = self.store.next_due_time(after=now)
        longest = self.policy.queue_run_delay
        if self.store.lease_seconds:  # several nodes: look for claims that ran out (a node died)
            longest = min(longest, self.store.lease_seconds / 4)
        if next_due is None:
            return longest
        return min(next_due - now, longest)

    def _claim_due(self, now: float) -> None:
        """Start deliveries for due messages: per target (a gateway, a group, ``*``), never more
        in flight than twice what its usable members take at once, so that a gateway that
        hangs never holds up another.  A target whose every member has its circuit open
        claims nothing: its messages wait in the queue (a half-open member takes one probe)."""
        targets = self.gateways.targets()
        for target in targets:
            usable = [g for g in self.gateways.claimable(target) if g in self.transports]
            if usable:
                self._claim(now, target, 2 * sum(self._parallel(g) for g in usable), targets)
        # Messages for a target no longer configured (the configuration changed): claimed
        # only to be held.  That query cannot use the per-gateway index, so it runs at
        # start and then once a minute, not after every commit.
        if now >= self._orphans_due:
            self._orphans_due = now + ORPHAN_CHECK_INTERVAL
            self._claim(now, None, 2 * self.concurrency, targets)

    def _claim(self, now: float, gateway: str | None, limit: int, targets: tuple[str, ...]) -> None:
        busy = self._busy.get(gateway, set())
        room = limit - len(busy)
        if room <= 0:
            return  # a delivery that lands wakes us again
        claimed = self.store.claim(now, room, gateway, other_than=targets, exclude=tuple(self._in_flight))
        for message_id, message in self.store.load_many(claimed).items():
            task = asyncio.create_task(self._deliver_guarded(message), name=f"deliver-{message_id}")
            self._in_flight[message_id] = task
            self._busy.setdefault(gateway, set()).add(message_id)
            task.add_done_callback(functools.partial(self._landed, message_id, gateway))

    def _landed(self, message_id: str, gateway: str | None, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(message_id, None)
        self._busy.get(gateway, set()).discard(message_id)
        self._released.append(message_id)
        self._wake.set()  # room for the next due message

    def _release_landed(self) -> None:
        """Give up this node's claim on the messages that landed since the last pass (several nodes:
        a deferred one may be tried by any node when it is due again)."""
        if self._released:
            landed, self._released = self._released, []
            with contextlib.suppress(sqlite3.Error):  # the claims run out by themselves
                self.store.release(landed)

    async def _keep_claims(self) -> None:
        """Several nodes: renew the claim on every message in flight, three times per lease, so
        that no other node takes over a message this one is still sending."""
        interval = self.store.lease_seconds / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            in_flight = list(self._in_flight)
            try:
                held = self.store.renew(in_flight, self.clock())
                if held < len(in_flight):
                    log.warning("the claim on %d message(s) in flight ran out (this node stalled longer than a lease):"
                                " another node may send them as well", len(in_flight) - held)  # fmt: skip
            except sqlite3.Error as exc:
                log.warning("cannot renew the claim on %d message(s) in flight: %s", len(self._in_flight), exc)

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

    def _parallel(self, gateway: str) -> int:
        """Submits a gateway takes at once: its ``concurrency`` key, else its transport's own
        figure (a local spool batches its writes), else ``queue.concurrency``."""
        configured = self.gateways.concurrency(gateway)
        if configured > 0:
            return configured
        own = getattr(self.transports.get(gateway), "concurrency", None)
        return own if isinstance(own, int) and own > 0 else self.concurrency

    def _limit(self, gateway: str) -> asyncio.Semaphore:
        if gateway not in self._limits:
            self._limits[gateway] = asyncio.Semaphore(self._parallel(gateway))
        return self._limits[gateway]

    async def _deliver_guarded(self, message: StoredMessage) -> None:
        message_id = message.id
        try:
            await self.deliver(message)
        except asyncio.CancelledError:
            raise
        except _NotStarted as exc:
            # Nothing was sent and nothing changed (the queue is locked by another process, or
            # full): not a reason to hold the message; it is tried again, not at once.
            log.warning("%s: delivery not started: %s; the message stays queued", message_id, exc)
            await asyncio.sleep(min(self.policy.queue_run_delay, NOT_STARTED_RETRY))
        except (QueueFull, InternalError) as exc:
            # The gateway answered but the queue cannot record it now (its database is down): the parts
            # stay in ``sending``, and the next look settles them as after a crash.
            self._unrecorded.add(message_id)
            log.warning("%s: the outcome cannot be recorded now (%s); parts in sending are settled at the next"
                        " look", message_id, exc.reply())  # fmt: skip
            await asyncio.sleep(STORE_RETRY)
        except Exception as exc:
            log.exception("%s: transport raised unexpectedly; message put on hold", message_id)
            reason = f"held after an unexpected error: {type(exc).__name__}"
            try:
                await self.store.finish(message_id, HOLD, reason, "4.3.0", self.clock())
            except (QueueFull, InternalError):
                self._unrecorded.add(message_id)  # its parts in sending are settled at the next look
                return
            log.warning(event(message_id, to=message.number, relay=message.gateway, status="hold", reason=reason))

    async def _leave_to_node(self, message: StoredMessage) -> None:
        """Parts of ``message`` went through a gateway that another node talks to (``nodes``): the rest
        follow them there, so this node leaves it for a moment to that node."""
        if not any(p.state == PART_QUEUED for p in message.parts):
            return
        now = self.clock()
        wait = min(self.store.lease_seconds or self.policy.queue_run_delay, self.policy.queue_run_delay)
        reason = f"waits for the node that talks to gateway {message.via!r}"
        await self.store.defer(message.id, now + wait, reason, "4.4.1", now)
        log.info(event(message.id, to=message.number, relay=message.via, status="deferred", reason=reason))

    async def _hold(self, message: StoredMessage, reason: str) -> None:
        await self.store.finish(message.id, HOLD, reason, "4.3.5", self.clock())
        log.warning(event(message.id, to=message.number, relay=message.gateway, status="hold", reason=reason))

    async def _taken_over(self, message: StoredMessage) -> StoredMessage | None:
        """``message`` as this node may send it: parts in ``sending`` of a node whose claim ran out
        (it died while sending) settled as after a crash; None when another node must send it."""
        if any(p.state == PART_SENDING for p in message.parts):
            unrecorded = message.id in self._unrecorded
            self._unrecorded.discard(message.id)
            await self._recover_one(
                message,
                left="when its outcome could not be recorded" if unrecorded else "by a node whose claim ran out",
            )
            reloaded = self.store.load(message.id)
            if reloaded is None:
                return None
            message = reloaded
        if message.via and message.via not in self.transports and self.gateways.knows(message.via):
            await self._leave_to_node(message)
            return None
        return message

    async def deliver(self, message: StoredMessage) -> None:
        taken = await self._taken_over(message)
        if taken is None:
            return
        message = taken
        todo = {p.seq for p in message.parts if p.state == PART_QUEUED}
        if not todo:
            return
        pool = self.gateways
        plan = self._plan(message)
        if isinstance(plan, str):
            await self._hold(message, plan)
            return
        candidates, members = plan
        if not candidates:
            await self._wait_for_breaker(message, members)
            return
        tried: tuple[list[PartResult], str] | None = None  # the last gateway's answer, when one failed over
        for index, gateway in enumerate(candidates):
            if not pool.ready(gateway):
                continue
            try:
                results = await self._try(message, gateway, todo)
            except _NotStarted:
                if tried is not None:
                    await self._apply(message, *tried)  # the failed try before it is recorded (deferred)
                raise
            if results is None:  # stopping: not started; its parts stay queued for the next start
                if tried is not None:
                    await self._apply(message, *tried)
                return
            tried = (results, gateway)
            # Failover only when the gateway took nothing: a part it took is never sent elsewhere.
            nothing_taken = all(r.outcome is Outcome.TEMPORARY for r in results)
            if nothing_taken and any(pool.ready(g) for g in candidates[index + 1 :]):
                reason = results[0].reason if results else "no answer"
                log.info(event(message.id, to=message.number, relay=gateway, status="failover",
                               reason=f"{reason}; trying the next gateway of {message.gateway!r}"))  # fmt: skip
                continue
            await self._apply(message, results, gateway)
            return
        await self._wait_for_breaker(message, members)

    def _plan(self, message: StoredMessage) -> tuple[list[str], list[str]] | str:
        """The gateways to try for ``message`` now, in order, and every one that could take it;
        or why it must be held (a configuration matter)."""
        pool = self.gateways
        if message.via and any(p.state != PART_QUEUED for p in message.parts):
            # Parts already went through one gateway: the rest follow them there (one
            # concatenated SMS through one SMSC), never through another.
            if message.via not in self.transports:
                return f"gateway {message.via!r} is not configured"
            return ([message.via] if pool.ready(message.via) else []), [message.via]
        if not any(g in self.transports for g in pool.members(message.gateway)):
            return f"gateway {message.gateway!r} is not configured"
        if not pool.takes(message.gateway, message.number):
            return f"no gateway of {message.gateway!r} takes {message.number[:4]}... (prefixes)"
        members = list(pool.members(message.gateway))
        return [g for g in pool.candidates(message.gateway, message.number) if g in self.transports], members

    async def _try(self, message: StoredMessage, gateway: str, todo: set[int]) -> list[PartResult] | None:
        """One try through ``gateway``, its breaker told the outcome.  The probe of a half-open
        breaker is taken at once, before any wait, so that one message only probes it."""
        pool = self.gateways
        pool.start(gateway)
        healthy: bool | None = None  # None: never reached the gateway, the breaker learns nothing
        try:
            results = await self._submit(message, gateway, todo)
            if results is not None:
                healthy = bool(results) and all(r.outcome is not Outcome.TEMPORARY for r in results)
            return results
        except _NotStarted:
            raise
        except Exception:
            healthy = False  # the transport raised: as a failure for the breaker
            raise
        finally:
            pool.finished(gateway, healthy=healthy)

    async def _submit(self, message: StoredMessage, gateway: str, todo: set[int]) -> list[PartResult] | None:
        """Send ``todo`` through ``gateway`` (its concurrency and rate); ``sending`` and the gateway
        are committed first.  None: not started because the scheduler is stopping."""
        transport = self.transports[gateway]
        async with self._limit(gateway):
            if self._stopping:
                return None
            wait = self.gateways.rate_wait(gateway, len(todo))
            if wait > 0:
                await asyncio.sleep(wait)  # the gateway's rate (parts per second)
            try:
                await self.store.mark_sending(message.id, sorted(todo), self.clock(), via=gateway)
            except MailsmsError as exc:
                raise _NotStarted(f"cannot commit sending: {exc}") from exc
            return await transport.submit(outgoing(message, todo))

    async def _wait_for_breaker(self, message: StoredMessage, members: list[str]) -> None:
        """Every gateway that could take ``message`` has its circuit open: it waits, without
        an attempt counted, until the first of them lets a probe through."""
        now = self.clock()
        reopen = self.gateways.reopens_at(members)
        until = max(reopen, now + 1.0) if reopen is not None else now + self.policy.queue_run_delay
        reason = f"gateway {message.gateway!r} unavailable (circuit open)"
        await self.store.defer(message.id, until, reason, "4.4.1", now)
        log.info(event(message.id, to=message.number, relay=message.gateway, status="deferred", reason=reason))

    async def _apply(self, message: StoredMessage, results: list[PartResult], gateway: str) -> None:
        now = self.clock()
        delay = now - message.start
        submitted = [(r.seq, r.message_id) for r in results if r.outcome is Outcome.SUBMITTED]
        if submitted:
            relayed = not gives_reports(self.transports.get(gateway))
            early = await self.store.record_submitted(message.id, submitted, now, relayed=relayed)
            self.metrics.submitted(gateway, submitted, now)
            self._log_early(message, early, gateway)
        failure = next((r for r in results if r.outcome is not Outcome.SUBMITTED), None)
        done = len(submitted) + sum(1 for p in message.parts if p.state not in (PART_QUEUED, PART_SENDING))
        parts = f"{done}/{len(message.parts)}"
        if failure is None and len(results) < len([p for p in message.parts if p.state in (PART_QUEUED, PART_SENDING)]):
            failure = PartResult(seq=0, outcome=Outcome.TEMPORARY, reason="gateway returned fewer results than parts")
        if failure is None:
            ids = ", ".join(mid for _, mid in submitted if mid)
            log.info(
                event(message.id, to=message.number, relay=gateway, parts=parts, delay=delay, dsn="2.0.0",
                      status="sent", reason=f"gateway id {ids}" if ids else "submitted")
            )  # fmt: skip
            return
        if failure.outcome is Outcome.PERMANENT:
            dsn = failure.dsn or "5.0.0"
            await self.store.finish(message.id, FAILED, failure.reason, dsn, now)
            self.metrics.ended(gateway, message, len(submitted))
            log.info(event(message.id, to=message.number, relay=gateway, parts=parts, delay=delay, dsn=dsn,
                           status="bounced", reason=failure.reason))  # fmt: skip
            return
        if delay >= self.policy.maximal_queue_lifetime:
            reason = f"message expired after {delay / 60:.0f} minutes: {failure.reason}"
            await self.store.finish(message.id, EXPIRED, reason, "4.4.7", now)
            self.metrics.ended(gateway, message, len(submitted))
            log.info(event(message.id, to=message.number, relay=gateway, parts=parts, delay=delay,
                           dsn="4.4.7", status="expired", reason=reason))  # fmt: skip
            return
        dsn = failure.dsn or "4.0.0"
        next_attempt = now + self.policy.backoff(message.attempts + 1)
        await self.store.defer(message.id, next_attempt, failure.reason, dsn, now)
        log.info(event(message.id, to=message.number, relay=gateway, parts=parts, delay=delay, dsn=dsn,
                       status="deferred", reason=failure.reason))  # fmt: skip

    # -- crash recovery and reports ------------------------------------------------

    async def recover(self) -> None:
        """Settle parts left in ``sending`` by a crash (ARCHITECTURE.md, "Durable queue"), or by
        another node whose claim ran out (it died)."""
        for message_id in self.store.messages_with_sending_parts():
            if not self.store.take(message_id, self.clock()):
                continue  # another node has it (it is alive, or took it over first)
            message = self.store.load(message_id)
            if message is not None:
                await self._recover_one(message)

    async def _recover_one(self, message: StoredMessage, *, left: str = "") -> None:
        """Parts of ``message`` in ``sending`` that nobody is sending: found at the gateway, or sent again
        (flagged as a possible duplicate)."""
        message_id = message.id
        where = f"left in sending {left}" if left else "found in sending"
        sending = {p.seq for p in message.parts if p.state == PART_SENDING}
        gateway = message.via or message.gateway
        transport = self.transports.get(gateway)
        known: dict[int, str] = {}
        if transport is not None and transport.detects_duplicates:
            found = await transport.already_submitted(outgoing(message, sending))
            known = {seq: gateway_id for seq, gateway_id in found.items() if seq in sending}
        now = self.clock()
        if known:
            await self.store.record_submitted(
                message_id, sorted(known.items()), now, relayed=not gives_reports(transport)
            )
        unknown = sorted(sending - known.keys())
        if not unknown:
            log.info(event(message_id, to=message.number, relay=gateway, status="recovered",
                           reason=f"parts {where} had reached the gateway"))  # fmt: skip
            return
        maybe_sent = transport is None or not transport.detects_duplicates
        await self.store.requeue_parts(message_id, unknown, possible_duplicate=maybe_sent, now=now)
        if maybe_sent:
            log.warning(
                event(message_id, to=message.number, relay=gateway, parts=f"{len(unknown)}",
                      status="possible duplicate",
                      reason=f"part {where}{'' if left else ' after a restart'} is sent again")
            )  # fmt: skip

    async def on_report(self, report: DeliveryReport) -> str | None:
        """A delivery report from a transport: mark the part delivered or failed; the message id, or None."""
        message_id = await self.record_report(report)
        if message_id is None:
            log.info("delivery report for unknown id %s from %s ignored", report.message_id, report.gateway_id)
        return message_id

    def _log_early(self, message: StoredMessage, early: list[EarlyReport], gateway: str) -> None:
        for report in early:
            self.metrics.reported(gateway, report.gateway_msgid, report.delivered, self.clock())
            log.info(
                event(message.id, to=message.number, relay=gateway, dsn=report.dsn_code,
                      status="delivered" if report.delivered else "bounced",
                      reason=report.reason or "delivery report (arrived before the submission was recorded)")
            )  # fmt: skip

    async def record_report(self, report: DeliveryReport) -> str | None:
        """``on_report`` without the log line for an unknown id (for callers that try again)."""
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
            return None
        if message_id == KEPT:
            log.info("delivery report for %s from %s kept until its submission is recorded", report.message_id,
                     report.gateway_id)  # fmt: skip
            return message_id
        self.metrics.reported(report.gateway_id, report.message_id, report.delivered, self.clock())
        status = "delivered" if report.delivered else "bounced"
        log.info(
            event(
                message_id, relay=report.gateway_id, dsn=dsn, status=status, reason=report.reason or "delivery report"
            )
        )
        return message_id
