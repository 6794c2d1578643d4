"""Gammu SMSD ``files`` backend: the files mailsms writes into ``outbox/`` and reads from ``inbox/``.

Pure functions, no I/O.  Facts checked against gammu-smsd 1.42 (Debian bookworm):

* ``outbox/`` is scanned in ``alphasort`` order for names starting with
  ``OUT`` (any case) and ending in ``.txt*`` or ``.smsbackup*``; hidden files
  are skipped.  A ``.txt`` file is one message gammu splits and encodes
  itself (``transmitformat``); a ``.smsbackup`` file (gammu's backup format,
  ``[SMSBackup000]`` sections) is sent as it stands: one SMS per section,
  with the section's ``UDH`` and ``Coding``, whatever ``transmitformat`` says.
  The name of a backup file is not parsed: the number comes from the file.
* A sent file is renamed unchanged into ``sent/``, a failed one into ``error/``.
* Received files are ``IN<yyyymmdd>_<hhmmss>_<serial>_<sender>_<seq>.txt``
  (``.bin`` for 8-bit).  A multipart MO is written already joined, one file
  per part (``_00``, ``_01``...) without UDH and without a total.  With
  ``inboxformat = unicode`` a text file is a byte-order mark ``FE FF`` and
  UTF-16BE; gammu sizes it by the UTF-8 length of the text, so non-ASCII text
  comes padded with NULs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mailsms.segment import gsm
from transports.base import IncomingSms, OutgoingPart, OutgoingSms

NOTE = "mailsms."
EXTENSION = ".smsbackup"
_HEX_PER_LINE = 200  # what gammu itself writes: 50 UTF-16 units a TextNN line
_INBOX = re.compile(r"^IN(\d{8})_(\d{6})_(\d{2})_(.*)_(\d{2})\.(txt|bin)$")


class BadFile(ValueError):
    """A file that is not (or not yet) a usable gammu inbox file."""


def outbox_name(sms: OutgoingSms, seq: int, attempt: int, when: float, priority: str = "C") -> str:
    """``OUT<priority><date>_<time>_<serial>_<number>_mailsms.<queue>.<seq>.<attempt>.<random>.smsbackup``.

    The parts of one message share ``when`` and take ``seq`` as serial, so
    gammu's alphabetical scan sends them in order.
    """
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(when))
    number = re.sub(r"[^+0-9A-Za-z]", "", sms.to)
    note = f"{NOTE}{sms.queue_id}.{seq}.{attempt}.{secrets.token_hex(4)}"
    return f"OUT{priority}{stamp}_{seq:03d}_{number}_{note}{EXTENSION}"


def parse_name(name: str) -> tuple[str, int, int] | None:
    """``(queue_id, seq, attempt)`` of one of our outbox names, or None."""
    at = name.find("_" + NOTE)
    if not name.startswith("OUT") or not name.endswith(EXTENSION) or at < 0:
        return None
    pieces = name[at + 1 + len(NOTE) : -len(EXTENSION)].rsplit(".", 3)
    if len(pieces) != 4 or not pieces[1].isdigit() or not pieces[2].isdigit() or not pieces[0]:
        return None
    return pieces[0], int(pieces[1]), int(pieces[2])


def outgoing_file(sms: OutgoingSms, part: OutgoingPart) -> bytes:
    """One part as a gammu backup file: our own split, our UDH, our coding."""
    if sms.encoding == "binary":
        coding, payload = "8bit", part.data or b""
        length = len(payload)
    else:
        coding = "Unicode_No_Compression" if sms.encoding == "ucs2" else "Default_No_Compression"
        payload = part.text.encode("utf-16-be")
        length = len(payload) // 2
    number = sms.to
    text = payload.hex().upper()
    lines = [
        "; Written by mailsms for gammu-smsd (files backend)",
        "",
        "[SMSBackup000]",
        "PDU = Submit",
        "State = UnSent",
        f'Number = "{number}"',
        f"NumberUnicode = {number.encode('utf-16-be').hex().upper()}",
        'Name = ""',
        "NameUnicode = ",
        f"UDH = {part.udh.hex().upper()}",
        *(f"Text{n:02d} = {text[i : i + _HEX_PER_LINE]}" for n, i in enumerate(range(0, len(text), _HEX_PER_LINE))),
        f"Coding = {coding}",
        "Folder = 1",
        f"Length = {length}",
        f"Class = {0 if sms.flash else -1}",
        "ReplySMSC = False",
        "RejectDuplicates = False",
        "ReplaceMessage = 0",
        "MessageReference = 0",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


@dataclass(frozen=True)
class InboxName:
    """The pieces of an ``IN...`` file name; ``group`` is the same for every part of one MO."""

    date: str
    time: str
    serial: str
    sender: str
    seq: int
    binary: bool

    @property
    def group(self) -> str:
        return f"{self.date}_{self.time}_{self.serial}_{self.sender}"

    @property
    def sent(self) -> float | None:
        try:
            return time.mktime(time.strptime(self.date + self.time, "%Y%m%d%H%M%S"))
        except (OverflowError, ValueError):
            return None


def parse_inbox_name(name: str) -> InboxName | None:
    """An inbox file name, or None for anything else (gammu's own or another program's files)."""
    match = _INBOX.match(name)
    if match is None:
        return None
    date, hms, serial, sender, seq, ext = match.groups()
    return InboxName(date, hms, serial, sender, int(seq), ext == "bin")


def decode_text(raw: bytes) -> str:
    """A text inbox file: UTF-16 with a byte-order mark (``inboxformat = unicode``) or UTF-8 (standard)."""
    try:
        if raw[:2] in (b"\xfe\xff", b"\xff\xfe"):
            codec = "utf-16-be" if raw[:2] == b"\xfe\xff" else "utf-16-le"
            body = raw[2:]
            while len(body) % 2 or body.endswith(b"\x00\x00"):  # gammu's NUL padding
                body = body[:-1]
            return body.decode(codec).replace("\x00", "")
        return raw.decode("utf-8").replace("\x00", "")
    except UnicodeDecodeError as exc:
        raise BadFile(f"text is neither UTF-16 with a byte-order mark nor UTF-8: {exc.reason}") from None


def incoming_sms(parts: Sequence[tuple[InboxName, bytes]], gateway_id: str) -> IncomingSms:
    """The files of one MO (already joined by gammu, in ``seq`` order) as the inbound store takes it."""
    if not parts:
        raise BadFile("no files")
    first = parts[0][0]
    if [name.seq for name, _ in parts] != list(range(len(parts))):
        raise BadFile(f"parts of {first.group} are not numbered 00, 01, ...")
    digest = hashlib.sha256(first.group.encode())
    for _, raw in parts:
        digest.update(b"\0" + raw)
    smsc_id = f"gammu-{digest.hexdigest()[:32]}"
    sender = first.sender  # as gammu wrote it: "+<digits>" for international numbers
    if first.binary:
        data = b"".join(raw for _, raw in parts)
        return IncomingSms(gateway_id=gateway_id, sender=sender, text="", coding=1, data=data, smsc_id=smsc_id,
                           sent=first.sent)  # fmt: skip
    text = "".join(decode_text(raw) for _, raw in parts)
    coding = 0 if gsm.to_septets(text) is not None else 2
    return IncomingSms(gateway_id=gateway_id, sender=sender, text=text, coding=coding, smsc_id=smsc_id,
                       sent=first.sent)  # fmt: skip
