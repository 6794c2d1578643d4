"""Start-up checks: find at start what would otherwise fail days later, as smsd does.

``mailsms serve`` runs them once its listeners are bound (binding is itself
the listener check) and the state directory is made; ``mailsms check
--startup`` runs them all, binding each listener for a moment.  Each check
returns ``Problem`` values, one line each; errors stop the start with the
exit code of the first one, warnings are logged.

* the state directory: a writable directory (``EX_CANTCREAT``);
* the queue: PostgreSQL reachable (``EX_UNAVAILABLE``); SQLite's file:
  ``PRAGMA quick_check`` (``EX_IOERR``), and a schema no
  newer than this version knows (a downgrade: ``EX_CONFIG``);
* each gateway's files: smstools/gammu spool folders mailsms must read and
  write, a modem's serial device (missing: a warning, the transport keeps
  trying; present but not read-writable: ``EX_NOPERM``), an outbox ``dir``;
* listeners: each address can be bound (``EX_UNAVAILABLE``).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailsms.config import Config, GatewayConfig
from mailsms.errors import EX_CANTCREAT, EX_CONFIG, EX_IOERR, EX_NOPERM, EX_UNAVAILABLE, MailsmsError
from mailsms.store.engines import engine_of, redact_url, sqlite_path
from mailsms.store.schema import SCHEMA_VERSION
from mailsms.store.sqlite import DB_NAME
from mailsms.values import ListenAddress

log = logging.getLogger("mailsms.startup")

# Spool folders mailsms reads and writes, per gateway type (as the transports use them).
SPOOL_FOLDERS = {
    "smstools": ("outgoing", "sent", "failed", "incoming"),
    "gammu": ("outbox", "sent", "error", "inbox"),
}
_RWX = os.R_OK | os.W_OK | os.X_OK
# os.access: injectable, since tests run as root, for whom every permission check passes.
Access = Callable[["str | Path", int], bool]


@dataclass(frozen=True)
class Problem:
    message: str  # one line, naming the path or address and the configuration key
    exit_code: int = EX_CONFIG
    warning: bool = False


class StartupFailed(MailsmsError):
    """One or more start-up checks failed: ``details`` has a line for each, the exit code is the first one's."""

    default_reason = "start-up checks failed"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems
        self.exit_code = problems[0].exit_code  # type: ignore[misc]  # one class, the code of what failed

    def details(self) -> list[str]:
        return [f"mailsms: {p.message}" for p in self.problems]


# -- the checks ---------------------------------------------------------------------------


def check_state_dir(path: Path, access: Access = os.access) -> Iterator[Problem]:
    """A writable directory, or (not made yet) a place where one can be made."""
    if path.is_dir():
        if not access(path, os.W_OK | os.X_OK):
            yield Problem(f"state directory {path} (state.dir) is not writable by uid {os.geteuid()}", EX_CANTCREAT)
        return
    if path.exists():
        yield Problem(f"state directory {path} (state.dir) is not a directory", EX_CANTCREAT)
        return
    parent = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not access(parent, os.W_OK | os.X_OK):
        yield Problem(f"state directory {path} (state.dir) cannot be created: {parent} is not writable", EX_CANTCREAT)


def check_store(config: Config) -> Iterator[Problem]:
    """The queue of ``store.url``: SQLite's file is checked here; PostgreSQL is checked by connecting."""
    url = config.store.url
    try:
        engine = engine_of(url)
    except MailsmsError as exc:
        yield Problem(str(exc), EX_CONFIG)
        return
    if engine == "postgresql":
        yield from _check_postgresql(url)
    else:
        yield from check_database(config.state_dir, path=sqlite_path(url, config.state_dir))


def _check_postgresql(url: str) -> Iterator[Problem]:
    try:
        import psycopg
    except ImportError:
        yield Problem("store.url names PostgreSQL, but psycopg is not installed: pip install 'mailsms[postgresql]'",
                      EX_CONFIG)  # fmt: skip
        return
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        yield Problem(f"cannot reach the queue at {redact_url(url)} (store.url): {_one_line([str(exc)])}",
                      EX_UNAVAILABLE)  # fmt: skip


def check_database(
    state_dir: Path, known_version: int = SCHEMA_VERSION, *, path: Path | None = None
) -> Iterator[Problem]:
    """``PRAGMA quick_check`` of the queue file, and its schema version (none yet: nothing to check)."""
    path = path or state_dir / DB_NAME
    if not path.is_file():
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        yield Problem(f"cannot open the queue {path}: {exc}", EX_IOERR)
        return
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        answer = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:
        yield Problem(f"the queue {path} cannot be read: {exc}", EX_IOERR)
        return
    finally:
        conn.close()
    if answer != ["ok"]:
        yield Problem(f"the queue {path} is damaged (PRAGMA quick_check: {_one_line(answer)}); "
                      "restore it from a backup", EX_IOERR)  # fmt: skip
    if version > known_version:
        yield Problem(f"the queue {path} has schema version {version}, newer than this mailsms knows "
                      f"({known_version}): a newer mailsms wrote it; run that version, or restore the backup "
                      "taken before the upgrade")  # fmt: skip


