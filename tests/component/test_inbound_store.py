"""The inbound store in the queue's database: migration from schema 1, one row per MO delivery."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from mailsms.store.inbound import NewInbound, insert_inbound, list_inbound
from mailsms.store.queue import QueueStore
from mailsms.store.schema import SCHEMA_VERSION, _create_queue
from mailsms.store.sqlite import SqliteStore


def version_1_database(state_dir: Path) -> None:
    """A queue as the first release wrote it, with one message in it."""
    state_dir.mkdir()
    conn = sqlite3.connect(state_dir / "queue.sqlite", isolation_level=None)
    _create_queue(sqlite_utils.Database(conn), conn)
    conn.execute(
        "INSERT INTO message (id, created, sender, recipient, number, gateway, state, next_attempt)"
        " VALUES ('OLD000000001', 1.0, 'a@example.com', 'x', '+15551234567', 'outbox', 'queued', 1.0)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def mo(id: str, smsc_id: str = "", received: float = 1.0, gateway: str = "kannel") -> NewInbound:
    return NewInbound(id=id, received=received, gateway=gateway, sender="+4915112345678", to="1234", text="hi",
                      smsc_id=smsc_id)  # fmt: skip


async def test_schema_1_is_migrated_keeping_the_queue(tmp_path: Path) -> None:
    # SQLite only: schema 1 is a file the first release wrote (PostgreSQL starts at the current schema).
    state = tmp_path / "var"
    version_1_database(state)
    store = SqliteStore.open(state)
    try:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
        assert store.load("OLD000000001") is not None
        assert await store.write(functools.partial(insert_inbound, mo=mo("NEW1"))) == ("NEW1", False)
    finally:
        store.close()
    again = SqliteStore.open(state)  # opening again changes nothing
    try:
        assert [e.id for e in list_inbound(again.conn)] == ["NEW1"]
    finally:
        again.close()


async def test_same_gateway_and_smsc_id_is_stored_once_other_gateways_and_empty_ids_are_not(
    open_queue: Callable[[], QueueStore],
) -> None:
    store = open_queue()
    try:
        results = [
            await store.write(functools.partial(insert_inbound, mo=each))
            for each in (mo("A", "s1"), mo("B", "s1"), mo("C", "s1", gateway="other"), mo("D"), mo("E"))
        ]
        assert results == [("A", False), ("A", True), ("C", False), ("D", False), ("E", False)]
    finally:
        store.close()


async def test_list_is_oldest_first_and_limit_keeps_the_newest(open_queue: Callable[[], QueueStore]) -> None:
    store = open_queue()
    try:
        for index, when in enumerate((3.0, 1.0, 2.0)):
            await store.write(functools.partial(insert_inbound, mo=mo(f"M{index}", received=when)))
        assert [e.id for e in list_inbound(store.conn)] == ["M1", "M2", "M0"]
        assert [e.id for e in list_inbound(store.conn, limit=2)] == ["M2", "M0"]
        (entry,) = list_inbound(store.conn, limit=1)
        assert (entry.state, entry.routed_to, entry.udh, entry.coding) == ("received", "", b"", 0)
    finally:
        store.close()
