"""The queue's database as tests read it, whichever engine the test runs on (``store.url``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mailsms.config import Config
from mailsms.store.conn import Conn, has_table
from mailsms.store.engines import connect_existing, open_store


@contextlib.contextmanager
def database(config: Config) -> Iterator[Conn]:
    """A connection to the test's queue (its schema created if nothing made it yet)."""
    with connect_existing(config.store.url, config.state_dir) as conn:
        if conn is not None and has_table(conn, "message"):
            yield conn
            return
    open_store(config.store.url, config.state_dir, node="test").close()
    with connect_existing(config.store.url, config.state_dir) as conn:
        assert conn is not None
        yield conn


def rows(config: Config, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """All rows of one query (``?`` placeholders, as the store writes them)."""
    with database(config) as conn:
        return list(conn.execute(sql, tuple(params)).fetchall())


def one(config: Config, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row (None when there is none)."""
    found = rows(config, sql, params)
    return found[0][0] if found else None


def state_config(state_dir: Path, store_url: str = "") -> Config:
    """A configuration naming just a state directory and a store, for helpers given only those."""
    from mailsms.config import StateConfig, StoreConfig

    return Config(state=StateConfig(dir=str(state_dir)), store=StoreConfig(url=store_url))
