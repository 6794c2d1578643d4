"""An incoming SMS (MO) as a gateway's webhook delivers it, checked and decoded (pure).

Fields: ``from`` and ``text`` are required; ``to``, ``udh`` (hex, with its
length byte), ``coding`` (0 GSM 7-bit, 1 8-bit, 2 UCS-2, as Kannel's ``%c``),
``charset`` (of ``text``; UTF-8 when absent) and ``smsc_id`` are optional.
Anything that cannot be stored faithfully is refused: text that is not valid
in its charset, a UDH whose length byte does not match its length, a
concatenation element that counts wrong.  ``mo_from_transport`` does the
same for an SMS a transport received itself (a GSM modem).
"""

from __future__ import annotations

import codecs

from mailsms.errors import BadContent, BadRequest
from mailsms.form import FormFields
from mailsms.segment.gsm import is_gsm
from mailsms.segment.udh import USER_DATA_OCTETS, concatenation, parse_hex, parse_udh
from mailsms.store.inbound import NewInbound
from transports.base import IncomingSms

CODING_GSM7, CODING_8BIT, CODING_UCS2 = 0, 1, 2
MAX_TEXT = 65_536  # a reassembled MO of 255 UCS-2 parts is about 17,000 characters
MAX_ADDRESS = 64
# Kannel's names for the UCS-2 charset; Python knows it as UTF-16BE.
_CHARSET_ALIASES = {"ucs-2": "utf-16-be", "ucs2": "utf-16-be", "ucs-2be": "utf-16-be"}


def parse_mo(fields: FormFields, gateway: str, *, id: str, received: float) -> NewInbound:
    """The MO in ``fields``; BadRequest for a missing or malformed field, BadContent for bad text or UDH."""
    sender = _address(fields, "from", required=True)
    to = _address(fields, "to", required=False)
    raw_text = fields.raw("text")
    if raw_text is None:
        raise BadRequest("missing field 'text'")
    coding = _coding(fields)
    data: bytes | None = None
    if coding == CODING_8BIT:
        data = raw_text
        text = _decode(raw_text, fields, strict=False)
    else:
        text = _decode(raw_text, fields, strict=True)
        if coding is None:
            coding = CODING_GSM7 if is_gsm(text) else CODING_UCS2
    if len(text) > MAX_TEXT:
        raise BadContent(f"text longer than {MAX_TEXT} characters")
    return NewInbound(
        id=id,
        received=received,
        gateway=gateway,
        sender=sender,
        to=to,
        text=text,
        udh=_udh(fields),
        coding=coding,
        smsc_id=fields.text("smsc_id", max_length=128) or "",
        data=data,
    )


def mo_from_transport(sms: IncomingSms, *, id: str, received: float) -> NewInbound:
    """An SMS a transport received itself (a modem), as the inbound store takes it.

    The transport decoded it; what the store cannot hold is made to fit: NUL
    characters go, the text is cut at ``MAX_TEXT``, a UDH that does not parse is dropped.
    """
    udh = sms.udh
    try:
        if udh:
            parse_udh(udh)
    except ValueError:
        udh = b""
    return NewInbound(
        id=id,
        received=received,
        gateway=sms.gateway_id,
        sender=sms.sender[:MAX_ADDRESS],
        to=sms.to[:MAX_ADDRESS],
        text=sms.text.replace("\x00", "")[:MAX_TEXT],
        udh=udh,
        coding=sms.coding if sms.coding in (CODING_GSM7, CODING_8BIT, CODING_UCS2) else CODING_GSM7,
        smsc_id=sms.smsc_id[:128],
        data=sms.data,
    )


def _address(fields: FormFields, name: str, *, required: bool) -> str:
    value = (fields.text(name, required=required, max_length=MAX_ADDRESS) or "").strip()
    if required and not value:
        raise BadRequest(f"field '{name}' is empty")
    return value


def _coding(fields: FormFields) -> int | None:
    value = fields.text("coding")
    if value is None or value in ("", "-1"):  # -1: Kannel's "undefined"
        return None
    if value not in ("0", "1", "2"):
        raise BadRequest("field 'coding' must be 0 (GSM 7-bit), 1 (8-bit) or 2 (UCS-2)")
    return int(value)


def _decode(raw: bytes, fields: FormFields, *, strict: bool) -> str:
    """``text`` in its charset; 8-bit data (``strict`` False) that is not text becomes ""."""
    charset = (fields.text("charset") or "utf-8").strip().lower() or "utf-8"
    name = _CHARSET_ALIASES.get(charset, charset)
    try:
        codecs.lookup(name)
    except LookupError:
        raise BadRequest(f"unknown charset {charset!r}") from None
    try:
        text = raw.decode(name)
    except UnicodeDecodeError:
        if not strict:
            return ""
        raise BadContent(f"text is not valid {charset}") from None
    if "\x00" in text and strict:
        raise BadContent("text holds NUL characters")
    return text


def _udh(fields: FormFields) -> bytes:
    value = fields.text("udh")
    if not value:
        return b""
    try:
        udh = parse_hex(value)
    except ValueError:
        raise BadContent("udh must be hex digits, two per octet") from None
    if len(udh) > USER_DATA_OCTETS:
        raise BadContent(f"udh longer than the {USER_DATA_OCTETS} octets of an SMS")
    try:
        parse_udh(udh)
        concat = concatenation(udh)
    except ValueError as exc:
        raise BadContent(f"udh: {exc}") from None
    if concat is not None and not 1 <= concat.seq <= concat.total:
        raise BadContent(f"udh: part {concat.seq} of {concat.total} cannot exist")
    return udh
