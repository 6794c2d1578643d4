"""Replies by SMS through a real Postfix: mail -> SMS -> reply SMS -> threaded mail in the sender's Maildir.

Postfix hands ``sms:`` mail to ``mailsms serve`` over LMTP; the outbox gateway
takes the SMS; a reply comes in over HTTP as a gateway posts it; mailsms
sends the mail for it back to Postfix over SMTP (``mailout.mode = "smtp"``),
which delivers it into the local Maildir of the mailbox (virtual(8)).
"""

from __future__ import annotations

import email
import email.policy
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest

from mailsms.dkim_sign import generate_key
from tests.integration.conftest import MailsmsProcess, MailsmsStarter, PostfixFactory
from tests.support.postfix import PostfixInstance
from tests.support.proc import free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

LOCAL = "mail.example.test"
ALICE = f"alice@{LOCAL}"
BOB = f"bob@{LOCAL}"
POSTMASTER = f"postmaster@{LOCAL}"
NUMBER = "+15551234567"
SMS = f'"sms:{NUMBER}"@sms.example.test'
WAIT = 30.0
CONFIG = """\
[inbound]
local_domains = ["{local}"]
from_template = "sms:%s@sms.example.test"
unmatched_recipient = "{unmatched}"

[mailout]
mode = "smtp"
relay = "127.0.0.1:{smtpd_port}"
hostname = "gw.mailsms.test"
dkim_selector = "sms"
dkim_domain = "sms.example.test"
dkim_key_file = "{key_file}"
dkim_algorithm = "ed25519"
"""


@dataclass
class Bridge:
    """Postfix with local Maildirs and mailsms, each sending to the other."""

    postfix: PostfixInstance
    mailsms: MailsmsProcess
    dkim_record: str

    def mail_to_sms(self, sender: str, subject: str, message_id: str, recipient: str = SMS) -> None:
        mail = (
            f"From: <{sender}>\r\nTo: {recipient}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\r\n"
            "Lunch at noon?\r\n"
        ).encode()
        assert self.postfix.submit(sender, [recipient], mail) == {}

    def sms_to(self, number: str) -> list[dict[str, Any]]:
        files = sorted((self.mailsms.state / "outbox").glob("*.json"))
        return [doc for doc in (json.loads(f.read_text()) for f in files) if doc["to"] == number]

    def wait_sms(self, number: str, count: int) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.sms_to(number)) >= count, timeout=WAIT, what=f"{count} SMS to {number}")
        return self.sms_to(number)

    def links(self) -> int:
        return int(self.mailsms.query("SELECT COUNT(*) FROM reply_link")[0][0])

    def wait_links(self, count: int) -> None:
        wait_until(lambda: self.links() >= count, timeout=WAIT, what=f"{count} reply link(s)")

    def reply(self, text: str, sender: str = NUMBER) -> str:
        """An MO posted to /inbound/outbox as a gateway would; its id."""
        body = urllib.parse.urlencode({"from": sender, "to": "12345", "text": text}).encode()
        request = urllib.request.Request(f"{self.mailsms.http_url}/inbound/outbox", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(json.loads(answer.read())["id"])

    def mo_state(self, mo_id: str) -> tuple[str, str]:
        found = self.mailsms.query("SELECT state, routed_to FROM inbound WHERE id = ?", (mo_id,))
        return (str(found[0][0]), str(found[0][1])) if found else ("", "")

    def delivered(self, mo_id: str) -> tuple[str, str]:
        """The MO's state once its mail left the mail-out queue (accepted by Postfix, or refused)."""
        wait_until(lambda: self.mo_state(mo_id)[0] not in ("", "received", "part", "mailed"), timeout=WAIT,
                   what=f"MO {mo_id} delivered")  # fmt: skip
        return self.mo_state(mo_id)

    def wait_mail(self, address: str, count: int = 1) -> list[EmailMessage]:
        return [parse(raw) for raw in self.postfix.wait_for_mail(address, count, timeout=WAIT)]

    def verifies(self, raw: bytes) -> bool:
        txt = self.dkim_record.encode()
        return bool(dkim.verify(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), dnsfunc=lambda n, timeout=5: txt))


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def bridge(start_mailsms: MailsmsStarter, postfix_instance: PostfixFactory, tmp_path: Path) -> Bridge:
    return make_bridge(start_mailsms, postfix_instance, tmp_path, unmatched="")