def _one_line(answer: list[str]) -> str:
    """quick_check's report, whose rows hold line breaks, as one short line."""
    return "; ".join(" ".join(row.split()) for row in answer)[:300]


def check_gateways(gateways: Iterable[GatewayConfig], access: Access = os.access) -> Iterator[Problem]:
    """The files each gateway needs: spool folders, the modem's device, the outbox's directory."""
    for gateway in gateways:
        options = gateway.options
        where = f"gateway {gateway.id}"
        if gateway.type in SPOOL_FOLDERS:
            yield from _spool(where, gateway.type, options, access)
        elif gateway.type == "modem":
            yield from _device(where, str(getattr(options, "device", "")), access)
        elif gateway.type == "outbox":
            directory = str(getattr(options, "dir", ""))
            if directory:
                yield from _directory(f"{where}: outbox {directory} (dir)", Path(directory), access)


def _spool(where: str, kind: str, options: object, access: Access) -> Iterator[Problem]:
    spool = Path(str(getattr(options, "spool", "")))
    if not spool.is_dir():
        yield Problem(f"{where}: spool directory {spool} (spool) does not exist; is {kind} installed?")
        return
    receive = bool(getattr(options, "receive", True))
    for folder in SPOOL_FOLDERS[kind]:
        if folder in ("incoming", "inbox") and not receive:
            continue
        path = spool / folder
        if not path.is_dir():
            yield Problem(f"{where}: {path} does not exist ({kind}'s {folder} folder under spool)")
        elif not access(path, _RWX):
            yield Problem(f"{where}: no permission to read and write {path}: add the mailsms user to the "
                          f"group owning it, with group rwx", EX_NOPERM)  # fmt: skip


def _device(where: str, device: str, access: Access) -> Iterator[Problem]:
    if not device:
        return  # mailsms check reports the missing key
    try:
        mode = os.stat(device).st_mode
    except FileNotFoundError:
        yield Problem(f"{where}: modem device {device} (device) does not exist (yet): the modem is retried",
                      warning=True)  # fmt: skip
        return
    except OSError as exc:
        yield Problem(f"{where}: modem device {device} (device): {exc.strerror}", EX_NOPERM)
        return
    if not stat.S_ISCHR(mode):
        yield Problem(f"{where}: {device} (device) is not a serial device")
    elif not access(device, os.R_OK | os.W_OK):
        yield Problem(f"{where}: no permission to read and write {device} (device): add the mailsms user to "
                      "its group (dialout, usually)", EX_NOPERM)  # fmt: skip


def _directory(what: str, path: Path, access: Access) -> Iterator[Problem]:
    if path.is_dir():
        if not access(path, _RWX):
            yield Problem(f"{what} is not writable", EX_NOPERM)
    elif path.exists():
        yield Problem(f"{what} is not a directory")


def check_listeners(config: Config) -> Iterator[Problem]:
    """Bind each TCP listener for a moment (the milter's too when it is inet:)."""
    server = config.server
    for key, address in (
        ("server.lmtp_listen", server.lmtp_listen),
        ("server.smtp_listen", server.smtp_listen),
        ("server.http_listen", server.http_listen),
        ("milter.listen", _milter_address(config.milter.listen)),
    ):
        if address is not None:
            problem = bind_problem(address, key)
            if problem is not None:
                yield problem


def _milter_address(spec: str) -> ListenAddress | None:
    if not spec.startswith("inet:"):
        return None
    host, _, port = spec[len("inet:") :].rpartition(":")
    if not port.isdigit():
        return None
    return ListenAddress(host.strip("[]") or "127.0.0.1", int(port))


def bind_problem(address: ListenAddress, key: str) -> Problem | None:
    """None when ``address`` can be bound now, else why not."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EACCES and address.port < 1024:
            hint = " (a port below 1024 needs CAP_NET_BIND_SERVICE)"
        elif exc.errno == errno.EADDRINUSE:
            hint = " (is mailsms already running?)"
        return Problem(f"cannot listen on {address} ({key}): {exc.strerror or exc}{hint}", EX_UNAVAILABLE)
    return None


# -- running them --------------------------------------------------------------------------


def startup_problems(config: Config, *, listeners: bool = False) -> list[Problem]:
    """Every problem found, errors first; ``listeners`` also binds each listen address."""
    problems = [*check_state_dir(config.state_dir), *check_store(config)]
    problems += check_gateways(config.gateways)
    if listeners:
        problems += check_listeners(config)
    return sorted(problems, key=lambda p: p.warning)


def run_checks(config: Config) -> None:
    """What ``serve`` runs: log the warnings, raise StartupFailed with every error."""
    problems = startup_problems(config)
    for problem in problems:
        if problem.warning:
            log.warning("%s", problem.message)
    errors = [p for p in problems if not p.warning]
    if errors:
        raise StartupFailed(errors)
