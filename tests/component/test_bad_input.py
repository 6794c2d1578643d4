"""Issue 5's bad input: every case gets its replies, the listener survives, nothing half-written stays queued."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from mailsms.config import Config
from mailsms.daemon import Daemon
from tests.support.db import database
from tests.support.lmtp import LmtpClient, Reply


def queued(config: Config) -> tuple[int, int]:
    """(messages, parts) in the queue, read as another process would."""
    with database(config) as conn:
        messages = conn.execute("SELECT count(*) FROM message").fetchone()[0]
        parts = conn.execute("SELECT count(*) FROM part").fetchone()[0]
        orphans = conn.execute(
            "SELECT count(*) FROM message m WHERE NOT EXISTS (SELECT 1 FROM part p WHERE p.message_id = m.id)"
        ).fetchone()[0]
        assert orphans == 0, "a message without its parts: half-written"
        return int(messages), int(parts)


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[LmtpClient]:
    addr = daemon.bound["lmtp"]
    conn = await LmtpClient.connect(addr.host, addr.port, timeout=60)
    await conn.command("LHLO mta.example.test")
    yield conn
    await conn.close()


async def still_serving(client: LmtpClient) -> None:
    """The same connection still takes a good mail: nothing crashed the session or the listener."""
    _, rcpts, data = await client.send("a@example.com", ['"sms:+15551234567"@x'], b"Subject: ok\r\n\r\nstill here\r\n")
    assert [r.code for r in rcpts] == [250]
    assert [r.code for r in data] == [250]


async def pipelined(client: LmtpClient, lines: list[str]) -> list[Reply]:
    client.writer.write("".join(f"{line}\r\n" for line in lines).encode())
    await client.writer.drain()
    return [await client.read_reply() for _ in lines]


async def test_ten_thousand_recipients_get_452_4_5_3_past_max_recipients(client: LmtpClient, config: Config) -> None:
    limit = config.server.max_recipients
    recipients = [f'RCPT TO:<"sms:+1555{n:07d}"@x>' for n in range(10_000)]
    replies = await pipelined(client, ["MAIL FROM:<a@example.com>", *recipients])
    codes = [r.code for r in replies[1:]]
    assert codes == [250] * limit + [452] * (10_000 - limit)
    assert replies[-1].enhanced == "4.5.3"
    data = await client.command("DATA")
    assert data.code == 354
    client.writer.write(b"Subject: many\r\n\r\nhello\r\n.\r\n")
    await client.writer.drain()
    finals = [await client.read_reply() for _ in range(limit)]
    assert {r.code for r in finals} == {250}  # exactly one reply per accepted recipient
    assert queued(config) == (limit, limit)
    await still_serving(client)


async def test_a_recipient_with_a_thousand_parameters_is_refused_alone(client: LmtpClient, config: Config) -> None:
    params = "&".join(f"p{n}=v" for n in range(1000))
    mail = await client.command("MAIL FROM:<a@example.com>")
    assert mail.code == 250
    huge = await client.command(f'RCPT TO:<"sms:+15551234567?{params}"@x>')
    assert (huge.code, huge.enhanced) == (500, "5.5.2")  # longer than any sms: address: refused as a line
    good = await client.command('RCPT TO:<"sms:+15551234568"@x>')
    assert good.code == 250
    assert (await client.command("RSET")).code == 250
    assert queued(config) == (0, 0)
    await still_serving(client)


async def test_repeated_known_parameters_are_a_syntax_error(client: LmtpClient) -> None:
    params = "&".join("maxmsgs=2" for _ in range(40))  # repeated parameters, short enough for one line
    await client.command("MAIL FROM:<a@example.com>")
    reply = await client.command(f'RCPT TO:<"sms:+15551234567?{params}"@x>')
    assert (reply.code, reply.enhanced) == (553, "5.1.3")
    assert "maxmsgs" in reply.text


async def test_unknown_parameters_in_a_long_but_legal_line_are_named(client: LmtpClient) -> None:
    params = "&".join(f"p{n}=v" for n in range(300))  # about 2.3 kB: within the command line limit
    await client.command("MAIL FROM:<a@example.com>")
    reply = await client.command(f'RCPT TO:<"sms:+15551234567?{params}"@x>')
    assert (reply.code, reply.enhanced) == (553, "5.1.3")
    assert "p0" in reply.text
    assert len(reply.text) < 300  # the reply names the problem, it does not echo the line
    await client.command("RSET")
    await still_serving(client)
    await client.command("RSET")
    await still_serving(client)


async def test_a_50_mb_body_gets_552_for_each_recipient_and_keeps_memory_flat(
    client: LmtpClient, config: Config
) -> None:
    await client.command("MAIL FROM:<a@example.com>")
    for n in range(2):
        assert (await client.command(f'RCPT TO:<"sms:+155512345{n:02d}"@x>')).code == 250
    assert (await client.command("DATA")).code == 354
    line = b"x" * 998 + b"\r\n"
    chunk = line * 1024  # 1 MB
    client.writer.write(b"Subject: huge\r\n\r\n")
    for _ in range(50):
        client.writer.write(chunk)
        await client.writer.drain()
    client.writer.write(b".\r\n")
    await client.writer.drain()
    finals = [await client.read_reply() for _ in range(2)]
    assert [(r.code, r.enhanced) for r in finals] == [(552, "5.3.4"), (552, "5.3.4")]
    assert queued(config) == (0, 0)
    await still_serving(client)


async def test_an_absurdly_long_header_gets_a_reply(client: LmtpClient, config: Config) -> None:
    subject = b"Subject: " + b"long " * 200_000 + b"\r\n"  # one 1 MB header line
    folded = b"X-Folded: start\r\n" + b"\tcontinued\r\n" * 50_000
    _, _, data = await client.send(
        "a@example.com", ['"sms:+15551234567?maxmsgs=2"@x'], subject + folded + b"\r\nbody text\r\n"
    )
    assert len(data) == 1
    assert data[0].code in (250, 554)
    messages, parts = queued(config)
    assert (messages, parts) in ((0, 0), (1, 2))  # the subject fills both parts when accepted
    await still_serving(client)


async def test_a_binary_body_gets_a_reply(client: LmtpClient, config: Config) -> None:
    junk = os.urandom(200_000).replace(b"\r\n.", b"\r\n..")
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x', '"sms:+15551234568"@x'], junk)
    assert len(data) == 2
    assert {r.code for r in data} <= {250, 554}
    assert len({r.code for r in data}) == 1  # the same content, the same answer for both
    await still_serving(client)


async def test_undecodable_charsets_and_broken_encodings_still_get_a_text(client: LmtpClient, config: Config) -> None:
    raw = (
        b"Subject: =?x-unknown?B?////?= =?utf-8?Q?caf=C3=A9?=\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64 at all\xff\xfe\r\n"
    )
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x'], raw)
    assert [r.code for r in data] in ([250], [554])
    await still_serving(client)
