"""smstools3 (smsd) message files: building outgoing ones, reading what smsd writes back.

Pure functions, no I/O.  The formats are smsd's "SMS file format": header
lines ``Key: value`` (case-sensitive keys, unknown ones ignored), one empty
line, the body.  Facts checked against smsd 3.1.21 (Debian bookworm):

* ``Alphabet: GSM`` with ``Hex: yes`` takes the body as hex of unpacked GSM
  septets, used verbatim (``00`` is ``@``, escapes stay escapes): no
  character set conversion by smsd.  Without ``Hex`` a trailing newline or a
  NUL would be sent as part of the text.
* ``Alphabet: UCS2`` takes the body as raw UTF-16BE (``Hex`` does *not* work
  with UCS2: the hex digits themselves are sent).
* ``Alphabet: binary`` with ``Hex: yes`` takes the payload as hex.
* ``UDH-DATA: 05 00 03 ...`` puts that UDH in front of any of the three.
* smsd adds ``Message_id`` (the TP-MR) to a sent file only when a report was
  requested, ``Fail_reason`` and ``Failed`` to a failed one.
* Received files carry ``From``, ``Sent``, ``Received``, ``Alphabet``
  (``UTF-8``, ``ISO``..., or ``UCS2`` with the UTF-16BE body when
  ``decode_unicode_text = no``), ``UDH-DATA`` when ``internal_combine = no``;
  a status report's body starts with ``SMS STATUS REPORT`` and holds
  ``Message_id`` and ``Status: <TP-ST>,<word>,<text>``.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field

from mailsms.segment import gsm
from ndr import codes
from transports.base import IncomingSms, OutgoingPart, OutgoingSms

# Headers we write; a resubmitted file keeps only these (smsd adds its own).
OWN_HEADERS = ("To", "Alphabet", "Hex", "UDH-DATA", "Autosplit", "Report", "Queue", "Flash")
STATUS_REPORT = b"SMS STATUS REPORT"
_CMS = re.compile(r"\+CMS ERROR:\s*(\d+)")
_CME = re.compile(r"\+CME ERROR:\s*(\d+)")
_TIMESTAMP = re.compile(r"^(\d{2,4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$")


class BadFile(ValueError):
    """A file that is not (or not yet) an smsd message file."""


@dataclass(frozen=True)
class SmsFile:
    """One smsd message file, split into its headers and its raw body."""

    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def get(self, key: str, default: str = "") -> str:
        return self.headers.get(key, default)


def number_for_smsd(number: str) -> str:
    """smsd's ``To:``: international format without the ``+``."""
    return number[1:] if number.startswith("+") else number


def outgoing_file(sms: OutgoingSms, part: OutgoingPart, *, report: bool, queue: str = "") -> bytes:
    """The file for one part: our own segmentation, sent verbatim (``Autosplit: 0``)."""
    headers = [f"To: {number_for_smsd(sms.to)}"]
    if sms.encoding == "ucs2":
        headers.append("Alphabet: UCS2")
        body = part.text.encode("utf-16-be")
    elif sms.encoding == "binary":
        headers += ["Alphabet: binary", "Hex: yes"]
        body = (part.data or b"").hex().encode("ascii")
    else:
        septets = gsm.to_septets(part.text)
        if septets is None:
            raise ValueError("part is not GSM 03.38 text")
        headers += ["Alphabet: GSM", "Hex: yes"]
        body = septets.encode("ascii").hex().encode("ascii")
    if part.udh:
        headers.append("UDH-DATA: " + " ".join(f"{b:02X}" for b in part.udh))
    headers.append("Autosplit: 0")
    headers.append(f"Report: {'yes' if report else 'no'}")
    if queue:
        headers.append(f"Queue: {queue}")
    if sms.flash:
        headers.append("Flash: yes")
    return ("\n".join(headers) + "\n\n").encode("ascii") + body


def parse_file(raw: bytes) -> SmsFile:
    """Headers and body of an smsd file; BadFile when there is no header block (truncated, foreign)."""
    head, sep, body = raw.partition(b"\n\n")
    if not sep:
        raise BadFile("no empty line after the headers")
    headers: dict[str, str] = {}
    for line in head.split(b"\n"):
        text = line.rstrip(b"\r").decode("latin-1")
        key, colon, value = text.partition(":")
        if not colon or not key or " " in key.strip():
            raise BadFile(f"not a header line: {text[:40]!r}")
        headers[key.strip()] = value.strip()
    return SmsFile(headers, body)


