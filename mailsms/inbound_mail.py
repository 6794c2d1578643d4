"""An incoming SMS as a mail for a mailbox (pure).

``From: "+15551234567" <"sms:+15551234567"@sms.example.com>`` (the address
from ``inbound.from_template``, its local part quoted as RFC 5322 needs, so
that replying to the mail sends an SMS back), ``To:`` the final recipient,
``Subject:`` from a template, ``Date:`` (when the SMS arrived),
``Message-ID:``, and ``In-Reply-To:`` / ``References:`` naming the mail the
SMS answers when the reply log found it.  The text is the UTF-8 body.

Nothing an SMS carries can add a header: the number and every piece of
text that reaches a header lose their control characters (CR, LF, NUL, ...)
first, the address keeps only characters that need no encoding, and the
``email`` package folds and encodes the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from mailsms.config import InboundConfig

SUBJECT_PLACEHOLDERS = ("from", "to", "gateway", "text", "subject")
MAX_SUBJECT = 200
MAX_TEXT_IN_SUBJECT = 60
MAX_LOCAL_NUMBER = 40
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BODY_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ADDRESS_SAFE = re.compile(r"[^A-Za-z0-9+._-]")
_NEWLINES = re.compile(r"\r\n|\r|\u2028|\u2029|\x85")


@dataclass(frozen=True)
class SmsMail:
    """What the mail says: the SMS and where it goes."""

    sender: str  # the MO's "from": a number or an alphanumeric name
    to: str  # the number it was sent to ("" when unknown)
    gateway: str
    text: str
    recipient: str  # the final mailbox
    received: float
    in_reply_to: str = ""  # "<id@host>" of the mail the SMS answers, or ""
    original_subject: str = ""


def header_safe(value: str, limit: int = MAX_SUBJECT) -> str:
    """``value`` on one line: every run of control characters becomes one space."""
    return " ".join(_HEADER_UNSAFE.sub(" ", value).split())[:limit]


def address_local(sender: str) -> str:
    """The sender as it may stand in an address: ``+``, letters, digits, ``.``, ``_``, ``-`` (others become ``_``)."""
    cleaned = _ADDRESS_SAFE.sub("_", header_safe(sender, MAX_LOCAL_NUMBER).replace(" ", ""))
    return cleaned.strip(".") or "unknown"


def from_address(template: str, sender: str) -> Address:
    """The From address: ``template`` with ``%s`` replaced by the (address-safe) sender; ValueError when unusable."""
    rendered = template.replace("%s", address_local(sender))
    local, at, domain = rendered.rpartition("@")
    if not at or not local or not domain or _HEADER_UNSAFE.search(rendered) or not rendered.isascii():
        raise ValueError("inbound.from_template must render to local@domain in ASCII")
    display = header_safe(sender, MAX_LOCAL_NUMBER)
    return Address(display_name=display, username=local, domain=domain)


def subject_problem(template: str) -> str | None:
    """Why ``template`` cannot be a subject template, or None."""
    for found in _PLACEHOLDER.finditer(template):
        if found.group(1) not in SUBJECT_PLACEHOLDERS:
            listed = ", ".join("{" + p + "}" for p in SUBJECT_PLACEHOLDERS)
            return f"unknown placeholder {{{found.group(1)[:40]}}}: use {listed}"
    return None


def render_subject(template: str, values: dict[str, str]) -> str:
    """``template`` with its placeholders filled (unknown ones stay as written), on one line."""
    return header_safe(_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template))


def subject_for(mail: SmsMail, settings: InboundConfig) -> str:
    first_line = header_safe(mail.text.strip().split("\n", 1)[0], MAX_TEXT_IN_SUBJECT + 1)
    if len(first_line) > MAX_TEXT_IN_SUBJECT:
        first_line = first_line[: MAX_TEXT_IN_SUBJECT - 1].rstrip() + "\u2026"
    values = {
        "from": header_safe(mail.sender, MAX_LOCAL_NUMBER),
        "to": header_safe(mail.to, MAX_LOCAL_NUMBER),
        "gateway": header_safe(mail.gateway, 64),
        "text": first_line,
        "subject": header_safe(mail.original_subject),
    }
    if mail.in_reply_to and values["subject"]:
        return render_subject(settings.reply_subject_template, values)
    return render_subject(settings.subject_template, values)


def body_text(text: str) -> str:
    """The SMS text as a mail body: line ends as ``\\n``, no control characters but tab, ending in a newline."""
    cleaned = _BODY_UNSAFE.sub("", _NEWLINES.sub("\n", text))
    return cleaned if cleaned.endswith("\n") else cleaned + "\n"


def compose_mail(mail: SmsMail, settings: InboundConfig, *, message_id: str) -> bytes:
    """The whole mail, CRLF line ends, ready for the mail-out queue; ValueError for an unusable address."""
    message = EmailMessage(policy=policy.SMTP if mail.recipient.isascii() else policy.SMTPUTF8)
    message["From"] = from_address(settings.from_template, mail.sender)
    local, _, domain = mail.recipient.rpartition("@")
    if header_safe(mail.recipient, 400) != mail.recipient or not local or not domain:
        raise ValueError("the recipient is not one mailbox")
    message["To"] = Address(username=local, domain=domain)
    message["Subject"] = subject_for(mail, settings)
    message["Date"] = format_datetime(datetime.fromtimestamp(mail.received, UTC))
    message["Message-ID"] = message_id
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
        message["References"] = mail.in_reply_to
    body = body_text(mail.text)
    # Quoted-printable, not 8bit: a relay that downgrades 8bit would break a DKIM signature.
    plain = body.isascii() and max(len(line) for line in body.split("\n")) <= 78
    message.set_content(body, charset="utf-8", cte="7bit" if plain else "quoted-printable")
    return message.as_bytes()
