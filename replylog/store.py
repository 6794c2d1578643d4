"""The ``reply_link`` table in the queue's database.

One row per (number, mailbox), clustered on that key (``WITHOUT ROWID``):
the links of a number are one B-tree descent away however many millions
there are.  ``created`` is indexed for the purge of expired links, and
``mailbox`` for ``mailsms replylog list --sender``.

A link is written by the same transaction that records its message as
submitted (``record_on_submit`` runs inside the queue writer's operation),
so a crash never leaves a sent message without its link.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from mailsms.store.conn import Conn, has_table
from replylog.links import Record, ReplyLink, link_for

log = logging.getLogger("mailsms.replylog")

_COLUMNS = "number, mailbox, gateway, message_id, subject, created, queue_id"


def create_replylog_schema(conn: sqlite3.Connection) -> None:
    """The table and its indexes (runs inside a migration's transaction)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS reply_link (number TEXT NOT NULL, mailbox TEXT NOT NULL,"
        " gateway TEXT NOT NULL DEFAULT '', message_id TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL DEFAULT '',"
        " created REAL NOT NULL, queue_id TEXT NOT NULL DEFAULT '', PRIMARY KEY (number, mailbox)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS reply_link_created ON reply_link(created)")
    conn.execute("CREATE INDEX IF NOT EXISTS reply_link_mailbox ON reply_link(mailbox)")


def has_replylog_table(conn: Conn) -> bool:
    """False for a database the daemon has not migrated yet."""
    return has_table(conn, "reply_link")


def record(conn: Conn, link: ReplyLink) -> None:
    """Add ``link``, or refresh the link of the same mailbox and number (latest mail wins)."""
    conn.execute(
        f"INSERT INTO reply_link ({_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT (number, mailbox) DO UPDATE SET"
        " gateway = excluded.gateway, message_id = excluded.message_id, subject = excluded.subject,"
        " created = excluded.created, queue_id = excluded.queue_id WHERE excluded.created >= reply_link.created",
        (link.number, link.mailbox, link.gateway, link.message_id, link.subject, link.created, link.queue_id),
    )


def record_on_submit(conn: Conn, message_id: str, now: float, *, mode: Record) -> None:
    """The queue writer's hook after parts of ``message_id`` were submitted: record its link.

    Runs in the writer's transaction, inside a savepoint of its own: a link
    that cannot be written is logged and never fails the submission.
    """
    if mode == "off":
        return
    try:
        conn.execute("SAVEPOINT reply_link")
        try:
            _record_message(conn, message_id, now, mode)
        except Exception:
            conn.execute("ROLLBACK TO reply_link")
            raise
        finally:
            conn.execute("RELEASE reply_link")
    except Exception:
        log.exception("%s: reply link not recorded", message_id)


def _record_message(conn: Conn, message_id: str, now: float, mode: Record) -> None:
    row = conn.execute(
        "SELECT number, CASE WHEN via != '' THEN via ELSE gateway END, sender, params, headers, authenticated"
        " FROM message WHERE id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        return
    number, gateway, sender, params, headers, authenticated = row
    link = link_for(
        number=number, gateway=gateway, sender=sender, params=params or "{}", headers=headers or "[]",
        authenticated=bool(authenticated), record=mode, now=now, queue_id=message_id,
    )  # fmt: skip
    if link is not None:
        record(conn, link)


def live_links(conn: Conn, number: str, now: float, keep_seconds: float) -> list[ReplyLink]:
    """The links of ``number`` not expired at ``now``, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM reply_link WHERE number = ? AND created > ? ORDER BY created DESC",
        (number, now - keep_seconds),
    ).fetchall()
    return [_link(row) for row in rows]


def list_links(
    conn: Conn,
    *,
    number: str | None = None,
    mailbox: str | None = None,
    since: float | None = None,
    limit: int | None = None,
) -> list[ReplyLink]:
    """Links for ``mailsms replylog list``, newest first: of one number and/or mailbox, created after ``since``."""
    if not has_replylog_table(conn):
        return []
    where: list[str] = []
    args: list[object] = []
    for column, value in (("number", number), ("mailbox", mailbox)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("created > ?")
        args.append(since)
    sql = f"SELECT {_COLUMNS} FROM reply_link"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [_link(row) for row in conn.execute(sql, args)]


def purge(conn: Conn, before: float, limit: int = 10_000) -> int:
    """Delete up to ``limit`` links created at or before ``before`` (the oldest first); how many went."""
    return conn.execute(
        "DELETE FROM reply_link WHERE (number, mailbox) IN"
        " (SELECT number, mailbox FROM reply_link WHERE created <= ? ORDER BY created LIMIT ?)",
        (before, limit),
    ).rowcount


def count(conn: Conn) -> int:
    if not has_replylog_table(conn):
        return 0
    return int(conn.execute("SELECT COUNT(*) FROM reply_link").fetchone()[0])


def _link(row: Sequence[Any]) -> ReplyLink:
    number, mailbox, gateway, message_id, subject, created, queue_id = row
    return ReplyLink(str(number), str(mailbox), str(gateway), str(message_id), str(subject), float(created),
                     str(queue_id))  # fmt: skip
