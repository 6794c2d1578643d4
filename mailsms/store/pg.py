"""The queue on PostgreSQL: several mailsms nodes share one queue.

:class:`PgConnection` gives psycopg 3 the face of a ``sqlite3.Connection``
(see ``mailsms.store.conn``): the store's SQL is written once, ``?``
placeholders become ``%s``, Python booleans are stored as the integers the
schema keeps (NUL characters, which PostgreSQL's text cannot hold, as
U+FFFD), and PostgreSQL's errors are raised as the ``sqlite3`` module's
classes (a unique key as ``IntegrityError``, a full disk as an
``OperationalError`` that says "full").  Each connection runs in autocommit
mode, so ``BEGIN``/``COMMIT`` are statements, as with SQLite.

:class:`PgStore` adds what several nodes need: messages are claimed with
``FOR UPDATE SKIP LOCKED`` and a lease that the sending node renews; a node
that dies leaves its messages to the others once the lease has run out
(``mailsms.scheduler`` then treats their parts in ``sending`` as after a
crash).  A commit that queues mail notifies the other nodes
(``LISTEN/NOTIFY``), whose schedulers wake at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg.errors
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus

from mailsms.errors import InternalError, MailsmsError, QueueFull
from mailsms.store.conn import NODE_NUMBERS, PG_NOW, POSTGRESQL, Conn, node_tag
from mailsms.store.pg_schema import create_pg_schema
from mailsms.store.queue import NOTIFY_CHANNEL, QueueStore, commit_sending, target_filter
from mailsms.store.writer import BatchWriter, Conflict

log = logging.getLogger("mailsms.store")

# SQLSTATEs after which the transaction is sure to have done nothing and may run again: deadlock_detected,
# serialization_failure (not the rest of class 40: statement_completion_unknown, say, may have committed)
CONFLICTS = frozenset({"40P01", "40001"})
NODE_FORGOTTEN = 7 * 86400.0  # seconds: a node not seen for this long gives its number to a new one


@functools.lru_cache(maxsize=2048)
def translate(sql: str, with_params: bool) -> str:
    """The store's SQL for psycopg: ``?`` outside quotes becomes ``%s`` (and ``%`` is doubled
    when parameters are passed); ``BEGIN IMMEDIATE`` is ``BEGIN``."""
    if sql == "BEGIN IMMEDIATE":
        return "BEGIN"
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        if char == "%" and with_params:
            out.append("%%")
            continue
        out.append(char)
    return "".join(out)


def _value(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and "\x00" in value:
        # PostgreSQL's text cannot hold NUL (SQLite's can): a NUL that came in an SMS is kept visible.
        return value.replace("\x00", "\ufffd")
    return value


def _params(parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return {k: _value(v) for k, v in parameters.items()}
    return tuple(_value(v) for v in parameters)


class _NumericLoader(Loader):
    """``SUM`` of integers is ``numeric`` in PostgreSQL: read it back as int (or float)."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        try:
            return int(text)
        except ValueError:
            return float(text)


def _as_sqlite_error(exc: psycopg.Error) -> sqlite3.Error:
    """The ``sqlite3`` class that callers already handle for the same kind of failure."""
    message = f"{type(exc).__name__}: {str(exc).strip()}"
    if isinstance(exc, psycopg.errors.DiskFull | psycopg.errors.OutOfMemory):
        return sqlite3.OperationalError(f"database or disk is full ({message})")
    if exc.sqlstate in CONFLICTS:
        return Conflict(message)
    if isinstance(exc, psycopg.IntegrityError):
        return sqlite3.IntegrityError(message)
    if isinstance(exc, psycopg.OperationalError | psycopg.errors.LockNotAvailable):
        return sqlite3.OperationalError(message)
    if isinstance(exc, psycopg.ProgrammingError | psycopg.DataError):
        return sqlite3.ProgrammingError(message)
    return sqlite3.DatabaseError(message)


def _lost() -> sqlite3.Error:
    return sqlite3.OperationalError("the connection to PostgreSQL was lost in this transaction")


