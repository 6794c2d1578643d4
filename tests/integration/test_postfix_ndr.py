"""Delivery status notifications through a real Postfix, into the sender's Maildir.

Postfix hands sms: mail to ``mailsms serve`` over LMTP; mailsms sends through
the fake gateway, and its reports go back to Postfix over SMTP (``mailout.mode
= "smtp"``), which delivers them to the sender's local Maildir.  Every report
is parsed as RFC 3464.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message

import pytest

from tests.integration.conftest import MailsmsProcess, MailsmsStarter, PostfixFactory
from tests.support.postfix import PostfixInstance
from tests.support.proc import free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

SENDER = "alice@client.example.test"
FAILS = '"sms:+15550000003?pass=s3cret"@sms.example.test'
DEFERS = '"sms:+15550000002"@sms.example.test'
WORKS = '"sms:+15550000001"@sms.example.test'
WAIT = 30.0
CONFIG = """\
[queue]
minimal_backoff_time = "1s"
maximal_backoff_time = "1s"
delay_warning_time = "2s"

[compose]
# Bounces are texted too, so that one can fail and be seen not to get a report.
text_bounces = true

[mailout]
mode = "smtp"
relay = "127.0.0.1:{smtpd_port}"
hostname = "gw.mailsms.test"

[[gateway]]
id = "fake"
type = "fake"
permanent_fail = "0003$"
temporary_fail = "0002$"
report = "delivered"
"""


def mail(recipient: str, subject: str = "Meeting moved", sender: str = SENDER) -> bytes:
    return (
        f"From: Alice <{sender or 'MAILER-DAEMON@client.example.test'}>\r\nTo: {recipient}\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{abs(hash(subject))}@client.example.test>\r\n\r\n"
        "The meeting is at 3pm now.\r\n"
    ).encode()


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def blocks(report: EmailMessage) -> list[Message]:
    status = list(report.iter_parts())[1]
    assert status.get_content_type() == "message/delivery-status"
    payload = status.get_payload()
    assert isinstance(payload, list)
    return payload


def words(report: EmailMessage) -> str:
    payload = next(report.iter_parts()).get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8").replace("\r\n", "\n")


@dataclass
class Setup:
    postfix: PostfixInstance
    mailsms: MailsmsProcess
    _log: str | None = None

    def stop_mailsms(self) -> str:
        """Stop mailsms (once) and return its log."""
        if self._log is None:
            self._log = self.mailsms.stop()
        return self._log

    def queue_id(self, recipient: str) -> str:
        """mailsms's queue id for ``recipient``, from Postfix's log of the LMTP delivery."""
        pattern = rf"to=<{re.escape(recipient)}>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{self.mailsms.lmtp_port}, [^\n]*"
        return self.postfix.wait_for_log(pattern + r"status=sent \(250 2\.0\.0 (\w+) queued as SMS", WAIT).group(1)

    def row(self, queue_id: str) -> tuple[str, int]:
        """(state, attempts) of a message in mailsms's queue, read as ``mailsms queue show`` would."""
        found = self.mailsms.query("SELECT state, attempts FROM message WHERE id = ?", (queue_id,))
        assert found, queue_id
        return str(found[0][0]), int(found[0][1])

    def mailout_empty(self) -> bool:
        return self.mailsms.query("SELECT COUNT(*) FROM mailout")[0][0] == 0

    def wait_row(self, queue_id: str, predicate: object, what: str) -> None:
        assert callable(predicate)
        wait_until(lambda: predicate(*self.row(queue_id)), timeout=WAIT, what=what)

    def quiet(self) -> None:
        """Until nothing is left to send: mailsms's mail-out and Postfix's queue are empty."""
        wait_until(self.mailout_empty, timeout=WAIT, what="mailsms's mail-out queue to empty")
        self.postfix.wait_for_queue(lambda entries: entries == [], timeout=WAIT, what="Postfix's queue to empty")


@pytest.fixture
def setup(start_mailsms: MailsmsStarter, postfix_instance: PostfixFactory) -> Iterator[Setup]:
    lmtp_port = free_port()
    postfix = postfix_instance(lmtp_port, mailboxes=[SENDER])
    mailsms = start_mailsms(lmtp_port, config=CONFIG.format(smtpd_port=postfix.smtpd_port))
    made = Setup(postfix, mailsms)
    yield made
    assert "s3cret" not in made.stop_mailsms()


