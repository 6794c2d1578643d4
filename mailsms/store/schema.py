"""Queue schema and its migrations (sqlite-utils builds the tables).

``PRAGMA user_version`` holds the schema version.  Each version adds what it
needs in one transaction, so a database is at version N completely or not
at all: 1 is the queue (``message``, ``part``), 2 adds the inbound store,
3 adds delivery status notifications (``mailsms.store.reports``) and the
mail-out queue (``mailsms.store.mailout``), 4 adds replies by SMS (the reply
log and the inbound pipeline's indexes, ``mailsms.store.inbound_flow``),
5 adds accounts (``mailsms.store.accounts``), 6 links an MO to its mail, 7 adds
routing: the gateway that took a message (``via``: its target may be a group)
and the fallback number (``alternate``, sent once when no delivery report
came by ``fallback_at``), and scheduled sends (``not_before``).
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from mailsms.store.accounts import create_accounts_schema
from mailsms.store.inbound import create_inbound_schema
from mailsms.store.inbound_flow import create_replies_schema
from mailsms.store.mailout import create_mailout_schema
from mailsms.store.reports import create_report_schema

SCHEMA_VERSION = 7


def create_schema(conn: sqlite3.Connection) -> None:
    """Create or migrate the schema; safe to call at every start, and from two processes at once."""
    if _version(conn) >= SCHEMA_VERSION:
        ensure_indexes(conn)
        return
    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)  # again: another process may have migrated while we waited
        if version < 1:
            _create_queue(db, conn)
        if version < 2:
            create_inbound_schema(db, conn)
        if version < 3:
            create_report_schema(db, conn)
            create_mailout_schema(db, conn)
        if version < 4:
            create_replies_schema(conn)
        if version < 5:
            create_accounts_schema(conn)
        if version < 6:
            # an MO's mail in the mail-out queue: its state follows the mail's fate
            conn.execute("ALTER TABLE inbound ADD COLUMN mail_id TEXT NOT NULL DEFAULT ''")
            conn.execute("CREATE INDEX IF NOT EXISTS inbound_mail_id ON inbound(mail_id) WHERE mail_id != ''")
        if version < 7:
            _add_routing(conn)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _add_routing(conn: sqlite3.Connection) -> None:
    """Version 7: the gateway that took a message, and its fallback number."""
    conn.execute("ALTER TABLE message ADD COLUMN via TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE message ADD COLUMN alternate TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE message ADD COLUMN fallback_after REAL NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE message ADD COLUMN fallback_at REAL")
    # A scheduled send (at=, Deferred-Delivery): not before then; its queue lifetime counts from then.
    conn.execute("ALTER TABLE message ADD COLUMN not_before REAL")
    conn.execute("CREATE INDEX IF NOT EXISTS message_fallback ON message(fallback_at) WHERE fallback_at IS NOT NULL")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _create_queue(db: sqlite_utils.Database, conn: sqlite3.Connection) -> None:
    """Version 1: messages and their parts."""
    db.table("message").create(
        {
            "id": str, "created": float, "sender": str, "recipient": str, "number": str, "gateway": str,
            "encoding": str, "text": str, "params": str, "dsn": str, "headers": str, "truncated": int,
            "state": str, "attempts": int, "next_attempt": float, "reason": str, "dsn_code": str,
            "possible_duplicate": int, "updated": float,
        },
        pk="id",
        not_null={"created", "sender", "recipient", "number", "gateway", "state", "next_attempt"},
        if_not_exists=True,
    )  # fmt: skip
    db.table("part").create(
        {
            "message_id": str, "seq": int, "text": str, "udh": bytes, "data": bytes, "state": str,
            "gateway_msgid": str, "updated": float,
        },
        pk=("message_id", "seq"),
        foreign_keys=[("message_id", "message", "id")],
        not_null={"message_id", "seq", "state"},
        if_not_exists=True,
    )  # fmt: skip
    ensure_indexes(conn)
    conn.execute("CREATE INDEX IF NOT EXISTS part_sending ON part(state) WHERE state = 'sending'")
    conn.execute("CREATE INDEX IF NOT EXISTS part_gateway_msgid ON part(gateway_msgid) WHERE gateway_msgid != ''")


def ensure_indexes(conn: sqlite3.Connection) -> None:
    """The queue's scheduling indexes and the early-report table; each is created if missing
    (cheap at every start)."""
    # Delivery reports that arrive before their part's submission is committed
    # (a fast gateway answers while the submit's result is on its way to the
    # disk): kept here and applied by the commit that records the submission.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS early_report (gateway TEXT NOT NULL, gateway_msgid TEXT NOT NULL,"
        " delivered INTEGER NOT NULL, reason TEXT NOT NULL, dsn_code TEXT NOT NULL, received REAL NOT NULL,"
        " PRIMARY KEY (gateway, gateway_msgid))"
    )
    # Due messages in next_attempt order, read by the scheduler after every
    # commit: partial indexes keep that O(limit) however long the backlog,
    # overall and per gateway (each gateway claims up to its own room).
    conn.execute(
        "CREATE INDEX IF NOT EXISTS message_due_at ON message(next_attempt) WHERE state IN ('queued','deferred')"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS message_due_gateway ON message(gateway, next_attempt)"
        " WHERE state IN ('queued','deferred')"
    )
    conn.execute("DROP INDEX IF EXISTS message_due")
    # Messages still waiting per number, for queue.max_messages_per_number.
    conn.execute(
        "CREATE INDEX IF NOT EXISTS message_waiting_number ON message(number)"
        " WHERE state IN ('queued','deferred','hold')"
    )
