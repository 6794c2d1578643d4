"""RFC 3464 reports parse back with Python's email package, with the right field values, and hide pass=."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndr import OriginalMail, RecipientStatus, Reporting, compose
from ndr.fields import orcpt_field, redact, seven_bit, xtext_decode

ARRIVAL = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 +0000
SECRET_RCPT = '"sms:+15551234567?maxmsgs=3&pass=s3cret"@sms.example.test'
SECRET_ORCPT = "rfc822;+22sms:+2B15551234567?maxmsgs=3&pass=s3cret+22@sms.example.test"
REPORTING = Reporting("gw.example.test", ARRIVAL + 600, "<0001@gw.example.test>")
HEADERS = (
    ("From", "Alice <alice@example.com>"),
    ("To", SECRET_RCPT),
    ("Subject", "Meeting moved"),
    ("Message-ID", "<m1@example.com>"),
)


def original(**changes: object) -> OriginalMail:
    fields: dict[str, object] = {
        "sender": "alice@example.com",
        "arrival": ARRIVAL,
        "envid": "QQ+2B314",
        "headers": HEADERS,
        "subject": "Meeting moved",
    }
    fields.update(changes)
    return OriginalMail(**fields)  # type: ignore[arg-type]


def failed(**changes: object) -> RecipientStatus:
    fields: dict[str, object] = {
        "recipient": SECRET_RCPT,
        "number": "+15551234567",
        "action": "failed",
        "status": "5.1.1",
        "diagnostic": "unknown subscriber",
        "orcpt": SECRET_ORCPT,
        "last_attempt": ARRIVAL + 60,
        "text": "Meeting moved: The meeting is at 3pm now.",
        "queue_id": "18C4A0F3B2A00000",
    }
    fields.update(changes)
    return RecipientStatus(**fields)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(report: EmailMessage) -> list[Message]:
    return list(report.iter_parts())


def words_of(report: EmailMessage) -> str:
    """The text/plain part, with plain line ends."""
    text = parts(report)[0].get_payload(decode=True)
    assert isinstance(text, bytes)
    return text.decode("utf-8").replace("\r\n", "\n")


def status_blocks(report: EmailMessage) -> list[Message]:
    blocks = parts(report)[1].get_payload()
    assert isinstance(blocks, list)
    return blocks


def test_failure_report_is_a_multipart_report_with_three_parts() -> None:
    report = parse(compose(original(), [failed()], REPORTING))

    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert [p.get_content_type() for p in parts(report)] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert report["From"] == "Mail Delivery System <MAILER-DAEMON@gw.example.test>"
    assert report["To"] == "alice@example.com"
    assert report["Subject"] == "Undelivered SMS Returned to Sender"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["Message-ID"] == "<0001@gw.example.test>"
    assert report["Date"] == "Tue, 14 Nov 2023 22:23:20 +0000"


def test_delivery_status_fields_of_a_failure() -> None:
    per_message, per_recipient = status_blocks(parse(compose(original(), [failed()], REPORTING)))

    assert dict(per_message) == {
        "Reporting-MTA": "dns; gw.example.test",
        "Original-Envelope-Id": "QQ+314",
        "Arrival-Date": "Tue, 14 Nov 2023 22:13:20 +0000",
    }
    assert dict(per_recipient) == {
        "Original-Recipient": 'rfc822; "sms:+15551234567?maxmsgs=3&pass=(set)"@sms.example.test',
        "Final-Recipient": 'rfc822; "sms:+15551234567?maxmsgs=3&pass=(set)"@sms.example.test',
        "Action": "failed",
        "Status": "5.1.1",
        "Diagnostic-Code": "X-mailsms; unknown subscriber",
        "Last-Attempt-Date": "Tue, 14 Nov 2023 22:14:20 +0000",
        "X-Mailsms-Queue-ID": "18C4A0F3B2A00000",
    }


def test_the_words_name_the_number_and_quote_the_text() -> None:
    words = words_of(parse(compose(original(), [failed()], REPORTING)))

    assert "This is the SMS gateway at host gw.example.test." in words
    assert "could not be sent as SMS to the number below" in words
    assert "<+15551234567>: " in words
    assert "failed (5.1.1): unknown subscriber" in words
    assert "Its subject was: Meeting moved" in words
    assert "> Meeting moved: The meeting is at 3pm now." in words


def test_a_delay_warning_says_until_when_it_is_tried() -> None:
    delayed = failed(action="delayed", status="4.4.1", diagnostic="no answer", will_retry_until=ARRIVAL + 432000)
    report = parse(compose(original(), [delayed], REPORTING))

    assert report["Subject"] == "Delayed SMS (still being retried)"
    block = status_blocks(report)[1]
    assert (block["Action"], block["Status"]) == ("delayed", "4.4.1")
    assert block["Will-Retry-Until"] == "Sun, 19 Nov 2023 22:13:20 +0000"
    words = words_of(report)
    assert "not been sent as SMS to the number below yet" in words
    assert "will be tried until: Sun, 19 Nov 2023 22:13:20 +0000" in words


def test_will_retry_until_only_in_a_delay_warning() -> None:
    report = parse(compose(original(), [failed(will_retry_until=ARRIVAL)], REPORTING))
    assert "Will-Retry-Until" not in status_blocks(report)[1]


@pytest.mark.parametrize(
    ("action", "subject", "phrase"),
    [
        ("delivered", "Successful SMS Delivery Report", "the phone confirmed that it received it"),
        ("relayed", "SMS Relayed to Gateway", "gives no delivery\nreports"),
    ],
)
def test_success_reports(action: str, subject: str, phrase: str) -> None:
    done = failed(action=action, status="2.0.0", diagnostic="")
    report = parse(compose(original(), [done], REPORTING))

    assert report["Subject"] == subject
    block = status_blocks(report)[1]
    assert (block["Action"], block["Status"]) == (action, "2.0.0")
    assert "Diagnostic-Code" not in block
    assert phrase in words_of(report)


def test_several_recipients_are_listed_in_one_report() -> None:
    other = failed(recipient='"sms:+15557654321"@sms.example.test', number="+15557654321", orcpt="", status="5.0.0")
    report = parse(compose(original(), [failed(), other], REPORTING))

    blocks = status_blocks(report)
    assert len(blocks) == 3
    assert [b["Final-Recipient"] for b in blocks[1:]] == [
        'rfc822; "sms:+15551234567?maxmsgs=3&pass=(set)"@sms.example.test',
        'rfc822; "sms:+15557654321"@sms.example.test',
    ]
    assert "Original-Recipient" not in blocks[2]
    words = words_of(report)
    assert "to the numbers below" in words
    assert words.count("The text of the SMS was:") == 1  # the same text is quoted once


def test_different_texts_are_quoted_per_number() -> None:
    other = failed(number="+15557654321", text="Hello Bob")
    words = words_of(parse(compose(original(), [failed(), other], REPORTING)))
    assert "The text of the SMS to +15551234567 was:" in words
    assert "The text of the SMS to +15557654321 was:" in words
    assert "> Hello Bob" in words


def test_a_partial_failure_says_which_parts_failed() -> None:
    report = parse(compose(original(), [failed(parts=3, failed_parts=(2, 3))], REPORTING))
    assert status_blocks(report)[1]["X-Mailsms-Failed-Parts"] == "2, 3 of 3"
    assert "parts 2 and 3 of 3 failed; the other parts were sent" in words_of(report)


def test_ret_full_returns_the_whole_original_redacted() -> None:
    mail = (
        f"From: Alice <alice@example.com>\r\nTo: {SECRET_RCPT}\r\nSubject: Meeting moved\r\n\r\n"
        "The meeting is at 3pm now.\r\n"
    ).encode()
    data = compose(original(full=mail), [failed()], REPORTING)
    report = parse(data)

    returned = parts(report)[2]
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    assert inner["Subject"] == "Meeting moved"
    assert inner["To"] == '"sms:+15551234567?maxmsgs=3&pass=(set)"@sms.example.test'
    assert inner.get_payload().strip() == "The meeting is at 3pm now."
    assert b"s3cret" not in data


def test_raw_original_headers_are_returned_redacted() -> None:
    head = f"Received: from client\r\nTo: {SECRET_RCPT}\r\nSubject: x\r\n\r\n".encode()
    data = compose(original(head=head), [failed()], REPORTING)
    returned = parts(parse(data))[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "Received: from client" in returned.get_content()
    assert b"s3cret" not in data


def test_non_ascii_headers_and_text_are_encoded() -> None:
    headers = (("From", "Zoë <zoe@example.com>"), ("Subject", "Grüße aus Köln"))
    rcpt = failed(text="Grüße aus Köln: bis später 😀", diagnostic="Zustellung fehlgeschlagen: Zähler")
    data = compose(original(headers=headers, subject="Grüße aus Köln"), [rcpt], REPORTING)
    report = parse(data)

    assert data.isascii()
    words = words_of(report)
    assert "> Grüße aus Köln: bis später 😀" in words
    assert "Its subject was: Grüße aus Köln" in words
    assert status_blocks(report)[1]["Diagnostic-Code"] == "X-mailsms; Zustellung fehlgeschlagen: Z\\x{00E4}hler"
    returned = email.message_from_string(parts(report)[2].get_content(), policy=email.policy.default)
    assert returned["Subject"] == "Grüße aus Köln"


def test_an_8bit_original_is_marked_8bit() -> None:
    mail = "Subject: Grüße\r\n\r\nbis später\r\n".encode()
    data = compose(original(full=mail), [failed()], REPORTING)
    assert b"Content-Transfer-Encoding: 8bit" in data
    assert parts(parse(data))[2].get_payload()[0]["Subject"] == "Grüße"


@pytest.mark.parametrize(
    "where",
    ["recipient", "orcpt", "headers", "head", "full", "diagnostic", "text", "envid"],
)
def test_no_pass_value_survives_anywhere_in_the_report(where: str) -> None:
    leak = "pass=hunter2"
    rcpt = failed()
    mail = original()
    if where == "recipient":
        rcpt = failed(recipient=f'"sms:+15551234567?{leak}&maxmsgs=2"@sms.example.test')
    elif where == "orcpt":
        rcpt = failed(orcpt="rfc822;+22sms:+2B15551234567?pass=hunter2+22@x.example")
    elif where == "headers":
        mail = original(headers=(("To", f'"sms:+1555?{leak}"@x.example'), ("Cc", "sms:+1555?p%61ss=hunter2@x")))
    elif where == "head":
        mail = original(head=f'To: "sms:+1555?{leak}"@x.example\r\n'.encode())
    elif where == "full":
        mail = original(full=f'To: "sms:+1555?{leak}"@x.example\r\n\r\nbody {leak}\r\n'.encode())
    elif where == "diagnostic":
        rcpt = failed(diagnostic=f"gateway said: bad url ?user=x&{leak}")
    elif where == "text":
        rcpt = failed(text=f"my {leak} is safe")
    elif where == "envid":
        mail = original(envid="id+2Bpass=3Dhunter2")
    data = compose(mail, [rcpt], REPORTING)
    assert b"hunter2" not in data
    assert b"(set)" in data or where == "envid"


def test_a_report_needs_recipients_of_one_kind() -> None:
    with pytest.raises(ValueError, match="at least one"):
        compose(original(), [], REPORTING)
    with pytest.raises(ValueError, match="one kind of event"):
        compose(original(), [failed(), failed(action="delayed")], REPORTING)


def test_the_boundary_never_occurs_in_a_part() -> None:
    first = compose(original(), [failed()], REPORTING)
    boundary = parse(first).get_boundary()
    assert boundary is not None
    data = compose(original(full=f"Subject: x\r\n\r\n--{boundary}\r\n".encode()), [failed()], REPORTING)
    report = parse(data)
    assert report.get_boundary() != boundary
    assert len(parts(report)) == 3


def test_field_helpers() -> None:
    assert xtext_decode("a+2Bb+3Dc") == "a+b=c"
    assert xtext_decode("a+zz") == "a+zz"
    assert orcpt_field("rfc822;bob+2B1@example.com") == "rfc822; bob+1@example.com"
    assert orcpt_field("garbage") == ""
    assert orcpt_field("rfc822;zoë@example.com") == "utf-8; zo\\x{00EB}@example.com"
    assert seven_bit("a\r\nb\tc") == "a b c"
    assert redact('x "sms:+1?pass=a b"@y\npass=z') == 'x "sms:+1?pass=(set)"@y\npass=(set)'


@given(st.text(max_size=200), st.text(max_size=80))
def test_any_text_and_diagnostic_make_a_parseable_report(text: str, diagnostic: str) -> None:
    data = compose(original(), [failed(text=text, diagnostic=diagnostic)], REPORTING)
    report = parse(data)
    assert [p.get_content_type() for p in parts(report)][:2] == ["text/plain", "message/delivery-status"]
    assert status_blocks(report)[1]["Action"] == "failed"
