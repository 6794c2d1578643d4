"""The scheduler harness with reports: a Reporter and a mail-out into Maildirs, on the same fake clock."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from mailsms.mailout import Mailout
from mailsms.mailout_agents import MaildirAgent
from mailsms.notify import wanted_events, warn_time
from mailsms.reporter import Reporter
from mailsms.scheduler import RetryPolicy, Scheduler
from mailsms.store import NewMessage, NewPart
from mailsms.store import mailout as mailout_store
from tests.support.scheduling import WAIT, FakeClock, Queue, concatenation_udh
from tests.support.wait import async_wait_until

HOSTNAME = "gw.example.test"
SENDER = "alice@example.com"


def report_parts(report: EmailMessage) -> list[Message]:
    return list(report.iter_parts())


def recipient_blocks(report: EmailMessage) -> list[Message]:
    """The per-recipient field blocks of the message/delivery-status part."""
    blocks = report_parts(report)[1].get_payload()
    assert isinstance(blocks, list)
    return blocks[1:]


def words(report: EmailMessage) -> str:
    payload = report_parts(report)[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8").replace("\r\n", "\n")


class ReportQueue(Queue):
    """``Queue`` whose scheduler makes reports; they end in ``<state_dir>/mail/<sender>/new``.

    ``with_reporter=False`` is a process that dies before its reporter runs: states change, no report is made.
    """

    def __init__(
        self,
        state_dir: Path,
        clock: FakeClock,
        policy: RetryPolicy,
        concurrency: int = 4,
        *,
        delay_warning_time: float = 0.0,
        gather_time: float = 30.0,
        with_reporter: bool = True,
        store_url: str = "",
    ) -> None:
        self.maildir = state_dir / "mail"
        self.with_reporter = with_reporter
        self.delay_warning_time = delay_warning_time
        self.gather_time = gather_time
        self._mailout_task: asyncio.Task[None] | None = None
        super().__init__(state_dir, clock, policy, concurrency, store_url=store_url)

    def _scheduler(self) -> Scheduler:
        self.mailout = Mailout(
            self.store, MaildirAgent(self.maildir, HOSTNAME), HOSTNAME, self.policy, clock=self.clock
        )
        self.reporter = Reporter(
            self.store, self.mailout, self.policy.maximal_queue_lifetime, gather_time=self.gather_time
        )
        return Scheduler(
            self.store,
            self.transports,
            self.policy,
            concurrency=self.concurrency,
            clock=self.clock,
            reporter=self.reporter if self.with_reporter else None,
        )

    def start(self) -> None:
        super().start()
        self._mailout_task = asyncio.create_task(self.mailout.run(), name="test-mailout")

    async def stop(self, grace: float = WAIT) -> None:
        await super().stop(grace)
        await self.reporter.stop()
        await self.mailout.stop()
        if self._mailout_task is not None:
            await asyncio.wait_for(self._mailout_task, WAIT)
            self._mailout_task = None

    # -- messages as ingest makes them ------------------------------------------------------------

    async def send(self, qid: str, number: str, **fields: Any) -> str:
        """Commit ``row(qid, number, **fields)`` as ingest would (with its NOTIFY events and warning
        time) and wake the scheduler."""
        await self.store.enqueue([self.row(qid, number, **fields)])
        self.scheduler.wake()
        return qid

    def row(
        self,
        qid: str,
        number: str,
        *,
        sender: str = SENDER,
        notify: str | None = None,
        mail_id: str = "",
        parts: int = 1,
        age: float = 0.0,
        text: str = "",
        orcpt: str = "",
        envid: str = "",
        auto_submitted: bool = False,
        gateway: str = "fake",
        ret: str = "",
    ) -> NewMessage:
        created = self.clock.now - age
        texts = [f"part {seq}" for seq in range(1, parts + 1)]
        events = wanted_events(sender, notify, auto_submitted=auto_submitted)
        rcpt_dsn = {k: v for k, v in (("NOTIFY", notify), ("ORCPT", orcpt), ("ENVID", envid), ("RET", ret)) if v}
        return NewMessage(
            id=qid,
            created=created,
            sender=sender,
            recipient=f'"sms:{number}?pass=s3cret"@sms.example.test',
            number=number,
            gateway=gateway,
            encoding="gsm7",
            text=text or "".join(texts),
            parts=tuple(NewPart(seq, t, concatenation_udh(0x7F, parts, seq)) for seq, t in enumerate(texts, 1)),
            dsn=json.dumps(rcpt_dsn),
            headers=json.dumps([["From", sender], ["To", f'"sms:{number}?pass=s3cret"@x'], ["Subject", "Hello"]]),
            mail_id=mail_id,
            notify=events,
            warn_at=warn_time(created, self.delay_warning_time, events),
        )

    # -- what came out --------------------------------------------------------------------------------

    def reports(self, mailbox: str = SENDER) -> list[EmailMessage]:
        """Reports delivered to ``mailbox``, oldest first."""
        new = self.maildir / mailbox / "new"
        if not new.is_dir():
            return []
        found = []
        for path in sorted(new.iterdir(), key=lambda p: p.name):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found

    def all_report_files(self) -> list[Path]:
        return sorted(self.maildir.glob("*/new/*")) if self.maildir.is_dir() else []

    def mailout_pending(self) -> list[mailout_store.QueuedMail]:
        return mailout_store.pending(self.store.conn)

    async def wait_reports(self, count: int, mailbox: str = SENDER) -> list[EmailMessage]:
        """Until ``count`` reports are in ``mailbox`` and nothing is left in the mail-out queue."""
        await async_wait_until(
            lambda: len(self.reports(mailbox)) >= count and not self.mailout_pending(),
            timeout=WAIT,
            what=f"{count} report(s) for {mailbox}",
        )
        return self.reports(mailbox)

    async def settle(self) -> None:
        """Until the reporter has nothing left to do: no report due and the mail-out queue empty."""

        def idle() -> bool:
            due = self.store.conn.execute("SELECT COUNT(*) FROM message WHERE report_due != 0").fetchone()[0]
            task = self.reporter._task
            return due == 0 and not self.mailout_pending() and (task is None or task.done())

        for _ in range(2):  # the second pass sees what the first one's work left due
            passes = self.reporter.sweeps
            self.scheduler.wake()
            await async_wait_until(lambda: self.reporter.sweeps > passes, timeout=WAIT, what="a reporter pass")  # noqa: B023
            await async_wait_until(idle, timeout=WAIT, what="the reporter to be idle")
