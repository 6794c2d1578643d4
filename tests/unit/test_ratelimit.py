from __future__ import annotations

from mailsms.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_one_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == 0.5
    assert limiter.acquire("b") == 0.0  # every address has its own bucket
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_refill_never_exceeds_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10, 2, clock=clock)
    limiter.acquire("a")
    clock.now += 3600
    assert [limiter.acquire("a") > 0 for _ in range(3)] == [False, False, True]


def test_rate_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(0, 1, clock=Clock())
    assert all(limiter.acquire("a") == 0.0 for _ in range(1000))


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert RateLimiter.retry_after(0.01) == "1"
    assert RateLimiter.retry_after(2.2) == "3"


def test_memory_stays_bounded_under_a_flood_of_addresses() -> None:
    clock = Clock()
    limiter = RateLimiter(1, 1, clock=clock, max_keys=100)
    for n in range(10_000):
        limiter.acquire(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._buckets) <= 100
