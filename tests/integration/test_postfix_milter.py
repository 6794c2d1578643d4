"""A real Postfix asking mailsms's milter about sms: recipients at RCPT time (``smtpd_milters``)."""

from __future__ import annotations

import re
import smtplib
from pathlib import Path

import pytest

from tests.integration.conftest import MailsmsProcess, MailsmsStarter, PostfixFactory
from tests.support.proc import free_port, run_cli

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


SASL_PASSWORD = "Sasl-Pw-4711"  # alice's password at Postfix; grepped for in every log


def mailsms_cli(mailsms: MailsmsProcess, *args: str) -> str:
    """``mailsms ARGS`` on the running instance's state (``mailsms accounts ...``); its output."""
    config = mailsms.state.with_name("cli.toml")
    config.write_text(f'[state]\ndir = "{mailsms.state}"\n[store]\nurl = "{mailsms.store_url}"\n')
    result = run_cli(["accounts", "--config", str(config), *args], cwd=Path(mailsms.state).parent)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def sent_this_month(mailsms: MailsmsProcess, user: str) -> int:
    match = re.search(r"^sent:\s+(\d+) this month", mailsms_cli(mailsms, "show", user), re.MULTILINE)
    assert match, "no sent: line in mailsms accounts show"
    return int(match.group(1))


def send(port: int, recipient: str, headers: str, login: tuple[str, str] | None = None) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.mailsms.test", timeout=20) as smtp:
        smtp.ehlo()
        if login:
            smtp.login(*login)
        body = f"From: <{SENDER}>\r\nTo: {recipient}, <{COPY}>\r\n{headers}Subject: hi\r\n\r\nSee you at 3.\r\n"
        refused = smtp.sendmail(SENDER, [recipient, COPY], body.encode())
        assert not refused, refused


def test_smtp_auth_at_postfix_names_the_mailsms_account_and_a_forged_header_is_removed(
    start_mailsms: MailsmsStarter, postfix_instance: PostfixFactory
) -> None:
    milter_port = free_port()
    mailsms = start_mailsms(
        config=f'[server]\ntrusted_mta = ["127.0.0.1/32"]\n\n[milter]\nlisten = "inet:127.0.0.1:{milter_port}"\n'
    )
    mailsms_cli(mailsms, "add", "--no-password", "alice")  # authenticated by Postfix, never by mailsms
    postfix = postfix_instance(
        mailsms.lmtp_port, mailboxes=[COPY], extra_config=milter_cf(milter_port), sasl_users={"alice": SASL_PASSWORD}
    )

    authenticated = '"sms:+15551234561"@sms.example.test'
    forged = '"sms:+15551234562"@sms.example.test'
    send(postfix.smtpd_port, authenticated, "X-Mailsms-Auth: mallory\r\n", login=("alice", SASL_PASSWORD))
    send(postfix.smtpd_port, forged, "X-Mailsms-Auth: alice\r\n")

    first, second = postfix.wait_for_mail(COPY, count=2)
    [authenticated_copy] = [m for m in (first, second) if b"+15551234561" in m]
    [forged_copy] = [m for m in (first, second) if b"+15551234562" in m]
    assert re.findall(rb"(?im)^x-mailsms-auth:.*$", authenticated_copy.partition(b"\n\n")[0]) == [
        b"X-Mailsms-Auth: alice"
    ]
    assert b"x-mailsms-auth" not in forged_copy.lower()
    for number in ("1", "2"):
        postfix.wait_for_log(rf'to=<"sms:\+1555123456{number}"@sms\.example\.test>, relay=127[^\n]*status=sent')
    # mailsms counted the authenticated mail, and only it, against alice's account
    assert sent_this_month(mailsms, "alice") == 1
    logged = mailsms.stop()
    assert "untrusted client" not in logged and "names no account" not in logged
    assert SASL_PASSWORD not in logged and SASL_PASSWORD not in postfix.log_text()
