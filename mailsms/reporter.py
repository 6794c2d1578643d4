"""Sends the delivery status notifications that the queue says are due (RFC 3464, via ``ndr``).

The scheduler calls ``sweep`` on every pass.  A report is due when the store
set a message's ``report_due`` bit together with the state change (failed,
expired, delivered, relayed), or when its ``warn_at`` time has come while
it still waits to be sent (delayed).  Recipients of one mail that are due
for the same event share one report; a report waits (up to
``GATHER_TIME``) while other recipients of its mail are still being tried
in the same pass, so that they land in it too.

The report is composed here (pure, ``ndr.compose``) and committed in one
transaction with the mark that it was made: a crash never loses a report
nor sends one twice.  Mail-out delivers it with the null reverse-path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mailsms.mailout import Mailout
from mailsms.notify import ACTIONS, DELAYED, DELIVERED, FAILED, RELAYED
from mailsms.store import DEFERRED, QUEUED, reports
from mailsms.store import mailout as mailout_store
from mailsms.store.conn import Conn
from mailsms.store.mailout import NewMail
from mailsms.store.queue import QueueStore
from mailsms.store.reports import ReportRow
from ndr import OriginalMail, RecipientStatus, Reporting, compose

log = logging.getLogger("mailsms.reports")

GATHER_TIME = 30.0  # seconds a report waits for the other recipients of its mail
BATCH = 200  # rows looked at per sweep
ORIGINALS_GC_INTERVAL = 300.0  # seconds between clean-ups of kept RET=FULL originals
PAUSE_AFTER_ERROR = 60.0  # seconds without sweeps after one failed (the disk is full, say)
# Postfix's words for each kind of notification, in its log.
_LOG_WORDS = {
    FAILED: "sender non-delivery notification",
    DELAYED: "sender delay notification",
    DELIVERED: "sender delivery status notification",
    RELAYED: "sender delivery status notification",
}


@dataclass(frozen=True)
class Due:
    """One report to make: the event and the rows (one mail's recipients) it tells about."""

    event: int
    rows: tuple[ReportRow, ...]


@dataclass
class Reporter:
    store: QueueStore
    mailout: Mailout
    maximal_queue_lifetime: float
    gather_time: float = GATHER_TIME
    _task: asyncio.Task[None] | None = None
    _last_gc: float = float("-inf")
    sweeps: int = 0  # passes looked at, for tests that wait for one
    _pause_until: float = float("-inf")  # after a failed sweep: its error is not repeated on every pass

    def sweep(self, now: float) -> None:
        """Start making the reports due by ``now`` unless a sweep is still at work (cheap when none is due)."""
        self.sweeps += 1
        if (self._task is not None and not self._task.done()) or now < self._pause_until:
            return
        plan, stale = plan_reports(self.store.conn, now, self.gather_time)
        collect = now - self._last_gc >= ORIGINALS_GC_INTERVAL
        if not plan and not stale and not collect:
            return
        self._last_gc = now if collect else self._last_gc
        self._task = asyncio.create_task(self._work(plan, stale, now, collect), name="reports")

    async def stop(self) -> None:
        """Let a sweep at work finish (its commits are short)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _work(self, plan: Sequence[Due], stale: Sequence[str], now: float, collect: bool) -> None:
        try:
            if stale:
                await self.store.write(functools.partial(reports.clear_warnings, ids=stale))
            for due in plan:
                await self._report(due, now)
            if collect:
                await self.store.write(reports.drop_finished_originals)
        except Exception:
            self._pause_until = now + PAUSE_AFTER_ERROR
            log.exception("making delivery status notifications failed; tried again in %.0f s", PAUSE_AFTER_ERROR)

    async def _report(self, due: Due, now: float) -> None:
        first = due.rows[0]
        mail_id = self.mailout.new_id()
        full = (
            reports.kept_original(self.store.conn, first.group) if first.dsn.get("RET", "").upper() == "FULL" else None
        )
        ids = [row.id for row in due.rows]
        try:
            message = compose_report(
                due,
                reporting=Reporting(self.mailout.hostname, self.mailout.clock(), self.mailout.message_id(mail_id)),
                maximal_queue_lifetime=self.maximal_queue_lifetime,
                full=full,
            )
        except Exception:
            # A report that cannot be made must not hold up the others (Mailman's shunt): it is given up, loudly.
            log.exception("%s: the %s report cannot be composed and is given up", ",".join(ids), ACTIONS[due.event])
            await self.store.write(functools.partial(reports.mark_reported, ids=ids, bit=due.event, now=now))
            return
        origin = f"{ACTIONS[due.event]} report for {','.join(ids)}"
        mail = NewMail(mail_id, self.mailout.clock(), "", (first.sender,), message, origin)
        fresh = await self.store.write(functools.partial(_record, ids=ids, event=due.event, mail=mail, now=now))
        if not fresh:
            return  # reported already (the bits were set by an earlier run)
        for row in due.rows:
            log.info(f"{row.id}: {_LOG_WORDS[due.event]}: {mail_id}")
        self.mailout.queued(mail)


def _record(conn: Conn, *, ids: Sequence[str], event: int, mail: NewMail, now: float) -> list[str]:
    """One transaction: mark the event reported and queue the report (only if it was not reported before)."""
    fresh = reports.mark_reported(conn, ids, event, now)
    if fresh:
        mailout_store.insert(conn, mail)
    return fresh


# -- deciding what is due (reads) -----------------------------------------------------------------


def plan_reports(conn: Conn, now: float, gather_time: float) -> tuple[list[Due], list[str]]:
    """Reports due by ``now``, one per mail and event; and the ids of rows whose warning
    time has come but that left the queue first (their warning is never sent)."""
    groups: dict[tuple[str, int], list[ReportRow]] = {}
    for row in reports.due_reports(conn, BATCH):
        for event in (FAILED, DELIVERED, RELAYED):
            if row.report_due & event:
                groups.setdefault((row.group, event), []).append(row)
    stale = []
    for row in reports.due_warnings(conn, now, BATCH):
        if row.state in (QUEUED, DEFERRED) and not row.reported & DELAYED:
            groups.setdefault((row.group, DELAYED), []).append(row)
        else:
            stale.append(row.id)
    plan = []
    for (_, event), rows in groups.items():
        mail_id = rows[0].mail_id
        newest = max(row.updated for row in rows)
        if event != DELAYED and mail_id and now - newest < gather_time and _others_in_pass(conn, mail_id, rows, now):
            continue  # the rest of the mail is being tried now: report them together
        plan.append(Due(event, tuple(sorted(rows, key=lambda row: row.id))))  # recipients in the mail's order
    return plan, stale


def _others_in_pass(conn: Conn, mail_id: str, rows: Sequence[ReportRow], now: float) -> bool:
    mine = {row.id for row in rows}
    return any(
        state in (QUEUED, DEFERRED) and next_attempt <= now
        for message_id, state, next_attempt in reports.siblings(conn, mail_id)
        if message_id not in mine
    )


# -- composing (pure) -------------------------------------------------------------------------------


def compose_report(
    due: Due, *, reporting: Reporting, maximal_queue_lifetime: float, full: bytes | None = None
) -> bytes:
    """The report for ``due`` as bytes (``ndr.compose`` with what the queue knows)."""
    first = due.rows[0]
    headers = first.headers
    subject = next((value for name, value in headers if name.lower() == "subject"), "")
    original = OriginalMail(
        sender=first.sender,
        arrival=first.created,
        envid=first.dsn.get("ENVID", ""),
        headers=headers,
        full=full,
        subject=subject,
    )
    return compose(original, [recipient_status(row, due.event, maximal_queue_lifetime) for row in due.rows], reporting)


def recipient_status(row: ReportRow, event: int, maximal_queue_lifetime: float) -> RecipientStatus:
    action = ACTIONS[event]
    if event == FAILED:
        status = row.dsn_code if row.dsn_code[:1] in ("4", "5") else "5.0.0"
    elif event == DELAYED:
        status = row.dsn_code if row.dsn_code[:1] == "4" else "4.0.0"
    else:
        status = "2.0.0"
    # A success has no diagnostic, unless something worth telling happened (its fallback number was used).
    diagnostic = row.reason
    return RecipientStatus(
        recipient=row.recipient,
        number=row.number,
        action=action,  # type: ignore[arg-type]
        status=status,
        diagnostic=diagnostic,
        orcpt=row.dsn.get("ORCPT", ""),
        last_attempt=row.updated if row.attempts else None,
        will_retry_until=row.created + maximal_queue_lifetime if event == DELAYED else None,
        text=row.text,
        parts=len(row.parts),
        failed_parts=tuple(seq for seq, state in row.parts if state == "failed") if event == FAILED else (),
        queue_id=row.id,
    )
