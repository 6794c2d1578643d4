"""Rate limits that several nodes share: token buckets kept in the queue's database (PostgreSQL).

The same interface as ``mailsms.policy.Buckets`` (``wait``, then ``take``),
each a single statement on the store's connection.  Refills are timed on the
database's clock, as the claims are, so the nodes' clocks need not agree.
Between one node's ``wait`` and its ``take`` another node may take the same
tokens: under a burst from every node at once a limit can be passed by what
the other nodes took in that instant, never by more.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsms.store.conn import PG_NOW, Conn


@dataclass
class SharedBuckets:
    """Buckets of ``per_hour`` tokens named ``<name>:<key>``, refilled at ``per_hour`` an hour; 0: no limit."""

    conn: Conn
    name: str
    per_hour: int

    def wait(self, key: str, cost: int) -> float:
        """0.0 when ``cost`` tokens are there, else the seconds until they are (taking nothing)."""
        if self.per_hour <= 0 or cost <= 0:
            return 0.0
        row = self.conn.execute(
            f"SELECT LEAST(?, tokens + ({PG_NOW} - updated) * ? / 3600.0) FROM rate_bucket WHERE key = ?",
            (self.per_hour, self.per_hour, f"{self.name}:{key}"),
        ).fetchone()
        if row is None:
            return 0.0
        tokens, need = float(row[0]), min(cost, self.per_hour)
        return 0.0 if tokens >= need else (need - tokens) * 3600.0 / self.per_hour

    def take(self, key: str, cost: int) -> None:
        if self.per_hour <= 0 or cost <= 0:
            return
        full = float(self.per_hour)
        self.conn.execute(
            f"INSERT INTO rate_bucket (key, tokens, updated) VALUES (?, ?, {PG_NOW}) ON CONFLICT (key) DO UPDATE SET"
            f" tokens = LEAST(?, rate_bucket.tokens + ({PG_NOW} - rate_bucket.updated) * ? / 3600.0) - ?,"
            f" updated = {PG_NOW}",
            (f"{self.name}:{key}", full - cost, full, full, cost),
        )
