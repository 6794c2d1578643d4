"""The inbound pipeline's side of the inbound store: MO states, reassembly and routing, as writer operations.

Every state change of an MO is committed together with what it causes (the
whole SMS made of its parts, the mail in the mail-out queue, the conflict
SMS in the queue): a crash leaves an MO either untouched, to be done again,
or done with everything it caused.  Nothing is deleted.

MO states, as ``mailsms inbound list`` shows them (a contract):

``received``  committed, not looked at yet
``part``      a part of a concatenated SMS, waiting for the others
``joined``    a part whose text went into the whole SMS (``routed_to``: the whole SMS's id)
``duplicate`` a part received again (``routed_to``: the id of the first one)
``mailed``    its mail is in the mail-out queue (``routed_to``: the mailbox)
``delivered`` its mail was accepted (by the Maildir, the relay or the LMTP server)
``undeliverable`` its mail was refused for good, or expired in the mail-out queue
``conflict``  several senders wrote to the number: the replier was asked for an #email# tag,
              and there is no ``inbound.unmatched_recipient`` to take the SMS (kept here)
``dropped``   empty, or nobody to route it to (kept here; the log says why)
``hold``      the pipeline failed on it (logged with a traceback; kept here)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mailsms.reassembly import Assembled, GroupKey, Part, assemble, complete, concat_of, group_key
from mailsms.store import mailout as mailout_store
from mailsms.store.conn import Conn, for_update, lock
from mailsms.store.inbound import RECEIVED, NewInbound, insert_inbound
from replylog.store import create_replylog_schema

if TYPE_CHECKING:
    from mailsms.store import NewMessage
    from mailsms.store.mailout import NewMail

PART = "part"
JOINED = "joined"
DUPLICATE = "duplicate"
MAILED = "mailed"
DELIVERED = "delivered"
UNDELIVERABLE = "undeliverable"
CONFLICT = "conflict"
DROPPED = "dropped"
HOLD = "hold"
MO_STATES = (RECEIVED, PART, JOINED, DUPLICATE, MAILED, DELIVERED, UNDELIVERABLE, CONFLICT, DROPPED, HOLD)

_MO_COLUMNS = "id, gateway, sender, recipient, text, udh, coding, data, received"


@dataclass(frozen=True)
class StoredMo:
    id: str
    gateway: str
    sender: str
    to: str
    text: str
    udh: bytes
    coding: int
    data: bytes | None
    received: float


@dataclass(frozen=True)
class Filed:
    """What became of a part: waiting for the others, a duplicate, or the last one (the whole SMS is made)."""

    outcome: Literal["waiting", "duplicate", "complete", "gone"]
    other_id: str = ""  # complete: the whole SMS; duplicate: the part it repeats
    have: int = 0
    total: int = 0


@dataclass(frozen=True)
class GivenUp:
    """Parts that waited too long, joined with the marker into one SMS."""

    whole_id: str
    have: int
    total: int
    missing: tuple[int, ...]


def create_replies_schema(conn: sqlite3.Connection) -> None:
    """Schema version 4: ``message.authenticated``, the reply log, the pipeline's partial indexes."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(message)")}
    if "authenticated" not in have:
        conn.execute("ALTER TABLE message ADD COLUMN authenticated INTEGER NOT NULL DEFAULT 0")
    create_replylog_schema(conn)
    conn.execute("CREATE INDEX IF NOT EXISTS inbound_todo ON inbound(received) WHERE state = 'received'")
    conn.execute("CREATE INDEX IF NOT EXISTS inbound_waiting ON inbound(gateway, sender) WHERE state = 'part'")
    conn.execute("CREATE INDEX IF NOT EXISTS inbound_waiting_since ON inbound(received) WHERE state = 'part'")


# -- reads ------------------------------------------------------------------------------------


def pending(conn: Conn, limit: int) -> list[StoredMo]:
    """MOs in ``received``, oldest first."""
    rows = conn.execute(
        f"SELECT {_MO_COLUMNS} FROM inbound WHERE state = 'received' ORDER BY received, id LIMIT ?", (limit,)
    ).fetchall()
    return [_mo(row) for row in rows]


def oldest_waiting(conn: Conn) -> tuple[str, float] | None:
    """(id, received) of the part that has waited longest for its siblings, or None."""
    row = conn.execute("SELECT id, received FROM inbound WHERE state = 'part' ORDER BY received, id LIMIT 1").fetchone()
    return (str(row[0]), float(row[1])) if row is not None else None