def make_bridge(start: MailsmsStarter, postfix_instance: PostfixFactory, tmp_path: Path, unmatched: str) -> Bridge:
    key = generate_key("ed25519")
    key_file = tmp_path / "dkim.key"
    key_file.write_bytes(key.private)
    lmtp_port = free_port()
    postfix = postfix_instance(lmtp_port, mailboxes=[ALICE, BOB, POSTMASTER])
    config = CONFIG.format(local=LOCAL, unmatched=unmatched, smtpd_port=postfix.smtpd_port, key_file=key_file)
    mailsms = start(lmtp_port, config=config, http_port=free_port())
    return Bridge(postfix, mailsms, key.txt_value())


def test_a_reply_sms_reaches_the_senders_maildir_through_postfix_threaded_and_signed(bridge: Bridge) -> None:
    bridge.mail_to_sms(ALICE, "Lunch?", "<lunch-1@mail.example.test>")
    (sms,) = bridge.wait_sms(NUMBER, 1)
    assert sms["parts"][0]["text"].startswith("Lunch?: Lunch at noon?")
    bridge.wait_links(1)

    mo_id = bridge.reply("Yes, at noon 👍")

    (raw,) = bridge.postfix.wait_for_mail(ALICE, 1, timeout=WAIT)
    reply = parse(raw)
    assert str(reply["From"]) == f"{NUMBER} <{SMS}>"  # the local part quoted, as RFC 5322 wants
    (back_to,) = reply["From"].addresses
    assert (back_to.username, back_to.domain) == (f"sms:{NUMBER}", "sms.example.test")
    assert reply["To"] == ALICE
    assert reply["In-Reply-To"] == reply["References"] == "<lunch-1@mail.example.test>"
    assert reply["Subject"] == "Re: Lunch?"
    assert "by postfix.mailsms.test" in reply["Received"]  # Postfix delivered it, not mailsms itself
    assert reply.get_content().replace("\r\n", "\n") == "Yes, at noon 👍\n"
    assert bridge.verifies(raw)
    assert bridge.delivered(mo_id) == ("delivered", ALICE)

    # Replying to that mail by email goes out as SMS again: the loop closes.
    bridge.mail_to_sms(ALICE, "Re: Lunch?", "<lunch-2@mail.example.test>", recipient=back_to.addr_spec)
    bridge.wait_sms(NUMBER, 2)


def test_an_email_tag_reaches_the_other_local_mailbox(bridge: Bridge) -> None:
    bridge.mail_to_sms(ALICE, "Lunch?", "<lunch-1@mail.example.test>")
    bridge.wait_links(1)
    mo_id = bridge.reply(f"#{BOB}# Tell Alice yes")
    (mail,) = bridge.wait_mail(BOB)
    assert mail.get_content().replace("\r\n", "\n") == "Tell Alice yes\n"
    assert "In-Reply-To" not in mail
    assert bridge.delivered(mo_id) == ("delivered", BOB)
    assert bridge.postfix.mail(ALICE) == []


def test_a_foreign_domain_tag_never_reaches_the_mta(bridge: Bridge) -> None:
    mo_id = bridge.reply("#mallory@evil.example# forward this please")
    wait_until(lambda: bridge.mo_state(mo_id)[0] == "dropped", timeout=WAIT, what="the SMS to be dropped")
    log = bridge.mailsms.stop()
    assert "tag at evil.example is not in inbound.local_domains: ignored" in log
    assert "evil.example" not in bridge.postfix.log_text()
    assert bridge.postfix.queue() == []
    assert not bridge.mailsms.query("SELECT id FROM mailout")


def test_two_senders_to_one_number_get_the_replier_a_conflict_sms(
    start_mailsms: MailsmsStarter, postfix_instance: PostfixFactory, tmp_path: Path
) -> None:
    bridge = make_bridge(start_mailsms, postfix_instance, tmp_path, unmatched=POSTMASTER)
    bridge.mail_to_sms(ALICE, "From Alice", "<a-1@mail.example.test>")
    bridge.mail_to_sms(BOB, "From Bob", "<b-1@mail.example.test>")
    bridge.wait_links(2)

    mo_id = bridge.reply("Who is this?")

    conflict = bridge.wait_sms(NUMBER, 3)[-1]
    assert conflict["parts"][0]["text"].startswith("Your reply could not be delivered: several people wrote")
    (kept,) = bridge.wait_mail(POSTMASTER)
    assert kept.get_content().replace("\r\n", "\n") == "Who is this?\n"
    assert bridge.delivered(mo_id) == ("delivered", POSTMASTER)
    assert bridge.postfix.mail(ALICE) == bridge.postfix.mail(BOB) == []
