"""A real Postfix delivering sms: mail to ``mailsms serve`` over LMTP.

What a real MTA must see: every recipient gets its own reply, an accepted
recipient leaves Postfix's queue exactly once, a temporary failure keeps the
mail queued and retried, and nothing ever bounces.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any

import pytest

from tests.integration.conftest import MailsmsProcess, MailsmsStarter, PostfixFactory
from tests.support.postfix import PostfixInstance
from tests.support.proc import free_port

pytestmark = pytest.mark.integration

SWAKS = "/usr/bin/swaks"
SENDER = "alice@client.example.test"
SMS_WITH_SECRET = '"sms:+15551234567?maxmsgs=2&pass=s3cret"@sms.example.test'
SMS_OTHER = '"sms:+15557654321?Sender=Alice"@sms.example.test'


def message(*recipients: str) -> bytes:
    return (
        f"From: Alice <{SENDER}>\r\nTo: {', '.join(recipients)}\r\nSubject: Meeting moved\r\n\r\n"
        "The meeting is at 3pm now.\r\n"
    ).encode()


def attempt(recipient: str, lmtp_port: int, status: str, dsn: str = r"\d\.\d+\.\d+", reason: str = r"[^\n]*") -> str:
    """A regexp for Postfix's one log line per delivery attempt to mailsms."""
    relay = rf"(?:127\.0\.0\.1\[127\.0\.0\.1\]:{lmtp_port}|none)"  # none: nothing listened
    return rf"to=<{re.escape(recipient)}>, relay={relay}, [^\n]*dsn={dsn}, status={status} \({reason}\)"


def sent(recipient: str, lmtp_port: int) -> str:
    """Accepted by mailsms; group 1 is mailsms's queue id for this recipient."""
    return attempt(recipient, lmtp_port, "sent", r"2\.0\.0", r"250 2\.0\.0 (\w+) queued as SMS[^\n]*")


def queue_is_empty(entries: list[dict[str, Any]]) -> bool:
    return entries == []


def assert_nothing_bounced(postfix: PostfixInstance) -> None:
    log = postfix.log_text()
    assert "status=bounced" not in log
    assert "postfix/bounce" not in log  # no non-delivery notice was even written


def test_postfix_delivers_a_quoted_sms_recipient_to_mailsms_over_lmtp(
    mailsms_lmtp: MailsmsProcess, postfix_instance: PostfixFactory
) -> None:
    postfix = postfix_instance(mailsms_lmtp.lmtp_port)

    assert postfix.submit(SENDER, [SMS_WITH_SECRET], message(SMS_WITH_SECRET)) == {}

    # Postfix logs the address as it sent it: quotes, '+', '?', '&', '=' intact.
    queue_id = postfix.wait_for_log(sent(SMS_WITH_SECRET, mailsms_lmtp.lmtp_port)).group(1)
    postfix.wait_for_queue(queue_is_empty, what="the mail to leave Postfix's queue")
    assert_nothing_bounced(postfix)
    log = mailsms_lmtp.stop()
    # The same recipient, parameters intact, arrived in mailsms; its pass= value never reaches a log.
    assert f'{queue_id}: from=<{SENDER}>, to=<"sms:+15551234567?maxmsgs=2&pass=(set)"@sms.example.test>' in log
    assert "s3cret" not in log


def test_two_sms_recipients_in_one_mail_each_get_their_own_lmtp_reply(
    mailsms_lmtp: MailsmsProcess, postfix_instance: PostfixFactory
) -> None:
    postfix = postfix_instance(mailsms_lmtp.lmtp_port)

    assert postfix.submit(SENDER, [SMS_WITH_SECRET, SMS_OTHER], message(SMS_WITH_SECRET, SMS_OTHER)) == {}

    ids = [postfix.wait_for_log(sent(rcpt, mailsms_lmtp.lmtp_port)).group(1) for rcpt in (SMS_WITH_SECRET, SMS_OTHER)]
    postfix.wait_for_queue(queue_is_empty, what="the mail to leave Postfix's queue")
    assert ids[0] != ids[1]
    # One transaction for both (INTEROP.md): one "queue active" line, one delivery line per recipient.
    assert len(re.findall(r"nrcpt=2 \(queue active\)", postfix.log_text())) == 1
    for rcpt in (SMS_WITH_SECRET, SMS_OTHER):
        assert len(re.findall(attempt(rcpt, mailsms_lmtp.lmtp_port, r"\w+"), postfix.log_text())) == 1
    assert_nothing_bounced(postfix)
    log = mailsms_lmtp.stop()
    assert all(f"{queue_id}: from=<{SENDER}>" in log for queue_id in ids)


def test_mail_waits_in_postfix_while_mailsms_is_down_and_is_delivered_once_it_is_up(
    start_mailsms: MailsmsStarter, postfix_instance: PostfixFactory
) -> None:
    lmtp_port = free_port()
    postfix = postfix_instance(lmtp_port)

    assert postfix.submit(SENDER, [SMS_WITH_SECRET], message(SMS_WITH_SECRET)) == {}

    postfix.wait_for_log(attempt(SMS_WITH_SECRET, lmtp_port, "deferred", r"4\.4\.1"))
    [entry] = postfix.wait_for_queue(
        lambda entries: (
            [(e["queue_name"], r.get("delay_reason", "")) for e in entries for r in e["recipients"]]
            == [("deferred", f"connect to 127.0.0.1[127.0.0.1]:{lmtp_port}: Connection refused")]
        ),
        what="the recipient in the deferred queue with the connection refused",
    )
    assert entry["queue_name"] == "deferred"
    assert [r["address"] for r in entry["recipients"]] == [SMS_WITH_SECRET]

    mailsms = start_mailsms(lmtp_port)
    postfix.flush()

    postfix.wait_for_log(sent(SMS_WITH_SECRET, lmtp_port))
    postfix.wait_for_queue(queue_is_empty, what="the mail to leave Postfix's queue")
    assert_nothing_bounced(postfix)
    assert "s3cret" not in mailsms.stop()


def test_recipients_over_max_recipients_are_deferred_and_each_delivered_exactly_once(
    start_mailsms: MailsmsStarter, postfix_instance: PostfixFactory
) -> None:
    """mailsms's 452 4.5.3 at RCPT is temporary: Postfix sends the rest later, never one recipient twice."""
    mailsms = start_mailsms(config="[server]\nmax_recipients = 1\n")
    postfix = postfix_instance(mailsms.lmtp_port)

    assert postfix.submit(SENDER, [SMS_WITH_SECRET, SMS_OTHER], message(SMS_WITH_SECRET, SMS_OTHER)) == {}

    postfix.wait_for_log(r"dsn=4\.5\.3, status=deferred", timeout=30)
    # The deferred recipient waits for Postfix's next queue run; a qmgr that found the mail
    # "still being delivered" can leave it longer, so flush as an admin would, until it goes.
    deadline = time.monotonic() + 60
    while True:
        try:
            for rcpt in (SMS_WITH_SECRET, SMS_OTHER):
                postfix.wait_for_log(sent(rcpt, mailsms.lmtp_port), timeout=3)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            postfix.flush()
    postfix.wait_for_queue(queue_is_empty, what="the mail to leave Postfix's queue")
    log = postfix.log_text()
    # Postfix's own order of recipients decides which one waits, so count rather than name it.
    assert len(re.findall(r"dsn=4\.5\.3, status=deferred \([^\n]* said: 452 4\.5\.3 too many recipients", log)) == 1, (
        log
    )
    for rcpt in (SMS_WITH_SECRET, SMS_OTHER):
        assert len(re.findall(sent(rcpt, mailsms.lmtp_port), log)) == 1, log
    assert_nothing_bounced(postfix)


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    assert os.access(SWAKS, os.X_OK), f"{SWAKS} not found: install swaks (apt-get install swaks) to run this test"
    return subprocess.run([SWAKS, *args], capture_output=True, text=True, timeout=15, check=False)


def test_swaks_speaks_lmtp_to_mailsms(mailsms_lmtp: MailsmsProcess) -> None:
    result = swaks("--protocol", "LMTP", "--server", f"127.0.0.1:{mailsms_lmtp.lmtp_port}", "--quit-after", "LHLO")

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^<- {2}220 ", result.stdout, re.MULTILINE)
    assert re.search(r"^<- {2}250 ", result.stdout, re.MULTILINE)


def test_swaks_delivers_to_an_sms_recipient_over_lmtp(mailsms_lmtp: MailsmsProcess) -> None:
    # swaks cannot send to a recipient that starts with '+' (INTEROP.md): a quoted sms: address it can.
    result = swaks(
        "--protocol", "LMTP", "--server", f"127.0.0.1:{mailsms_lmtp.lmtp_port}",
        "--from", SENDER, "--to", '"sms:+15551234567"@sms.example.test',
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^<- {2}250 2\.0\.0 \w+ queued as SMS", result.stdout, re.MULTILINE), result.stdout


def test_a_mail_through_postfix_ends_as_one_outbox_file_with_the_right_parts(
    mailsms_lmtp: MailsmsProcess, postfix_instance: PostfixFactory
) -> None:
    import json

    from tests.support.wait import wait_until

    recipient = '"sms:+15551234567?maxmsgs=3"@sms.example.test'
    body = "Please call me back about the contract. " * 10  # 400 characters: 3 GSM parts with the subject
    mail = f"From: Alice <{SENDER}>\r\nTo: {recipient}\r\nSubject: Call me\r\n\r\n{body}\r\n".encode()
    assert postfix_instance(mailsms_lmtp.lmtp_port).submit(SENDER, [recipient], mail) == {}
    outbox = mailsms_lmtp.state / "outbox"
    wait_until(lambda: len(list(outbox.glob("*.json"))) == 1, timeout=20, what="one outbox file")
    (file,) = outbox.glob("*.json")
    sms = json.loads(file.read_text())
    assert sms["to"] == "+15551234567"
    assert sms["encoding"] == "gsm7"
    assert [p["seq"] for p in sms["parts"]] == [1, 2, 3]
    assert all(p["udh"].startswith("050003") and p["udh"].endswith(f"03{i:02x}") for i, p in enumerate(sms["parts"], 1))
    assert "".join(p["text"] for p in sms["parts"]).startswith("Call me: Please call me back")


def test_a_bad_sms_recipient_comes_back_to_the_sender_as_a_bounce(
    mailsms_lmtp: MailsmsProcess, postfix_instance: PostfixFactory
) -> None:
    bad = '"sms:+12?maxmsgs=3"@sms.example.test'
    postfix = postfix_instance(mailsms_lmtp.lmtp_port)
    assert postfix.submit(SENDER, [bad], message(bad)) == {}
    postfix.wait_for_log(
        attempt(bad, mailsms_lmtp.lmtp_port, "bounced", r"5\.1\.1", r"host [^\n]* said: 550 5\.1\.1 [^\n]*")
    )
    postfix.wait_for_log(r"sender non-delivery notification")
