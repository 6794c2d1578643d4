"""What a spool gateway (smstools, gammu) did with each file it wrote, on disk.

One JSON object a line, appended and fsynced before the file it is about is
removed from the spool, so that each spool file is handled once, also across
restarts: a file found again after a crash is recognised by its name.  The
journal also answers ``already_submitted`` once smsd has moved a file out of
sight, and matches status reports (smsd's ``Message_id`` is the modem's
TP-MR, 0-255, reused every 256 parts) to the newest part with that reference
and recipient that has no final report yet.  Entries older than ``max_age``
are dropped when the journal is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("mailsms.spool")

MAX_AGE = 8 * 86400.0  # longer than the default maximal_queue_lifetime (5 days) and SMSC validity


@dataclass
class Entry:
    """One file we wrote: its part, the gateway's reference for it once sent, whether it is settled."""

    name: str
    queue_id: str
    seq: int
    to: str
    reference: str = ""  # smsd's Message_id (the TP-MR); "" before it was sent or without a report
    modem: str = ""
    time: float = 0.0
    final: bool = False


def same_number(a: str, b: str) -> bool:
    """Whether two spellings name one number: the last 8 digits agree."""
    da, db = "".join(c for c in a if c.isdigit()), "".join(c for c in b if c.isdigit())
    if not da or not db:
        return True
    tail = min(len(da), len(db), 8)
    return da[-tail:] == db[-tail:]


class Journal:
    """Entries by file name; every method blocks on the disk (call it in a thread)."""

    def __init__(self, path: Path, max_age: float = MAX_AGE, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_age = max_age
        self._clock = clock
        self.entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the journal, drop old entries and rewrite it compacted."""
        entries: dict[str, Entry] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                entry = Entry(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut by a crash
            entries[entry.name] = entry
        now = self._now()
        self.entries = {n: e for n, e in entries.items() if now - e.time < self.max_age}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        with open(temp, "w", encoding="utf-8") as file:
            for entry in self.entries.values():
                file.write(json.dumps(asdict(entry)) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, self.path)

    def _now(self) -> float:
        return self._clock()

    def record(self, entry: Entry) -> None:
        """Append ``entry`` durably (it replaces an entry of the same name)."""
        if not entry.time:
            entry.time = self._now()
        line = json.dumps(asdict(entry)) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(line)
                file.flush()
                os.fsync(file.fileno())
            self.entries[entry.name] = entry

    def get(self, name: str) -> Entry | None:
        return self.entries.get(name)

    def parts(self, queue_id: str) -> set[int]:
        """The parts of a message the journal knows were handed to the gateway."""
        return {e.seq for e in list(self.entries.values()) if e.queue_id == queue_id}

    def match(self, modem: str, reference: str, recipient: str, *, settled: bool = False) -> Entry | None:
        """The newest unsettled (``settled``: settled) entry sent with ``reference`` to ``recipient``."""
        found = [
            e
            for e in list(self.entries.values())
            if e.final == settled
            and e.reference == reference
            and (not modem or not e.modem or e.modem == modem)
            and same_number(e.to, recipient)
        ]
        return max(found, key=lambda e: e.time) if found else None
