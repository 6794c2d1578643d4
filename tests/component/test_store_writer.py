"""The store's writer runs a batch again when the database rolled it back to break a conflict."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailsms.errors import InternalError
from mailsms.store import pg, sqlite
from mailsms.store.conn import Conn
from mailsms.store.pg import PgConnection
from mailsms.store.writer import CONFLICT_TRIES, BatchWriter, Conflict
from tests.support.wait import async_wait_until


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.sqlite"
    conn = sqlite.connect(path)
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.close()
    return path


def values(path: Path) -> list[int]:
    conn = sqlite.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT v FROM t ORDER BY v")]
    finally:
        conn.close()


def insert(conn: Conn, value: int) -> int:
    conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
    return value


class Conflicting:
    """An operation that inserts, then meets a conflict on its first ``times`` runs."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.runs = 0

    def __call__(self, conn: Conn) -> str:
        self.runs += 1
        conn.execute("INSERT INTO t (v) VALUES (?)", (100 + self.runs,))
        if self.runs <= self.times:
            raise Conflict("DeadlockDetected: deadlock detected")
        return "done"


async def in_one_batch(writer: BatchWriter, *ops: Callable[[Conn], Any]) -> list[Any]:
    """Run ``ops`` in the same batch: they are queued while the writer commits a batch that waits."""
    started, go = threading.Event(), threading.Event()

    def hold(conn: Conn) -> None:
        started.set()
        go.wait(10)

    held = asyncio.ensure_future(writer.run(hold))
    await async_wait_until(started.is_set, what="the holding batch running")
    runs = [asyncio.ensure_future(writer.run(op)) for op in ops]
    await async_wait_until(lambda: len(writer._pending) == len(ops), what="the operations queued")
    go.set()
    await held
    return list(await asyncio.gather(*runs, return_exceptions=True))


async def test_a_batch_rolled_back_by_a_conflict_runs_again_and_each_operation_counts_once(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsms.store")
    writer = BatchWriter(functools.partial(sqlite.connect, db), sqlite.storage_error)
    conflicting = Conflicting(times=2)
    try:
        results = await in_one_batch(writer, functools.partial(insert, value=1), conflicting)
    finally:
        writer.close()
    assert results == [1, "done"]
    assert values(db) == [1, 103]  # the runs rolled back left nothing
    assert (conflicting.runs, writer.conflicts) == (3, 2)
    logged = [r.getMessage() for r in caplog.records if r.name == "mailsms.store"]
    assert logged == [
        "store writer: the database rolled back a batch of 2 to break a conflict"
        f" (DeadlockDetected: deadlock detected); it runs again (try {n} of {CONFLICT_TRIES})"
        for n in (2, 3)
    ]


async def test_an_operation_still_in_conflict_after_the_last_try_fails_alone(db: Path) -> None:
    writer = BatchWriter(functools.partial(sqlite.connect, db), sqlite.storage_error)
    conflicting = Conflicting(times=CONFLICT_TRIES)
    try:
        first, second = await in_one_batch(writer, functools.partial(insert, value=1), conflicting)
    finally:
        writer.close()
    assert first == 1
    assert isinstance(second, InternalError) and str(second) == "queue file write error"
    assert values(db) == [1]
    assert (conflicting.runs, writer.conflicts) == (CONFLICT_TRIES, CONFLICT_TRIES - 1)


@pytest.mark.parametrize("caught_inside", [False, True], ids=["raised", "caught-in-a-savepoint"])
async def test_a_real_deadlock_with_another_nodes_transaction_is_broken_and_the_batch_commits(
    pg_url: str, caught_inside: bool
) -> None:
    setup = PgConnection(pg_url)
    other = PgConnection(pg_url, application="the other node")
    other.execute("SET deadlock_timeout = '60s'")  # so that the server picks the writer, whichever checks first
    writer = BatchWriter(functools.partial(PgConnection, pg_url, application="writer"), pg.storage_error)
    try:
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        setup.execute("INSERT INTO t (id, v) VALUES (1, 0), (2, 0)")
        other.execute("BEGIN")
        other.execute("UPDATE t SET v = v + 10 WHERE id = 1")
        runs: list[int] = []

        def op(conn: Conn) -> int:  # takes row 2, then waits for row 1, which the other node holds
            runs.append(len(runs) + 1)
            conn.execute("UPDATE t SET v = v + 1 WHERE id = 2")
            if not caught_inside:
                conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
                return len(runs)
            # As the reply-log hook does: its own savepoint, and an error logged, not raised. Committing
            # row 2 alone would leave the batch with half its work; the writer notices and runs it again.
            conn.execute("SAVEPOINT hook")
            try:
                conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            except sqlite3.Error:
                conn.execute("ROLLBACK TO hook")
            conn.execute("RELEASE hook")
            return len(runs)

        done = asyncio.ensure_future(writer.run(op))

        def writer_waits() -> bool:
            row = setup.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'writer' AND wait_event_type = 'Lock'"
            ).fetchone()
            return row is not None and bool(row[0])

        await async_wait_until(writer_waits, what="the writer waiting for row 1")

        def other_takes_row_2() -> None:  # the cycle: the writer waited first, so the server rolls it back
            other.execute("UPDATE t SET v = v + 10 WHERE id = 2")
            other.execute("COMMIT")

        await asyncio.to_thread(other_takes_row_2)
        assert await asyncio.wait_for(done, 30) == 2
        assert setup.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, 11), (2, 11)]
        assert writer.conflicts == 1
    finally:
        writer.close()
        other.close()
        setup.close()
