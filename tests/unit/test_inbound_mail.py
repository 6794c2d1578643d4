"""An incoming SMS as a mail: headers that parse back as RFC 5322, and that nothing in an SMS can add to."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsms.config import InboundConfig
from mailsms.inbound_mail import SmsMail, address_local, compose_mail, from_address, render_subject, subject_problem

SETTINGS = InboundConfig(from_template="sms:%s@sms.example.test")
EXPECTED_HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
                    "Content-Transfer-Encoding"}  # fmt: skip
THREAD_HEADERS = {"In-Reply-To", "References"}


def sms(**changes: object) -> SmsMail:
    base = SmsMail(sender="+15551234567", to="12345", gateway="kannel", text="Yes, at noon",
                   recipient="alice@mail.example.test", received=1_700_000_000.0)  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def body(mail: EmailMessage) -> str:
    return str(mail.get_content()).replace("\r\n", "\n")


def parsed(mail: SmsMail, config: InboundConfig = SETTINGS) -> EmailMessage:
    raw = compose_mail(mail, config, message_id="<1A2B@gw.example.test>")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects, message.defects
    return message


def test_the_mail_parses_back_with_every_header_it_should_have() -> None:
    mail = parsed(sms(in_reply_to="<lunch-1@mail.example.test>", original_subject="Lunch?"))
    assert set(mail.keys()) == EXPECTED_HEADERS | THREAD_HEADERS
    assert str(mail["From"]) == '+15551234567 <"sms:+15551234567"@sms.example.test>'
    (sender,) = mail["From"].addresses
    assert (sender.username, sender.domain) == ("sms:+15551234567", "sms.example.test")
    assert mail["To"] == "alice@mail.example.test"
    assert mail["Subject"] == "Re: Lunch?"
    assert mail["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert mail["Message-ID"] == "<1A2B@gw.example.test>"
    assert mail["In-Reply-To"] == mail["References"] == "<lunch-1@mail.example.test>"
    assert mail.get_content_type() == "text/plain" and mail.get_content_charset() == "utf-8"
    assert body(mail) == "Yes, at noon\n"


def test_without_a_thread_there_are_no_thread_headers_and_the_plain_subject() -> None:
    mail = parsed(sms())
    assert set(mail.keys()) == EXPECTED_HEADERS
    assert mail["Subject"] == "SMS from +15551234567"


def test_lines_end_in_crlf_and_the_body_is_utf8() -> None:
    raw = compose_mail(sms(text="Grüße\r\naus Köln 👋\rEnde"), SETTINGS, message_id="<x@y>")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.isascii()  # quoted-printable: survives any relay, and a DKIM signature with it
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    assert body(mail) == "Grüße\naus Köln 👋\nEnde\n"


@pytest.mark.parametrize(
    "sender",
    [
        "+15551234567\r\nBcc: mallory@evil.example",
        "+1555\nSubject: forged",
        "+1555\x00Bcc: x@evil.example",
        '"+1555" <mallory@evil.example>',
        "+1555\u2028Bcc: x@evil.example",
    ],
)
def test_a_number_can_never_add_a_header_or_change_the_address(sender: str) -> None:
    mail = parsed(sms(sender=sender, in_reply_to="<m@x>", original_subject="Hi"))
    assert set(mail.keys()) == EXPECTED_HEADERS | THREAD_HEADERS
    (address,) = mail["From"].addresses
    assert address.domain == "sms.example.test" and address.username.startswith("sms:")
    assert "evil" not in mail["To"] and "Bcc" not in mail


@pytest.mark.parametrize("text", ["hi\r\nBcc: x@evil.example\r\n\r\nbody", "\r\n\r\nFrom: x@evil.example", "a\x00b"])
def test_text_stays_in_the_body_whatever_it_holds(text: str) -> None:
    config = dataclasses.replace(SETTINGS, subject_template="{text}")
    mail = parsed(sms(text=text), config)
    assert set(mail.keys()) == EXPECTED_HEADERS
    assert "\x00" not in mail.get_content()


def test_an_original_subject_with_line_breaks_cannot_add_a_header() -> None:
    mail = parsed(sms(in_reply_to="<m@x>", original_subject="Lunch\r\nBcc: x@evil.example"))
    assert mail["Subject"] == "Re: Lunch Bcc: x@evil.example"
    assert "Bcc" not in mail


def test_an_alphanumeric_sender_shows_its_name_and_gets_a_safe_address() -> None:
    mail = parsed(sms(sender="My Bänk"))
    (address,) = mail["From"].addresses
    assert address.display_name == "My Bänk"
    assert address.username == "sms:MyB_nk"
    assert mail["Subject"] == "SMS from My Bänk"


def test_a_non_ascii_recipient_makes_an_smtputf8_mail() -> None:
    mail = parsed(sms(recipient="jörg@mail.example.test"))
    assert mail["To"] == "jörg@mail.example.test"


def test_subject_placeholders() -> None:
    values = {"from": "+1555", "to": "12345", "gateway": "kannel", "text": "Yes", "subject": ""}
    assert render_subject("{from} via {gateway} to {to}: {text}", values) == "+1555 via kannel to 12345: Yes"
    assert render_subject("{nope} stays", values) == "{nope} stays"
    assert subject_problem("{from} {text}") is None
    assert subject_problem("{sender}") is not None


def test_a_long_first_line_is_shortened_in_the_subject() -> None:
    config = dataclasses.replace(SETTINGS, subject_template="{text}")
    assert parsed(sms(text="x" * 300), config)["Subject"] == "x" * 59 + "\u2026"


def test_the_from_template_must_render_to_an_address() -> None:
    with pytest.raises(ValueError, match="from_template"):
        from_address("sms:%s", "+1555")
    assert address_local("") == "unknown"
    assert address_local("+1 555/123") == "+1555_123"


@settings(max_examples=300, deadline=None)
@given(sender=st.text(max_size=80), text=st.text(max_size=400), subject=st.text(max_size=100))
def test_no_sender_text_or_subject_ever_adds_a_header(sender: str, text: str, subject: str) -> None:
    config = dataclasses.replace(SETTINGS, subject_template="{from}: {text}")
    mail = parsed(sms(sender=sender, text=text, in_reply_to="<m@x>", original_subject=subject), config)
    assert set(mail.keys()) == EXPECTED_HEADERS | THREAD_HEADERS
    (address,) = mail["From"].addresses
    assert address.domain == "sms.example.test" and address.username.startswith("sms:")