class PgConnection:
    """One psycopg connection with the interface of ``mailsms.store.conn.Conn``.

    When the server went away (restarted, or the connection was cut) the next
    statement outside a transaction connects again.  A transaction in progress
    is lost with its connection: its statements fail until the caller's
    ``ROLLBACK`` (never does a statement of it run on a new connection in
    autocommit, which would split the transaction)."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, application: str = "mailsms", setup: tuple[str, ...] = ()) -> None:
        self.url = url
        self._application = application
        self._setup = setup  # session settings, made again on every new connection
        self._lock = threading.RLock()
        self._began = False  # a BEGIN of ours is open (its COMMIT or ROLLBACK not yet run)
        self.conflicts = 0  # statements the server refused to break a deadlock or serialization conflict
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, application_name=self._application, connect_timeout=10)
            for statement in self._setup:
                conn.execute(statement)
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc
        conn.adapters.register_loader("numeric", _NumericLoader)
        return conn

    @property
    def raw(self) -> psycopg.Connection[Any]:
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Any = (), /) -> psycopg.Cursor[Any]:
        with self._lock:
            if sql in ("COMMIT", "ROLLBACK"):
                began, self._began = self._began, False
                if self._conn.closed and began:
                    raise _lost()
            else:
                self._ensure_connected()
            try:
                cursor = self._run(sql, parameters)
            except psycopg.OperationalError as exc:
                if self._began or not self._conn.closed:
                    raise self._error(exc) from exc
                # Outside a transaction the connection turned out to be gone (the server restarted):
                # nothing was done on it, so the statement is run once more on a new one.
                self._conn = self._connect()
                try:
                    cursor = self._run(sql, parameters)
                except psycopg.Error as again:
                    raise self._error(again) from again
            except psycopg.Error as exc:
                raise self._error(exc) from exc
            if sql.startswith("BEGIN"):
                self._began = True
            return cursor

    def _error(self, exc: psycopg.Error) -> sqlite3.Error:
        error = _as_sqlite_error(exc)
        if isinstance(error, Conflict):
            self.conflicts += 1  # seen by the writer even when an operation catches the error itself
        return error

    def _ensure_connected(self) -> None:
        """A new connection for a statement outside a transaction; inside one, the loss is the caller's error."""
        if self._conn.closed:
            if self._began:
                raise _lost()
            self._conn = self._connect()

    def _run(self, sql: str, parameters: Any) -> psycopg.Cursor[Any]:
        if parameters:
            return self._conn.execute(translate(sql, True), _params(parameters))
        return self._conn.execute(translate(sql, False))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> psycopg.Cursor[Any]:
        rows = [_params(p) for p in parameters]
        with self._lock:
            self._ensure_connected()
            cursor = self._conn.cursor()
            if not rows:
                return cursor
            try:
                cursor.executemany(translate(sql, True), rows)
            except psycopg.Error as exc:
                raise self._error(exc) from exc
            return cursor

    def close(self) -> None:
        self._conn.close()


def storage_error(exc: BaseException) -> MailsmsError:
    """A failed commit: 452 4.3.1 when the server's disk is full, else 451 4.3.0."""
    if isinstance(exc, sqlite3.Error) and "full" in str(exc).lower():
        return QueueFull("queue write error: insufficient system storage")
    return InternalError("queue write error")


