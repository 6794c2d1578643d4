"""Flood protection: a token bucket per client address (pure; the clock is injected)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests a second per key, ``burst`` at once; ``rate`` 0 lets everything through."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until the next one."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """A Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait)))

    def _forget_idle(self, now: float) -> None:
        """Keep memory bounded: drop buckets that have filled up again (their keys lost nothing)."""
        if len(self._buckets) < self.max_keys:
            return
        refill = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= refill]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # a flood of distinct addresses: forget the oldest
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: self.max_keys // 2]:
                del self._buckets[key]
