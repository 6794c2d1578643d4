"""A raw asyncio LMTP load client, for ``bench.ingest``.

    .venv/bin/python -m bench.loadclient HOST:PORT [--connections 8] [--duration 8] [--warmup 3]

Each connection says LHLO once, then sends messages in lockstep (one command,
one reply; no pipelining): MAIL FROM, ``recipients`` RCPT TO with the quoted
``"sms:+1555123NNNN"@sms.example.test`` local part Postfix sends, DATA, a small
message (Subject and about 200 characters of body), and reads exactly one
reply per accepted recipient after the final dot, as an LMTP client must
(``smtplib.LMTP`` reads one).  A message counts as delivered when every one of
its replies is 2xx; any other reply is counted by code and reported.

Messages finished during the warm-up are not counted; the rate is the
messages finished inside the measured window divided by its length.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field

SENDER = "bench@example.test"
RCPT_DOMAIN = "sms.example.test"
BODY = (
    "Benchmark message for the mailsms LMTP ingest path. It carries a plain ASCII body of about two hundred "
    "characters so that composing and splitting stay cheap and the queue commit dominates the cost."
)


class ProtocolError(Exception):
    """The server broke the conversation (closed, or replied out of step)."""


@dataclass
class LoadResult:
    """What one run of the load client measured."""

    connections: int
    recipients: int
    duration: float
    messages: int = 0  # finished in the measured window, every reply 2xx
    failed_messages: int = 0  # finished in the measured window with a non-2xx reply
    warmup_messages: int = 0
    total_messages: int = 0  # every message finished, warm-up and after
    non_2xx: dict[str, int] = field(default_factory=dict)  # "stage code" -> count, whole run
    samples: list[str] = field(default_factory=list)  # first few non-2xx replies, verbatim
    errors: list[str] = field(default_factory=list)  # connection-level failures

    @property
    def rate(self) -> float:
        return self.messages / self.duration if self.duration > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["msg_per_s"] = round(self.rate, 1)
        return data


class _Shared:
    """State the connections of one run share: the window, the counters."""

    def __init__(self, start: float, end: float, deadline: float, rate: float = 0.0) -> None:
        self.start = start  # measured window [start, end)
        self.end = end
        self.deadline = deadline  # stop sending new messages after this
        self.interval = 1.0 / rate if rate > 0 else 0.0  # between message starts, all connections together
        self.next_slot = 0.0
        self.ok = 0
        self.failed = 0
        self.warmup = 0
        self.total = 0
        self.codes: Counter[str] = Counter()
        self.samples: list[str] = []
        self.errors: list[str] = []

    async def pace(self) -> None:
        """With a rate set, wait for this message's slot; slots are handed out one interval apart."""
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(self.next_slot, now)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def bad_reply(self, stage: str, reply: str) -> None:
        self.codes[f"{stage} {reply[:3]}"] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{stage}: {reply}")

    def finish(self, good: bool, now: float) -> None:
        self.total += 1
        if now < self.start:
            self.warmup += 1
        elif now < self.end:
            if good:
                self.ok += 1
            else:
                self.failed += 1


