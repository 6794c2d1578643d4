"""Fill a queue fast, through the real schema, for the benchmarks that need a big one.

``messages`` makes ``NewMessage`` values like the ones ingest commits (the
load client's text, split by mailsms's own segmenter, with the headers and
DSN fields ingest keeps); ``enqueue_all`` commits them through the store's
own ``enqueue`` (the writer thread, group commit) in batches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

from bench.loadclient import BODY
from mailsms.ingest import new_queue_id
from mailsms.segment import split_text
from mailsms.store import NewMessage, NewPart
from mailsms.store.sqlite import SqliteStore

SENDER = "bench@example.test"
TEXT = f"bench 0.1: {BODY}"


def _parts() -> tuple[str, tuple[NewPart, ...]]:
    split = split_text(TEXT, reference=1)
    return split.encoding, tuple(NewPart(seq, p.text, p.udh) for seq, p in enumerate(split.parts, start=1))


def messages(count: int, now: float, gateway: str, first: int = 0) -> Iterator[NewMessage]:
    """``count`` queued messages for ``gateway``, created at ``now``; numbers from ``first`` on."""
    encoding, parts = _parts()
    for index in range(first, first + count):
        number = f"+1555{index % 10_000_000:07d}"
        headers = json.dumps([["From", f"Bench <{SENDER}>"], ["To", f'"sms:{number}"@sms.example.test'],
                              ["Subject", "bench 0.1"], ["Message-ID", f"<bench.{index}@example.test>"]])  # fmt: skip
        yield NewMessage(
            id=new_queue_id(), created=now, sender=SENDER, recipient=f"sms:{number}", number=number, gateway=gateway,
            encoding=encoding, text=TEXT, parts=parts, dsn='{"RET":"HDRS"}', headers=headers, notify=3,
            warn_at=now + 4 * 3600,
        )  # fmt: skip


def fill(store: SqliteStore, count: int, now: float, gateway: str, batch: int = 2000, first: int = 0) -> None:
    """Commit ``count`` messages through ``store.enqueue``, ``batch`` a transaction."""

    async def run() -> None:
        pending: list[NewMessage] = []
        for message in messages(count, now, gateway, first):
            pending.append(message)
            if len(pending) >= batch:
                await store.enqueue(pending)
                pending = []
        if pending:
            await store.enqueue(pending)

    asyncio.run(run())
