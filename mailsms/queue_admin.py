"""What ``mailsms queue`` shows and changes; rendering is pure, the store does the I/O."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from mailsms.address_params import iso_time
from mailsms.store import DEFERRED, HOLD, QUEUED, StoredMessage, Summary
from mailsms.store.engines import engine_of, open_store, sqlite_path
from mailsms.store.queue import QueueStore


def stamp(seconds: float) -> str:
    """A UTC time as the queue tools show it: 2024-05-01T12:00:00Z (as ``at=`` is written)."""
    return iso_time(seconds)


def summary_json(row: Summary) -> dict[str, object]:
    """The contract of ``queue list --json``."""
    return {
        "id": row.id,
        "from": row.sender,
        "to": row.to,
        "state": row.state,
        "parts": row.parts,
        "sent_parts": row.sent_parts,
        "attempts": row.attempts,
        "created": stamp(row.created),
        "next_attempt": stamp(row.next_attempt) if row.state in (QUEUED, DEFERRED) else None,
        "reason": row.reason,
        "scheduled": stamp(row.next_attempt) if is_scheduled(row) else None,
    }


def is_scheduled(row: Summary) -> bool:
    """A scheduled send not yet due (at=, Deferred-Delivery): queued, never tried, due later than accepted."""
    return row.state == QUEUED and row.attempts == 0 and row.next_attempt > row.created + 1.0


def render_table(rows: list[Summary]) -> str:
    if not rows:
        return "mailsms: queue is empty"
    lines = [f"{'ID':<13} {'STATE':<9} {'PARTS':>5} {'TRIES':>5} {'CREATED':<20} FROM -> TO"]
    for row in rows:
        lines.append(
            f"{row.id:<13} {row.state:<9} {row.sent_parts:>2}/{row.parts:<2} {row.attempts:>5} "
            f"{stamp(row.created):<20} <{row.sender}> -> {row.to}"
        )
        if is_scheduled(row):
            lines.append(f"{'':<13} (scheduled for {stamp(row.next_attempt)})")
        if row.reason:
            lines.append(f"{'':<13} ({row.reason})")
    lines.append(f"-- {len(rows)} message{'s' * (len(rows) != 1)}")
    return "\n".join(lines)


def message_json(message: StoredMessage) -> dict[str, object]:
    data = asdict(message)
    data["created"] = stamp(message.created)
    data["next_attempt"] = stamp(message.next_attempt)
    data["params"] = json.loads(message.params or "{}")
    data["dsn"] = json.loads(message.dsn or "{}")
    data["headers"] = json.loads(message.headers or "[]")
    data["parts"] = [
        {"seq": p.seq, "text": p.text, "udh": p.udh.hex(), "state": p.state, "gateway_id": p.gateway_msgid}
        for p in message.parts
    ]
    return data


class QueueAdmin:
    def __init__(self, store: QueueStore) -> None:
        self.store = store

    @classmethod
    def open(cls, state_dir: Path, url: str = "") -> QueueAdmin | None:
        """The queue of ``store.url`` (``""``: SQLite in ``state_dir``); None when there is no
        SQLite queue yet (the daemon never ran)."""
        if engine_of(url) == "sqlite" and not sqlite_path(url, state_dir).exists():
            return None
        return cls(open_store(url, state_dir, node="tool"))

    def close(self) -> None:
        self.store.close()

    def render_list(self, *, include_final: bool, as_json: bool) -> str:
        rows = self.store.summaries(include_final)
        if as_json:
            return json.dumps([summary_json(r) for r in rows], ensure_ascii=False)
        return render_table(rows)

    def render_show(self, message_id: str, *, as_json: bool) -> str | None:
        message = self.store.load(message_id)
        if message is None:
            return None
        data = message_json(message)
        if as_json:
            return json.dumps(data, ensure_ascii=False)
        lines = [f"{k}: {v}" for k, v in data.items() if k != "parts"]
        lines += [f"part {p['seq']}: [{p['state']}] udh={p['udh'] or '-'} {p['text']!r}" for p in data["parts"]]  # type: ignore[attr-defined]
        return "\n".join(lines)

    def retry(self, message_id: str) -> bool:
        return self.store.set_state(message_id, to=QUEUED, allowed_from=(DEFERRED, QUEUED), now=time.time())

    def hold(self, message_id: str) -> bool:
        return self.store.set_state(message_id, to=HOLD, allowed_from=(DEFERRED, QUEUED), now=time.time())

    def release(self, message_id: str) -> bool:
        return self.store.set_state(message_id, to=QUEUED, allowed_from=(HOLD,), now=time.time())

    def delete(self, message_id: str) -> bool:
        return self.store.delete(message_id)

    def flush(self) -> int:
        return self.store.retry_all(time.time())
