"""Delay warnings, failure and success reports: when the scheduler sends them, on a fake clock.

A real queue, the fake gateway and a mail-out into Maildirs under the state
directory; every report is parsed back as RFC 3464.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.config import Config, GatewayConfig
from mailsms.daemon import Daemon
from mailsms.scheduler import RetryPolicy
from tests.support.lmtp import LmtpClient
from tests.support.reports import SENDER, ReportQueue, recipient_blocks, report_parts, words
from tests.support.scheduling import FakeClock
from tests.support.wait import async_wait_until
from transports import fake
from transports.base import DeliveryReport

OK = "+15550000001"
OK_2 = "+15550000011"
TEMPORARY = "+15550000002"
PERMANENT = "+15550000003"
PERMANENT_2 = "+15550000013"
HANGS = "+15550000006"
SCRIPT = {"temporary_fail": "0002$", "permanent_fail": "00[01]3$", "hang": "6$"}
POLICY = RetryPolicy(
    minimal_backoff_time=300.0, maximal_backoff_time=300.0, maximal_queue_lifetime=3600.0, queue_run_delay=1.0
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
async def queue(tmp_path: Path, store_url: str, clock: FakeClock) -> AsyncIterator[ReportQueue]:
    made = ReportQueue(tmp_path / "var", clock, POLICY, delay_warning_time=600.0, store_url=store_url)
    try:
        yield made
    finally:
        await made.close()


async def wake_after(queue: ReportQueue, seconds: float) -> None:
    queue.clock.advance(seconds)
    queue.scheduler.wake()


# -- failure -------------------------------------------------------------------------------------


async def test_a_permanent_failure_sends_one_failure_report_quoting_the_text(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", PERMANENT, text="Meeting moved: at 3pm", orcpt="rfc822;bob+2B1@example.com", envid="E1")
    await queue.wait_state("SMS1", "failed")

    (report,) = await queue.wait_reports(1)
    assert report["Subject"] == "Undelivered SMS Returned to Sender"
    assert report["To"] == SENDER
    (block,) = recipient_blocks(report)
    assert block["Final-Recipient"] == f'rfc822; "sms:{PERMANENT}?pass=(set)"@sms.example.test'
    assert block["Original-Recipient"] == "rfc822; bob+1@example.com"
    assert (block["Action"], block["Status"]) == ("failed", "5.0.0")
    assert block["Diagnostic-Code"] == f"X-mailsms; fake gateway: permanent failure for {PERMANENT}"
    assert block["X-Mailsms-Queue-ID"] == "SMS1"
    assert report_parts(report)[1].get_payload()[0]["Original-Envelope-Id"] == "E1"
    assert "> Meeting moved: at 3pm" in words(report)
    assert report_parts(report)[2].get_content_type() == "text/rfc822-headers"
    assert all(b"s3cret" not in path.read_bytes() for path in queue.all_report_files())


@pytest.mark.parametrize(
    ("why", "changes"),
    [
        ("null sender", {"sender": ""}),
        ("NOTIFY=NEVER", {"notify": "NEVER"}),
        ("auto-submitted", {"auto_submitted": True}),
        ("NOTIFY=SUCCESS only", {"notify": "SUCCESS"}),
    ],
)
async def test_no_failure_report_when_the_sender_must_not_get_one(
    queue: ReportQueue, why: str, changes: dict[str, object]
) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", PERMANENT, **changes)  # type: ignore[arg-type]
    await queue.wait_state("SMS1", "failed")
    await queue.settle()
    assert queue.all_report_files() == [], why


async def test_expiry_is_a_failure_with_status_4_4_7(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", TEMPORARY, age=POLICY.maximal_queue_lifetime)
    await queue.wait_state("SMS1", "expired")
    await queue.settle()  # a delay warning may come first: the message is already past its warning time

    (report,) = [r for r in await queue.wait_reports(1) if r["Subject"].startswith("Undelivered")]
    (block,) = recipient_blocks(report)
    assert (block["Action"], block["Status"]) == ("failed", "4.4.7")
    assert "message expired after 60 minutes" in block["Diagnostic-Code"]


async def test_a_multipart_sms_with_a_failed_part_says_which_part_failed(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", OK, parts=3)
    await queue.wait_state("SMS1", "submitted")
    for seq, delivered in ((1, True), (2, False), (3, True)):
        report = DeliveryReport("fake", fake.message_id("SMS1", seq), delivered, "UNDELIV err:001", "5.1.1")
        await queue.scheduler.on_report(report)

    (report,) = await queue.wait_reports(1)
    (block,) = recipient_blocks(report)
    assert (block["Action"], block["Status"], block["X-Mailsms-Failed-Parts"]) == ("failed", "5.1.1", "2 of 3")
    assert "part 2 of 3 failed; the other parts were sent" in words(report)


# -- several recipients of one mail ------------------------------------------------------------------


async def test_recipients_of_one_mail_that_fail_together_get_one_report(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    rows = [
        queue.row("M1", PERMANENT, mail_id="M1"),
        queue.row("M2", OK, mail_id="M1"),
        queue.row("M3", PERMANENT_2, mail_id="M1"),
    ]
    await queue.store.enqueue(rows)
    queue.scheduler.wake()
    await queue.wait_state("M1", "failed")
    await queue.wait_state("M3", "failed")

    (report,) = await queue.wait_reports(1)
    await queue.settle()
    assert len(queue.reports()) == 1
    numbers = [b["Final-Recipient"].split(":")[1].split("?")[0] for b in recipient_blocks(report)]
    assert sorted(numbers) == [PERMANENT, PERMANENT_2]
    assert "to the numbers below" in words(report)


async def test_a_report_waits_for_a_hanging_recipient_of_its_mail_only_for_the_gather_time(
    queue: ReportQueue,
) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.store.enqueue([queue.row("M1", PERMANENT, mail_id="M1"), queue.row("M2", HANGS, mail_id="M1")])
    queue.scheduler.wake()
    await queue.wait_state("M1", "failed")
    queue.scheduler.wake()
    await async_wait_until(lambda: queue.reporter._task is None or queue.reporter._task.done(), what="a sweep")
    assert queue.reports() == []  # M2 is still being tried

    await wake_after(queue, queue.gather_time)
    (report,) = await queue.wait_reports(1)
    assert len(recipient_blocks(report)) == 1


# -- delay warnings -----------------------------------------------------------------------------------


async def test_one_delay_warning_after_delay_warning_time_however_many_retries(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    created = queue.clock.now
    await queue.send("SMS1", TEMPORARY, text="Call me")
    await queue.wait_attempts("SMS1", 1, "deferred")
    await wake_after(queue, 300.0)
    await queue.wait_attempts("SMS1", 2, "deferred")
    await queue.settle()
    assert queue.reports() == []  # 300 s < delay_warning_time

    await wake_after(queue, 300.0)  # 600 s: the warning is due, and so is the third attempt
    (report,) = await queue.wait_reports(1)
    for attempts in (3, 4, 5):
        await queue.wait_attempts("SMS1", attempts, "deferred")
        await wake_after(queue, 300.0)
    await queue.settle()

    assert len(queue.reports()) == 1
    assert report["Subject"] == "Delayed SMS (still being retried)"
    (block,) = recipient_blocks(report)
    assert (block["Action"], block["Status"]) == ("delayed", "4.0.0")
    assert block["Diagnostic-Code"] == f"X-mailsms; fake gateway: temporary failure for {TEMPORARY}"
    assert block["Will-Retry-Until"] == "Tue, 14 Nov 2023 23:13:20 +0000"  # created + maximal_queue_lifetime
    assert created == 1_700_000_000.0
    assert "> Call me" in words(report)


async def test_a_message_sent_before_its_warning_time_gets_no_warning(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", OK)
    await queue.wait_state("SMS1", "submitted")
    await wake_after(queue, 3600.0)
    await queue.settle()
    assert queue.reports() == []
    row = queue.store.conn.execute("SELECT warn_at FROM message WHERE id = 'SMS1'").fetchone()
    assert row == (None,)  # the stale warning time was cleared, so it is never looked at again


async def test_delay_warning_time_zero_turns_warnings_off(tmp_path: Path, clock: FakeClock, store_url: str) -> None:
    queue = ReportQueue(tmp_path / "var", clock, POLICY, delay_warning_time=0.0, store_url=store_url)
    try:
        await queue.fake(**SCRIPT)
        queue.start()
        await queue.send("SMS1", TEMPORARY)
        await queue.wait_attempts("SMS1", 1, "deferred")
        await wake_after(queue, 1200.0)
        await queue.wait_attempts("SMS1", 2, "deferred")
        await queue.settle()
        assert queue.reports() == []
    finally:
        await queue.close()


# -- success ---------------------------------------------------------------------------------------------


async def test_notify_success_with_delivery_reports_gives_a_delivered_report(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT, report="delivered")
    queue.start()
    await queue.send("SMS1", OK, notify="SUCCESS,FAILURE", parts=2)
    await queue.wait_state("SMS1", "delivered")

    (report,) = await queue.wait_reports(1)
    assert report["Subject"] == "Successful SMS Delivery Report"
    (block,) = recipient_blocks(report)
    assert (block["Action"], block["Status"]) == ("delivered", "2.0.0")
    await queue.settle()
    assert len(queue.reports()) == 1  # not "relayed" as well: this gateway reports delivery


async def test_notify_success_without_delivery_reports_gives_relayed(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", OK, notify="SUCCESS")
    await queue.wait_state("SMS1", "submitted")

    (report,) = await queue.wait_reports(1)
    (block,) = recipient_blocks(report)
    assert (block["Action"], block["Status"]) == ("relayed", "2.0.0")


async def test_no_success_report_unless_asked(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT, report="delivered")
    queue.start()
    await queue.send("SMS1", OK)
    await queue.wait_state("SMS1", "delivered")
    await queue.settle()
    assert queue.reports() == []


# -- one report per message and event, across restarts ---------------------------------------------------


async def test_a_failure_committed_before_a_crash_is_reported_after_the_restart(
    tmp_path: Path, clock: FakeClock, store_url: str
) -> None:
    state = tmp_path / "var"
    without_reports = ReportQueue(state, clock, POLICY, with_reporter=False, store_url=store_url)
    try:
        await without_reports.fake(**SCRIPT)
        without_reports.start()
        await without_reports.send("SMS1", PERMANENT)
        await without_reports.wait_state("SMS1", "failed")
    finally:
        await without_reports.close()

    queue = ReportQueue(state, clock, POLICY, store_url=store_url)
    try:
        await queue.fake(**SCRIPT)
        queue.start()
        (report,) = await queue.wait_reports(1)
        assert recipient_blocks(report)[0]["Action"] == "failed"
    finally:
        await queue.close()


async def test_a_report_is_never_sent_twice_across_restarts(queue: ReportQueue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", PERMANENT)
    await queue.wait_reports(1)
    await queue.stop()

    await queue.restart([queue.new_fake(**SCRIPT)])
    queue.start()
    await queue.settle()
    await wake_after(queue, 3600.0)
    await queue.settle()
    assert len(queue.reports()) == 1


async def test_a_report_queued_but_not_delivered_before_a_crash_is_delivered_once(
    queue: ReportQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    await queue.fake(**SCRIPT)
    monkeypatch.setattr(queue.mailout, "concurrency", 0)  # this process never gets to deliver its mail
    queue.start()
    await queue.send("SMS1", PERMANENT)
    await async_wait_until(lambda: len(queue.mailout_pending()) == 1, what="the report in the mail-out queue")
    await queue.stop()
    assert queue.reports() == []

    await queue.restart([queue.new_fake(**SCRIPT)])
    queue.start()
    await queue.wait_reports(1)
    await queue.settle()
    assert len(queue.reports()) == 1


# -- through ingest: a real LMTP session with several recipients and RET=FULL -----------------------------


async def lmtp_mail(daemon: Daemon, mail_from: str, rcpts: list[str], message: bytes) -> list[str]:
    lmtp = daemon.bound["lmtp"]
    client = await LmtpClient.connect(lmtp.host, lmtp.port)
    try:
        await client.command("LHLO client.example.test")
        assert (await client.command(f"MAIL FROM:{mail_from}")).code == 250
        for rcpt in rcpts:
            assert (await client.command(f"RCPT TO:{rcpt}")).code == 250
        assert (await client.command("DATA")).code == 354
        client.writer.write(message + b".\r\n")
        return [(await client.read_reply()).text for _ in rcpts]
    finally:
        await client.close()


@pytest.fixture
async def failing_daemon(config: Config) -> AsyncIterator[Daemon]:
    gateway = GatewayConfig(id="fake", type="fake", options=fake.Options(permanent_fail="0003$|0013$"))
    running = Daemon(dataclasses.replace(config, gateways=(gateway,)))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_an_lmtp_mail_to_two_failing_numbers_gets_one_report_with_the_whole_original(
    failing_daemon: Daemon, state_dir: Path
) -> None:
    rcpts = [f'"sms:{PERMANENT}?pass=s3cret"@sms.example.test', f'"sms:{PERMANENT_2}"@sms.example.test']
    message = (
        f"From: Alice <{SENDER}>\r\nTo: {rcpts[0]}, {rcpts[1]}\r\nSubject: Meeting moved\r\n"
        "Message-ID: <m1@example.com>\r\n\r\nThe meeting is at 3pm now.\r\n"
    ).encode()
    replies = await lmtp_mail(
        failing_daemon,
        f"<{SENDER}> RET=FULL ENVID=QQ314",
        [f"<{rcpts[0]}> NOTIFY=FAILURE ORCPT=rfc822;{rcpts[0].replace('+', '+2B')}", f"<{rcpts[1]}>"],
        message,
    )
    assert all(r.startswith("2.0.0") for r in replies), replies

    new = state_dir / "mail" / SENDER / "new"
    # Maildir: a file appears in new/ only once complete (written in tmp/, then renamed)
    await async_wait_until(lambda: new.is_dir() and any(new.iterdir()), timeout=10, what="the report")
    (path,) = new.iterdir()
    data = path.read_bytes()
    assert b"s3cret" not in data

    import email
    import email.policy

    report = email.message_from_bytes(data, policy=email.policy.default)
    blocks = recipient_blocks(report)  # type: ignore[arg-type]
    assert [b["Status"] for b in blocks] == ["5.0.0", "5.0.0"]
    assert blocks[0]["Original-Recipient"] == f'rfc822; "sms:{PERMANENT}?pass=(set)"@sms.example.test'
    assert "Original-Recipient" not in blocks[1]  # no ORCPT given for it
    assert report_parts(report)[1].get_payload()[0]["Original-Envelope-Id"] == "QQ314"  # type: ignore[arg-type]
    returned = report_parts(report)[2]  # type: ignore[arg-type]
    assert returned.get_content_type() == "message/rfc822"
    assert returned.get_payload()[0]["Subject"] == "Meeting moved"
    assert "> Meeting moved: The meeting is at 3pm now." in words(report)  # type: ignore[arg-type]


async def test_a_kept_ret_full_original_goes_into_the_report_and_is_dropped_after_it(queue: ReportQueue) -> None:
    from mailsms.store.reports import KeptOriginal

    await queue.fake(**SCRIPT)
    queue.start()
    original = b'From: alice@example.com\r\nTo: "sms:+15550000003?pass=s3cret"@x\r\nSubject: Full\r\n\r\nWhole body\r\n'
    await queue.store.enqueue([queue.row("SMS1", PERMANENT, ret="FULL")], KeptOriginal("SMS1", original))
    queue.scheduler.wake()

    (report,) = await queue.wait_reports(1)
    returned = report_parts(report)[2]
    assert returned.get_content_type() == "message/rfc822"
    assert returned.get_payload()[0]["Subject"] == "Full"
    assert all(b"s3cret" not in path.read_bytes() for path in queue.all_report_files())

    await wake_after(queue, 300.0)  # the clean-up of kept originals runs every 300 s
    await queue.settle()
    await async_wait_until(
        lambda: queue.store.conn.execute("SELECT COUNT(*) FROM original").fetchone()[0] == 0,
        what="the original to be dropped",
    )


async def test_a_report_that_cannot_be_composed_is_given_up_without_holding_up_the_others(
    queue: ReportQueue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from mailsms import reporter

    real = reporter.compose_report

    def broken_for_sms1(due: reporter.Due, **kwargs: object) -> bytes:
        if due.rows[0].id == "SMS1":
            raise RuntimeError("a bug in composing")
        return real(due, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reporter, "compose_report", broken_for_sms1)
    monkeypatch.setattr(logging.getLogger("mailsms"), "propagate", True)
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.send("SMS1", PERMANENT)
    await queue.wait_state("SMS1", "failed")
    await queue.send("SMS2", PERMANENT_2)

    (report,) = await queue.wait_reports(1)
    assert recipient_blocks(report)[0]["X-Mailsms-Queue-ID"] == "SMS2"
    await queue.settle()
    assert "SMS1: the failed report cannot be composed and is given up" in caplog.text
