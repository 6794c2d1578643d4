"""What a modem sent, on disk: message references, gateway ids, delivery-report matching.

A modem numbers its submits itself: ``+CMGS: <mr>``, 0 to 255, then 0
again.  A status report names only that reference, the recipient and when
the service centre took the message (TP-SCTS).  The journal keeps every
part sent through the modem with its reference and time; a report goes to
the part with its reference and recipient sent closest to the report's
TP-SCTS (without one, to the newest that has no final report yet).  So a
reference used again 256 submits later does not take the report of the
earlier part, and a report that comes twice finds its part already final
instead of being applied to the next part with the same reference.

The journal also answers ``already_submitted`` after a crash: a part is
appended (and fsynced) as soon as the modem says ``+CMGS``, before the
scheduler hears of it.  One JSON object a line; a line cut by a crash is
skipped; entries older than ``max_age`` are dropped at start.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mailsms.modem")

MAX_AGE = 8 * 86400.0  # longer than the default maximal_queue_lifetime (5 days) and SMSC validity


@dataclass
class Sent:
    """One part the modem took."""

    queue_id: str
    to: str
    seq: int
    message_id: str
    reference: int
    time: float
    final: bool = False


def same_number(a: str, b: str) -> bool:
    """Whether two spellings name one number (``+4917012345`` and ``017012345``): the last 8 digits agree."""
    da, db = "".join(c for c in a if c.isdigit()), "".join(c for c in b if c.isdigit())
    if not da or not db:
        return True  # a report without a recipient: the reference alone decides
    tail = min(len(da), len(db), 8)
    return da[-tail:] == db[-tail:]


class Journal:
    """The parts one modem sent; ``load`` and the writes block (call them in a thread)."""

    def __init__(self, path: Path, max_age: float = MAX_AGE) -> None:
        self.path = path
        self.max_age = max_age
        self._by_reference: dict[int, list[Sent]] = {}
        self._by_id: dict[str, Sent] = {}

    def load(self, now: float) -> None:
        """Read the journal, drop old entries, and write it back compacted."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._by_reference.clear()
        self._by_id.clear()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        for line in text.split("\n"):
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                log.warning("modem journal %s: unreadable line skipped", self.path)
                continue
            if isinstance(record, dict):
                self._apply(record, now)
        kept = list(self._by_id.values())
        temp = self.path.with_suffix(".tmp")
        with open(temp, "w", encoding="utf-8") as file:
            for sent in kept:
                file.write(_line(sent))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, self.path)

    def _apply(self, record: dict[str, object], now: float) -> None:
        final = record.get("final")
        if isinstance(final, str):
            if final in self._by_id:
                self._by_id[final].final = True
            return
        try:
            sent = Sent(
                queue_id=str(record["queue_id"]),
                to=str(record["to"]),
                seq=int(str(record["seq"])),
                message_id=str(record["message_id"]),
                reference=int(str(record["reference"])),
                time=float(str(record["time"])),
                final=record.get("final") is True,
            )
        except (KeyError, ValueError):
            return
        if now - sent.time <= self.max_age:
            self._add(sent)

    def _add(self, sent: Sent) -> None:
        self._by_reference.setdefault(sent.reference, []).append(sent)
        self._by_id[sent.message_id] = sent

    def record(self, sent: Sent) -> None:
        """Remember a part the modem took, durably."""
        self._add(sent)
        self._append(_line(sent))

    def mark_final(self, sent: Sent) -> None:
        """A final report was applied to ``sent``: another report with its reference is not for it."""
        sent.final = True
        self._append(json.dumps({"final": sent.message_id}) + "\n")

    def _append(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def submitted(self, queue_id: str, to: str) -> dict[int, str]:
        """``seq`` -> message id of the parts of ``queue_id`` for ``to`` the modem took."""
        return {s.seq: s.message_id for s in self._by_id.values() if s.queue_id == queue_id and s.to == to}

    def match(self, reference: int, recipient: str, submitted_at: float | None) -> Sent | None:
        """The part a status report is about (check ``final``: a repeated report), or None when none fits."""
        same = [s for s in self._by_reference.get(reference, ()) if same_number(s.to, recipient)]
        if not same:
            return None
        if submitted_at is not None:
            return min(same, key=lambda s: abs(s.time - submitted_at))
        waiting = [s for s in same if not s.final]
        return max(waiting or same, key=lambda s: s.time)


def _line(sent: Sent) -> str:
    return json.dumps(
        {"queue_id": sent.queue_id, "to": sent.to, "seq": sent.seq, "message_id": sent.message_id,
         "reference": sent.reference, "time": round(sent.time, 3), "final": sent.final}
    ) + "\n"  # fmt: skip
