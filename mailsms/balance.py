"""Balancing primitives: circuit breakers, token buckets, weighted picking (pure; the clock is injected).

* :class:`Breaker` (one per gateway): ``breaker_threshold`` consecutive
  temporary failures open it; after ``breaker_reset`` seconds it is half-open
  and lets ONE probe through; the probe's success closes it, its failure
  opens it again for another ``breaker_reset``.  Threshold 0: never opens.
* :class:`TokenBucket` (one per gateway): ``rate`` parts a second with a
  burst of ``max(1, rate)``; rate 0 is unlimited.
* :class:`WeightedPicker` (one per weighted target): nginx's smooth weighted
  round-robin, deterministic; a member that is not allowed this time is
  skipped and its share goes to the others.  Members of weight 0 are only
  picked when no allowed member has a weight (a backup).

``mailsms.dispatch.GatewayPool`` puts them together: which members of a
target to try for a number, in what order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Literal

Clock = Callable[[], float]
BreakerState = Literal["closed", "open", "half-open"]


class Breaker:
    """A circuit breaker for one gateway."""

    def __init__(self, threshold: int, reset: float, clock: Clock) -> None:
        self.threshold = threshold
        self.reset = reset
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() >= self._opened_at + self.reset else "open"

    def ready(self) -> bool:
        """Whether :meth:`allow` would say yes, without taking the half-open probe."""
        state = self.state
        return state == "closed" or (state == "half-open" and not self._probing)

    def allow(self) -> bool:
        """Closed: True; open: False; half-open: True for one probe until its result is recorded."""
        if not self.ready():
            return False
        if self.state == "half-open":
            self._probing = True
        return True

    def release(self) -> None:
        """A probe that never reached the gateway (stopping, the queue locked): the slot is free again."""
        self._probing = False

    def success(self) -> None:
        """A send went through: the breaker closes and the failure count starts again."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        """A temporary failure: counts toward the threshold; a failed probe opens the breaker again."""
        if self.threshold <= 0:
            return
        state = self.state
        if state == "half-open":
            self._open()
        elif state == "closed":
            self._failures += 1
            if self._failures >= self.threshold:
                self._open()

    def reopens_at(self) -> float | None:
        """When an open breaker turns half-open; None unless it is open."""
        if self.state != "open" or self._opened_at is None:
            return None
        return self._opened_at + self.reset

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probing = False
        self._failures = 0


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; rate 0 is unlimited."""

    def __init__(self, rate: float, clock: Clock, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = now

    def wait_time(self, n: int = 1) -> float:
        """Seconds until ``n`` tokens are there (0: now); more than the burst waits for a full bucket."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        missing = min(float(n), self.burst) - self._tokens
        return missing / self.rate if missing > 0 else 0.0

    def take(self, n: int = 1) -> None:
        """Use ``n`` tokens; the bucket may go below zero, which later waits pay back."""
        if self.rate <= 0:
            return
        self._refill()
        self._tokens -= n


class WeightedPicker:
    """Smooth weighted round-robin (nginx): 3:1 gives a, a, b, a, ... evenly spread."""

    def __init__(self, weights: Mapping[str, int]) -> None:
        self._weights = dict(weights)
        self._current = dict.fromkeys(self._weights, 0)

    def pick(self, allowed: Collection[str]) -> str | None:
        """One of ``allowed`` (members not in ``weights`` count as weight 0); None when none is allowed."""
        live = [name for name in self._weights if name in allowed and self._weights[name] > 0]
        if not live:
            backups = [name for name in self._weights if name in allowed]
            backups += sorted(name for name in allowed if name not in self._weights)
            return backups[0] if backups else None
        total = 0
        best = live[0]
        for name in live:
            self._current[name] += self._weights[name]
            total += self._weights[name]
            if self._current[name] > self._current[best]:
                best = name
        self._current[best] -= total
        return best
