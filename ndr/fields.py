"""Field values for delivery status notifications: xtext, redaction, 7-bit text, dates (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime

from mailsms.address import redact as redact_address
from mailsms.log import redact as redact_pass

MAX_FIELD = 900  # characters of one field value: well inside the 998 of a line
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
_SPACE = re.compile(r"[\x00-\x20\x7f]+")
_NEWLINE = re.compile(rb"\r?\n")


def xtext_decode(value: str) -> str:
    """RFC 3461 xtext (``+2B`` for ``+``) as plain text; a malformed ``+`` is kept as it is."""
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def redact(text: str) -> str:
    """Every ``pass=`` value hidden, line by line (a quote never spans lines in a header)."""
    if "=" not in text:
        return text
    return "".join(redact_pass(redact_address(line)) for line in text.splitlines(keepends=True))


def redact_bytes(data: bytes) -> bytes:
    """``redact`` over bytes in any encoding: 8-bit bytes pass through unchanged."""
    if b"=" not in data:
        return data
    return redact(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def crlf(data: bytes) -> bytes:
    """Every line ending as CRLF."""
    return _NEWLINE.sub(b"\r\n", data)


def seven_bit(text: str) -> str:
    """One line of 7-bit text: white space collapsed, other characters as ``\\x{HHHH}`` (RFC 6533)."""
    flat = _SPACE.sub(" ", text).strip()
    escaped = "".join(c if c.isascii() else f"\\x{{{ord(c):04X}}}" for c in flat)
    return escaped[:MAX_FIELD]


def address_field(address: str, address_type: str = "rfc822") -> str:
    """``type; address`` for Final-Recipient and Original-Recipient, ``pass=`` hidden.

    An address that is not ASCII is written as RFC 6533's ``utf-8`` type.
    """
    shown = redact(address.strip())
    if not shown.isascii():
        address_type = "utf-8"
    return f"{address_type}; {seven_bit(shown)}"


def orcpt_field(orcpt: str) -> str:
    """The ORCPT parameter (``rfc822;alice+2B1@example.com``) as an Original-Recipient value; "" if malformed."""
    address_type, sep, encoded = orcpt.partition(";")
    if not sep or not address_type.strip() or not encoded.strip():
        return ""
    return address_field(xtext_decode(encoded), address_type.strip().lower())


def date(seconds: float) -> str:
    """An RFC 5322 date in UTC: ``Mon, 01 Jan 2024 10:00:00 +0000``."""
    return format_datetime(datetime.fromtimestamp(seconds, UTC))


def header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    """Decoded header fields as a 7-bit header section (RFC 2047 where needed), ``pass=`` hidden first."""
    lines = []
    for name, value in headers:
        shown = _SPACE.sub(" ", redact(value)).strip()
        if shown.isascii():
            lines.append(f"{name}: {shown}"[:998])
        else:
            lines.append(f"{name}: " + Header(shown, "utf-8", header_name=name).encode(linesep="\r\n"))
    return "".join(line + "\r\n" for line in lines).encode("ascii")