def states(conn: Conn, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """id -> (state, routed_to), for tests and tools."""
    marks = ",".join("?" for _ in ids)
    rows = conn.execute(f"SELECT id, state, routed_to FROM inbound WHERE id IN ({marks})", tuple(ids)).fetchall()
    return {str(r[0]): (str(r[1]), str(r[2] or "")) for r in rows}


# -- operations run by the writer -------------------------------------------------------------


def file_part(conn: Conn, *, mo_id: str, new_id: str, marker: str, since: float) -> Filed:
    """Put the part ``mo_id`` with its siblings; when it completes them, make the whole SMS (id ``new_id``).

    A part already joined into a whole SMS that arrived after ``since`` counts
    as a duplicate too (a late repeat must not start an SMS of its own).
    """
    row = conn.execute(
        f"SELECT {_MO_COLUMNS} FROM inbound WHERE id = ? AND state = 'received'{for_update(conn)}", (mo_id,)
    ).fetchone()
    if row is None:
        return Filed("gone")
    mo = _mo(row)
    concat = concat_of(mo.udh)
    if concat is None:
        return Filed("gone")  # not a part: the caller routes it as a whole SMS
    key = group_key(mo.gateway, mo.sender, mo.to, concat)
    lock(conn, f"inbound {key}")  # several nodes: the parts of one SMS are filed one at a time
    siblings = _waiting(conn, key)
    same = next((p for p in siblings if p.seq == concat.seq), None)
    if same is None:
        same = next((p for p in _grouped(conn, key, JOINED, since) if p.seq == concat.seq), None)
    if same is not None:
        _set(conn, [mo.id], DUPLICATE, same.id)
        return Filed("duplicate", same.id, len(siblings), concat.total)
    _set(conn, [mo.id], PART, "")
    parts = [*siblings, Part(mo.id, concat.seq, mo.text, mo.received, mo.data)]
    if not complete(parts, concat.total):
        return Filed("waiting", "", len(parts), concat.total)
    _join(conn, key, parts, assemble(parts, concat.total, marker), new_id=new_id, coding=mo.coding)
    return Filed("complete", new_id, len(parts), concat.total)


def give_up(conn: Conn, *, part_id: str, new_id: str, marker: str) -> GivenUp | None:
    """Join the waiting parts of the SMS ``part_id`` belongs to, whatever is missing (the marker stands in)."""
    row = conn.execute(
        f"SELECT {_MO_COLUMNS} FROM inbound WHERE id = ? AND state = 'part'{for_update(conn)}", (part_id,)
    ).fetchone()
    if row is None:
        return None
    mo = _mo(row)
    concat = concat_of(mo.udh)
    if concat is None:  # cannot happen for a row filed as a part; never leave it waiting forever
        _set(conn, [mo.id], RECEIVED, "")
        return None
    key = group_key(mo.gateway, mo.sender, mo.to, concat)
    lock(conn, f"inbound {key}")
    parts = _waiting(conn, key)
    assembled = assemble(parts, concat.total, marker)
    _join(conn, key, parts, assembled, new_id=new_id, coding=mo.coding)
    return GivenUp(new_id, len(parts), concat.total, assembled.missing)


def settle(
    conn: Conn,
    *,
    mo_id: str,
    state: str,
    routed_to: str,
    mail: NewMail | None = None,
    sms: Sequence[NewMessage] = (),
) -> bool:
    """Move ``mo_id`` from ``received`` to ``state`` with what routing it caused; False when it had moved already."""
    changed = conn.execute(
        "UPDATE inbound SET state = ?, routed_to = ?, mail_id = ? WHERE id = ? AND state = 'received'",
        (state, routed_to, mail.id if mail is not None and state == MAILED else "", mo_id),
    ).rowcount
    if not changed:
        return False
    if mail is not None:
        mailout_store.insert(conn, mail)
    if sms:
        from mailsms.store.queue import insert_messages  # the queue store imports this module's schema

        insert_messages(conn, sms)
    return True


def hold(conn: Conn, *, mo_id: str) -> None:
    """Keep ``mo_id`` out of the pipeline's way after it failed on it."""
    conn.execute("UPDATE inbound SET state = ? WHERE id = ? AND state IN ('received','part')", (HOLD, mo_id))


# -- helpers --------------------------------------------------------------------------------------


def _mo(row: Sequence[Any]) -> StoredMo:
    mo_id, gateway, sender, to, text, udh, coding, data, received = row
    return StoredMo(
        str(mo_id), str(gateway), str(sender), str(to or ""), str(text or ""), bytes(udh or b""), int(coding or 0),
        bytes(data) if data is not None else None, float(received),
    )  # fmt: skip


def _waiting(conn: Conn, key: GroupKey) -> list[Part]:
    """The parts of the SMS ``key`` waiting now (the partial index keeps this to the sender's waiting parts)."""
    rows = conn.execute(
        f"SELECT {_MO_COLUMNS} FROM inbound WHERE state = 'part' AND gateway = ? AND sender = ? ORDER BY received, id",
        (key.gateway, key.sender),
    ).fetchall()
    return _of_group(rows, key)


def _grouped(conn: Conn, key: GroupKey, state: str, since: float) -> list[Part]:
    """Parts of the SMS ``key`` in ``state`` that arrived after ``since``."""
    rows = conn.execute(
        f"SELECT {_MO_COLUMNS} FROM inbound WHERE received >= ? AND state = ? AND gateway = ? AND sender = ?",
        (since, state, key.gateway, key.sender),
    ).fetchall()
    return _of_group(rows, key)


def _of_group(rows: Sequence[Sequence[Any]], key: GroupKey) -> list[Part]:
    parts = []
    for row in rows:
        mo = _mo(row)
        concat = concat_of(mo.udh)
        if mo.to == key.to and concat is not None and group_key(mo.gateway, mo.sender, mo.to, concat) == key:
            parts.append(Part(mo.id, concat.seq, mo.text, mo.received, mo.data))
    return parts


def _join(conn: Conn, key: GroupKey, parts: Sequence[Part], assembled: Assembled, *, new_id: str, coding: int) -> None:
    whole = NewInbound(
        id=new_id, received=assembled.received, gateway=key.gateway, sender=key.sender, to=key.to,
        text=assembled.text, coding=coding, data=assembled.data,
    )  # fmt: skip
    insert_inbound(conn, whole)
    _set(conn, [p.id for p in parts], JOINED, new_id)


def _set(conn: Conn, ids: Sequence[str], state: str, routed_to: str) -> None:
    conn.executemany("UPDATE inbound SET state = ?, routed_to = ? WHERE id = ?", [(state, routed_to, i) for i in ids])
