"""RFC 3464 delivery status notifications for SMS: failure, delay, success (pure).

``compose`` makes a ``multipart/report; report-type=delivery-status`` message
with three parts, as Postfix does: words for people (naming each number,
saying what happened and when, and quoting the text of the SMS), the
``message/delivery-status`` fields, and the original headers
(``text/rfc822-headers``) or, when the sender asked ``RET=FULL`` and the mail
was kept, the whole original (``message/rfc822``).  Every ``pass=`` value is
hidden wherever it may appear: the recipients, ORCPT, the original headers.

The scheduler decides when a report is due (``ndr`` never does); the report
goes out with the null reverse-path through mailsms's mail-out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ndr.fields import (
    address_field,
    crlf,
    date,
    header_block,
    orcpt_field,
    redact,
    redact_bytes,
    seven_bit,
    xtext_decode,
)
from ndr.text import human_text, subject

Action = Literal["failed", "delayed", "delivered", "relayed"]
ACTIONS: tuple[Action, ...] = ("failed", "delayed", "delivered", "relayed")


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient (one number) of the original mail, as this report tells about it."""

    recipient: str  # the sms: address as accepted (pass= is hidden again here)
    number: str  # E.164
    action: Action
    status: str  # RFC 3463, e.g. "5.1.1"
    diagnostic: str = ""  # the gateway's or network's own words
    orcpt: str = ""  # the ORCPT parameter as received ("rfc822;" + xtext), "" when none
    last_attempt: float | None = None
    will_retry_until: float | None = None  # delays only
    text: str = ""  # the text of the SMS
    parts: int = 1
    failed_parts: tuple[int, ...] = ()  # seq numbers of parts that failed
    queue_id: str = ""


@dataclass(frozen=True)
class OriginalMail:
    """What is known of the mail the report is about."""

    sender: str  # the envelope sender: the report's recipient
    arrival: float
    envid: str = ""  # the ENVID parameter as received (xtext)
    head: bytes = b""  # the original header section as received, if kept
    headers: tuple[tuple[str, str], ...] = ()  # else the main fields, decoded (From, To, Subject ...)
    full: bytes | None = None  # the whole original, when RET=FULL and it was kept
    subject: str = ""  # decoded, for the words part


@dataclass(frozen=True)
class Reporting:
    """Who reports, when, and the new message's identity."""

    hostname: str  # Reporting-MTA, and the From: domain
    date: float
    message_id: str  # "<...@hostname>"


def compose(original: OriginalMail, recipients: Sequence[RecipientStatus], reporting: Reporting) -> bytes:
    """The whole report as bytes with CRLF line ends, ready for SMTP or a Maildir."""
    if not recipients:
        raise ValueError("a report needs at least one recipient")
    actions = {r.action for r in recipients}
    if len(actions) != 1:
        raise ValueError(f"one report tells one kind of event, not {sorted(actions)}")
    action = recipients[0].action
    body = _words_part(original, recipients, reporting, action)
    body += _status_part(original, recipients, reporting)
    body += _original_part(original, action)
    boundary = _boundary(reporting, body)
    head = _top_headers(original, reporting, action, boundary, eight_bit=not all(p.isascii() for p in body))
    # The line end before a delimiter belongs to the delimiter: each part keeps its last one.
    parts = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in body)
    preamble = b"This is a MIME-encapsulated message.\r\n\r\n"
    return head + b"\r\n" + preamble + parts + b"--" + boundary.encode() + b"--\r\n"


