"""The embedded queue store: SQLite in WAL mode with ``synchronous=FULL``.

The hot path uses plain ``sqlite3`` with explicit ``BEGIN IMMEDIATE``;
sqlite-utils creates the schema.  One node: the scheduler's own bookkeeping
keeps a message from being claimed twice.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from mailsms.errors import InternalError, MailsmsError, QueueFull
from mailsms.store.queue import KEPT, EarlyReport, QueueStore
from mailsms.store.schema import SCHEMA_VERSION, create_schema
from mailsms.store.writer import BatchWriter

DB_NAME = "queue.sqlite"


def storage_error(exc: BaseException) -> MailsmsError:
    """Map a database failure to its SMTP answer: 452 4.3.1 when full, else 451 4.3.0."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.Error) and ("full" in text or "no space" in text or "disk i/o" in text):
        return QueueFull("queue file write error: insufficient system storage")
    if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
        return QueueFull("queue file write error: insufficient system storage")
    return InternalError("queue file write error")


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the queue's settings (WAL, ``synchronous=FULL``)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    # 8 MiB of page cache (SQLite's default is 2 MiB): the upper levels of the big B-trees (a million
    # reply links, the queue's indexes) stay in memory, so lookups cost the same as the queue grows.
    conn.execute("PRAGMA cache_size=-8192")
    return conn


class SqliteStore(QueueStore):
    """The queue in ``<state dir>/queue.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        conn = connect(path)
        create_schema(conn)
        super().__init__(conn, BatchWriter(functools.partial(connect, path), storage_error))

    @classmethod
    def open(cls, state_dir: Path) -> SqliteStore:
        return cls(state_dir / DB_NAME)


__all__ = ["DB_NAME", "KEPT", "SCHEMA_VERSION", "EarlyReport", "SqliteStore", "connect", "storage_error"]
