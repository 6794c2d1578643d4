"""A real Postfix asking mailsms's milter about sms: recipients at RCPT time (``smtpd_milters``)."""

from __future__ import annotations

import smtplib

import pytest

from tests.integration.conftest import MailsmsStarter, PostfixFactory
from tests.support.proc import free_port

pytestmark = pytest.mark.integration

SENDER = "alice@client.example.test"
COPY = "copy@mailbox.example.test"  # a plain recipient: the milter passes it, and its copy shows the headers
BAD_MAXMSGS = '"sms:+15551234567?maxmsgs=abc"@sms.example.test'
PREMIUM = '"sms:+19005550123"@sms.example.test'
GOOD = '"sms:+15551234567?maxmsgs=2&pass=s3cret"@sms.example.test'


def milter_cf(port: int) -> str:
    return f"smtpd_milters = inet:127.0.0.1:{port}\nmilter_protocol = 6\nmilter_default_action = tempfail\n"


def test_postfix_refuses_bad_sms_recipients_at_rcpt_and_passes_good_ones_scrubbed(
    start_mailsms: MailsmsStarter, postfix_instance: PostfixFactory
) -> None:
    milter_port = free_port()
    mailsms = start_mailsms(config=f'[milter]\nlisten = "inet:127.0.0.1:{milter_port}"\n')
    postfix = postfix_instance(mailsms.lmtp_port, mailboxes=[COPY], extra_config=milter_cf(milter_port))

    with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, local_hostname="client.mailsms.test", timeout=20) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        code, text = smtp.rcpt(BAD_MAXMSGS)
        assert (code, text[:5]) == (553, b"5.1.3"), text
        code, text = smtp.rcpt(PREMIUM)
        assert (code, text[:5]) == (550, b"5.7.1"), text
        assert smtp.rcpt(GOOD)[0] == 250
        assert smtp.rcpt(COPY)[0] == 250
        body = f"From: <{SENDER}>\r\nTo: {GOOD}, <{COPY}>\r\nSubject: hi\r\n\r\nSee you at 3.\r\n"
        assert smtp.data(body.encode())[0] == 250

    [copy] = postfix.wait_for_mail(COPY)
    head = copy.partition(b"\n\n")[0]
    assert b"s3cret" not in copy
    assert b'To: "sms:+15551234567?maxmsgs=2&pass=(set)"@sms.example.test' in head
    postfix.wait_for_log(
        r'to=<"sms:\+15551234567\?maxmsgs=2&pass=s3cret"@sms\.example\.test>, relay=127[^\n]*status=sent'
    )
    assert "s3cret" not in mailsms.stop()
