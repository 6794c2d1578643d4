"""A simulated gammu-smsd (files backend): moves outbox files and writes inbox files as 1.42 does.

Outbox files are renamed unchanged into ``sent/`` or ``error/``; received
files are ``IN<date>_<time>_<serial>_<sender>_<seq>.txt``, a byte-order mark
and UTF-16BE (``inboxformat = unicode``), padded with NULs up to twice the
UTF-8 length of the text, one file per part of a multipart MO.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

FOLDERS = ("inbox", "outbox", "sent", "error")


@dataclass(frozen=True)
class Backup:
    name: str
    fields: dict[str, str]

    @property
    def text(self) -> str:
        hexed = "".join(v for k, v in sorted(self.fields.items()) if k.startswith("Text"))
        return bytes.fromhex(hexed).decode("utf-16-be")


@dataclass
class SimulatedGammu:
    spool: Path

    def __post_init__(self) -> None:
        for name in FOLDERS:
            (self.spool / name).mkdir(parents=True, exist_ok=True)

    def outbox(self) -> list[Backup]:
        """The files gammu would send, in its (alphabetical) order, one section each."""
        found = []
        for path in sorted((self.spool / "outbox").iterdir()):
            if path.name.startswith("."):
                continue
            fields = {}
            for line in path.read_text("ascii").splitlines():
                key, eq, value = line.partition(" = ")
                if eq:
                    fields[key] = value
            found.append(Backup(path.name, fields))
        return found

    def send_all(self, folder: str = "sent") -> list[Backup]:
        """Every outbox file sent (or, with ``folder="error"``, failed)."""
        done = self.outbox()
        for backup in done:
            (self.spool / "outbox" / backup.name).rename(self.spool / folder / backup.name)
        return done

    def receive(self, sender: str, *parts: str, when: float | None = None, serial: int = 0) -> list[Path]:
        """One MO, already joined by gammu, one file per part."""
        stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(when if when is not None else time.time()))
        paths = []
        for seq, text in enumerate(parts):
            body = text.encode("utf-16-be")
            padded = body.ljust(2 * len(text.encode("utf-8")), b"\x00")
            path = self.spool / "inbox" / f"IN{stamp}_{serial:02d}_{sender}_{seq:02d}.txt"
            path.write_bytes(b"\xfe\xff" + padded)
            paths.append(path)
        return paths