def _top_headers(
    original: OriginalMail, reporting: Reporting, action: Action, boundary: str, *, eight_bit: bool
) -> bytes:
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting.hostname}>",
        f"To: <{original.sender}>",
        f"Subject: {subject(action)}",
        f"Date: {date(reporting.date)}",
        f"Message-ID: {reporting.message_id}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"',
    ]
    if eight_bit:
        lines.append("Content-Transfer-Encoding: 8bit")
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def _words_part(
    original: OriginalMail, recipients: Sequence[RecipientStatus], reporting: Reporting, action: Action
) -> list[bytes]:
    text = human_text(action, original, recipients, reporting.hostname)
    encoded = text.replace("\n", "\r\n").encode("utf-8")
    if encoded.isascii():
        head = "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        return [head.encode() + encoded]
    import quopri

    body = crlf(quopri.encodestring(text.encode("utf-8")))
    head = (
        "Content-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return [head.encode() + body + (b"" if body.endswith(b"\r\n") else b"\r\n")]


def _status_part(original: OriginalMail, recipients: Sequence[RecipientStatus], reporting: Reporting) -> list[bytes]:
    fields = [f"Reporting-MTA: dns; {seven_bit(reporting.hostname)}"]
    if original.envid:
        fields.append(f"Original-Envelope-Id: {seven_bit(redact(xtext_decode(original.envid)))}")
    fields.append(f"Arrival-Date: {date(original.arrival)}")
    blocks = ["\r\n".join(fields)]
    for rcpt in recipients:
        blocks.append("\r\n".join(recipient_fields(rcpt)))
    text = "\r\n\r\n".join(blocks) + "\r\n"
    head = "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
    return [(head + text).encode("ascii")]


def recipient_fields(rcpt: RecipientStatus) -> list[str]:
    """The per-recipient fields of RFC 3464 section 2.3, in its order."""
    fields = []
    original = orcpt_field(rcpt.orcpt) if rcpt.orcpt else ""
    if original:
        fields.append(f"Original-Recipient: {original}")
    fields += [
        f"Final-Recipient: {address_field(rcpt.recipient)}",
        f"Action: {rcpt.action}",
        f"Status: {rcpt.status}",
    ]
    if rcpt.diagnostic:
        fields.append(f"Diagnostic-Code: X-mailsms; {seven_bit(redact(rcpt.diagnostic))}")
    if rcpt.last_attempt is not None:
        fields.append(f"Last-Attempt-Date: {date(rcpt.last_attempt)}")
    if rcpt.will_retry_until is not None and rcpt.action == "delayed":
        fields.append(f"Will-Retry-Until: {date(rcpt.will_retry_until)}")
    if rcpt.queue_id:
        fields.append(f"X-Mailsms-Queue-ID: {seven_bit(rcpt.queue_id)}")
    if rcpt.failed_parts:
        listed = ", ".join(str(seq) for seq in rcpt.failed_parts)
        fields.append(f"X-Mailsms-Failed-Parts: {listed} of {rcpt.parts}")
    return fields


def _original_part(original: OriginalMail, action: Action) -> list[bytes]:
    if original.full is not None:
        content = crlf(redact_bytes(original.full))
        kind, description = "message/rfc822", "Undelivered Message" if action == "failed" else "Message"
    elif original.head or original.headers:
        raw = crlf(redact_bytes(original.head)) if original.head else header_block(original.headers)
        content = raw.rstrip(b"\r\n") + b"\r\n"
        kind, description = "text/rfc822-headers", "Undelivered Message Headers" if action == "failed" else "Headers"
    else:
        return []
    encoding = "" if content.isascii() else "Content-Transfer-Encoding: 8bit\r\n"
    head = f"Content-Description: {description}\r\nContent-Type: {kind}\r\n{encoding}\r\n"
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    return [head.encode() + content]


def _boundary(reporting: Reporting, parts: list[bytes]) -> str:
    """A boundary made from the report's Message-ID, lengthened until no part holds it."""
    seed = hashlib.sha256(reporting.message_id.encode()).hexdigest()[:16]
    host = "".join(c for c in reporting.hostname if c.isascii() and (c.isalnum() or c in ".-"))
    boundary = f"{seed}/{host}"[:70]
    while any(boundary.encode() in part for part in parts):
        boundary = (hashlib.sha256(boundary.encode()).hexdigest()[:16] + "/" + boundary)[:70]
    return boundary
