"""The queue store: its operations, written once for SQLite and PostgreSQL.

:class:`QueueStore` runs on a :class:`mailsms.store.conn.Conn`; the engines
are ``mailsms.store.sqlite`` (the embedded default, one node) and
``mailsms.store.pg`` (several nodes sharing one queue).  Changes made while
serving are group-committed by a writer thread (``mailsms.store.writer``):
every session that finishes DATA and every part the scheduler moves while the
previous commit is on the disk share the next transaction and its fsync, and
no recipient gets its 250 before that commit.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mailsms.accounts import Account
from mailsms.notify import DELIVERED as EVENT_DELIVERED
from mailsms.notify import FAILED as EVENT_FAILED
from mailsms.notify import RELAYED as EVENT_RELAYED
from mailsms.store import (
    ACTIVE_STATES,
    DELIVERED,
    EXPIRED,
    FAILED,
    FINAL_STATES,
    HOLD,
    PART_DELIVERED,
    PART_FAILED,
    PART_QUEUED,
    PART_SUBMITTED,
    SUBMITTED,
    NewMessage,
    StoredMessage,
    StoredPart,
    Summary,
)
from mailsms.store.accounts import record_sent
from mailsms.store.conn import Conn, for_update, lock
from mailsms.store.reports import KeptOriginal, due_bits, insert_original
from mailsms.store.writer import BatchWriter

T = TypeVar("T")
# Called as hook(conn, message_id, now) inside the writer's transaction.
SubmitHook = Callable[[Conn, str, float], None]

_MESSAGE_COLUMNS = (
    "id", "created", "sender", "recipient", "number", "gateway", "encoding", "text", "params", "dsn", "headers",
    "state", "attempts", "next_attempt", "reason", "dsn_code", "possible_duplicate", "via", "not_before",
)  # fmt: skip
# A new reason for a message; one whose text went to its fallback number keeps saying so (for its DSNs).
_KEEPING_FALLBACK_NOTE = (
    "(CASE WHEN fallback_after > 0 AND alternate = '' AND reason != ''"
    " THEN (CASE WHEN ? = '' THEN reason ELSE ? || '; ' || reason END) ELSE ? END)"
)
# The gateway a message went (or goes) through: ``via`` once one took it, else its target.
_GATEWAY_OF = "(CASE WHEN m.via != '' THEN m.via ELSE m.gateway END)"


NOTIFY_CHANNEL = "mailsms_queue"  # several nodes: a commit that queues mail wakes the others


def target_filter(gateway: str | None, other_than: Sequence[str]) -> tuple[str, list[str]]:
    """The WHERE term (and its arguments) for messages of ``gateway``, or (None) of any target
    except those in ``other_than``."""
    if gateway is not None:
        return "gateway = ?", [gateway]
    if other_than:
        return f"gateway NOT IN ({','.join('?' for _ in other_than)})", list(other_than)
    return "1 = 1", []


# ``record_report``'s answer for a report kept until its part's submission is committed.
KEPT = "(kept)"
# An early report whose part never gets submitted is forgotten after this long.
EARLY_REPORT_KEEP = 86400.0


class QueueStore:
    """The queue, on one engine.

    Reads and the queue tools' changes use ``conn`` on the caller's thread.
    Every change made while serving (ingest, the scheduler, delivery reports)
    goes through ``write``: a writer thread with its own connection commits
    whatever is pending in one transaction, so many sessions and many parts
    share one fsync, and the event loop never waits on the disk.
    """

    node = ""  # this node's id where several share the queue (PostgreSQL); "" for the embedded store
    lease_seconds = 0.0  # how long a claim holds unless renewed (several nodes); 0: no claims
    notifies = False  # a commit that queues mail tells the other nodes (several nodes)
    # Several nodes: told this node's number again when it had to register anew (see PgStore.renew).
    numbered: Callable[[int], object] = staticmethod(lambda number: None)

    def __init__(self, conn: Conn, writer: BatchWriter) -> None:
        self.conn = conn
        self.writer = writer
        # Run in the transaction that records parts as submitted (the reply log's link).
        self.submit_hooks: list[SubmitHook] = []

    def close(self) -> None:
        self.writer.close()
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Conn]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    async def write(self, op: Callable[[Conn], T]) -> T:
        """Run ``op`` in the writer's next group commit; returns once it is durable.

        Raises QueueFull (disk or database full) or InternalError when the
        commit fails; an exception raised by ``op`` itself fails only ``op``.
        """
        result: T = await self.writer.run(op)
        return result

    # -- ingest ---------------------------------------------------------------

    async def enqueue(
        self,
        messages: Sequence[NewMessage],
        original: KeptOriginal | None = None,
        *,
        counts: Mapping[str, int] | None = None,
        now: float = 0.0,
        check: Callable[[Account, int], None] | None = None,
    ) -> None:
        """Commit ``messages`` (one mail's recipients) durably, with the whole mail for
        RET=FULL reports when given, and count them against their accounts (``counts``) in
        the same transaction, after ``check`` (which raises to refuse them all); raises
        QueueFull/InternalError or what ``check`` raised."""
        await self.write(
            functools.partial(_insert_counted, messages=messages, original=original, counts=counts or {}, now=now,
                              check=check, notify=self.notifies)
        )  # fmt: skip

    # -- scheduler: reads -----------------------------------------------------

    def due(self, now: float, limit: int, gateway: str | None = None, *, other_than: Sequence[str] = ()) -> list[str]:
        """Ids of messages due by ``now``, oldest attempt first: for one ``gateway``, or
        (``gateway`` None) for any gateway except those in ``other_than``."""
        where, args = target_filter(gateway, other_than)
        rows = self.conn.execute(
            f"SELECT id FROM message WHERE state IN ('queued','deferred') AND next_attempt <= ? AND {where}"
            " ORDER BY next_attempt LIMIT ?",
            (now, *args, limit),
        ).fetchall()
        return [r[0] for r in rows]

    def claim(
        self,
        now: float,
        limit: int,
        gateway: str | None = None,
        *,
        other_than: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> list[str]:
        """Up to ``limit`` due messages this node may start, none of ``exclude`` (in flight here):
        with one node, the due ones (the scheduler's own bookkeeping keeps one from being
        started twice)."""
        skip = set(exclude)
        due = self.due(now, limit + len(skip), gateway, other_than=other_than)
        return [message_id for message_id in due if message_id not in skip][:limit]

    def take(self, message_id: str, now: float) -> bool:
        """Claim one message for this node (recovery); False when another node holds it."""
        return True

    def renew(self, message_ids: Sequence[str], now: float) -> int:
        """Keep this node's claim on messages it is still sending (several nodes only)."""
        return len(message_ids)

    def release(self, message_ids: Sequence[str]) -> None:
        """Give up this node's claim on messages that landed (several nodes only)."""

    def listen(self, wake: Callable[[], object]) -> None:
        """Call ``wake`` when another node queues mail (several nodes only)."""

    def next_due_time(self, after: float = float("-inf")) -> float | None:
        """The earliest next attempt of a message waiting to be sent, among those later than ``after``."""
        row = self.conn.execute(
            "SELECT MIN(next_attempt) FROM message WHERE state IN ('queued','deferred') AND next_attempt > ?",
            (after,),
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def load(self, message_id: str) -> StoredMessage | None:
        return self.load_many([message_id]).get(message_id)

    def load_many(self, message_ids: Sequence[str]) -> dict[str, StoredMessage]:
        """The messages with these ids, with their parts (two queries however many)."""
        if not message_ids:
            return {}
        marks = ",".join("?" for _ in message_ids)
        rows = self.conn.execute(
            "SELECT id, created, sender, recipient, number, gateway, encoding, text, params, dsn, headers, state,"
            f" attempts, next_attempt, reason, dsn_code, possible_duplicate, via, not_before"
            f" FROM message WHERE id IN ({marks})",
            tuple(message_ids),
        ).fetchall()
        parts: dict[str, list[StoredPart]] = {row[0]: [] for row in rows}
        for message_id, seq, text, udh, data, state, msgid in self.conn.execute(
            "SELECT message_id, seq, text, udh, data, state, gateway_msgid FROM part"
            f" WHERE message_id IN ({marks}) ORDER BY message_id, seq",
            tuple(message_ids),
        ):
            parts[message_id].append(
                StoredPart(seq, text, bytes(udh), bytes(data) if data is not None else None, state, msgid)
            )
        by_id: dict[str, StoredMessage] = {}
        for row in rows:
            fields: dict[str, object] = dict(zip(_MESSAGE_COLUMNS, row, strict=True))
            fields["possible_duplicate"] = bool(fields["possible_duplicate"])
            by_id[row[0]] = StoredMessage(**fields, parts=tuple(parts[row[0]]))  # type: ignore[arg-type]
        # In the order asked for (the claim's: oldest attempt first), whatever order the engine returned.
        return {i: by_id[i] for i in message_ids if i in by_id}

    def sending_on(self, gateway: str) -> bool:
        """True while a part of ``gateway`` is in ``sending``: its gateway id may not be committed yet."""
        row = self.conn.execute(
            "SELECT 1 FROM part p JOIN message m ON m.id = p.message_id"
            f" WHERE p.state = 'sending' AND {_GATEWAY_OF} = ? LIMIT 1",
            (gateway,),
        ).fetchone()
        return row is not None

    def waiting_for(self, number: str) -> int:
        """How many messages to ``number`` wait to be sent (queued, deferred or held)."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM message WHERE number = ? AND state IN ('queued','deferred','hold')", (number,)
        ).fetchone()
        return int(row[0])

    def messages_with_sending_parts(self) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT message_id FROM part WHERE state = 'sending'").fetchall()
        return [r[0] for r in rows]

    # -- scheduler: changes, group-committed -------------------------------------

    async def mark_sending(self, message_id: str, seqs: Sequence[int], now: float, via: str = "") -> None:
        """Commit ``sending``, and the gateway ``via`` which the parts go through, before any I/O
        starts (the crash contract: recovery asks that gateway)."""
        await self.write(functools.partial(commit_sending, message_id=message_id, seqs=seqs, now=now, via=via))

    def due_fallbacks(self, now: float, limit: int = 100) -> list[str]:
        """Ids of submitted messages whose fallback number is due: no delivery report came in time."""
        rows = self.conn.execute(
            "SELECT id FROM message WHERE fallback_at <= ? AND state = 'submitted' ORDER BY fallback_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [r[0] for r in rows]

    async def fall_back(self, message_id: str, copy_id: str, reason: str, note: str, now: float) -> bool:
        """Queue the text of ``message_id`` for its fallback number as ``copy_id`` (whose own
        reason says why: ``note``) and mark the original as fallen back (``reason``), in one
        transaction; False when it no longer waits for a fallback (a report came)."""
        return await self.write(
            functools.partial(_fall_back, message_id=message_id, copy_id=copy_id, reason=reason, note=note, now=now)
        )

    async def requeue_parts(
        self, message_id: str, seqs: Sequence[int], *, possible_duplicate: bool, now: float
    ) -> None:
        await self.write(
            functools.partial(
                _requeue_parts, message_id=message_id, seqs=seqs, possible_duplicate=possible_duplicate, now=now
            )
        )

    async def record_submitted(
        self, message_id: str, submitted: Sequence[tuple[int, str]], now: float, *, relayed: bool = False
    ) -> list[EarlyReport]:
        """Parts the gateway took, with its message ids; the message is ``submitted`` once all are.

        ``relayed``: the gateway gives no delivery reports, so being submitted is the
        last word on the message (a ``relayed`` report, for senders who asked).
        Returns the delivery reports that had arrived early for these parts, now applied.
        """
        return await self.write(
            functools.partial(
                _record_submitted, message_id=message_id, submitted=submitted, now=now, relayed=relayed,
                hooks=tuple(self.submit_hooks),
            )
        )  # fmt: skip

    async def defer(self, message_id: str, next_attempt: float, reason: str, dsn_code: str, now: float) -> None:
        await self.write(
            functools.partial(
                _defer, message_id=message_id, next_attempt=next_attempt, reason=reason, dsn_code=dsn_code, now=now
            )
        )

    async def finish(self, message_id: str, state: str, reason: str, dsn_code: str, now: float) -> None:
        """End a message (failed, expired) or hold it; parts not yet submitted fail or wait."""
        await self.write(
            functools.partial(_finish, message_id=message_id, state=state, reason=reason, dsn_code=dsn_code, now=now)
        )

    async def record_report(
        self, gateway: str, gateway_msgid: str, *, delivered: bool, reason: str, dsn_code: str, now: float
    ) -> str | None:
        """Apply a delivery report; returns the message id it belonged to, ``KEPT`` when it is kept
        until its part's submission is committed (the gateway has parts in ``sending``), or None."""
        return await self.write(
            functools.partial(
                _record_report,
                gateway=gateway,
                gateway_msgid=gateway_msgid,
                delivered=delivered,
                reason=reason,
                dsn_code=dsn_code,
                now=now,
            )
        )

    # -- administration (mailsms queue ...) -----------------------------------

    def summaries(self, include_final: bool) -> list[Summary]:
        states = ACTIVE_STATES if not include_final else (*ACTIVE_STATES, *FINAL_STATES)
        rows = self.conn.execute(
            "SELECT m.id, m.sender, m.recipient, m.state, COUNT(p.seq),"
            " SUM(CASE WHEN p.state IN ('submitted','delivered') THEN 1 ELSE 0 END),"
            " m.attempts, m.created, m.next_attempt, m.reason FROM message m JOIN part p ON p.message_id = m.id"
            f" WHERE m.state IN ({','.join('?' for _ in states)}) GROUP BY m.id ORDER BY m.created",
            states,
        ).fetchall()
        return [Summary(*row) for row in rows]

    def set_state(self, message_id: str, *, to: str, allowed_from: Sequence[str], now: float) -> bool:
        """Move a message between states for the queue tools; False when not found or not allowed."""
        with self.transaction() as conn:
            placeholders = ",".join("?" for _ in allowed_from)
            changed = conn.execute(
                "UPDATE message SET state = ?, next_attempt = ?, updated = ?"
                f" WHERE id = ? AND state IN ({placeholders})",
                (to, now, now, message_id, *allowed_from),
            ).rowcount
        return changed > 0

    def retry_all(self, now: float) -> int:
        with self.transaction() as conn:
            return conn.execute(
                "UPDATE message SET state = 'queued', next_attempt = ?, updated = ? WHERE state = 'deferred'",
                (now, now),
            ).rowcount

    def delete(self, message_id: str) -> bool:
        with self.transaction() as conn:
            conn.execute("DELETE FROM part WHERE message_id = ?", (message_id,))
            return conn.execute("DELETE FROM message WHERE id = ?", (message_id,)).rowcount > 0


# -- operations run by the writer inside its transaction ---------------------------


def _insert(conn: Conn, *, messages: Sequence[NewMessage], original: KeptOriginal | None = None) -> None:
    conn.executemany(
        "INSERT INTO message (id, created, sender, recipient, number, gateway, encoding, text, params, dsn,"
        " headers, truncated, state, attempts, next_attempt, reason, dsn_code, possible_duplicate, updated,"
        " mail_id, notify, warn_at, authenticated, alternate, fallback_after, not_before)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'queued',0,?,'','',0,?,?,?,?,?,?,?,?)",
        [
            (m.id, m.created, m.sender, m.recipient, m.number, m.gateway, m.encoding, m.text, m.params, m.dsn,
             m.headers, int(m.truncated), max(m.created, m.not_before or 0.0), m.created, m.mail_id, m.notify,
             m.warn_at, int(m.authenticated), m.alternate, m.fallback_after, m.not_before)
            for m in messages
        ],
    )  # fmt: skip
    if original is not None and messages:
        insert_original(conn, original, messages[0].created)
    conn.executemany(
        "INSERT INTO part (message_id, seq, text, udh, data, state, gateway_msgid, updated)"
        " VALUES (?,?,?,?,?,'queued','',?)",
        [(m.id, p.seq, p.text, p.udh, p.data, m.created) for m in messages for p in m.parts],
    )


def _insert_counted(
    conn: Conn,
    *,
    messages: Sequence[NewMessage],
    original: KeptOriginal | None,
    counts: Mapping[str, int],
    now: float,
    check: Callable[[Account, int], None] | None,
    notify: bool = False,
) -> None:
    _insert(conn, messages=messages, original=original)
    if counts:
        record_sent(conn, counts, now, check=check)
    if notify:  # delivered to the other nodes' LISTEN when this transaction commits
        conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def commit_sending(conn: Conn, *, message_id: str, seqs: Sequence[int], now: float, via: str) -> None:
    conn.executemany(
        "UPDATE part SET state = 'sending', updated = ? WHERE message_id = ? AND seq = ?",
        [(now, message_id, s) for s in seqs],
    )
    conn.execute(
        "UPDATE message SET attempts = attempts + 1, via = ?, updated = ? WHERE id = ?", (via, now, message_id)
    )


def _fall_back(conn: Conn, *, message_id: str, copy_id: str, reason: str, note: str, now: float) -> bool:
    row = conn.execute(
        "SELECT alternate, recipient, number, dsn FROM message WHERE id = ? AND fallback_at IS NOT NULL"
        f" AND state = 'submitted'{for_update(conn)}",
        (message_id,),
    ).fetchone()
    if row is None or not row[0]:
        return False  # a report came, or another node made the copy first
    alternate, recipient, number, dsn = row
    # The copy: the same text, sender, target and reports wanted, for the alternate number; its
    # DSNs name the original recipient (ORCPT) and it has no fallback of its own.
    to = recipient.replace(number, alternate) if number in recipient else f"sms:{alternate}"
    conn.execute(
        "INSERT INTO message (id, created, sender, recipient, number, gateway, encoding, text, params, dsn, headers,"
        " truncated, state, attempts, next_attempt, reason, dsn_code, possible_duplicate, updated, mail_id, notify,"
        " warn_at, authenticated)"
        " SELECT ?, ?, sender, ?, alternate, gateway, encoding, text, params, ?, headers,"
        " truncated, 'queued', 0, ?, ?, '', 0, ?, '', notify,"
        " CASE WHEN warn_at IS NULL THEN NULL ELSE ? + (warn_at - created) END, authenticated"
        " FROM message WHERE id = ?",
        (copy_id, now, to, _with_orcpt(dsn, recipient), now, note, now, now, message_id),
    )
    conn.execute(
        "INSERT INTO part (message_id, seq, text, udh, data, state, gateway_msgid, updated)"
        " SELECT ?, seq, text, udh, data, 'queued', '', ? FROM part WHERE message_id = ?",
        (copy_id, now, message_id),
    )
    conn.execute(
        "UPDATE message SET alternate = '', fallback_at = NULL, reason = ?, updated = ? WHERE id = ?",
        (reason, now, message_id),
    )
    return True


def _with_orcpt(dsn: str | None, recipient: str) -> str:
    """The DSN parameters of a fallback copy: ORCPT names the original recipient unless it was given.
    ORCPT is xtext (RFC 3461): '+', '=' and spaces of the address are written +2B, +3D, +20."""
    params = json.loads(dsn or "{}")
    if not params.get("ORCPT"):
        params["ORCPT"] = "rfc822;" + recipient.replace("+", "+2B").replace("=", "+3D").replace(" ", "+20")
    return json.dumps(params)


def _requeue_parts(conn: Conn, *, message_id: str, seqs: Sequence[int], possible_duplicate: bool, now: float) -> None:
    conn.executemany(
        "UPDATE part SET state = 'queued', updated = ? WHERE message_id = ? AND seq = ?",
        [(now, message_id, s) for s in seqs],
    )
    if possible_duplicate:
        conn.execute("UPDATE message SET possible_duplicate = 1 WHERE id = ?", (message_id,))


def _record_submitted(
    conn: Conn,
    *,
    message_id: str,
    submitted: Sequence[tuple[int, str]],
    now: float,
    relayed: bool = False,
    hooks: Sequence[SubmitHook] = (),
) -> list[EarlyReport]:
    for msgid in sorted({msgid for _, msgid in submitted if msgid}):
        lock(conn, f"report {msgid}")  # several nodes: a report for these parts waits for this commit
    conn.executemany(
        "UPDATE part SET state = 'submitted', gateway_msgid = ?, updated = ? WHERE message_id = ? AND seq = ?",
        [(msgid, now, message_id, seq) for seq, msgid in submitted],
    )
    _settle(conn, message_id, now, relayed=relayed)
    for hook in hooks:  # the reply log's link, in this same transaction
        hook(conn, message_id, now)
    return _apply_early_reports(conn, message_id, [msgid for _, msgid in submitted if msgid], now)


@dataclass(frozen=True)
class EarlyReport:
    """A delivery report that came before its part's submission was committed, applied since."""

    gateway_msgid: str
    delivered: bool
    reason: str
    dsn_code: str


def _apply_early_reports(conn: Conn, message_id: str, gateway_msgids: Sequence[str], now: float) -> list[EarlyReport]:
    if not gateway_msgids:
        return []
    row = conn.execute(f"SELECT {_GATEWAY_OF} FROM message m WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        return []
    marks = ",".join("?" for _ in gateway_msgids)
    early = [
        EarlyReport(msgid, bool(delivered), reason, dsn_code)
        for msgid, delivered, reason, dsn_code in conn.execute(
            "SELECT gateway_msgid, delivered, reason, dsn_code FROM early_report"
            f" WHERE gateway = ? AND gateway_msgid IN ({marks})",
            (row[0], *gateway_msgids),
        ).fetchall()
    ]
    for report in early:
        conn.execute("DELETE FROM early_report WHERE gateway = ? AND gateway_msgid = ?", (row[0], report.gateway_msgid))
        _record_report(
            conn, gateway=row[0], gateway_msgid=report.gateway_msgid, delivered=report.delivered,
            reason=report.reason, dsn_code=report.dsn_code, now=now,
        )  # fmt: skip
    return early


def _defer(conn: Conn, *, message_id: str, next_attempt: float, reason: str, dsn_code: str, now: float) -> None:
    conn.execute(
        "UPDATE part SET state = 'queued', updated = ? WHERE message_id = ? AND state = 'sending'",
        (now, message_id),
    )
    conn.execute(
        "UPDATE message SET state = 'deferred', next_attempt = ?, reason = ?, dsn_code = ?, updated = ?"
        " WHERE id = ? AND state IN ('queued','deferred')",
        (next_attempt, reason, dsn_code, now, message_id),
    )


def _finish(conn: Conn, *, message_id: str, state: str, reason: str, dsn_code: str, now: float) -> None:
    part_state = PART_QUEUED if state == HOLD else PART_FAILED
    conn.execute(
        "UPDATE part SET state = ?, updated = ? WHERE message_id = ? AND state IN ('queued','sending')",
        (part_state, now, message_id),
    )
    event = EVENT_FAILED if state in (FAILED, EXPIRED) else 0
    conn.execute(
        f"UPDATE message SET state = ?, reason = ?, dsn_code = ?, updated = ?, {due_bits(event)} WHERE id = ?",
        (state, reason, dsn_code, now, message_id),
    )


def _record_report(
    conn: Conn,
    *,
    gateway: str,
    gateway_msgid: str,
    delivered: bool,
    reason: str,
    dsn_code: str,
    now: float,
) -> str | None:
    # Several nodes: a submission of this id being committed on another node is waited for, so
    # the report finds its part (never kept as early after that commit has looked for it).
    lock(conn, f"report {gateway_msgid}")
    row = conn.execute(
        "SELECT p.message_id FROM part p JOIN message m ON m.id = p.message_id"
        f" WHERE p.gateway_msgid = ? AND {_GATEWAY_OF} = ?",
        (gateway_msgid, gateway),
    ).fetchone()
    if row is None:
        sending = conn.execute(
            "SELECT 1 FROM part p JOIN message m ON m.id = p.message_id"
            f" WHERE p.state = 'sending' AND {_GATEWAY_OF} = ? LIMIT 1",
            (gateway,),
        ).fetchone()
        if sending is None:
            return None
        conn.execute(
            "INSERT INTO early_report (gateway, gateway_msgid, delivered, reason, dsn_code, received)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (gateway, gateway_msgid) DO UPDATE SET delivered = excluded.delivered,"
            " reason = excluded.reason, dsn_code = excluded.dsn_code, received = excluded.received",
            (gateway, gateway_msgid, int(delivered), reason, dsn_code, now),
        )
        conn.execute("DELETE FROM early_report WHERE received < ?", (now - EARLY_REPORT_KEEP,))
        return KEPT
    message_id = str(row[0])
    conn.execute(
        "UPDATE part SET state = ?, updated = ? WHERE message_id = ? AND gateway_msgid = ?",
        (PART_DELIVERED if delivered else PART_FAILED, now, message_id, gateway_msgid),
    )
    if not delivered:
        conn.execute(
            f"UPDATE message SET state = 'failed', reason = {_KEEPING_FALLBACK_NOTE}, dsn_code = ?, updated = ?,"
            f" {due_bits(EVENT_FAILED)} WHERE id = ?",
            (reason, reason, reason, dsn_code, now, message_id),
        )
    _settle(conn, message_id, now)
    return message_id


def _settle(conn: Conn, message_id: str, now: float, *, relayed: bool = False) -> None:
    """Derive the message state from its parts once none is left to send; a report
    becomes due when the phone has every part, or when a gateway without delivery
    reports has them all (``relayed``)."""
    counts = dict(
        conn.execute("SELECT state, COUNT(*) FROM part WHERE message_id = ? GROUP BY state", (message_id,)).fetchall()
    )
    total = sum(counts.values())
    if counts.get(PART_FAILED):
        return
    if counts.get(PART_DELIVERED, 0) == total:
        new_state, event = DELIVERED, EVENT_DELIVERED
    elif counts.get(PART_SUBMITTED, 0) + counts.get(PART_DELIVERED, 0) == total:
        new_state, event = SUBMITTED, EVENT_RELAYED if relayed else 0
    else:
        return
    # A fallback number waits for a delivery report from submission on (none comes without them).
    fallback = "fallback_at"
    start: tuple[float, ...] = ()
    if new_state == DELIVERED:
        fallback = "NULL"
    elif not relayed:
        fallback = "(CASE WHEN alternate != '' AND fallback_at IS NULL THEN ? + fallback_after ELSE fallback_at END)"
        start = (now,)
    conn.execute(
        f"UPDATE message SET state = ?, reason = {_KEEPING_FALLBACK_NOTE}, updated = ?, {due_bits(event)},"
        f" fallback_at = {fallback} WHERE id = ? AND state NOT IN ('failed','expired')",
        (new_state, "", "", "", now, *start, message_id),
    )


def insert_messages(conn: Conn, messages: Sequence[NewMessage]) -> None:
    """Add ``messages`` to the queue inside the caller's writer operation (with its other changes)."""
    _insert(conn, messages=messages)


def now() -> float:
    return time.time()


__all__ = ["KEPT", "EarlyReport", "QueueStore"]
