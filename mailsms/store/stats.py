"""Counters for ``mailsms stats``: read-only queries on the queue's ``message`` and ``part`` tables.

Each message counts on the day it was stored (UTC) and for the gateway that
took it (for a message never handed to one: its routing target, ``*`` for
any gateway), so
a day's row reads as "of what arrived that day through that gateway, this
much was sent, delivered, failed or expired by now".  ``sent`` means every
part was handed to the gateway (states submitted and delivered, or failed
by a delivery report: every part has the gateway's id); a message still
waiting counts only as stored.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailsms.store.conn import POSTGRESQL, Conn, dialect

COUNTERS = ("stored", "sent", "delivered", "failed", "expired")


@dataclass(frozen=True)
class Counts:
    """The counters of one day and gateway, or of a whole period."""

    stored: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    expired: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class DayRow:
    date: str  # YYYY-MM-DD, UTC
    gateway: str
    counts: Counts


def first_day(now: float, days: int) -> float:
    """The start (UTC midnight) of the first of the last ``days`` days, today included."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=days - 1)).timestamp()


def totals(rows: list[DayRow]) -> Counts:
    result = Counts()
    for row in rows:
        result += row.counts
    return result


def open_read_only(path: Path) -> sqlite3.Connection | None:
    """A connection that can neither create nor change the queue; None when there is no queue file."""
    if not path.is_file():
        return None
    # mode=rw, not ro: a reader of a WAL database needs the -shm file, which ro cannot create.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA query_only=ON")
    return conn


def _gateway_column(conn: Conn) -> str:
    """The gateway that took the message when the schema records it (``via``), else the routed one."""
    if dialect(conn) == POSTGRESQL:
        return "COALESCE(NULLIF(m.via, ''), m.gateway)"
    columns = {row[1] for row in conn.execute("PRAGMA table_info(message)")}
    if not columns:
        return ""
    return "COALESCE(NULLIF(m.via, ''), m.gateway)" if "via" in columns else "m.gateway"


def _day(conn: Conn) -> str:
    """The UTC day a message was stored, as YYYY-MM-DD."""
    if dialect(conn) == POSTGRESQL:
        return "to_char(to_timestamp(m.created) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return "date(m.created, 'unixepoch')"


def day_rows(conn: Conn, since: float) -> list[DayRow]:
    """Counters per day and gateway for messages stored at or after ``since``, oldest day first."""
    gateway = _gateway_column(conn)
    if not gateway:  # no queue table yet: nothing was ever stored
        return []
    query = f"""
        SELECT {_day(conn)} AS day, {gateway} AS gw,
            COUNT(*),
            SUM(CASE WHEN m.state IN ('submitted', 'delivered') OR (m.state = 'failed' AND NOT EXISTS (
                SELECT 1 FROM part p WHERE p.message_id = m.id AND p.gateway_msgid = '')) THEN 1 ELSE 0 END),
            SUM(CASE WHEN m.state = 'delivered' THEN 1 ELSE 0 END),
            SUM(CASE WHEN m.state = 'failed' THEN 1 ELSE 0 END),
            SUM(CASE WHEN m.state = 'expired' THEN 1 ELSE 0 END)
        FROM message m WHERE m.created >= ?
        GROUP BY day, gw ORDER BY day, gw
    """  # gateway is one of two fixed expressions
    return [
        DayRow(str(day), str(gw), Counts(*(int(n or 0) for n in numbers)))
        for day, gw, *numbers in conn.execute(query, (since,)).fetchall()
    ]
