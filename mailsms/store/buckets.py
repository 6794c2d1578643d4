"""Rate limits that several nodes share: token buckets kept in the queue's database (PostgreSQL).

The same interface as ``mailsms.policy.Buckets`` (``wait``, then ``take``),
each a single statement on the store's connection; the clock is the nodes'
wall clock (keep them in time with NTP).  Between one node's ``wait`` and its
``take`` another node may take the same tokens: under a burst from every
node at once a limit can be passed by what the other nodes took in that
instant, never by more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailsms.store.conn import Conn


@dataclass
class SharedBuckets:
    """Buckets of ``per_hour`` tokens named ``<name>:<key>``, refilled at ``per_hour`` an hour; 0: no limit."""

    conn: Conn
    name: str
    per_hour: int
    clock: Callable[[], float] = field(default=time.time)

    def wait(self, key: str, cost: int) -> float:
        """0.0 when ``cost`` tokens are there, else the seconds until they are (taking nothing)."""
        if self.per_hour <= 0 or cost <= 0:
            return 0.0
        row = self.conn.execute(
            "SELECT tokens, updated FROM rate_bucket WHERE key = ?", (f"{self.name}:{key}",)
        ).fetchone()
        if row is None:
            return 0.0
        tokens = min(float(self.per_hour), float(row[0]) + (self.clock() - float(row[1])) * self.per_hour / 3600.0)
        need = min(cost, self.per_hour)
        return 0.0 if tokens >= need else (need - tokens) * 3600.0 / self.per_hour

    def take(self, key: str, cost: int) -> None:
        if self.per_hour <= 0 or cost <= 0:
            return
        now, full = self.clock(), float(self.per_hour)
        self.conn.execute(
            "INSERT INTO rate_bucket (key, tokens, updated) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " tokens = LEAST(?, rate_bucket.tokens + (? - rate_bucket.updated) * ? / 3600.0) - ?, updated = ?",
            (f"{self.name}:{key}", full - cost, now, full, now, full, cost, now),
        )