class _Client(asyncio.Protocol):
    """One LMTP connection: collects complete replies; a coroutine awaits the next ``n``.

    A protocol rather than streams: the client shares the machine with the
    server it measures, so it should cost as little CPU as it can.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.lines: list[str] = []  # lines of an unfinished multi-line reply
        self.replies: deque[str] = deque()
        self.want = 0
        self.waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end].rstrip(b"\r").decode("utf-8", "replace")
            start = end + 1
            if len(line) > 3 and line[3] == "-":
                self.lines.append(line)
            elif self.lines:
                self.lines.append(line)
                self.replies.append("\n".join(self.lines))
                self.lines = []
            else:
                self.replies.append(line)
        self.buffer = buffer[start:]
        waiter = self.waiter
        if waiter is not None and len(self.replies) >= self.want and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ProtocolError("connection closed")
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ProtocolError(f"connection lost: {self.lost}"))

    async def read(self, count: int = 1) -> list[str]:
        """The next ``count`` replies, each with its lines joined by "\\n"."""
        if len(self.replies) < count:
            if self.lost is not None:
                raise ProtocolError(f"connection lost: {self.lost}")
            self.want = count
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return [self.replies.popleft() for _ in range(count)]

    async def command(self, line: str) -> str:
        assert self.transport is not None
        self.transport.write(line.encode("utf-8") + b"\r\n")
        return (await self.read(1))[0]

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


def _ok(reply: str) -> bool:
    return reply[:1] == "2"


def _message(conn: int, seq: int, rcpts: list[str]) -> bytes:
    text = (
        f"From: Bench <{SENDER}>\r\n"
        f"To: {', '.join(rcpts)}\r\n"
        f"Subject: bench {conn}.{seq}\r\n"
        f"Message-ID: <bench.{conn}.{seq}.{time.time_ns()}@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        f"{BODY}\r\n"
        ".\r\n"
    )
    return text.encode("ascii")


async def _connection(host: str, port: int, conn: int, recipients: int, shared: _Shared) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(_Client, host, port)
    command = client.command
    try:
        (greeting,) = await client.read(1)
        if greeting[:3] != "220":
            raise ProtocolError(f"greeting: {greeting}")
        reply = await command("LHLO bench.example.test")
        if not _ok(reply):
            raise ProtocolError(f"LHLO: {reply}")
        seq = 0
        while time.monotonic() < shared.deadline:
            await shared.pace()
            seq += 1
            good = True
            reply = await command(f"MAIL FROM:<{SENDER}>")
            if not _ok(reply):
                shared.bad_reply("MAIL", reply)
                shared.finish(False, time.monotonic())
                await command("RSET")
                continue
            rcpts: list[str] = []
            for i in range(recipients):
                number = (conn * 1009 + seq * recipients + i) % 10000
                address = f'"sms:+1555123{number:04d}"@{RCPT_DOMAIN}'
                reply = await command(f"RCPT TO:<{address}>")
                if _ok(reply):
                    rcpts.append(address)
                else:
                    good = False
                    shared.bad_reply("RCPT", reply)
            if not rcpts:
                shared.finish(False, time.monotonic())
                await command("RSET")
                continue
            reply = await command("DATA")
            if reply[:3] != "354":
                shared.bad_reply("DATA", reply)
                shared.finish(False, time.monotonic())
                await command("RSET")
                continue
            client.send(_message(conn, seq, rcpts))
            for reply in await client.read(len(rcpts)):  # LMTP: one reply per accepted recipient
                if not _ok(reply):
                    good = False
                    shared.bad_reply("DOT", reply)
            shared.finish(good, time.monotonic())
        with contextlib.suppress(ProtocolError, TimeoutError):
            await asyncio.wait_for(command("QUIT"), 5)
    finally:
        transport.close()


async def run_load(
    host: str,
    port: int,
    *,
    connections: int,
    duration: float,
    warmup: float = 3.0,
    recipients: int = 2,
    rate: float = 0.0,
) -> LoadResult:
    """Drive ``host:port`` with ``connections`` lockstep LMTP connections for warm-up + duration seconds.

    ``rate`` caps the messages started per second over all connections (0: as fast as replies come).
    """
    now = time.monotonic()
    end = now + warmup + duration
    shared = _Shared(start=now + warmup, end=end, deadline=end, rate=rate)
    tasks = [
        asyncio.create_task(_connection(host, port, conn, recipients, shared), name=f"lmtp-{conn}")
        for conn in range(connections)
    ]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for conn, outcome in enumerate(outcomes):
        if isinstance(outcome, BaseException):
            shared.errors.append(f"connection {conn}: {type(outcome).__name__}: {outcome}")
    return LoadResult(
        connections=connections,
        recipients=recipients,
        duration=duration,
        messages=shared.ok,
        failed_messages=shared.failed,
        warmup_messages=shared.warmup,
        total_messages=shared.total,
        non_2xx=dict(shared.codes),
        samples=shared.samples,
        errors=shared.errors,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drive an LMTP server with lockstep connections; print msg/s.")
    parser.add_argument("target", metavar="HOST:PORT")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds (default 8)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not counted first (default 3)")
    parser.add_argument("--recipients", type=int, default=2, help="recipients a message (default 2)")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    result = asyncio.run(
        run_load(
            host.strip("[]") or "127.0.0.1",
            int(port),
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
            recipients=args.recipients,
        )
    )
    print(json.dumps(result.as_dict(), indent=2))
    return 0 if not result.errors and not result.non_2xx and result.messages else 1


if __name__ == "__main__":
    raise SystemExit(main())
