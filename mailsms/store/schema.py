"""Queue schema and its migrations (sqlite-utils builds the tables)."""

from __future__ import annotations

import sqlite3

import sqlite_utils

SCHEMA_VERSION = 1


def create_schema(conn: sqlite3.Connection) -> None:
    """Create or migrate the schema; safe to call at every start."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version >= SCHEMA_VERSION:
        return
    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
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
        conn.execute("CREATE INDEX IF NOT EXISTS message_due ON message(state, next_attempt)")
        conn.execute("CREATE INDEX IF NOT EXISTS part_sending ON part(state) WHERE state = 'sending'")
        conn.execute("CREATE INDEX IF NOT EXISTS part_gateway_msgid ON part(gateway_msgid) WHERE gateway_msgid != ''")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
