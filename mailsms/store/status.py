"""Read-only queries for ``/metrics`` and the status page (``mailsms.metrics``, ``mailsms.web_status``).

They select ids, numbers, senders, states and times only: never a
message's text, its headers or its parameters (where ``pass=`` could hide).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsms.store.conn import Conn

# Messages not yet taken by a gateway: the age of the oldest is what an operator watches.
WAITING_STATES = ("queued", "deferred", "hold")
SEARCH_LIMIT = 50


@dataclass(frozen=True)
class Found:
    """One message as the status page lists it."""

    id: str
    created: float
    sender: str
    number: str
    gateway: str
    state: str
    parts: int
    sent_parts: int
    attempts: int
    next_attempt: float
    dsn_code: str


def state_counts(conn: Conn) -> dict[str, int]:
    """Messages per state (one grouped query)."""
    return {str(state): int(n) for state, n in conn.execute("SELECT state, COUNT(*) FROM message GROUP BY state")}


def oldest_waiting(conn: Conn) -> float | None:
    """When the oldest message not yet taken by a gateway was queued, or None when there is none."""
    marks = ",".join("?" for _ in WAITING_STATES)
    row = conn.execute(f"SELECT MIN(created) FROM message WHERE state IN ({marks})", WAITING_STATES).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def search(conn: Conn, term: str, limit: int = SEARCH_LIMIT) -> list[Found]:
    """Messages whose queue id, number or envelope sender is ``term`` (the sender without case), newest first."""
    term = term.strip()
    if not term:
        return []
    rows = conn.execute(
        "SELECT m.id, m.created, m.sender, m.number, m.gateway, m.state,"
        " (SELECT COUNT(*) FROM part p WHERE p.message_id = m.id),"
        " (SELECT COUNT(*) FROM part p WHERE p.message_id = m.id AND p.state IN ('submitted','delivered')),"
        " m.attempts, m.next_attempt, m.dsn_code FROM message m"
        " WHERE m.id = ? OR m.number = ? OR LOWER(m.sender) = LOWER(?) ORDER BY m.created DESC LIMIT ?",
        (term.upper(), term, term, limit),
    ).fetchall()
    return [Found(*row) for row in rows]
