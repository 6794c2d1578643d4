"""The durable mail-out queue: mail that mailsms itself sends (reports, replies), in the queue's database.

A row is committed before anything is sent and deleted only once every
recipient has been accepted (or refused for good); a crash in between sends
the mail again, as any MTA would.  ``recipients`` holds those still to do.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from mailsms.store.conn import PG_NOW, Conn

QUEUED = "queued"


@dataclass(frozen=True)
class NewMail:
    """One mail to send: envelope and the whole message (CRLF line ends)."""

    id: str
    created: float
    sender: str  # "" for the null reverse-path (reports)
    recipients: tuple[str, ...]
    message: bytes
    origin: str = ""  # what made it, for the log: "failed report for QID", "reply to +1555..."


@dataclass(frozen=True)
class QueuedMail:
    id: str
    created: float
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    attempts: int
    next_attempt: float
    origin: str


def insert(conn: Conn, mail: NewMail) -> None:
    """Add ``mail`` to the mail-out queue (inside the caller's transaction), due at once."""
    conn.execute(
        "INSERT INTO mailout (id, created, sender, recipients, message, state, attempts, next_attempt, reason,"
        " origin, updated) VALUES (?,?,?,?,?,?,0,?,'',?,?)",
        (mail.id, mail.created, mail.sender, json.dumps(list(mail.recipients)), mail.message, QUEUED,
         mail.created, mail.origin, mail.created),
    )  # fmt: skip


_COLUMNS = "id, created, sender, recipients, message, attempts, next_attempt, origin"


def due(conn: Conn, now: float, limit: int, exclude: Sequence[str] = ()) -> list[QueuedMail]:
    """Mail due by ``now``, oldest attempt first, without those in ``exclude`` (in flight)."""
    marks = ",".join("?" for _ in exclude)
    skip = f" AND id NOT IN ({marks})" if exclude else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM mailout WHERE state = 'queued' AND next_attempt <= ?{skip}"
        " ORDER BY next_attempt LIMIT ?",
        (now, *exclude, limit),
    ).fetchall()
    return [_queued(r) for r in rows]


def claim(
    conn: Conn, now: float, limit: int, exclude: Sequence[str] = (), *, node: str, lease: float
) -> list[QueuedMail]:
    """Several nodes share the queue: like :func:`due`, but each mail is claimed for ``node`` until
    ``now + lease`` (rows another node is claiming are skipped), so that one node sends it."""
    marks = ",".join("?" for _ in exclude)
    skip = f" AND id NOT IN ({marks})" if exclude else ""
    rows = conn.execute(
        f"UPDATE mailout SET lease_node = ?, lease_until = {PG_NOW} + ? WHERE id IN (SELECT id FROM mailout"
        f" WHERE state = 'queued' AND next_attempt <= ?{skip} AND (lease_until IS NULL OR lease_until <= {PG_NOW}"
        f" OR lease_node = ?) ORDER BY next_attempt LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING {_COLUMNS}",
        (node, lease, now, *exclude, node, limit),
    ).fetchall()
    return sorted((_queued(r) for r in rows), key=lambda m: m.next_attempt)


def renew(conn: Conn, mail_ids: Sequence[str], *, node: str, lease: float) -> None:
    """Keep ``node``'s claim on the mail it is still sending (several nodes)."""
    if mail_ids:
        conn.execute(
            f"UPDATE mailout SET lease_until = {PG_NOW} + ? WHERE lease_node = ? AND id = ANY(?)",
            (lease, node, list(mail_ids)),
        )


def _queued(r: Sequence[Any]) -> QueuedMail:
    return QueuedMail(r[0], float(r[1]), r[2], tuple(json.loads(r[3])), bytes(r[4]), int(r[5]), float(r[6]), r[7] or "")


def next_due_time(conn: Conn, after: float) -> float | None:
    """The earliest next attempt later than ``after`` (what is due already is in flight or waits for room)."""
    row = conn.execute(
        "SELECT MIN(next_attempt) FROM mailout WHERE state = 'queued' AND next_attempt > ?", (after,)
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def pending(conn: Conn) -> list[QueuedMail]:
    """Every mail still queued (tests and the queue tools)."""
    return due(conn, float("inf"), 1_000_000)


# -- operations run by the writer ---------------------------------------------------------------


def finish(conn: Conn, mail_id: str, accepted: bool = True) -> None:
    """Every recipient is done: the mail leaves the queue, and an SMS it carried is
    ``delivered`` (``accepted``) or ``undeliverable``, in the same transaction."""
    conn.execute(
        "UPDATE inbound SET state = ? WHERE mail_id = ? AND state = 'mailed'",
        ("delivered" if accepted else "undeliverable", mail_id),
    )
    conn.execute("DELETE FROM mailout WHERE id = ?", (mail_id,))


def retry(conn: Conn, mail_id: str, *, recipients: Sequence[str], next_attempt: float, reason: str, now: float) -> None:
    """Try ``recipients`` (those not yet done) again at ``next_attempt``."""
    conn.execute(
        "UPDATE mailout SET recipients = ?, attempts = attempts + 1, next_attempt = ?, reason = ?, updated = ?"
        " WHERE id = ?",
        (json.dumps(list(recipients)), next_attempt, reason, now, mail_id),
    )


def create_mailout_schema(db: sqlite_utils.Database, conn: sqlite3.Connection) -> None:
    """Schema version 3, mail-out: the ``mailout`` table and its due index."""
    db.table("mailout").create(
        {
            "id": str, "created": float, "sender": str, "recipients": str, "message": bytes, "state": str,
            "attempts": int, "next_attempt": float, "reason": str, "origin": str, "updated": float,
        },
        pk="id",
        not_null={"id", "created", "sender", "recipients", "message", "state", "next_attempt"},
        if_not_exists=True,
    )  # fmt: skip
    conn.execute("CREATE INDEX IF NOT EXISTS mailout_due ON mailout(next_attempt) WHERE state = 'queued'")
