"""Header injection through an SMS: its number and text are the sender's, and must never add or bend a header.

MOs with CR/LF, ``\\r\\nBcc:``, NUL, very long and non-ASCII numbers and texts are
stored as a transport (modem, SMPP) stores them -- the webhook refuses control
characters in ``from`` (checked too) -- and the daemon mails them to an SMTP
sink.  Every mail that arrives has exactly the headers mailsms writes, each a
valid RFC 5322 field on its own line.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.headerregistry import Address
from email.message import EmailMessage
from urllib.parse import quote

from mailsms.config import Config
from mailsms.daemon import Daemon
from tests.security.support import POSTMASTER, route_through_sink
from tests.support.replies import SMS_DOMAIN
from tests.support.smtpsink import Received
from tests.support.web import call, outbox_gateway, with_gateways
from transports.base import IncomingSms

INJECTED = "Bcc: victim@elsewhere.example"
SENDERS = [
    f"+15551230001\r\n{INJECTED}",
    f"+15551230002\n{INJECTED}",
    f"+15551230003\r{INJECTED}",
    f"MyBank\r\n{INJECTED}\r\n\r\nbody",
    "+1555123\x000004",
    "+15551230005\u2028" + INJECTED,
    "+15551230006\x85" + INJECTED,
    "Müller-Bäckerei €",
    "\u202e+15551230008",  # right-to-left override
    '"quoted" <evil@elsewhere.example>',
    "A" * 5000,
    "",
]
TEXTS = [
    f"hello\r\n{INJECTED}",
    f"\r\n\r\n{INJECTED}",
    f"Subject: forged\r\n{INJECTED}\r\n\r\nbody",
    "nul\x00byte\x00" + INJECTED,
    "x" * 20_000 + "\r\n" + INJECTED,
    "日本語のテキスト 😀\r\n" + INJECTED,
    ".\r\nMAIL FROM:<evil@elsewhere.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nDATA\r\n",
    "=?utf-8?Q?=0D=0ABcc:_victim@elsewhere.example?=",
]
# Every field mailsms writes on an inbound mail; any other is injected.
ALLOWED = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references", "mime-version",
           "content-type", "content-transfer-encoding", "auto-submitted"}  # fmt: skip


def head_lines(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def check_headers(mail: Received) -> EmailMessage:
    """The mail's header block is what mailsms writes, and nothing an SMS carried."""
    assert mail.recipients == (POSTMASTER,)
    lines = head_lines(mail.data)
    for line in lines:
        assert b"\r" not in line and b"\n" not in line and b"\x00" not in line, line
        assert len(line) <= 998, len(line)
    names = [line.split(b":", 1)[0].decode().lower() for line in lines if not line.startswith((b" ", b"\t"))]
    assert set(names) <= ALLOWED, names
    for name in ("from", "to", "subject", "date", "message-id"):
        assert names.count(name) == 1, (name, names)
    message = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for name in ("From", "To", "Subject"):
        value = message[name]
        assert not value.defects, (name, value.defects)
        assert "\n" not in str(value) and "\r" not in str(value)
    (sender,) = message["From"].addresses
    assert isinstance(sender, Address) and sender.domain == SMS_DOMAIN
    assert re.fullmatch(r"sms:[A-Za-z0-9+._-]{1,40}", sender.username), sender.username  # nothing to encode
    assert [a.addr_spec for a in message["To"].addresses] == [POSTMASTER]
    return message


async def test_no_number_or_text_of_an_sms_adds_a_header(config: Config) -> None:
    smses = [IncomingSms("outbox", sender, "hi", smsc_id=f"n{n}") for n, sender in enumerate(SENDERS)]
    smses += [IncomingSms("outbox", "+15559990000", text, smsc_id=f"t{n}") for n, text in enumerate(TEXTS)]
    ids, settled, sink = await route_through_sink(config, smses)
    assert sorted(settled.values()) == [("delivered", POSTMASTER)] * len(ids)
    assert len(sink.received) == len(ids)
    assert all(r == POSTMASTER for r in sink.rcpt_attempts)
    messages = [check_headers(mail) for mail in sink.received]
    # The text is the body, all of it on its own lines, and an alphanumeric sender keeps its name for display.
    bodies = "\n".join(m.get_content() for m in messages)
    assert bodies.count(INJECTED) == len([t for t in TEXTS if INJECTED in t])
    assert any(m["From"].addresses[0].display_name.startswith("MyBank") for m in messages)


async def test_the_webhook_refuses_control_characters_in_the_number(config: Config) -> None:
    daemon = Daemon(with_gateways(config, outbox_gateway()))
    await daemon.start()
    try:
        for sender in [*SENDERS[:5], SENDERS[6]]:  # C0 and C1 controls; U+2028 is no control: the mail drops it
            answer = await call(daemon, f"/inbound/outbox?from={quote(sender, safe='')}&text=hi")
            assert answer.status == 400, (sender, answer.body)
            assert answer.body["status"].startswith("5.")
        answer = await call(daemon, "/inbound/outbox?from=%2B15551234567&text=" + quote(TEXTS[0], safe=""))
        assert answer.status == 200  # newlines belong in a text: they go into the body, not a header
        assert daemon.store is not None
        (count,) = daemon.store.conn.execute("SELECT COUNT(*) FROM inbound").fetchone()
        assert count == 1
    finally:
        await daemon.stop()