class PgStore(QueueStore):
    """The queue in a PostgreSQL database, shared by every node whose ``store.url`` names it."""

    notifies = True

    def __init__(self, url: str, *, node: str, lease_seconds: float = 60.0) -> None:
        self.url = url
        self.node = node
        self.lease_seconds = lease_seconds
        name = f"mailsms {node}"
        # Claims, renewals and reads go through this connection on the event loop: they need not wait
        # for the WAL flush. Each is made durable by the writer's next commit (WAL is written in
        # order), which is the one that records parts as sending; nothing acknowledged depends on them.
        conn = PgConnection(url, application=name, setup=("SET synchronous_commit = off",))
        create_pg_schema(conn)
        writer = BatchWriter(functools.partial(PgConnection, url, application=f"{name} writer"), storage_error)
        super().__init__(conn, writer)
        self._listener: _Listener | None = None

    @functools.cached_property
    def node_number(self) -> int:
        """This node's number among the nodes of the queue (1, 2, ...), registered at first use; it
        keeps their queue ids apart (``mailsms.ingest.QueueIds.on_node``)."""
        return _register(self.conn, self.node)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Conn]:
        """The queue tools' changes (retry, hold, delete...) wait for the WAL flush, as the writer's do."""
        with super().transaction() as conn:
            conn.execute("SET LOCAL synchronous_commit = on")
            yield conn

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        super().close()

    # -- several nodes: claims and leases ----------------------------------------

    def claim(
        self,
        now: float,
        limit: int,
        gateway: str | None = None,
        *,
        other_than: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> list[str]:
        """Claim up to ``limit`` due messages for this node, none of ``exclude`` (in flight here): rows
        another node is claiming are skipped (``SKIP LOCKED``), and a claim holds for ``lease_seconds``
        of the database's clock unless renewed; a node's own expired or live claims are its to take
        again."""
        where, args = target_filter(gateway, other_than)
        rows = self.conn.execute(
            f"UPDATE message SET lease_node = ?, lease_until = {PG_NOW} + ? WHERE id IN ("
            " SELECT id FROM message WHERE state IN ('queued','deferred') AND next_attempt <= ?"
            f" AND {where} AND NOT (id = ANY(?)) AND (lease_until IS NULL OR lease_until <= {PG_NOW}"
            " OR lease_node = ?) ORDER BY next_attempt LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id, next_attempt",
            (self.node, self.lease_seconds, now, *args, list(exclude), self.node, limit),
        ).fetchall()
        return [r[0] for r in sorted(rows, key=lambda r: r[1])]

    def take(self, message_id: str, now: float) -> bool:
        return (
            self.conn.execute(
                f"UPDATE message SET lease_node = ?, lease_until = {PG_NOW} + ? WHERE id = ?"
                f" AND (lease_until IS NULL OR lease_until <= {PG_NOW} OR lease_node = ?)",
                (self.node, self.lease_seconds, message_id, self.node),
            ).rowcount
            == 1
        )

    def renew(self, message_ids: Sequence[str], now: float) -> int:
        """Extend this node's claim on the messages it is still sending; how many it still holds.
        The node is seen alive (its number stays its own)."""
        held = 0
        if message_ids:
            held = self.conn.execute(
                f"UPDATE message SET lease_until = {PG_NOW} + ? WHERE lease_node = ? AND id = ANY(?)",
                (self.lease_seconds, self.node, list(message_ids)),
            ).rowcount
        if "node_number" in self.__dict__:  # registered
            seen = self.conn.execute(f"UPDATE node SET seen = {PG_NOW} WHERE id = ?", (self.node,)).rowcount
            if seen == 0:  # forgotten (not seen for NODE_FORGOTTEN: a long pause) or deleted by hand
                del self.__dict__["node_number"]
                log.error("node %s was no longer registered (not seen for %d days?): registered again as number %d",
                          self.node, NODE_FORGOTTEN // 86400, self.node_number)  # fmt: skip
                self.numbered(self.node_number)
        return held

    def release(self, message_ids: Sequence[str]) -> None:
        """This node is done with these messages (they landed): other nodes may take them at once."""
        if message_ids:
            self.conn.execute(
                "UPDATE message SET lease_until = NULL WHERE lease_node = ? AND id = ANY(?)",
                (self.node, list(message_ids)),
            )

    async def mark_sending(self, message_id: str, seqs: Sequence[int], now: float, via: str = "") -> None:
        """As on one node, but only while this node still holds the claim: a node whose claim ran out
        (it stalled longer than a lease) never sends what another node may have taken over."""
        await self.write(functools.partial(_mark_sending_claimed, node=self.node, message_id=message_id, seqs=seqs,
                                           now=now, via=via))  # fmt: skip

    def messages_with_sending_parts(self) -> list[str]:
        """At start: parts left in ``sending`` by this node, or by a node whose lease has run out."""
        rows = self.conn.execute(
            "SELECT DISTINCT p.message_id FROM part p JOIN message m ON m.id = p.message_id WHERE p.state = 'sending'"
            f" AND (m.lease_node = ? OR m.lease_until IS NULL OR m.lease_until <= {PG_NOW})",
            (self.node,),
        ).fetchall()
        return [r[0] for r in rows]

    def listen(self, wake: Callable[[], object]) -> None:
        """Call ``wake`` (from a thread) when another node has committed new mail."""
        if self._listener is None:
            self._listener = _Listener(self.url, wake)
            self._listener.start()


def _mark_sending_claimed(conn: Conn, *, node: str, message_id: str, seqs: Sequence[int], now: float, via: str) -> None:
    row = conn.execute("SELECT lease_node FROM message WHERE id = ? FOR UPDATE", (message_id,)).fetchone()
    if row is not None and row[0] not in ("", node):
        raise InternalError(f"the claim on {message_id} passed to node {row[0]}")
    commit_sending(conn, message_id=message_id, seqs=seqs, now=now, via=via)


def _register(conn: Conn, node: str) -> int:
    """This node's number among those sharing the queue (1, 2, ...): kept from its first start.

    A new node takes the smallest number that no node holds, or that of a node not seen for
    ``NODE_FORGOTTEN`` (a state directory thrown away, a container replaced), so the numbers
    that queue ids can carry (``NODE_NUMBERS``) last however many nodes come and go."""
    conn.execute("BEGIN")
    try:
        conn.execute("LOCK TABLE node IN EXCLUSIVE MODE")
        row = conn.execute("SELECT number FROM node WHERE id = ?", (node,)).fetchone()
        if row is not None:
            conn.execute(f"UPDATE node SET host = ?, seen = {PG_NOW} WHERE id = ?", (socket.gethostname(), node))
            number = int(row[0])
        else:
            number = _free_number(conn)
            conn.execute(
                f"INSERT INTO node (id, number, host, started, seen) VALUES (?, ?, ?, ?, {PG_NOW})",
                (node, number, socket.gethostname(), time.time()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return number


def _free_number(conn: Conn) -> int:
    """Inside ``_register``'s transaction: the number a new node takes (see there). Numbers past
    ``NODE_NUMBERS`` (every one was held once) share their tag in queue ids with a smaller one, so
    a tag is free when no node with it was seen lately."""
    now = float(conn.execute(f"SELECT {PG_NOW}").fetchone()[0])
    rows = [(int(n), float(seen), node) for n, seen, node in conn.execute("SELECT number, seen, id FROM node")]
    last_seen: dict[int, tuple[float, str]] = {}
    for number, seen, node in rows:
        tag = node_tag(number)
        last_seen[tag] = max(last_seen.get(tag, (seen, node)), (seen, node))
    for tag in range(1, NODE_NUMBERS + 1):
        if tag not in last_seen:
            return tag
    stale = now - NODE_FORGOTTEN
    forgotten = [(seen, tag, node) for tag, (seen, node) in last_seen.items() if seen < stale]
    if forgotten:
        seen, tag, node = min(forgotten)
        log.info("node number %d of node %s, not seen for %d days, is given to a new node", tag, node,
                 (now - seen) // 86400)  # fmt: skip
        conn.execute("DELETE FROM node WHERE number = ANY(?)", ([n for n, _, _ in rows if node_tag(n) == tag],))
        return tag
    number = max(n for n, _, _ in rows) + 1
    log.warning("every node number 1..%d is held by a node seen in the last %d days: the queue ids of the new"
                " node share a number with another's", NODE_NUMBERS, NODE_FORGOTTEN // 86400)  # fmt: skip
    return number


class _Listener:
    """A thread with its own connection that waits for NOTIFY and wakes the scheduler."""

    def __init__(self, url: str, wake: Callable[[], object]) -> None:
        self._url = url
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="mailsms-pg-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, application_name="mailsms listen") as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake()  # what was committed while nobody listened
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except Exception as exc:  # the server went away, or the event loop closed: never end silently
                log.warning("queue notifications: %s; listening again shortly", str(exc).strip())
                self._stop.wait(2.0)


@contextlib.contextmanager
def connection(url: str) -> Iterator[PgConnection]:
    conn = PgConnection(url, application="mailsms tool")
    try:
        yield conn
    finally:
        conn.close()
