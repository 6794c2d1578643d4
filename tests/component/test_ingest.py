"""LMTP in, queue committed, per-recipient replies, outbox out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from mailsms.config import Config, SegmentConfig
from mailsms.daemon import Daemon
from mailsms.store.conn import POSTGRESQL, Conn, dialect
from mailsms.store.queue import QueueStore
from tests.conftest import replace_server
from tests.support.db import one
from tests.support.lmtp import LmtpClient
from tests.support.wait import async_wait_until

LONG = "word " * 100  # 500 characters: 4 GSM parts


def mail(body: str, subject: str = "Hello", sender: str = "alice@example.com") -> bytes:
    return f"From: {sender}\r\nTo: x\r\nSubject: {subject}\r\nMessage-ID: <m1@example.com>\r\n\r\n{body}\r\n".encode()


async def lmtp(daemon: Daemon) -> LmtpClient:
    addr = daemon.bound["lmtp"]
    client = await LmtpClient.connect(addr.host, addr.port)
    await client.command("LHLO mta.example.test")
    return client


def outbox_files(state_dir: Path) -> list[dict[str, object]]:
    folder = state_dir / "outbox"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


async def test_three_recipients_get_three_replies_and_the_outbox_the_right_parts(
    daemon: Daemon, state_dir: Path
) -> None:
    client = await lmtp(daemon)
    _, rcpts, data = await client.send(
        "alice@example.com",
        [
            '"sms:+15551234567"@sms.example.test',
            '"sms:12"@sms.example.test',
            '"sms:+15557654321?maxmsgs=2"@sms.example.test',
        ],
        mail(LONG, subject=""),
    )
    await client.close()
    assert [r.code for r in rcpts] == [250, 550, 250]
    assert rcpts[1].lines[0].startswith("5.1.1")
    assert [r.code for r in data] == [250, 250]
    assert all("queued as SMS" in r.text for r in data)
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 2, what="two outbox files")
    by_number = {f["to"]: f for f in outbox_files(state_dir)}
    one, two = by_number["+15551234567"], by_number["+15557654321"]
    assert len(one["parts"]) == 1 and one["parts"][0]["udh"] == ""  # type: ignore[index]
    assert len(two["parts"]) == 2  # type: ignore[arg-type]
    assert str(two["parts"][1]["text"]).endswith("...")  # type: ignore[index]
    assert two["encoding"] == "gsm7"


async def test_lhlo_advertises_what_mtas_need(daemon: Daemon) -> None:
    addr = daemon.bound["lmtp"]
    client = await LmtpClient.connect(addr.host, addr.port)
    reply = await client.command("LHLO mta")
    for extension in ("ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "PIPELINING", "DSN"):
        assert extension in reply.lines
    await client.close()


async def test_dsn_parameters_are_accepted_and_stored(daemon: Daemon, config: Config) -> None:
    client = await lmtp(daemon)
    assert (await client.command("MAIL FROM:<alice@example.com> RET=HDRS ENVID=abc123")).code == 250
    reply = await client.command('RCPT TO:<"sms:+15551234567"@x> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.com')
    assert reply.code == 250
    assert (await client.command("DATA")).code == 354
    client.writer.write(mail("hi") + b".\r\n")
    assert (await client.read_reply()).code == 250
    await client.close()
    assert json.loads(one(config, "SELECT dsn FROM message")) == {
        "RET": "HDRS",
        "ENVID": "abc123",
        "NOTIFY": "FAILURE,DELAY",
        "ORCPT": "rfc822;bob@example.com",
    }


async def test_unknown_rcpt_parameter_gets_555(daemon: Daemon) -> None:
    client = await lmtp(daemon)
    await client.command("MAIL FROM:<a@example.com>")
    assert (await client.command('RCPT TO:<"sms:+15551234567"@x> FOO=1')).code == 555
    await client.close()


async def test_bounce_is_accepted_and_never_texted(daemon: Daemon, config: Config) -> None:
    client = await lmtp(daemon)
    _, _, data = await client.send("", ['"sms:+15551234567"@x'], mail("Delivery failed"))
    await client.close()
    assert [r.code for r in data] == [250]
    assert "not sent as SMS" in data[0].text
    assert one(config, "SELECT COUNT(*) FROM message") == 0


async def test_message_over_size_limit_gets_552_per_recipient(config: Config) -> None:
    daemon = Daemon(replace_server(config, message_size_limit=1000))
    await daemon.start()
    try:
        client = await lmtp(daemon)
        _, _, data = await client.send(
            "a@example.com", ['"sms:+15551234567"@x', '"sms:+15551234568"@x'], mail("x" * 5000)
        )
        assert [r.code for r in data] == [552, 552]
        assert data[0].lines[0].startswith("5.3.4")
        # the session stays in step: the next transaction works
        _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x'], mail("small"))
        assert [r.code for r in data] == [250]
        await client.close()
    finally:
        await daemon.stop()


async def test_too_many_recipients_get_452_4_5_3(config: Config) -> None:
    daemon = Daemon(replace_server(config, max_recipients=2))
    await daemon.start()
    try:
        client = await lmtp(daemon)
        await client.command("MAIL FROM:<a@example.com>")
        codes = [(await client.command(f'RCPT TO:<"sms:+1555123456{i}"@x>')).code for i in range(3)]
        assert codes == [250, 250, 452]
        await client.close()
    finally:
        await daemon.stop()


async def test_overlength_reject_gives_552_to_that_recipient_only(config: Config) -> None:
    daemon = Daemon(dataclasses.replace(config, segment=SegmentConfig(overlength="reject")))
    await daemon.start()
    try:
        client = await lmtp(daemon)
        _, _, data = await client.send(
            "a@example.com", ['"sms:+15551234567"@x', '"sms:+15551234568?maxmsgs=10"@x'], mail(LONG, subject="")
        )
        assert [r.code for r in data] == [552, 250]
        await client.close()
    finally:
        await daemon.stop()


async def test_garbage_mime_gets_a_reply_and_the_listener_survives(daemon: Daemon) -> None:
    client = await lmtp(daemon)
    junk = b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\x00\xff\xfe" + bytes(range(256)) * 20
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x'], junk)
    assert len(data) == 1
    assert data[0].code in (250, 554)
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x'], mail("still alive"))
    assert [r.code for r in data] == [250]
    await client.close()


async def refuse_new_messages(store: QueueStore, *, disk_full: bool) -> None:
    """From now on no message can be committed, on the writer's own connection: the database is
    full (SQLite: ``max_page_count`` pins the file at its size; PostgreSQL: the server's error
    for a full disk) or it fails with an I/O error."""

    def op(conn: Conn) -> None:
        if dialect(conn) == POSTGRESQL:
            code = "53100" if disk_full else "58030"  # disk_full, io_error
            conn.execute(
                "CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RAISE EXCEPTION 'no' USING ERRCODE = TG_ARGV[0]; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_insert BEFORE INSERT ON message"
                f" FOR EACH ROW EXECUTE FUNCTION refuse_insert('{code}')"
            )
        elif disk_full:
            conn.execute("PRAGMA max_page_count = 1")  # never below the current size
        else:
            conn.execute(
                "CREATE TEMP TRIGGER refuse_insert BEFORE INSERT ON message BEGIN SELECT RAISE(ABORT, 'I/O'); END"
            )

    await store.write(op)


async def accept_new_messages(store: QueueStore) -> None:
    """Undo :func:`refuse_new_messages`: the space is back, the I/O errors are gone."""

    def op(conn: Conn) -> None:
        if dialect(conn) == POSTGRESQL:
            conn.execute("DROP TRIGGER refuse_insert ON message")
            conn.execute("DROP FUNCTION refuse_insert()")
        else:
            conn.execute("PRAGMA max_page_count = 1073741823")
            conn.execute("DROP TRIGGER IF EXISTS temp.refuse_insert")

    await store.write(op)


def _queue_rows(config: Config) -> int:
    return int(one(config, "SELECT count(*) FROM message"))


async def test_nothing_is_250_when_the_commit_fails(daemon: Daemon, config: Config) -> None:
    assert daemon.store is not None
    before = _queue_rows(config)
    await refuse_new_messages(daemon.store, disk_full=False)
    client = await lmtp(daemon)
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x', '"sms:+15551234568"@x'], mail("hi"))
    assert [(r.code, r.enhanced) for r in data] == [(451, "4.3.0"), (451, "4.3.0")]
    assert _queue_rows(config) == before
    await accept_new_messages(daemon.store)
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x'], mail("hi"))
    assert [r.code for r in data] == [250]
    await client.close()


async def test_database_full_gives_452_4_3_1_to_every_recipient_and_recovers_without_restart(
    daemon: Daemon, config: Config
) -> None:
    assert daemon.store is not None
    client = await lmtp(daemon)
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567"@x'], mail("fill the first page"))
    assert [r.code for r in data] == [250]
    before = _queue_rows(config)
    await refuse_new_messages(daemon.store, disk_full=True)
    big = "x" * 4000  # needs new pages
    _, _, data = await client.send(
        "a@example.com", ['"sms:+15551234567?maxmsgs=40"@x', '"sms:+15551234568?maxmsgs=40"@x'], mail(big)
    )
    assert [(r.code, r.enhanced) for r in data] == [(452, "4.3.1"), (452, "4.3.1")]
    assert _queue_rows(config) == before  # nothing half-written
    await accept_new_messages(daemon.store)
    _, _, data = await client.send("a@example.com", ['"sms:+15551234567?maxmsgs=40"@x'], mail(big))
    assert [r.code for r in data] == [250]
    assert _queue_rows(config) == before + 1
    await client.close()
