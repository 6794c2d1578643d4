"""A real queue, real transports and a scheduler on a fake clock: the common scheduler test in three lines."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailsms.scheduler import RetryPolicy, Scheduler
from mailsms.store import NewMessage, NewPart, StoredMessage
from mailsms.store.engines import open_store
from mailsms.store.queue import QueueStore
from tests.support.wait import async_wait_until
from transports import fake
from transports.base import DeliveryReport, OutgoingSms, PartResult, Transport, TransportContext

WAIT = 3.0  # seconds: every condition here holds within milliseconds when the code is right


@dataclass
class FakeClock:
    """The scheduler's ``clock``: moves only when a test says so, and counts how often it is read."""

    now: float
    calls: int = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def clock_ahead() -> FakeClock:
    """A fake clock a day ahead of the real one: ``queue retry`` stamps next_attempt with
    time.time(), which must then be due."""
    return FakeClock(float(int(time.time())) + 86400.0)


def concatenation_udh(reference: int, total: int, seq: int) -> bytes:
    """The 8-bit concatenation UDH of part ``seq`` of ``total``; empty for a single part."""
    return bytes([5, 0, 3, reference, total, seq]) if total > 1 else b""


def new_message(qid: str, number: str, created: float, *, gateway: str = "fake", parts: int = 1) -> NewMessage:
    """What ingest would commit for one recipient: ``parts`` GSM parts "part 1", "part 2", ..."""
    texts = [f"part {seq}" for seq in range(1, parts + 1)]
    return NewMessage(
        id=qid,
        created=created,
        sender="alice@example.com",
        recipient=f'"sms:{number}"@sms.example.test',
        number=number,
        gateway=gateway,
        encoding="gsm7",
        text="".join(texts),
        parts=tuple(NewPart(seq, text, concatenation_udh(0x7F, parts, seq)) for seq, text in enumerate(texts, 1)),
    )


@dataclass
class TransportDouble:
    """A transport wrapping a real one: records every submit, can raise or forget what it sent.

    ``explode_for`` is a regex searched in the number: a match makes ``submit`` raise
    like a buggy gateway library.  ``detects_duplicates=False`` makes it a gateway
    that cannot tell after a restart what reached it (most HTTP APIs).
    """

    inner: Transport
    explode_for: str = ""
    can_detect_duplicates: bool = True
    submits: list[OutgoingSms] = field(default_factory=list)
    gateway_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.gateway_id = self.inner.gateway_id

    @property
    def detects_duplicates(self) -> bool:
        return self.can_detect_duplicates and self.inner.detects_duplicates

    async def start(self) -> None:
        await self.inner.start()

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        self.submits.append(sms)
        if self.explode_for and re.search(self.explode_for, sms.to):
            raise RuntimeError(f"gateway library bug for {sms.to}")
        return await self.inner.submit(sms)

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        if not self.can_detect_duplicates:
            return {}
        return await self.inner.already_submitted(sms)

    async def close(self) -> None:
        await self.inner.close()


