"""``mailsms store migrate``: the whole queue moves from SQLite to PostgreSQL and back, nothing lost."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

from mailsms.accounts import Account
from mailsms.errors import EX_CANTCREAT, EX_NOINPUT, EX_OK
from mailsms.store.accounts import put_account
from mailsms.store.engines import connect_existing
from mailsms.store.migrate import TABLES
from mailsms.store.sqlite import SqliteStore
from replylog.links import ReplyLink
from replylog.store import record as record_link
from tests.support.proc import run_cli
from tests.support.scheduling import new_message


def _fill(path: Path) -> None:
    """A queue with a bit of everything: messages with binary UDH parts, an account, a reply link."""
    store = SqliteStore(path)
    now = time.time()
    try:
        messages = [new_message(f"{n:016X}", f"+1555000{n:04d}", now, parts=1 + n % 3) for n in range(25)]

        async def enqueue() -> None:
            await store.enqueue(messages, now=now)
            await store.write(functools.partial(put_account, account=Account(user="alice", maxsend=10, sent=3)))

        asyncio.run(enqueue())
        with store.transaction() as conn:
            record_link(conn, ReplyLink("+15550000001", "alice@example.com", "outbox", "<m1@example.com>", "hi", now))
    finally:
        store.close()


def _dump(url: str, table: str) -> list[tuple[object, ...]]:
    with connect_existing(url, Path(".")) as conn:
        assert conn is not None
        key = '"user"' if table == "account" else "1"
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
        return sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows), key=repr)


def test_a_sqlite_queue_moves_to_postgresql_and_back_unchanged(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "queue.sqlite"
    _fill(source)
    moved = run_cli(["store", "migrate", "--from", f"sqlite:///{source}", "--to", pg_url])
    assert moved.returncode == EX_OK, moved.stderr
    assert "message: 25 rows" in moved.stdout
    assert "part: 49 rows" in moved.stdout
    assert "account: 1 row" in moved.stdout
    back = tmp_path / "back" / "queue.sqlite"
    returned = run_cli(["store", "migrate", "--from", pg_url, "--to", f"sqlite:///{back}"])
    assert returned.returncode == EX_OK, returned.stderr
    for table in TABLES:
        assert _dump(f"sqlite:///{back}", table) == _dump(f"sqlite:///{source}", table), table


def test_a_target_that_holds_a_queue_is_refused_and_left_alone(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "queue.sqlite"
    _fill(source)
    assert run_cli(["store", "migrate", "--from", f"sqlite:///{source}", "--to", pg_url]).returncode == EX_OK
    again = run_cli(["store", "migrate", "--from", f"sqlite:///{source}", "--to", pg_url])
    assert again.returncode == EX_CANTCREAT
    assert "already holds data" in again.stderr
    assert len(_dump(pg_url, "message")) == 25


def test_a_missing_source_or_a_bad_url_gets_a_clear_error(tmp_path: Path, pg_url: str) -> None:
    missing = run_cli(["store", "migrate", "--from", f"sqlite:///{tmp_path}/none.sqlite", "--to", pg_url])
    assert missing.returncode == EX_NOINPUT
    assert "no queue at" in missing.stderr
    bad = run_cli(["store", "migrate", "--from", "mysql://x", "--to", pg_url])
    assert bad.returncode == 78
    assert "store.url" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr
