"""The queue's side of delivery status notifications: which reports are due, and recording them.

Columns on ``message`` (schema version 3):

* ``notify``: the events the sender wants reports about (``mailsms.notify``
  bits), decided at ingest; 0 for the null sender, NOTIFY=NEVER, bounces.
* ``report_due``: events that happened and await their report.  The store
  operation that changes the state sets the bit in the same transaction
  (``due_bits``), so a crash never loses a report.
* ``reported``: events already reported.  The report's mail-out row is
  inserted in the same transaction that sets the bit, so a crash never
  sends a report twice.
* ``warn_at``: when a delay warning is due (NULL: never, or sent).
* ``mail_id``: the first queue id of a mail with several recipients ('' for
  one recipient), so that one report can list every recipient.

``original`` keeps the whole mail when the sender asked ``RET=FULL`` (up to
``queue.bounce_size_limit``), keyed by the mail's group key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from mailsms.notify import DELAYED
from mailsms.store.conn import Conn, for_update

# Parts of an SQL SET clause: add the report of ``bit`` unless already reported or not wanted.
_DUE = "report_due = report_due | (notify & ~reported & {bit})"


def due_bits(bit: int) -> str:
    """``report_due = ...`` for an UPDATE of ``message`` that makes the event ``bit`` happen."""
    return _DUE.format(bit=int(bit))


@dataclass(frozen=True)
class KeptOriginal:
    """The whole original mail for RET=FULL, stored once per mail."""

    key: str  # the mail's group key (mail_id, or the only row's id)
    content: bytes


@dataclass(frozen=True)
class ReportRow:
    """What a report needs of one message row."""

    id: str
    mail_id: str
    created: float
    updated: float
    sender: str
    recipient: str
    number: str
    gateway: str
    text: str
    dsn: dict[str, str]
    headers: tuple[tuple[str, str], ...]
    state: str
    reason: str
    dsn_code: str
    notify: int
    reported: int
    report_due: int
    warn_at: float | None
    attempts: int
    parts: tuple[tuple[int, str], ...]  # (seq, state)

    @property
    def group(self) -> str:
        """Rows of one mail share a report: this is their common key."""
        return self.mail_id or self.id


_ROW_COLUMNS = (
    "id, mail_id, created, COALESCE(updated, created), sender, recipient, number, gateway, text, dsn, headers,"
    " state, reason, dsn_code, notify, reported, report_due, warn_at, attempts"
)


def _rows(conn: Conn, where: str, args: Sequence[object]) -> list[ReportRow]:
    raw = conn.execute(f"SELECT {_ROW_COLUMNS} FROM message WHERE {where}", tuple(args)).fetchall()
    if not raw:
        return []
    ids = [r[0] for r in raw]
    marks = ",".join("?" for _ in ids)
    parts: dict[str, list[tuple[int, str]]] = {i: [] for i in ids}
    for message_id, seq, state in conn.execute(
        f"SELECT message_id, seq, state FROM part WHERE message_id IN ({marks}) ORDER BY message_id, seq", ids
    ):
        parts[message_id].append((int(seq), str(state)))
    result = []
    for r in raw:
        dsn = json.loads(r[9] or "{}")
        headers = tuple((str(k), str(v)) for k, v in json.loads(r[10] or "[]"))
        result.append(
            ReportRow(
                r[0], r[1] or "", float(r[2]), float(r[3]), r[4], r[5], r[6], r[7], r[8] or "",
                {str(k): str(v) for k, v in dsn.items()}, headers, r[11], r[12] or "", r[13] or "",
                int(r[14]), int(r[15]), int(r[16]), None if r[17] is None else float(r[17]), int(r[18] or 0),
                tuple(parts[r[0]]),
            )
        )  # fmt: skip
    return result


def due_reports(conn: Conn, limit: int) -> list[ReportRow]:
    """Rows with an event awaiting its report (a partial index keeps this cheap)."""
    return _rows(conn, "report_due != 0 ORDER BY updated, id LIMIT ?", (limit,))


def due_warnings(conn: Conn, now: float, limit: int) -> list[ReportRow]:
    """Rows whose delay warning time has come, whatever their state (the caller checks)."""
    return _rows(conn, "warn_at IS NOT NULL AND warn_at <= ? ORDER BY warn_at, id LIMIT ?", (now, limit))


def siblings(conn: Conn, mail_id: str) -> list[tuple[str, str, float]]:
    """(id, state, next_attempt) of every row of the mail ``mail_id``."""
    if not mail_id:
        return []
    rows = conn.execute("SELECT id, state, next_attempt FROM message WHERE mail_id = ?", (mail_id,)).fetchall()
    return [(str(i), str(s), float(n)) for i, s, n in rows]


def kept_original(conn: Conn, key: str) -> bytes | None:
    row = conn.execute("SELECT content FROM original WHERE key = ?", (key,)).fetchone()
    return bytes(row[0]) if row is not None and row[0] is not None else None


# -- operations run by the writer ------------------------------------------------------------


def insert_original(conn: Conn, original: KeptOriginal, now: float) -> None:
    conn.execute(
        "INSERT INTO original (key, content, created) VALUES (?,?,?)"
        " ON CONFLICT (key) DO UPDATE SET content = excluded.content, created = excluded.created",
        (original.key, original.content, now),
    )


def mark_reported(conn: Conn, ids: Sequence[str], bit: int, now: float) -> list[str]:
    """Record the report of event ``bit`` for ``ids``; returns the ids not reported before (the others are left)."""
    marks = ",".join("?" for _ in ids)
    fresh = [
        str(r[0])
        for r in conn.execute(
            f"SELECT id FROM message WHERE id IN ({marks}) AND (reported & ?) = 0 ORDER BY id{for_update(conn)}",
            (*ids, bit),
        )
    ]
    if fresh:
        marks = ",".join("?" for _ in fresh)
        clear_warning = ", warn_at = NULL" if bit == DELAYED else ""
        conn.execute(
            f"UPDATE message SET reported = reported | ?, report_due = report_due & ~?{clear_warning}"
            f" WHERE id IN ({marks})",
            (bit, bit, *fresh),
        )
    stale = [i for i in ids if i not in fresh]
    if stale:  # reported already (by an earlier run): only the due bit is left to clear
        marks = ",".join("?" for _ in stale)
        conn.execute(f"UPDATE message SET report_due = report_due & ~? WHERE id IN ({marks})", (bit, *stale))
    return fresh


def clear_warnings(conn: Conn, ids: Sequence[str]) -> None:
    """No warning for these any more: they left the queue before their warning time was handled."""
    marks = ",".join("?" for _ in ids)
    conn.execute(f"UPDATE message SET warn_at = NULL WHERE id IN ({marks})", tuple(ids))


def drop_finished_originals(conn: Conn) -> int:
    """Delete kept originals whose mail has no row left in the queue proper; the count."""
    return conn.execute(
        "DELETE FROM original WHERE NOT EXISTS (SELECT 1 FROM message m WHERE (m.id = original.key"
        " OR m.mail_id = original.key) AND (m.state IN ('queued','deferred','hold') OR m.report_due != 0))"
    ).rowcount


# -- schema version 3 ---------------------------------------------------------------------------

_MESSAGE_COLUMNS_V3 = (
    ("mail_id", "TEXT NOT NULL DEFAULT ''"),
    ("notify", "INTEGER NOT NULL DEFAULT 0"),
    ("reported", "INTEGER NOT NULL DEFAULT 0"),
    ("report_due", "INTEGER NOT NULL DEFAULT 0"),
    ("warn_at", "REAL"),
)


def create_report_schema(db: sqlite_utils.Database, conn: sqlite3.Connection) -> None:
    """Schema version 3, reports: the columns above, ``original``, and their partial indexes."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(message)")}
    for name, declaration in _MESSAGE_COLUMNS_V3:
        if name not in have:
            conn.execute(f"ALTER TABLE message ADD COLUMN {name} {declaration}")
    db.table("original").create(
        {"key": str, "content": bytes, "created": float}, pk="key", not_null={"key"}, if_not_exists=True
    )
    conn.execute("CREATE INDEX IF NOT EXISTS message_warn ON message(warn_at) WHERE warn_at IS NOT NULL")
    conn.execute("CREATE INDEX IF NOT EXISTS message_report_due ON message(updated) WHERE report_due != 0")
    conn.execute("CREATE INDEX IF NOT EXISTS message_mail ON message(mail_id) WHERE mail_id != ''")
