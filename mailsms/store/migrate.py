"""Copy a whole queue from one engine to another (``mailsms store migrate``).

Every table the schema has (queue, parts, reports' originals, inbound store,
mail-out queue, reply log, accounts) is copied in one transaction on the
target, with the columns both sides have (PostgreSQL's claims have no SQLite
counterpart).  The source is read in one snapshot.  A target that already
holds anything is refused: a migration never merges two queues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mailsms.store.conn import POSTGRESQL, Conn, dialect, has_table

# In the order that keeps foreign keys satisfied (parts after their messages).
TABLES = ("message", "part", "early_report", "original", "inbound", "mailout", "reply_link", "account")
BATCH = 1000


class TargetNotEmpty(Exception):
    """The target already holds a queue: migrating into it would merge two."""


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


def columns(conn: Conn, table: str) -> list[str]:
    """The columns of ``table`` (none when the table does not exist)."""
    if not has_table(conn, table):
        return []
    cursor = conn.execute(f"SELECT * FROM {table} LIMIT 0")
    names = [str(d[0]) for d in cursor.description or ()]
    cursor.fetchall()
    return names


def holds_data(conn: Conn) -> list[str]:
    """The tables of ``conn`` that have rows."""
    return [t for t in TABLES if has_table(conn, t) and conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]


def _rows(source: Conn, table: str, names: list[str]) -> Iterator[list[tuple[object, ...]]]:
    quoted = ", ".join(f'"{n}"' for n in names)
    cursor = source.execute(f"SELECT {quoted} FROM {table}")
    batch: list[tuple[object, ...]] = []
    for row in cursor:
        batch.append(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def copy_all(source: Conn, target: Conn, progress: Callable[[str, int], None] = lambda table, n: None) -> list[Copied]:
    """Copy every table of ``source`` into the empty ``target`` (whose schema exists), in one transaction."""
    full = holds_data(target)
    if full:
        raise TargetNotEmpty(f"the target already holds data (tables {', '.join(full)})")
    snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ" if dialect(source) == POSTGRESQL else "BEGIN"
    source.execute(snapshot)
    target.execute("BEGIN IMMEDIATE")
    try:
        copied = [_copy(source, target, table, progress) for table in TABLES]
    except BaseException:
        target.execute("ROLLBACK")
        source.execute("ROLLBACK")
        raise
    target.execute("COMMIT")
    source.execute("ROLLBACK")
    return copied


def _copy(source: Conn, target: Conn, table: str, progress: Callable[[str, int], None]) -> Copied:
    wanted = columns(target, table)
    names = [n for n in columns(source, table) if n in wanted]
    if not names:
        return Copied(table, 0)
    quoted = ", ".join(f'"{n}"' for n in names)
    insert = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' for _ in names)})"
    count = 0
    for batch in _rows(source, table, names):
        target.executemany(insert, batch)
        count += len(batch)
        progress(table, count)
    return Copied(table, count)


def counts(conn: Conn) -> dict[str, int]:
    """Rows per table, to compare both sides after a copy."""
    return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES if has_table(conn, t)}
