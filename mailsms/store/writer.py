"""Group commit in a thread: every write pending when the writer wakes shares one transaction.

The event loop hands an operation (a function of a ``mailsms.store.conn.Conn``)
to :class:`BatchWriter` and awaits its future.  The writer thread owns its
own connection; it takes everything queued since its last commit, runs each
operation inside a savepoint of one ``BEGIN IMMEDIATE`` transaction, commits
(one fsync for the whole batch, with ``synchronous=FULL``) and only then
resolves the futures, with one wake-up per event loop.  While it waits on
the disk the loop keeps reading mail, so a busy server commits many
messages per fsync, and an idle one commits each at once.

An operation that raises is rolled back to its savepoint and fails alone;
a failed ``BEGIN`` or ``COMMIT`` (disk full, I/O error) fails the whole
batch with the error mapped by ``on_error``, and the next batch tries again.

Where several nodes share the database (PostgreSQL), two batches can lock
the same rows in opposite orders; the server then refuses a statement of
one of them to break the deadlock (:class:`Conflict`).  That batch still
holds the locks of its earlier statements, which the other may be waiting
for, so it is rolled back whole and run again from ``BEGIN``, after a short
random pause, up to ``CONFLICT_TRIES`` times: nothing of it stood, and the
operations are functions of the connection that can run again.  The
connection counts conflicts (``conflicts``), so one that an operation caught
itself (a hook in a savepoint of its own) is noticed too.  After the last
try an operation that met a conflict fails alone, as any other error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailsms.store.conn import Conn

log = logging.getLogger("mailsms.store")

Operation = Callable[[Conn], Any]

CONFLICT_TRIES = 5  # runs of a batch that the database rolled back to break a deadlock
CONFLICT_PAUSE = 0.005  # seconds; the pause before try n is random, up to this times 2**n


class Conflict(sqlite3.OperationalError):
    """The engine refused a statement to break a deadlock (or a serialization conflict) with
    another node's transaction: once the whole transaction is rolled back, nothing of it stands,
    and running it again is expected to work."""


@dataclass
class _Job:
    op: Operation
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


def _conflicts(conn: Conn) -> int:
    """How many conflicts the connection met so far (SQLite's has none: one writer at a time)."""
    return int(getattr(conn, "conflicts", 0))


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """Runs on the event loop: resolve each future that nobody cancelled."""
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class BatchWriter:
    """A writer thread with its own connection, started on first use."""

    def __init__(
        self,
        connect: Callable[[], Conn],
        on_error: Callable[[BaseException], BaseException],
        name: str = "mailsms-store-writer",
    ) -> None:
        self._connect = connect
        self._on_error = on_error
        self._name = name
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self.batches = 0  # committed transactions, for tests and benchmarks
        self.operations = 0
        self.conflicts = 0  # batches run again after the database broke a conflict

    async def run(self, op: Operation) -> Any:
        """Run ``op(conn)`` in the next transaction; returns its value once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._cond:
            if self._closed:
                raise self._on_error(RuntimeError("the queue is closed"))
            self._pending.append(_Job(op, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return await future

    def close(self) -> None:
        """Commit what is pending, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    # -- the thread ------------------------------------------------------------

    def _main(self) -> None:
        conn: Conn | None = None
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    break
                batch, self._pending = self._pending, []
            try:
                if conn is None:
                    conn = self._connect()
                outcomes = self._commit(conn, batch)
            except Exception as exc:  # cannot even connect: every job hears why
                outcomes = [(job.future, False, self._on_error(exc)) for job in batch]
            self._deliver(batch, outcomes)
        if conn is not None:
            conn.close()

    def _commit(self, conn: Conn, batch: list[_Job]) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        for attempt in range(1, CONFLICT_TRIES):
            try:
                return self._commit_once(conn, batch, rerun=True)
            except Conflict as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.info("store writer: the database rolled back a batch of %d to break a conflict (%s);"
                         " it runs again (try %d of %d)", len(batch), reason, attempt + 1, CONFLICT_TRIES)  # fmt: skip
                self.conflicts += 1
                time.sleep(random.uniform(0, CONFLICT_PAUSE * 2**attempt))  # noqa: S311 - a jitter, not a secret
        return self._commit_once(conn, batch, rerun=False)

    def _commit_once(
        self, conn: Conn, batch: list[_Job], *, rerun: bool
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        """One transaction of ``batch``; raises Conflict (all rolled back) if ``rerun`` and the database
        rolled it back to break a conflict."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, OSError) as exc:
            error = self._on_error(exc)
            return [(job.future, False, error) for job in batch]
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        for job in batch:
            before = _conflicts(conn)
            try:
                conn.execute("SAVEPOINT job")
                value = job.op(conn)
                conn.execute("RELEASE job")
                if rerun and _conflicts(conn) != before:
                    raise Conflict("a conflict met and caught inside an operation")
            except Exception as exc:
                if rerun and isinstance(exc, Conflict):
                    self._undo_all(conn)
                    raise
                if not self._undo_job(conn):
                    error = self._on_error(exc)  # the transaction is gone: nothing in it stands
                    return [(j.future, False, error) for j in batch]
                mapped = self._on_error(exc) if isinstance(exc, sqlite3.Error | OSError) else exc
                results.append((job.future, False, mapped))
            else:
                results.append((job.future, True, value))
        try:
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._undo_all(conn)
            if rerun and isinstance(exc, Conflict):
                raise
            error = self._on_error(exc)
            return [(job.future, False, error) for job in batch]
        self.batches += 1
        self.operations += len(batch)
        return results

    @staticmethod
    def _undo_all(conn: Conn) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")

    @staticmethod
    def _undo_job(conn: Conn) -> bool:
        """Roll back to the job's savepoint; False if the whole transaction is gone."""
        try:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return False
        return conn.in_transaction

    @staticmethod
    def _deliver(batch: list[_Job], outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append(outcome)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                log.debug("store writer: %d result(s) for a closed event loop dropped", len(items))
