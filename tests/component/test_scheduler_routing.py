"""The scheduler with several gateways on a fake clock: breakers, stickiness, prefixes, order of trial."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.config import GatewayConfig, GroupConfig
from mailsms.dispatch import GatewayPool
from mailsms.routing import Router
from mailsms.scheduler import RetryPolicy
from mailsms.store import DEFERRED, HOLD, PART_QUEUED, PART_SUBMITTED, SUBMITTED
from tests.support.scheduling import FakeClock, Queue, TransportDouble, clock_ahead, new_message, opened
from transports.base import Outcome, OutgoingSms, PartResult

NUMBER = "+15550000001"
POLICY = RetryPolicy(minimal_backoff_time=300.0, maximal_backoff_time=300.0, maximal_queue_lifetime=86400.0)


@pytest.fixture
def clock() -> FakeClock:
    return clock_ahead()


@pytest.fixture
async def queue(tmp_path: Path, store_url: str, clock: FakeClock) -> AsyncIterator[Queue]:
    async with opened(tmp_path / "var", clock, POLICY, store_url=store_url) as made:
        yield made


def pool(clock: FakeClock, *gateways: GatewayConfig, groups: tuple[GroupConfig, ...] = ()) -> GatewayPool:
    return GatewayPool(Router((), gateways, groups), clock=clock)


def gateway(gateway_id: str, **keys: object) -> GatewayConfig:
    return GatewayConfig(id=gateway_id, type="fake", options=None, **keys)  # type: ignore[arg-type]


@dataclasses.dataclass
class FirstPartOnly(TransportDouble):
    """Takes the first part it is given, then fails the next one for now (a gateway that went away mid-message)."""

    broken: bool = True

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        self.submits.append(sms)
        if not self.broken:
            return await self.inner.submit(sms)
        first = dataclasses.replace(sms, parts=sms.parts[:1])
        results = await self.inner.submit(first)
        if len(sms.parts) > 1:
            results.append(PartResult(sms.parts[1].seq, Outcome.TEMPORARY, "connection lost"))
        return results


async def test_parts_a_gateway_took_keep_the_rest_of_the_message_with_it(queue: Queue, clock: FakeClock) -> None:
    a = FirstPartOnly(queue.new_fake("a"))
    b = TransportDouble(queue.new_fake("b"))
    await queue.add(a)
    await queue.add(b)
    queue.scheduler.pool = pool(
        clock, gateway("a", breaker_threshold=1, breaker_reset=1000.0), gateway("b"),
        groups=(GroupConfig(id="g", gateways=("a", "b"), balance="priority"),),
    )  # fmt: skip
    queue.start()
    await queue.enqueue("Q1", NUMBER, gateway="g", parts=3)
    message = await queue.wait_state("Q1", DEFERRED)
    assert message.via == "a"
    assert [p.state for p in message.parts] == [PART_SUBMITTED, PART_QUEUED, PART_QUEUED]
    assert queue.scheduler.breaker_states()["a"] == "open"
    # Due again, but a's circuit is open: the rest waits for a, never goes to b.
    clock.advance(301)
    queue.scheduler.wake()
    await queue.wait_until(lambda: "circuit open" in queue.message("Q1").reason, "Q1 waits for a")
    assert queue.message("Q1").attempts == 1
    assert b.submits == []
    assert "circuit open" in queue.message("Q1").reason
    # a comes back after breaker_reset: the probe carries the remaining parts.
    a.broken = False
    clock.advance(1000)
    queue.scheduler.wake()
    await queue.wait_state("Q1", SUBMITTED)
    assert [[p.seq for p in sms.parts] for sms in a.submits] == [[1, 2, 3], [2, 3]]
    assert b.submits == []
    assert queue.scheduler.breaker_states()["a"] == "closed"


async def test_an_open_breaker_stops_trying_a_pinned_gateway_until_its_reset(queue: Queue, clock: FakeClock) -> None:
    down = TransportDouble(queue.new_fake("a", temporary_fail="."))
    await queue.add(down)
    queue.scheduler.pool = pool(clock, gateway("a", breaker_threshold=2, breaker_reset=600.0))
    queue.start()
    for qid in ("Q1", "Q2"):
        await queue.enqueue(qid, NUMBER, gateway="a")
        await queue.wait_attempts(qid, 1, DEFERRED)
    assert queue.scheduler.breaker_states()["a"] == "open"
    await queue.enqueue("Q3", NUMBER, gateway="a")
    clock.advance(301)  # Q1 and Q2 are due again, Q3 is new: none is tried while the circuit is open
    queue.scheduler.wake()
    await queue.scheduler_pass()
    assert len(down.submits) == 2
    assert queue.state("Q3") == "queued"
    clock.advance(300)  # past breaker_reset: one probe, which fails and opens the circuit again
    queue.scheduler.wake()
    await queue.wait_until(lambda: len(down.submits) == 3, "one probe")
    await queue.scheduler_pass()
    assert len(down.submits) == 3
    assert queue.scheduler.breaker_states()["a"] == "open"


async def test_no_member_taking_the_number_holds_the_message(queue: Queue, clock: FakeClock) -> None:
    await queue.fake("uk")
    queue.scheduler.pool = pool(clock, gateway("uk", prefixes=("+44",)))
    queue.start()
    await queue.enqueue("Q1", NUMBER, gateway="*")
    message = await queue.wait_state("Q1", HOLD)
    assert "takes" in message.reason
    assert queue.sent() == []


async def test_a_temporary_failure_fails_over_at_once_within_a_group(queue: Queue, clock: FakeClock) -> None:
    a = TransportDouble(queue.new_fake("a", temporary_fail="."))
    await queue.add(a)
    await queue.fake("b")
    queue.scheduler.pool = pool(
        clock, gateway("a"), gateway("b"), groups=(GroupConfig(id="g", gateways=("a", "b"), balance="priority"),)
    )
    queue.start()
    await queue.enqueue("Q1", NUMBER, gateway="g", parts=2)
    message = await queue.wait_state("Q1", SUBMITTED)
    assert message.via == "b"
    assert message.attempts == 2  # one try at a, one at b, no backoff between them
    assert [(r["gateway"], r["seq"]) for r in queue.sent()] == [("b", 1), ("b", 2)]


async def test_a_scheduled_send_waits_until_the_clock_reaches_it(queue: Queue, clock: FakeClock) -> None:
    await queue.fake("fake")
    queue.start()
    scheduled = dataclasses.replace(new_message("Q1", NUMBER, clock.now), not_before=clock.now + 3600)
    await queue.store.enqueue([scheduled, new_message("Q2", NUMBER, clock.now)])
    queue.scheduler.wake()
    await queue.wait_state("Q2", SUBMITTED)
    await queue.scheduler_pass()
    assert queue.state("Q1") == "queued"
    assert [r["queue_id"] for r in queue.sent()] == ["Q2"]
    clock.advance(3599)
    queue.scheduler.wake()
    await queue.scheduler_pass()
    assert queue.state("Q1") == "queued"
    clock.advance(1)
    queue.scheduler.wake()
    message = await queue.wait_state("Q1", SUBMITTED)
    assert message.start == message.not_before  # its time in the queue counts from then


async def test_a_gateway_rate_spaces_its_submits(queue: Queue, clock: FakeClock) -> None:
    await queue.fake("a")
    queue.scheduler.pool = pool(clock, gateway("a", rate=10.0))  # a burst of 10, then 10 parts a second
    queue.start()
    started = time.monotonic()
    for n in range(30):
        await queue.enqueue(f"Q{n:02}", NUMBER, gateway="a")
    await queue.wait_until(lambda: len(queue.sent()) == 30, "all 30 sent")
    # The last 20 parts waited for tokens: two seconds at least (a lower bound; unpaced, this takes ~0.2 s).
    assert time.monotonic() - started >= 1.9
