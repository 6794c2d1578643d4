"""Which engine holds the queue (``store.url``), and this node's id.

``""`` (the default) is SQLite in the state directory; ``sqlite:///path``
names the file; ``postgresql://...`` is a database that several mailsms
nodes share (psycopg is the ``mailsms[postgresql]`` extra).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mailsms.errors import ConfigError
from mailsms.store.conn import Conn
from mailsms.store.queue import QueueStore

NODE_ID_FILE = "node-id"
_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def engine_of(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``; ConfigError for anything else."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if url == "" or scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    raise ConfigError(f"store.url: expected sqlite:///path or postgresql://..., got {redact_url(url)!r}")


def sqlite_path(url: str, state_dir: Path) -> Path:
    """The SQLite file of ``url`` ("" is ``<state dir>/queue.sqlite``)."""
    from mailsms.store.sqlite import DB_NAME

    if url == "":
        return state_dir / DB_NAME
    path = unquote(urlsplit(url).path)
    if not path:
        raise ConfigError(f"store.url: no file in {url!r}; write sqlite:///path/to/queue.sqlite")
    return Path(path)


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def node_id(state_dir: Path) -> str:
    """This node's id: made up at first start and kept in ``<state dir>/node-id``."""
    path = state_dir / NODE_ID_FILE
    with contextlib.suppress(FileNotFoundError):
        found = path.read_text().strip()
        if _NODE_ID.match(found):
            return found
    state_dir.mkdir(parents=True, exist_ok=True)
    host = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname().split(".")[0])[:40] or "node"
    made = f"{host}-{secrets.token_hex(4)}"
    temporary = path.with_name(f".{NODE_ID_FILE}.{os.getpid()}")
    temporary.write_text(made + "\n")
    try:
        os.link(temporary, path)  # never replaces an id another process wrote meanwhile
    except FileExistsError:
        return node_id(state_dir)
    finally:
        temporary.unlink()
    return made


def node_names(state_dir: Path) -> frozenset[str]:
    """What a gateway's ``nodes`` key may call this node: its id, or its host name."""
    host = socket.gethostname()
    return frozenset({node_id(state_dir), host, host.split(".")[0]})


def open_store(url: str, state_dir: Path, *, lease_seconds: float = 60.0, node: str | None = None) -> QueueStore:
    """The queue named by ``store.url``, its schema created or migrated; ``node`` names this
    process among those sharing a PostgreSQL queue (default: the node id of ``state_dir``)."""
    if engine_of(url) == "postgresql":
        from mailsms.store.pg import PgStore

        return PgStore(url, node=node if node is not None else node_id(state_dir), lease_seconds=lease_seconds)
    from mailsms.store.sqlite import SqliteStore

    path = sqlite_path(url, state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)


@contextlib.contextmanager
def connect_existing(url: str, state_dir: Path, *, read_only: bool = False) -> Iterator[Conn | None]:
    """A connection for the command-line tools; None when the SQLite file does not exist yet
    (nothing was ever queued).  PostgreSQL databases are used as they are."""
    if engine_of(url) == "postgresql":
        from mailsms.store.pg import PgConnection

        pg = PgConnection(url, application="mailsms tool")
        try:
            yield pg
        finally:
            pg.close()
        return
    path = sqlite_path(url, state_dir)
    if not path.exists():
        yield None
        return
    if read_only:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    else:
        from mailsms.store.sqlite import connect

        conn = connect(path)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        yield conn
    finally:
        conn.close()
