"""Mail-out: durable, retried, delivered to a Maildir or to an SMTP/LMTP server on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mailsms.config import MailoutConfig
from mailsms.mailout import Mailout
from mailsms.mailout_agents import Agent, MaildirAgent, SmtpAgent, mailbox_name
from mailsms.scheduler import RetryPolicy
from mailsms.store import mailout as mailout_store
from mailsms.store.queue import QueueStore
from tests.support.proc import free_port
from tests.support.scheduling import WAIT, FakeClock
from tests.support.smtpsink import smtp_sink
from tests.support.wait import async_wait_until

POLICY = RetryPolicy(minimal_backoff_time=300.0, maximal_backoff_time=1000.0, maximal_queue_lifetime=3600.0)
MESSAGE = b"From: MAILER-DAEMON@gw.example.test\r\nSubject: hello\r\n\r\nline one\r\n.line with a dot\r\n"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
async def store(open_queue: Callable[[], QueueStore]) -> AsyncIterator[QueueStore]:
    opened = open_queue()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(logging.getLogger("mailsms"), "propagate", True)
    caplog.set_level(logging.INFO, logger="mailsms")
    return caplog


class Running:
    """A mail-out with its worker running, for the three-line tests below."""

    def __init__(self, store: QueueStore, agent: Agent, clock: FakeClock) -> None:
        self.mailout = Mailout(store, agent, "gw.example.test", POLICY, clock=clock)
        self.store = store
        self.task = asyncio.create_task(self.mailout.run())

    def queued(self) -> list[mailout_store.QueuedMail]:
        return mailout_store.pending(self.store.conn)

    async def wait_until(self, predicate: Callable[[], object], what: str) -> None:
        await async_wait_until(predicate, timeout=WAIT, what=what)

    async def close(self) -> None:
        await self.mailout.stop()
        await asyncio.wait_for(self.task, WAIT)


def smtp_agent(relay: str, **changes: object) -> SmtpAgent:
    config = dataclasses.replace(MailoutConfig(mode="smtp", relay=relay, timeout=5.0), **changes)  # type: ignore[arg-type]
    return SmtpAgent(config, "gw.example.test", lmtp=config.mode == "lmtp")


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mailsms.mailout"]


# -- Maildir ----------------------------------------------------------------------------------------


async def test_maildir_delivery_writes_one_file_in_new_and_leaves_the_queue(
    store: QueueStore, clock: FakeClock, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    running = Running(store, MaildirAgent(tmp_path / "mail", "gw.example.test"), clock)
    mail_id = await running.mailout.enqueue("", ["alice@Example.COM"], MESSAGE, origin="test")
    new = tmp_path / "mail" / "alice@example.com" / "new"
    await running.wait_until(lambda: not running.queued() and new.is_dir() and any(new.iterdir()), "a delivered file")
    await running.close()

    (file,) = new.iterdir()
    assert file.read_bytes() == (
        b"Return-Path: <>\nDelivered-To: alice@Example.COM\n"
        b"From: MAILER-DAEMON@gw.example.test\nSubject: hello\n\nline one\n.line with a dot\n"
    )
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert list((tmp_path / "mail" / "alice@example.com" / "tmp").iterdir()) == []
    assert (tmp_path / "mail" / "alice@example.com" / "cur").is_dir()
    assert f"{mail_id}: from=<>, size={len(MESSAGE)}, nrcpt=1, origin=test" in lines(logs)
    assert any(f"{mail_id}: to=<alice@Example.COM>, relay=maildir" in line and "status=sent" in line
               for line in lines(logs))  # fmt: skip


async def test_two_mails_to_one_maildir_get_unique_names(store: QueueStore, clock: FakeClock, tmp_path: Path) -> None:
    running = Running(store, MaildirAgent(tmp_path / "mail", "gw:example/test"), clock)
    for _ in range(5):
        await running.mailout.enqueue("", ["bob@example.com"], MESSAGE)
    new = tmp_path / "mail" / "bob@example.com" / "new"
    await running.wait_until(lambda: new.is_dir() and len(list(new.iterdir())) == 5, "five files")
    await running.close()
    assert all(r"gw\072example\057test" in f.name for f in new.iterdir())


@pytest.mark.parametrize("recipient", ["../etc@example.com", ".hidden", "a/b@example.com", ""])
def test_no_maildir_is_named_after_an_unsafe_address(recipient: str) -> None:
    with pytest.raises(ValueError, match="no Maildir"):
        mailbox_name(recipient)


async def test_an_unsafe_recipient_is_refused_for_good_and_logged(
    store: QueueStore, clock: FakeClock, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    running = Running(store, MaildirAgent(tmp_path / "mail", "gw.example.test"), clock)
    mail_id = await running.mailout.enqueue("", ["../x@example.com"], MESSAGE)
    await running.wait_until(lambda: not running.queued(), "the mail to leave the queue")
    await running.close()
    assert not (tmp_path / "x@example.com").exists()
    assert any(f"{mail_id}: to=<../x@example.com>, relay=maildir" in line and "status=bounced" in line
               for line in lines(logs))  # fmt: skip
    assert f"{mail_id}: undeliverable report dropped: no report is made about a report" in lines(logs)


# -- SMTP and LMTP ---------------------------------------------------------------------------------


async def test_smtp_temporary_failure_is_retried_after_the_backoff_then_delivered(
    store: QueueStore, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    async with smtp_sink("451 4.3.0 try again later") as sink:
        running = Running(store, smtp_agent(sink.relay), clock)
        mail_id = await running.mailout.enqueue("", ["alice@example.com"], MESSAGE)
        await running.wait_until(lambda: [m.attempts for m in running.queued()] == [1], "one failed attempt")

        assert sink.handler.received == []
        (queued,) = running.queued()
        assert queued.next_attempt == clock.now + 300.0

        clock.advance(300.0)
        running.mailout.wake()
        await running.wait_until(lambda: not running.queued(), "the mail to be accepted")
        await running.close()

    (received,) = sink.handler.received
    assert (received.sender, received.recipients) == ("<>", ("alice@example.com",))
    assert received.data == MESSAGE
    assert sink.handler.rcpt_attempts == ["alice@example.com", "alice@example.com"]
    logged = lines(logs)
    assert any(f"{mail_id}: to=<alice@example.com>, relay={sink.relay}" in x and "dsn=4.3.0, status=deferred" in x
               for x in logged)  # fmt: skip
    assert any("dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as SINK1)" in x for x in logged)


async def test_smtp_permanent_refusal_is_logged_and_the_mail_dropped(
    store: QueueStore, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    async with smtp_sink("550 5.1.1 no such user") as sink:
        running = Running(store, smtp_agent(sink.relay), clock)
        mail_id = await running.mailout.enqueue("", ["nobody@example.com"], MESSAGE)
        await running.wait_until(lambda: not running.queued(), "the mail to leave the queue")
        await running.close()
    assert sink.handler.received == []
    assert any("dsn=5.1.1, status=bounced (550 5.1.1 no such user)" in x for x in lines(logs))
    assert f"{mail_id}: undeliverable report dropped: no report is made about a report" in lines(logs)


async def test_one_refused_recipient_does_not_hold_up_the_others(store: QueueStore, clock: FakeClock) -> None:
    async with smtp_sink("250 2.1.5 OK", "452 4.2.2 mailbox full") as sink:
        running = Running(store, smtp_agent(sink.relay), clock)
        await running.mailout.enqueue("", ["a@example.com", "b@example.com"], MESSAGE)
        await running.wait_until(lambda: [m.recipients for m in running.queued()] == [("b@example.com",)], "b left")
        assert [r.recipients for r in sink.handler.received] == [("a@example.com",)]
        clock.advance(300.0)
        running.mailout.wake()
        await running.wait_until(lambda: not running.queued(), "b delivered later")
        await running.close()
    assert [r.recipients for r in sink.handler.received] == [("a@example.com",), ("b@example.com",)]


async def test_smtp_auth_logs_in_and_never_logs_the_password(
    store: QueueStore, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    async with smtp_sink() as sink:
        agent = smtp_agent(sink.relay, username="mailsms", password="sesame")
        running = Running(store, agent, clock)
        await running.mailout.enqueue("", ["alice@example.com"], MESSAGE)
        await running.wait_until(lambda: not running.queued(), "the mail to be accepted")
        await running.close()
    assert sink.handler.logins == [("mailsms", "sesame")]
    assert [r.login for r in sink.handler.received] == ["mailsms"]
    assert "sesame" not in "\n".join(lines(logs))


async def test_smtp_wrong_password_is_a_temporary_failure(store: QueueStore, clock: FakeClock) -> None:
    async with smtp_sink() as sink:
        running = Running(store, smtp_agent(sink.relay, username="mailsms", password="wrong"), clock)
        await running.mailout.enqueue("", ["alice@example.com"], MESSAGE)
        await running.wait_until(lambda: [m.attempts for m in running.queued()] == [1], "a failed attempt")
        await running.close()
    assert sink.handler.received == []


async def test_starttls_required_but_not_offered_keeps_the_mail(store: QueueStore, clock: FakeClock) -> None:
    async with smtp_sink() as sink:
        running = Running(store, smtp_agent(sink.relay, starttls=True), clock)
        await running.mailout.enqueue("", ["alice@example.com"], MESSAGE)
        await running.wait_until(lambda: [m.attempts for m in running.queued()] == [1], "a failed attempt")
        await running.close()
    assert sink.handler.received == []
    store_reason = store.conn.execute("SELECT reason FROM mailout").fetchone()[0]
    assert "offers no STARTTLS (mailout.starttls)" in store_reason


async def test_lmtp_delivers_each_recipient_in_its_own_transaction(store: QueueStore, clock: FakeClock) -> None:
    async with smtp_sink("250 2.1.5 OK", "550 5.1.1 unknown user", lmtp=True) as sink:
        running = Running(store, smtp_agent(sink.relay, mode="lmtp"), clock)
        await running.mailout.enqueue("", ["a@example.com", "b@example.com", "c@example.com"], MESSAGE)
        await running.wait_until(lambda: not running.queued(), "the mail to leave the queue")
        await running.close()
    assert [r.recipients for r in sink.handler.received] == [("a@example.com",), ("c@example.com",)]
    assert sink.handler.rcpt_attempts == ["a@example.com", "b@example.com", "c@example.com"]


async def test_a_relay_that_is_down_is_a_temporary_failure(
    store: QueueStore, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    relay = f"127.0.0.1:{free_port()}"
    running = Running(store, smtp_agent(relay), clock)
    await running.mailout.enqueue("", ["alice@example.com"], MESSAGE)
    await running.wait_until(lambda: [m.attempts for m in running.queued()] == [1], "a failed attempt")
    await running.close()
    assert any(f"relay={relay}" in x and "dsn=4.4.1, status=deferred (connect to" in x for x in lines(logs))


async def test_a_mail_temporarily_failing_past_the_queue_lifetime_is_dropped(
    store: QueueStore, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    relay = f"127.0.0.1:{free_port()}"
    running = Running(store, smtp_agent(relay), clock)
    mail_id = await running.mailout.enqueue("", ["alice@example.com"], MESSAGE)
    await running.wait_until(lambda: [m.attempts for m in running.queued()] == [1], "a failed attempt")
    clock.advance(POLICY.maximal_queue_lifetime)
    running.mailout.wake()
    await running.wait_until(lambda: not running.queued(), "the mail to expire")
    await running.close()
    assert any(f"{mail_id}: to=<alice@example.com>" in x and "status=expired" in x for x in lines(logs))


async def test_a_queued_mail_survives_a_restart_and_is_delivered_by_the_next_process(
    tmp_path: Path, open_queue: Callable[[], QueueStore], clock: FakeClock
) -> None:
    first = open_queue()
    idle = Mailout(first, MaildirAgent(tmp_path / "mail", "gw.example.test"), "gw.example.test", POLICY, clock=clock)
    await idle.enqueue("", ["alice@example.com"], MESSAGE)  # no worker runs: a crash right after the commit
    first.close()

    second = open_queue()
    try:
        running = Running(second, MaildirAgent(tmp_path / "mail", "gw.example.test"), clock)
        new = tmp_path / "mail" / "alice@example.com" / "new"
        await running.wait_until(lambda: not running.queued() and new.is_dir(), "the mail to be delivered")
        await running.close()
    finally:
        second.close()
    assert len(list(new.iterdir())) == 1
