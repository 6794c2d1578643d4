"""The inbound store: incoming SMS (MO) as gateways deliver them, in the queue's database.

Each row is one SMS as it arrived (reassembly of concatenated parts and
routing to a mailbox come later; ``state`` is ``received`` until then).  A
gateway that delivers the same MO twice (same gateway, same non-empty SMSC
id) gets the first row back, not a second one.  Rows are written through
``QueueStore.write``, so a webhook answers only after the commit.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils

from mailsms.store.conn import Conn, has_table

# MO states as ``mailsms inbound list`` shows them (a contract).
RECEIVED = "received"


@dataclass(frozen=True)
class NewInbound:
    """One incoming SMS, checked and decoded, ready to be committed."""

    id: str
    received: float
    gateway: str
    sender: str  # the MO's "from": a number or an alphanumeric name
    to: str  # the number it was sent to; "" when the gateway does not say
    text: str
    udh: bytes = b""
    coding: int = 0  # 0 GSM 7-bit, 1 8-bit (payload in ``data``), 2 UCS-2
    smsc_id: str = ""
    data: bytes | None = None


@dataclass(frozen=True)
class InboundEntry:
    """One row of ``mailsms inbound list``."""

    id: str
    gateway: str
    sender: str
    to: str
    text: str
    udh: bytes
    coding: int
    smsc_id: str
    received: float
    state: str
    routed_to: str


def create_inbound_schema(db: sqlite_utils.Database, conn: sqlite3.Connection) -> None:
    """Schema version 2: the ``inbound`` table (runs inside the migration's transaction)."""
    db.table("inbound").create(
        {
            "id": str, "gateway": str, "sender": str, "recipient": str, "text": str, "udh": bytes,
            "data": bytes, "coding": int, "smsc_id": str, "received": float, "state": str, "routed_to": str,
        },
        pk="id",
        not_null={"gateway", "sender", "recipient", "text", "udh", "coding", "smsc_id", "received", "state"},
        if_not_exists=True,
    )  # fmt: skip
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS inbound_smsc_id ON inbound(gateway, smsc_id) WHERE smsc_id != ''")
    conn.execute("CREATE INDEX IF NOT EXISTS inbound_received ON inbound(received)")


def insert_inbound(conn: Conn, mo: NewInbound) -> tuple[str, bool]:
    """Store ``mo`` unless the gateway delivered it before: (row id, True when it was a repeat).

    Runs in the writer's transaction.  Several nodes may be handed the same
    SMS at once: the unique key on (gateway, SMSC id) lets one insert win, and
    the other, which waits for it, finds the row and answers "repeat".
    """
    if mo.smsc_id:
        found = _stored_as(conn, mo)
        if found is not None:
            return found, True
    inserted = conn.execute(
        "INSERT INTO inbound (id, gateway, sender, recipient, text, udh, data, coding, smsc_id, received, state,"
        " routed_to) VALUES (?,?,?,?,?,?,?,?,?,?,?,'') ON CONFLICT (gateway, smsc_id) WHERE smsc_id != '' DO NOTHING",
        (mo.id, mo.gateway, mo.sender, mo.to, mo.text, mo.udh, mo.data, mo.coding, mo.smsc_id, mo.received,
         RECEIVED),
    ).rowcount  # fmt: skip
    if not inserted:
        return _stored_as(conn, mo) or mo.id, True
    return mo.id, False


def _stored_as(conn: Conn, mo: NewInbound) -> str | None:
    row = conn.execute("SELECT id FROM inbound WHERE gateway = ? AND smsc_id = ?", (mo.gateway, mo.smsc_id)).fetchone()
    return str(row[0]) if row is not None else None


def has_inbound_table(conn: Conn) -> bool:
    """False for a database the daemon has not migrated to version 2 yet."""
    return has_table(conn, "inbound")


def list_inbound(conn: Conn, limit: int | None = None) -> list[InboundEntry]:
    """Every stored MO, oldest first (the newest ``limit`` when given)."""
    if not has_inbound_table(conn):
        return []
    sql = (
        "SELECT id, gateway, sender, recipient, text, udh, coding, smsc_id, received, state, routed_to"
        " FROM inbound ORDER BY received DESC, id DESC"
    )
    rows = conn.execute(sql + " LIMIT ?", (limit,)) if limit is not None else conn.execute(sql)
    entries = [
        InboundEntry(id, gateway, sender, to, text, bytes(udh or b""), coding, smsc_id, received, state,
                     routed_to or "")
        for id, gateway, sender, to, text, udh, coding, smsc_id, received, state, routed_to in rows
    ]  # fmt: skip
    entries.reverse()
    return entries