def without_smsd_headers(raw: bytes) -> bytes:
    """A sent or failed file as we first wrote it: only our headers, the same body."""
    parsed = parse_file(raw)
    kept = [f"{k}: {v}" for k, v in parsed.headers.items() if k in OWN_HEADERS]
    return ("\n".join(kept) + "\n\n").encode("latin-1") + parsed.body


def parse_timestamp(value: str) -> float | None:
    """smsd's ``yy-mm-dd hh:mm:ss`` (local time) as seconds since the epoch; None if unreadable."""
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if year < 100:
        year += 2000
    try:
        return time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


@dataclass(frozen=True)
class FailVerdict:
    """What a ``Fail_reason`` means: retry it, or fail the part with ``dsn``."""

    temporary: bool
    dsn: str
    text: str


def judge_failure(reason: str) -> FailVerdict:
    """A ``Fail_reason`` of smsd: network causes from ``+CMS ERROR`` decide, the rest is temporary.

    smsd already tried ``send_retries`` times; a modem that answers ``ERROR``
    or nothing at all says nothing about the message, so it is tried again.
    """
    match = _CMS.search(reason)
    if match is not None:
        verdict = codes.cms_error(int(match.group(1)))
        if verdict.outcome == codes.FAILED and verdict.status.startswith("5"):
            return FailVerdict(False, verdict.status, verdict.text)
        return FailVerdict(True, verdict.status if verdict.status.startswith("4") else "4.0.0", verdict.text)
    if _CME.search(reason):
        return FailVerdict(True, "4.3.0", "modem error")
    lowered = reason.lower()
    if "blacklist" in lowered or "not in whitelist" in lowered or "no destination" in lowered:
        return FailVerdict(False, "5.7.1", "refused by smsd's own lists")
    return FailVerdict(True, "4.4.1", "modem or network did not take the message")


def is_status_report(parsed: SmsFile) -> bool:
    return parsed.body.lstrip().startswith(STATUS_REPORT)


@dataclass(frozen=True)
class StatusReport:
    """A status report file: the TP-MR it is about, the recipient, the TP-ST status."""

    message_id: int
    recipient: str
    status: int
    text: str
    modem: str


def parse_status_report(parsed: SmsFile) -> StatusReport:
    """The fields of a report file; BadFile when ``Message_id`` or ``Status`` is missing."""
    fields: dict[str, str] = {}
    for line in parsed.body.decode("utf-8", "replace").splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip()] = value.strip()
    try:
        message_id = int(fields["Message_id"])
        status_word, _, text = fields["Status"].partition(",")
        status = int(status_word)
    except (KeyError, ValueError):
        raise BadFile("status report without a usable Message_id and Status") from None
    modem = parsed.get("Modem") or parsed.get("Subject")
    return StatusReport(message_id, "+" + parsed.get("From").lstrip("+s"), status, text.strip(), modem)


_ALPHABETS = {"UCS": "utf-16-be", "UTF": "utf-8", "ISO": "iso-8859-15", "LAT": "iso-8859-15", "ANS": "iso-8859-15"}


def incoming_sms(parsed: SmsFile, gateway_id: str) -> IncomingSms:
    """An MO file as the inbound store takes it; BadFile for a body that cannot be decoded."""
    sender = parsed.get("From")
    if not sender:
        raise BadFile("no From header")
    alphabet = parsed.get("Alphabet", "ISO")[:3].upper()
    udh = b""
    if parsed.get("UDH-DATA"):
        try:
            udh = bytes.fromhex(parsed.get("UDH-DATA"))
        except ValueError:
            raise BadFile("UDH-DATA is not hex") from None
    data: bytes | None = None
    if alphabet == "BIN":
        coding, text, data = 1, "", parsed.body
    else:
        try:
            text = parsed.body.decode(_ALPHABETS.get(alphabet, "utf-8"))
        except UnicodeDecodeError as exc:
            raise BadFile(f"body is not {alphabet}: {exc.reason}") from None
        coding = 2 if alphabet == "UCS" else 0
    international = parsed.get("From_TOA", "91")[:2] == "91"
    number = "+" + sender if sender.isdigit() and international else sender
    digest = hashlib.sha256(
        "\0".join((sender, parsed.get("Sent"), parsed.get("UDH-DATA"))).encode() + b"\0" + parsed.body
    ).hexdigest()[:32]
    return IncomingSms(
        gateway_id=gateway_id, sender=number, text=text.replace("\x00", ""), udh=udh, coding=coding, data=data,
        smsc_id=f"smsd-{digest}", sent=parse_timestamp(parsed.get("Sent")),
    )  # fmt: skip
