"""A private PostgreSQL server for tests: initdb in a temporary directory, pg_ctl on a free loopback port.

Needs Debian's ``postgresql`` package (``make debs``); without it the tests that ask for a cluster fail,
never skip.  As root (CI), the server runs as the ``postgres`` system user, since initdb and postgres
refuse to run as root.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from tests.support.proc import free_port

SERVER_USER = "postgres"
START_TIMEOUT = 60
# fsync stays on: durability is tested.  The rest keeps a throwaway server small.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "on",
    "max_connections": "200",
    "shared_buffers": "'32MB'",
}
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: 15 sorts above 9.6, as a number
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_bindir() -> Path:
    """The directory with initdb, pg_ctl and postgres: the newest /usr/lib/postgresql/*/bin, else pg_config's."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise RuntimeError(
        "no PostgreSQL server found (initdb, pg_ctl, postgres under /usr/lib/postgresql/*/bin or pg_config --bindir):"
        " install the Debian package `postgresql` (make debs)"
    )


def _server_account() -> pwd.struct_passwd:
    """As root: the account initdb and postgres run as (they refuse root)."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root and there is no `{SERVER_USER}` user to run PostgreSQL as:"
            " install the Debian package `postgresql` (make debs)"
        ) from None


class PostgresCluster:
    """A started PostgreSQL server on 127.0.0.1:``port``, superuser ``user`` with trust auth; removed on stop.

    ``with PostgresCluster() as cluster: url = cluster.create_database()``.  Its directory is made under
    ``parent`` (default: tempfile's); ``Path("/dev/shm")`` makes CREATE DATABASE ~20x faster, but there
    fsync reaches no disk.
    """

    user = "mailsms"
    host = "127.0.0.1"

    def __init__(self, parent: Path | None = None) -> None:
        self.bindir = find_bindir()
        self.parent = parent
        self.port = 0
        self.directory: Path | None = None
        self._admin: psycopg.Connection[Any] | None = None
        self._names = itertools.count(1)

    @property
    def data(self) -> Path:
        assert self.directory is not None, "cluster not started"
        return self.directory / "data"

    @property
    def log(self) -> Path:
        assert self.directory is not None, "cluster not started"
        return self.directory / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` on this cluster."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        """initdb into a fresh temporary directory and start the server; returns once it accepts connections."""
        self.directory = Path(tempfile.mkdtemp(prefix="mailsms-pg-", dir=self.parent))
        try:
            if os.geteuid() == 0:
                account = _server_account()
                os.chown(self.directory, account.pw_uid, account.pw_gid)
            # --no-sync: a crash of the machine mid-test run loses the cluster anyway; the server itself fsyncs
            self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "--encoding=UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")  # fmt: skip
            self.port = free_port(self.host)
            settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.directory}'"}
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write("\n# tests.support.postgres\n")
                conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
            self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``) and remove its directory."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.directory is None:
            return
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", str(START_TIMEOUT))
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def crash(self) -> None:
        """Stop the server as if it crashed (``pg_ctl stop -m immediate``: it recovers from its WAL at start)."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", str(START_TIMEOUT))

    def start_again(self) -> None:
        """Start the stopped server on the same port and data; returns once it accepts connections."""
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT))

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name unless ``name`` is given) and return its URL."""
        name = name or f"test_{os.getpid()}_{next(self._names)}"
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a plain lower-case database name: {name!r}")
        self._admin_connection().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, first ending every other session on it."""
        name = urlsplit(url).path.lstrip("/")
        admin = self._admin_connection()
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    def _admin_connection(self) -> psycopg.Connection[Any]:
        # one connection for every CREATE/DROP: a new one per call would cost a backend start each time
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.url(), autocommit=True)
        return self._admin

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bindir / tool), *args]
        as_server: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = _server_account()
            as_server = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        done = subprocess.run(
            argv, cwd=self.directory, capture_output=True, text=True, timeout=START_TIMEOUT + 30, check=False,
            **as_server,
        )  # fmt: skip
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.directory and self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}{log}")