def test_a_number_that_fails_for_good_ends_as_a_report_in_the_senders_maildir(setup: Setup) -> None:
    assert setup.postfix.submit(SENDER, [FAILS], mail(FAILS)) == {}
    queue_id = setup.queue_id(FAILS)

    (data,) = setup.postfix.wait_for_mail(SENDER, 1, WAIT)
    report = parse(data)
    assert report["Return-Path"] == "<>"
    assert report.get_content_type() == "multipart/report"
    assert report["Subject"] == "Undelivered SMS Returned to Sender"
    per_message, per_recipient = blocks(report)
    assert per_message["Reporting-MTA"] == "dns; gw.mailsms.test"
    assert per_recipient["Final-Recipient"] == 'rfc822; "sms:+15550000003?pass=(set)"@sms.example.test'
    assert per_recipient["Original-Recipient"] == 'rfc822; "sms:+15550000003?pass=(set)"@sms.example.test'
    assert (per_recipient["Action"], per_recipient["Status"]) == ("failed", "5.0.0")
    assert per_recipient["X-Mailsms-Queue-ID"] == queue_id
    assert "> Meeting moved: The meeting is at 3pm now." in words(report)
    headers = list(report.iter_parts())[2]
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Subject: Meeting moved" in headers.get_content()
    assert b"s3cret" not in data
    setup.quiet()
    assert len(setup.postfix.mail(SENDER)) == 1


def test_a_delayed_message_gives_exactly_one_warning(setup: Setup) -> None:
    assert setup.postfix.submit(SENDER, [DEFERS], mail(DEFERS)) == {}
    queue_id = setup.queue_id(DEFERS)

    (data,) = setup.postfix.wait_for_mail(SENDER, 1, WAIT)
    _, tries = setup.row(queue_id)
    # Two more attempts, each a scheduler pass that would send a second warning if it could.
    setup.wait_row(queue_id, lambda state, attempts: attempts >= tries + 2, "two more attempts after the warning")
    setup.quiet()

    assert len(setup.postfix.mail(SENDER)) == 1
    report = parse(data)
    assert report["Subject"] == "Delayed SMS (still being retried)"
    (per_recipient,) = blocks(report)[1:]
    assert (per_recipient["Action"], per_recipient["Status"]) == ("delayed", "4.0.0")
    assert "Will-Retry-Until" in per_recipient
    assert "> Meeting moved: The meeting is at 3pm now." in words(report)


def test_a_bounce_from_the_null_sender_gets_no_report(setup: Setup) -> None:
    assert setup.postfix.submit("", [FAILS], mail(FAILS, subject="Undelivered Mail", sender="")) == {}
    bounce_id = setup.queue_id(FAILS)
    setup.wait_row(bounce_id, lambda state, attempts: state == "failed", "the bounce's SMS to fail")

    # A real sender's mail to the same number afterwards: its report is the only one.
    assert setup.postfix.submit(SENDER, [FAILS], mail(FAILS, subject="Second")) == {}
    (data,) = setup.postfix.wait_for_mail(SENDER, 1, WAIT)
    setup.quiet()

    assert len(setup.postfix.mail(SENDER)) == 1
    second_id = blocks(parse(data))[1]["X-Mailsms-Queue-ID"]
    assert second_id != bounce_id
    log = setup.stop_mailsms()
    assert f"{second_id}: sender non-delivery notification: " in log
    assert f"{bounce_id}: sender non-delivery notification" not in log
    assert f"{bounce_id}: from=<>" in log  # it was queued and sent as SMS, and failed: only no report


def test_notify_success_gives_a_success_report_when_the_phone_has_it(setup: Setup) -> None:
    assert setup.postfix.submit(SENDER, [WORKS], mail(WORKS), rcpt_options=["NOTIFY=SUCCESS"]) == {}
    queue_id = setup.queue_id(WORKS)
    setup.wait_row(queue_id, lambda state, attempts: state == "delivered", "the delivery report")

    (data,) = setup.postfix.wait_for_mail(SENDER, 1, WAIT)
    setup.quiet()
    assert len(setup.postfix.mail(SENDER)) == 1  # Postfix left success notification to mailsms
    report = parse(data)
    assert report["Subject"] == "Successful SMS Delivery Report"
    per_message, per_recipient = blocks(report)
    assert per_message["Reporting-MTA"] == "dns; gw.mailsms.test"
    assert (per_recipient["Action"], per_recipient["Status"]) == ("delivered", "2.0.0")
    assert per_recipient["Final-Recipient"] == f"rfc822; {WORKS}"