class Queue:
    """A state directory with its queue (``store_url``: SQLite in the state directory, or a
    PostgreSQL database), transports and one scheduler reading ``clock``.

    ``transports`` may change between schedulers (as a configuration would);
    ``restart()`` reopens the store and builds a fresh scheduler, as a new process would.
    """

    def __init__(
        self, state_dir: Path, clock: FakeClock, policy: RetryPolicy, concurrency: int = 4, *, store_url: str = ""
    ) -> None:
        self.state_dir = state_dir
        self.store_url = store_url
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.clock = clock
        self.policy = policy
        self.concurrency = concurrency
        self.store = self._open_store()
        self.transports: dict[str, Transport] = {}
        self.scheduler = self._scheduler()
        self._run: asyncio.Task[None] | None = None
        self._opened: list[Transport] = []

    def _open_store(self) -> QueueStore:
        return open_store(self.store_url, self.state_dir, node="test")

    def _scheduler(self) -> Scheduler:
        return Scheduler(self.store, self.transports, self.policy, concurrency=self.concurrency, clock=self.clock)

    # -- gateways ---------------------------------------------------------------

    async def report_sink(self, report: DeliveryReport) -> None:
        """Delivery reports go to whichever scheduler is current, as the daemon's sink does."""
        await self.scheduler.on_report(report)

    def new_fake(self, gateway_id: str = "fake", **options: Any) -> fake.FakeTransport:
        """A fake gateway configured under ``gateway_id``, not started yet (for ``restart``)."""
        context = TransportContext(gateway_id, self.state_dir, self.report_sink)
        return fake.create(fake.Options(**options), context)

    async def fake(self, gateway_id: str = "fake", **options: Any) -> fake.FakeTransport:
        """A started fake gateway, configured under ``gateway_id`` for the current scheduler."""
        transport = self.new_fake(gateway_id, **options)
        await self.add(transport)
        return transport

    async def add(self, transport: Transport) -> None:
        await transport.start()
        self.transports[transport.gateway_id] = transport
        self._opened.append(transport)

    # -- messages ---------------------------------------------------------------

    async def enqueue(self, qid: str, number: str, *, gateway: str = "fake", parts: int = 1, age: float = 0.0) -> str:
        """Commit a message created ``age`` seconds before the fake now (so due at once) and wake the scheduler."""
        await self.store.enqueue([new_message(qid, number, self.clock.now - age, gateway=gateway, parts=parts)])
        self.scheduler.wake()
        return qid

    def message(self, qid: str) -> StoredMessage:
        message = self.store.load(qid)
        assert message is not None, f"{qid} is not in the queue"
        return message

    def state(self, qid: str) -> str:
        return self.message(qid).state

    def part_states(self, qid: str) -> list[str]:
        return [p.state for p in self.message(qid).parts]

    def sent(self) -> list[dict[str, Any]]:
        """What the fake gateways recorded, oldest first."""
        return fake.read_sent(self.state_dir)

    async def wait_state(self, qid: str, state: str, timeout: float = WAIT) -> StoredMessage:
        await async_wait_until(lambda: self.state(qid) == state, timeout=timeout, what=f"{qid} in state {state}")
        return self.message(qid)

    async def wait_parts(self, qid: str, states: Sequence[str], timeout: float = WAIT) -> None:
        await async_wait_until(
            lambda: self.part_states(qid) == list(states), timeout=timeout, what=f"parts of {qid} {list(states)}"
        )

    async def wait_attempts(self, qid: str, attempts: int, state: str, timeout: float = WAIT) -> StoredMessage:
        """Until the message was tried ``attempts`` times and the outcome is recorded as ``state``.

        The try is counted when its parts are marked ``sending``, before the outcome: the state of the try
        before is still there until no part is in ``sending``.
        """

        def recorded() -> bool:
            message = self.message(qid)
            parts = [p.state for p in message.parts]
            return (message.attempts, message.state) == (attempts, state) and "sending" not in parts

        await async_wait_until(
            recorded,
            timeout=timeout,
            what=f"{qid} tried {attempts} times and {state}",
        )
        return self.message(qid)

    # -- the scheduler ------------------------------------------------------------

    async def scheduler_pass(self) -> None:
        """Until the scheduler has looked at the queue once more, from start to end, and what it
        started then has landed."""
        seen = self.scheduler.passes
        await async_wait_until(lambda: self.scheduler.passes >= seen + 2, timeout=WAIT, what="a scheduler pass")
        in_flight = list(self.scheduler._in_flight.values())
        if in_flight:
            await asyncio.wait(in_flight, timeout=WAIT)

    async def wait_until(self, predicate: Callable[[], object], what: str) -> None:
        await async_wait_until(predicate, timeout=WAIT, what=what)

    def start(self) -> None:
        """Run the current scheduler (recovery first, then the queue loop) in a task."""
        assert self._run is None, "the scheduler is already running"
        self._run = asyncio.create_task(self.scheduler.run(), name="test-scheduler")

    async def stop(self, grace: float = WAIT) -> None:
        """Stop the scheduler; its loop must end by itself once ``stop`` returns."""
        await self.scheduler.stop(grace)
        if self._run is not None:
            await asyncio.wait_for(self._run, WAIT)
            self._run = None

    async def restart(self, transports: Sequence[Transport] = ()) -> None:
        """A new process: reopen the queue and build a fresh scheduler with ``transports`` (not started)."""
        assert self._run is None, "stop the scheduler first"
        self.store.close()
        self.store = self._open_store()
        self.transports.clear()
        for transport in transports:
            await self.add(transport)
        self.scheduler = self._scheduler()

    async def close(self) -> None:
        if self._run is not None:
            await self.stop(grace=0.0)
        for transport in self._opened:
            await transport.close()
        self.store.close()


@asynccontextmanager
async def opened(
    state_dir: Path, clock: FakeClock, policy: RetryPolicy, concurrency: int = 4, *, store_url: str = ""
) -> AsyncIterator[Queue]:
    """A ``Queue`` (on the store of ``store_url``) closed (scheduler, transports, store) when the block ends."""
    made = Queue(state_dir, clock, policy, concurrency=concurrency, store_url=store_url)
    try:
        yield made
    finally:
        await made.close()
