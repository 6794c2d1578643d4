"""Shared fixtures: free ports, a temporary state directory, a running ``serve`` in-process, a private PostgreSQL."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from mailsms.config import Config, ServerConfig, StateConfig, StoreConfig
from mailsms.daemon import Daemon
from mailsms.store.engines import open_store
from mailsms.store.queue import QueueStore
from mailsms.values import ListenAddress
from tests.support.postgres import PostgresCluster
from tests.support.proc import free_port


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo what ``mailsms.log.setup`` (run in-process by CLI tests) did to the loggers: its handler writes
    to the stream pytest captured for that test, which is closed once the test is over."""
    loggers = [logging.getLogger(), logging.getLogger("mailsms")]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """``store.url`` of the test's configuration: every test that runs a daemon runs on both stores."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def open_queue(state_dir: Path, store_url: str) -> Callable[[], QueueStore]:
    """Opens the test's queue store: SQLite in ``state_dir``, or the PostgreSQL database of ``store_url``."""
    return functools.partial(open_store, store_url, state_dir, node="test")


@pytest.fixture
def config(state_dir: Path, store_url: str) -> Config:
    """Defaults, with listeners on ephemeral loopback ports, state under tmp_path, and the store
    of ``store_url``."""
    return Config(
        store=StoreConfig(url=store_url),
        server=ServerConfig(
            lmtp_listen=ListenAddress("127.0.0.1", 0),
            smtp_listen=None,
            http_listen=ListenAddress("127.0.0.1", 0),
        ),
        state=StateConfig(dir=str(state_dir)),
    )


@pytest.fixture
async def daemon(config: Config) -> AsyncIterator[Daemon]:
    """A started daemon in this test's event loop; ``daemon.bound`` has the real ports."""
    running = Daemon(config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def replace_server(config: Config, **changes: object) -> Config:
    return dataclasses.replace(config, server=dataclasses.replace(config.server, **changes))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL server, started the first time a test asks for it, stopped at session end."""
    # On tmpfs when there is one: databases are made per test, and a killed mailsms (what the crash
    # tests do) loses nothing committed whichever file system the server writes to.
    shm = Path("/dev/shm")
    with PostgresCluster(parent=shm if shm.is_dir() else None) as cluster:
        yield cluster


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a fresh, empty database on ``postgres_cluster``; dropped after the test."""
    url = postgres_cluster.create_database()
    try:
        yield url
    finally:
        postgres_cluster.drop_database(url)
