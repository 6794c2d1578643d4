"""The connection the store's SQL runs on, whichever engine is under it.

Every query of the store is written once, in the SQL that SQLite and
PostgreSQL share (``?`` placeholders, ``ON CONFLICT`` upserts, partial
indexes).  Functions take a :class:`Conn`: a ``sqlite3.Connection`` as it
is, or :class:`mailsms.store.pg.PgConnection`, which translates the
placeholders and raises the ``sqlite3`` module's exception classes so that
callers handle one family of errors.  The few places where the engines
differ ask :func:`dialect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# PostgreSQL's clock in seconds since the epoch: claims of several nodes are timed on it, not on theirs.
PG_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


NODE_NUMBERS = 127  # node numbers that queue ids keep apart (mailsms.ingest.QueueIds.on_node)


def node_tag(number: int) -> int:
    """The number (1..NODE_NUMBERS) that the queue ids of node ``number`` carry."""
    return number % NODE_NUMBERS + 1 if number > NODE_NUMBERS else number


def dialect(conn: Conn) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return str(getattr(conn, "dialect", SQLITE))


def for_update(conn: Conn) -> str:
    """Appended to a SELECT whose rows the transaction goes on to change: on PostgreSQL the
    rows are locked, so two nodes cannot both act on them (SQLite has one writer at a time)."""
    return " FOR UPDATE" if dialect(conn) == POSTGRESQL else ""


def skip_locked(conn: Conn) -> str:
    """Like :func:`for_update`, but rows another node holds are passed over, not waited for."""
    return " FOR UPDATE SKIP LOCKED" if dialect(conn) == POSTGRESQL else ""


def lock(conn: Conn, name: str) -> None:
    """Inside a transaction: wait until no other node's transaction holds ``name`` (PostgreSQL's
    advisory lock, released at commit); SQLite has one writer at a time already."""
    if dialect(conn) == POSTGRESQL:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))


def has_table(conn: Conn, name: str) -> bool:
    """Whether the table exists (tools open databases that a daemon has not created yet)."""
    if dialect(conn) == POSTGRESQL:
        sql = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
    else:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None
