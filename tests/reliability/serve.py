"""A real ``mailsms serve`` that can be killed and started again, and a plain LMTP client.

Every start appends the daemon's log (stderr) to one file, so that the log of
all runs can be read at the end.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from mailsms.store.engines import connect_existing
from tests.support.proc import MAILSMS, free_port, port_open
from tests.support.wait import wait_until

SENDER = "alice@example.com"
START_TIMEOUT = 30.0


def config_text(
    lmtp_port: int,
    http_port: int,
    smsc_url: str,
    relay: str,
    extra: str = "",
    queue: str = "",
    *,
    store: str = "",
    hostname: str = "mailsms.example.test",
) -> str:
    """A configuration with one HTTP gateway ``smsc`` and mail-out by SMTP to ``relay``; ``queue``
    adds keys to ``[queue]``, ``extra`` to the gateway (and may open more tables), ``store`` to ``[store]``."""
    return f"""
[server]
lmtp_listen = "127.0.0.1:{lmtp_port}"
http_listen = "127.0.0.1:{http_port}"
shutdown_timeout = "10s"

[state]
dir = "var"

[store]
{store}

[queue]
minimal_backoff_time = "1s"
maximal_backoff_time = "2s"
queue_run_delay = "0.2s"
stop_grace_time = "5s"
{queue}

[mailout]
mode = "smtp"
relay = "{relay}"
hostname = "{hostname}"
timeout = "30s"

[[gateway]]
id = "smsc"
type = "http"
url = "{smsc_url}"
timeout = "30s"
{extra}"""


@dataclass
class Serve:
    """``mailsms serve --config <workdir>/mailsms.toml`` in ``workdir``; state in ``workdir/var``."""

    workdir: Path
    lmtp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    store_url: str = ""  # "": SQLite in workdir/var; else a PostgreSQL queue shared with other nodes
    name: str = ""  # tells nodes apart at the peers: the SMSC URL's node= and the mail-out EHLO name

    @property
    def config(self) -> Path:
        return self.workdir / "mailsms.toml"

    @property
    def log(self) -> Path:
        return self.workdir / "serve.log"

    @property
    def db(self) -> Path:
        return self.workdir / "var" / "queue.sqlite"

    @property
    def node_id(self) -> str:
        """The node id the daemon made at its first start (several nodes on PostgreSQL)."""
        path = self.workdir / "var" / "node-id"
        return path.read_text().strip() if path.exists() else ""

    def write_config(
        self, smsc_url: str, relay: str, extra: str = "", queue: str = "", *, lease_seconds: int = 60
    ) -> None:
        store = f'url = "{self.store_url}"\nlease_seconds = {lease_seconds}' if self.store_url else ""
        hostname = f"{self.name}.mailsms.example.test" if self.name else "mailsms.example.test"
        if self.name:
            smsc_url = f"{smsc_url}&node={self.name}"
        text = config_text(self.lmtp_port, self.http_port, smsc_url, relay, extra, queue, store=store,
                           hostname=hostname)  # fmt: skip
        self.config.write_text(text)

    def start(self) -> None:
        """Start the daemon and wait until both listeners answer."""
        with open(self.log, "ab") as err:
            err.write(f"--- start {self.starts + 1}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(
                [*MAILSMS, "serve", "--config", str(self.config)],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        self.starts += 1
        proc = self.proc
        ports = (self.lmtp_port, self.http_port)
        wait_until(
            lambda: proc.poll() is not None or all(port_open("127.0.0.1", port) for port in ports),
            timeout=START_TIMEOUT,
            what="mailsms serve listening",
        )
        if proc.poll() is not None:
            raise AssertionError(f"mailsms serve exited {proc.returncode}:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows from the queue database, read beside the running daemon."""
        with connect_existing(self.store_url, self.workdir / "var") as conn:
            return [] if conn is None else [tuple(row) for row in conn.execute(sql, args).fetchall()]


def recipient(number: str, maxmsgs: int = 1) -> str:
    return f'"sms:{number}?maxmsgs={maxmsgs}"@sms.example.test'


def mail(text: str, subject: str = "") -> bytes:
    return f"From: <{SENDER}>\r\nSubject: {subject}\r\n\r\n{text}\r\n".encode()


class Lmtp:
    """A blocking LMTP client that reads one reply per accepted recipient after DATA."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.stream = cast(BinaryIO, self.sock.makefile("rwb"))
        self.greeting = self.reply()

    def reply(self) -> str:
        """One (possibly multi-line) reply: its last line."""
        while True:
            line = self.stream.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text[3:4] != "-":
                return text

    def command(self, line: str) -> str:
        self.stream.write(line.encode() + b"\r\n")
        self.stream.flush()
        return self.reply()

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()

    def send(self, recipients: list[str], body: bytes, sender: str = SENDER) -> list[str]:
        """MAIL, RCPT..., DATA: the RCPT refusals and then one reply per accepted recipient."""
        self.command(f"MAIL FROM:<{sender}>")
        answers = [self.command(f"RCPT TO:<{r}>") for r in recipients]
        refused = [a for a in answers if not a.startswith("250")]
        if len(refused) == len(answers):
            self.command("RSET")
            return refused
        data = self.command("DATA")
        if not data.startswith("354"):
            return [*refused, data]
        self.write(dot_stuffed(body) + b".\r\n")
        return [*refused, *(self.reply() for _ in range(len(answers) - len(refused)))]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.command("QUIT")
        self.sock.close()


def dot_stuffed(body: bytes) -> bytes:
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def queue_id(reply: str) -> str:
    """The queue id in ``250 2.0.0 <id> queued as SMS (n parts)``."""
    return reply.split()[2]


def integrity(serve: Serve) -> str:
    """SQLite's ``integrity_check``; on PostgreSQL (which checks its own pages), that no part lost its message."""
    if serve.store_url:
        rows = serve.query("SELECT COUNT(*) FROM part p LEFT JOIN message m ON m.id = p.message_id WHERE m.id IS NULL")
        return "ok" if rows and rows[0][0] == 0 else f"{rows[0][0]} parts without their message"
    conn = sqlite3.connect(serve.db)
    try:
        return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()
