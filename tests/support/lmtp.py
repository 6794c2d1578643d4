"""A raw asyncio LMTP/SMTP client: unlike smtplib.LMTP it reads one reply per recipient after DATA."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str:
        """The enhanced status code at the start of the first line, or ""."""
        first = self.lines[0].split(" ", 1)[0] if self.lines else ""
        return first if first[:1].isdigit() and first.count(".") == 2 else ""


@dataclass
class LmtpClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    timeout: float = 10.0
    greeting: Reply | None = field(default=None)

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = 10.0) -> LmtpClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        client = cls(reader, writer, timeout)
        client.greeting = await client.read_reply()
        return client

    async def read_reply(self) -> Reply:
        lines: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), self.timeout)
            if not raw:
                raise ConnectionError("server closed the connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return Reply(int(line[:3]), tuple(lines))

    async def command(self, line: str) -> Reply:
        self.writer.write(line.encode("utf-8") + b"\r\n")
        await self.writer.drain()
        return await self.read_reply()

    async def send(self, sender: str, recipients: list[str], message: bytes) -> tuple[Reply, list[Reply], list[Reply]]:
        """MAIL, RCPT..., DATA; returns (mail reply, rcpt replies, per-recipient data replies)."""
        mail = await self.command(f"MAIL FROM:<{sender}>")
        rcpts = [await self.command(f"RCPT TO:<{r}>") for r in recipients]
        accepted = sum(1 for r in rcpts if r.code // 100 == 2)
        if not accepted:
            await self.command("RSET")
            return mail, rcpts, []
        data = await self.command("DATA")
        if data.code != 354:
            return mail, rcpts, [data]
        body = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        body = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in body.split(b"\r\n"))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.writer.write(body + b".\r\n")
        await self.writer.drain()
        return mail, rcpts, [await self.read_reply() for _ in range(accepted)]

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self.command("QUIT")
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
