"""A simulated smstools3 smsd: moves spool files and writes them in smsd 3.1.21's own formats.

The formats were copied from files real smsd wrote here (Debian bookworm,
with ``incoming_utf8 = yes``, ``decode_unicode_text = no``,
``internal_combine = no``): smsd appends its headers after the ones it was
given, keeps the body as it was, and writes received files with no newline
after the body.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

FOLDERS = ("outgoing", "checked", "incoming", "sent", "failed", "report")
IMSI = "490154203237518"


def stamp(when: float) -> str:
    return time.strftime("%y-%m-%d %H:%M:%S", time.localtime(when))


@dataclass
class Outgoing:
    name: str
    headers: dict[str, str]
    body: bytes


@dataclass
class SimulatedSmsd:
    spool: Path
    modem: str = "GSM1"
    next_reference: int = 0
    sent: list[Outgoing] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in FOLDERS:
            (self.spool / name).mkdir(parents=True, exist_ok=True)

    def outgoing(self) -> list[Outgoing]:
        """The files waiting in outgoing/, parsed, oldest name first."""
        found = []
        for path in sorted((self.spool / "outgoing").iterdir()):
            head, _, body = path.read_bytes().partition(b"\n\n")
            headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\n"))
            found.append(Outgoing(path.name, headers, body))
        return found

    def send_all(self) -> list[Outgoing]:
        """Send every outgoing file: moved to sent/ with smsd's headers; returns them."""
        done = []
        for message in self.outgoing():
            extra = [f"Modem: {self.modem}", f"Sent: {stamp(time.time())}", "Sending_time: 1"]
            if message.headers.get("Report") == "yes":
                extra.append(f"Message_id: {self.next_reference}")
                message.headers["Message_id"] = str(self.next_reference)
                self.next_reference = (self.next_reference + 1) % 256
            extra += [f"IMSI: {IMSI}", f"IMEI: {IMSI}"]
            self._move(message, "sent", extra)
            self.sent.append(message)
            done.append(message)
        return done

    def fail_all(self, reason: str) -> list[Outgoing]:
        """Every outgoing file fails (after smsd's own retries) with ``Fail_reason: reason``."""
        done = []
        for message in self.outgoing():
            extra = [f"Modem: {self.modem}", f"IMSI: {IMSI}", f"IMEI: {IMSI}", f"Fail_reason: {reason}",
                     f"Failed: {stamp(time.time())}", "PDU: 0071000B915155214365F70000FF00"]  # fmt: skip
            self._move(message, "failed", extra)
            done.append(message)
        return done

    def _move(self, message: Outgoing, folder: str, extra: list[str]) -> None:
        source = self.spool / "outgoing" / message.name
        head, _, body = source.read_bytes().partition(b"\n\n")
        text = head + b"\n" + "\n".join(extra).encode("latin-1") + b"\n\n" + body
        (self.spool / folder / message.name).write_bytes(text)
        source.unlink()

    def _received_headers(self, sender: str, when: float) -> list[str]:
        return [f"From: {sender.lstrip('+')}", "From_TOA: 91 international, ISDN/telephone",
                f"Sent: {stamp(when)}", f"Received: {stamp(when + 1)}", f"Subject: {self.modem}",
                f"Modem: {self.modem}", f"IMSI: {IMSI}", f"IMEI: {IMSI}", "Report: no"]  # fmt: skip

    def status_report(self, reference: int, number: str, status: int = 0, folder: str = "report") -> Path:
        """A status report as smsd writes it (``Status: 0,Ok,...`` for delivered)."""
        when = time.time()
        words = {0: "Ok,short message received by the SME", 0x41: "Failed,incompatible destination"}
        text = words.get(status, "Failed,unknown")
        headers = [*self._received_headers(number, when), "Alphabet: UTF-8", "Length: 117", "UDH: no"]
        lines = ["SMS STATUS REPORT", f"Message_id: {reference}", f"Discharge_timestamp: {stamp(when)}"]
        body = "\n".join([*lines, f"Status: {status},{text}"])
        return self._write(folder, headers, body.encode())

    def receive(self, sender: str, text: str, *, ucs2: bool = False, udh: bytes = b"") -> Path:
        """An MO as smsd writes it into incoming/ (UTF-8 text, or UTF-16BE with ``Alphabet: UCS2``)."""
        headers = self._received_headers(sender, time.time())
        headers.append("Alphabet: UCS2" if ucs2 else "Alphabet: UTF-8")
        if udh:
            headers.append("UDH-DATA: " + " ".join(f"{b:02X}" for b in udh) + " ")
            headers.append(f"UDH-Type: Length={len(udh)}, [00]Concatenated short messages, 8-bit reference number")
        headers.append(f"Length: {len(text)}")
        return self._write("incoming", headers, text.encode("utf-16-be" if ucs2 else "utf-8"))

    def _write(self, folder: str, headers: list[str], body: bytes) -> Path:
        path = self.spool / folder / f"{self.modem}.{secrets.token_hex(3)}"
        path.write_bytes("\n".join(headers).encode("latin-1") + b"\n\n" + body)
        return path
