"""Breakers, token buckets and weighted picking, with an injected clock."""

from __future__ import annotations

from collections import Counter

import pytest

from mailsms.balance import Breaker, TokenBucket, WeightedPicker
from transports.registry import options_class

OPTIONS = options_class("outbox")()  # type: ignore[misc]


def state(breaker: Breaker) -> str:
    return breaker.state  # a call, so that mypy does not narrow the property between transitions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_at_threshold_consecutive_failures() -> None:
    clock = Clock()
    breaker = Breaker(3, 60.0, clock)
    breaker.failure()
    breaker.failure()
    assert state(breaker) == "closed" and breaker.allow()
    breaker.failure()
    assert state(breaker) == "open"
    assert not breaker.allow()
    assert breaker.reopens_at() == 1060.0


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = Breaker(2, 60.0, Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert state(breaker) == "closed"


def test_open_breaker_turns_half_open_after_reset_and_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = Breaker(1, 60.0, clock)
    breaker.failure()
    clock.now += 59.9
    assert (state(breaker), breaker.allow()) == ("open", False)
    clock.now += 0.1
    assert state(breaker) == "half-open"
    assert breaker.reopens_at() is None
    assert breaker.ready()
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    assert not breaker.ready()


def test_probe_success_closes() -> None:
    clock = Clock()
    breaker = Breaker(1, 60.0, clock)
    breaker.failure()
    clock.now += 60
    assert breaker.allow()
    breaker.success()
    assert state(breaker) == "closed"
    assert breaker.allow() and breaker.allow()


def test_probe_failure_reopens_and_restarts_the_reset_timer() -> None:
    clock = Clock()
    breaker = Breaker(5, 60.0, clock)
    for _ in range(5):
        breaker.failure()
    clock.now += 100
    assert breaker.allow()
    breaker.failure()
    assert state(breaker) == "open"
    assert breaker.reopens_at() == clock.now + 60
    clock.now += 60
    assert breaker.allow()


def test_threshold_zero_never_opens() -> None:
    breaker = Breaker(0, 60.0, Clock())
    for _ in range(100):
        breaker.failure()
    assert state(breaker) == "closed" and breaker.allow()


def test_token_bucket_starts_full_and_refills_at_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, clock)
    assert bucket.wait_time() == 0.0
    bucket.take()
    bucket.take()
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.now += 0.25
    assert bucket.wait_time() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.wait_time() == 0.0


def test_token_bucket_may_go_negative_and_later_waits_pay_it_back() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, clock)
    bucket.take(3)
    assert bucket.wait_time() == pytest.approx(3.0)
    clock.now += 3
    assert bucket.wait_time() == 0.0


def test_token_bucket_request_above_burst_waits_for_a_full_bucket() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, clock, burst=4)
    bucket.take(4)
    assert bucket.wait_time(10) == pytest.approx(2.0)


def test_token_bucket_never_fills_above_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, clock)
    clock.now += 1000
    bucket.take()
    assert bucket.wait_time() == pytest.approx(1.0)


def test_token_bucket_rate_zero_is_unlimited() -> None:
    bucket = TokenBucket(0.0, Clock())
    bucket.take(1000)
    assert bucket.wait_time(1000) == 0.0


def test_weighted_picker_3_to_1_over_10000_picks() -> None:
    picker = WeightedPicker({"a": 3, "b": 1})
    counts = Counter(picker.pick({"a", "b"}) for _ in range(10_000))
    assert abs(counts["a"] / 10_000 - 0.75) <= 0.01
    assert counts["a"] + counts["b"] == 10_000


def test_weighted_picker_spreads_smoothly() -> None:
    picker = WeightedPicker({"a": 3, "b": 1})
    assert [picker.pick({"a", "b"}) for _ in range(8)] == ["a", "a", "b", "a"] * 2


def test_a_skipped_members_share_goes_to_the_others() -> None:
    picker = WeightedPicker({"a": 2, "b": 1, "c": 1})
    counts = Counter(picker.pick({"a", "c"}) for _ in range(9000))
    assert counts == {"a": 6000, "c": 3000}
    counts = Counter(picker.pick({"a", "b", "c"}) for _ in range(8000))
    assert abs(counts["a"] / 8000 - 0.5) <= 0.01
    assert abs(counts["b"] / 8000 - 0.25) <= 0.01


def test_weighted_picker_weight_zero_is_a_backup_and_none_allowed_is_none() -> None:
    picker = WeightedPicker({"a": 1, "spare": 0})
    assert {picker.pick({"a", "spare"}) for _ in range(10)} == {"a"}
    assert picker.pick({"spare"}) == "spare"
    assert picker.pick(set()) is None
