"""Accounts and policy enforced through LMTP, SMTP AUTH and ``/sms/``; no password leaks; abuse stays out."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.accounts import Account, hash_password, month_of
from mailsms.cli import main
from mailsms.config import Config, PolicyConfig
from mailsms.daemon import Daemon
from mailsms.store.accounts import get_account, put_account
from mailsms.values import ListenAddress
from tests.component.test_ingest import lmtp, mail, outbox_files
from tests.conftest import replace_server
from tests.support.db import database, state_config
from tests.support.lmtp import LmtpClient, Reply
from tests.support.wait import async_wait_until
from tests.support.web import call, outbox_gateway, with_web

PASSWORD = "Tr0ub4dor-x9"  # grepped for in every log line, listing and stored row
HASH = hash_password(PASSWORD)
NUMBER = "+15551234567"


def with_policy(config: Config, **changes: object) -> Config:
    return dataclasses.replace(config, policy=dataclasses.replace(PolicyConfig(), **changes))  # type: ignore[arg-type]


def add_account(daemon: Daemon, account: Account) -> None:
    assert daemon.store is not None
    with daemon.store.transaction() as conn:
        put_account(conn, account)


def alice(**changes: object) -> Account:
    from time import time

    base = Account("alice", HASH, month=month_of(time()))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def dump(config: Config) -> str:
    """Every value of every row of every table of the queue, one row a line."""
    with database(config) as conn:
        if config.store.url:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
        else:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        found = [row for (table,) in tables for row in conn.execute(f'SELECT * FROM "{table}"').fetchall()]
    text = (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for row in found for v in row)
    return "\n".join(text)


def config_file(path: Path, state_dir: Path, store_url: str) -> Path:
    """A configuration file for the command-line tools naming the test's state directory and store."""
    path.write_text(f"[state]\ndir = '{state_dir}'\n[store]\nurl = '{store_url}'\n")
    return path


def rcpt(number: str = NUMBER, user: str = "", password: str = "") -> str:
    query = "&".join(p for p in (f"user={user}" if user else "", f"pass={password}" if password else "") if p)
    return f'"sms:{number}{"?" + query if query else ""}"@sms.example.com'


@pytest.fixture
async def strict(config: Config) -> AsyncIterator[Daemon]:
    """require_auth, an SMTP listener too, two gateways; account alice (with PASSWORD) on gw2."""
    changed = with_policy(config, require_auth=True, auth_failure_delay=0.0)
    changed = replace_server(changed, smtp_listen=ListenAddress("127.0.0.1", 0))
    changed = dataclasses.replace(changed, gateways=(outbox_gateway("outbox"), outbox_gateway("gw2")))
    running = Daemon(with_web(changed, trusted_networks=[]))
    await running.start()
    add_account(running, alice(gateway="gw2", maxsend=5))
    try:
        yield running
    finally:
        await running.stop()


async def test_lmtp_require_auth_530_wrong_535_right_250_on_the_accounts_gateway(strict: Daemon) -> None:
    client = await lmtp(strict)
    try:
        await client.command("MAIL FROM:<list@example.com>")
        none = await client.command(f"RCPT TO:<{rcpt()}>")
        wrong = await client.command(f"RCPT TO:<{rcpt(user='alice', password='guess')}>")
        ghost = await client.command(f"RCPT TO:<{rcpt(user='ghost', password='guess')}>")
        right = await client.command(f"RCPT TO:<{rcpt(user='alice', password=PASSWORD)}>")
    finally:
        await client.close()
    assert (none.code, none.enhanced) == (530, "5.7.0")
    assert (wrong.code, wrong.enhanced) == (535, "5.7.8")
    assert (ghost.code, ghost.enhanced) == (535, "5.7.8")
    assert right.code == 250


async def test_a_mailing_list_post_is_judged_per_recipient_and_counted(strict: Daemon, state_dir: Path) -> None:
    client = await lmtp(strict)
    recipients = [rcpt(f"+1555123456{i}", "alice", PASSWORD if i % 2 == 0 else "bad") for i in range(6)]
    try:
        _, rcpts, data = await client.send("list@example.com", recipients, mail("hello members"))
    finally:
        await client.close()
    assert [r.code for r in rcpts] == [250, 535, 250, 535, 250, 535]
    assert [r.code for r in data] == [250, 250, 250]
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 3, what="three outbox files")
    assert {f["gateway"] for f in outbox_files(state_dir)} == {"gw2"}
    assert strict.store is not None
    counted = get_account(strict.store.conn, "alice")
    assert counted is not None and counted.sent == 3 and counted.lastsent > 0


async def test_monthly_limit_disabled_and_expired_accounts(strict: Daemon) -> None:
    import datetime as dt

    client = await lmtp(strict)
    try:
        add_account(strict, alice(gateway="gw2", maxsend=5, sent=5))
        await client.command("MAIL FROM:<a@example.com>")
        full = await client.command(f"RCPT TO:<{rcpt(user='alice', password=PASSWORD)}>")
        add_account(strict, alice(inactive=True))  # as `mailsms accounts disable` does: no reload
        disabled = await client.command(f"RCPT TO:<{rcpt(user='alice', password=PASSWORD)}>")
        add_account(strict, alice(expire=dt.date(2000, 1, 1)))
        expired = await client.command(f"RCPT TO:<{rcpt(user='alice', password=PASSWORD)}>")
    finally:
        await client.close()
    assert (full.code, full.enhanced) == (452, "4.2.2")
    assert (disabled.code, disabled.enhanced) == (550, "5.7.1")
    assert (expired.code, expired.enhanced) == (550, "5.7.1")


async def test_two_sessions_cannot_pass_a_monthly_limit_together(strict: Daemon) -> None:
    add_account(strict, alice(gateway="gw2", maxsend=5, sent=4))  # one message left this month
    first, second = await lmtp(strict), await lmtp(strict)
    address = rcpt(user="alice", password=PASSWORD)
    try:
        for client in (first, second):  # both judged at RCPT while one message is still left
            await client.command("MAIL FROM:<a@example.com>")
            assert (await client.command(f"RCPT TO:<{address}>")).code == 250
        replies = []
        for client in (first, second):
            await client.command("DATA")
            client.writer.write(b"Subject: hi\r\n\r\nhello\r\n.\r\n")
            replies.append(await client.read_reply())
    finally:
        await first.close()
        await second.close()
    assert [(r.code, r.enhanced) for r in replies] == [(250, "2.0.0"), (452, "4.2.2")]
    assert strict.store is not None
    counted = get_account(strict.store.conn, "alice")
    assert counted is not None and counted.sent == 5
    (queued,) = strict.store.conn.execute("SELECT COUNT(*) FROM message").fetchone()
    assert queued == 1  # the refused one left nothing behind


async def test_without_require_auth_a_wrong_password_for_an_account_is_still_refused(daemon: Daemon) -> None:
    add_account(daemon, alice())
    client = await lmtp(daemon)
    try:
        await client.command("MAIL FROM:<a@example.com>")
        anonymous = await client.command(f"RCPT TO:<{rcpt()}>")
        unknown = await client.command(f"RCPT TO:<{rcpt(user='ghost', password='x')}>")
        wrong = await client.command(f"RCPT TO:<{rcpt(user='alice', password='x')}>")
    finally:
        await client.close()
    assert (anonymous.code, unknown.code, wrong.code) == (250, 250, 535)


async def smtp_client(daemon: Daemon) -> LmtpClient:
    addr = daemon.bound["smtp"]
    client = await LmtpClient.connect(addr.host, addr.port)
    return client


async def test_smtp_auth_plain_on_loopback_authenticates_the_session(strict: Daemon, state_dir: Path) -> None:
    client = await smtp_client(strict)
    try:
        ehlo = await client.command("EHLO client.example.test")
        bad = await client.command("AUTH PLAIN " + base64.b64encode(b"\0alice\0nope").decode())
        good = await client.command("AUTH PLAIN " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
        await client.command("MAIL FROM:<a@example.com>")
        accepted = await client.command(f"RCPT TO:<{rcpt()}>")
        await client.command("DATA")
        client.writer.write(b"Subject: hi\r\n\r\nhello\r\n.\r\n")
        data = await client.read_reply()
    finally:
        await client.close()
    assert any(line.startswith("AUTH ") for line in ehlo.lines)
    assert (bad.code, bad.enhanced) == (535, "5.7.8")
    assert good.code == 235
    assert accepted.code == 250 and data.code == 250
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    assert outbox_files(state_dir)[0]["gateway"] == "gw2"


async def test_smtp_auth_login_asks_for_user_and_password(strict: Daemon) -> None:
    client = await smtp_client(strict)
    try:
        await client.command("EHLO client.example.test")
        asked_user = await client.command("AUTH LOGIN")
        asked_password = await client.command(base64.b64encode(b"alice").decode())
        done = await client.command(base64.b64encode(PASSWORD.encode()).decode())
        again = await client.command("AUTH LOGIN " + base64.b64encode(b"alice").decode())
        wrong = await client.command(base64.b64encode(b"not it").decode())
    finally:
        await client.close()
    assert (asked_user.code, asked_password.code, done.code) == (334, 334, 235)
    assert again.code == 503  # already authenticated
    assert wrong.code in (500, 502)  # not in an AUTH dialogue any more: a line the session does not know


async def test_repeated_smtp_auth_failures_slow_the_session_down(config: Config) -> None:
    changed = with_policy(config, require_auth=True, auth_failure_delay=0.25)
    daemon = Daemon(replace_server(changed, smtp_listen=ListenAddress("127.0.0.1", 0)))
    await daemon.start()
    add_account(daemon, alice())
    client = await smtp_client(daemon)
    try:
        await client.command("EHLO client.example.test")
        wrong = "AUTH PLAIN " + base64.b64encode(b"\0alice\0guess").decode()
        for _ in range(3):  # the first few failures cost nothing
            assert (await client.command(wrong)).code == 535
        started = time.monotonic()
        for _ in range(3):  # then 0.25 s, 0.5 s, 1 s before the next command is read
            assert (await client.command(wrong)).code == 535
        await client.command("NOOP")
        waited = time.monotonic() - started
        right = await client.command("AUTH PLAIN " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
    finally:
        await client.close()
        await daemon.stop()
    assert waited >= 1.7  # a lower bound: each penalty is a wait before the session goes on
    assert right.code == 235


async def test_smtp_without_auth_under_require_auth_is_530(strict: Daemon) -> None:
    client = await smtp_client(strict)
    try:
        await client.command("EHLO client.example.test")
        await client.command("MAIL FROM:<a@example.com>")
        refused = await client.command(f"RCPT TO:<{rcpt()}>")
    finally:
        await client.close()
    assert (refused.code, refused.enhanced) == (530, "5.7.0")


async def test_http_api_accounts_their_limit_and_429(strict: Daemon, state_dir: Path) -> None:
    ok = await call(strict, f"/sms/?number=%2B15551234567&data=hi&user=alice&pass={PASSWORD}")
    wrong = await call(strict, "/sms/?number=%2B15551234567&data=hi&user=alice&pass=nope")
    none = await call(strict, "/sms/?number=%2B15551234567&data=hi")
    premium = await call(strict, f"/sms/?number=%2B19005550123&data=hi&user=alice&pass={PASSWORD}")
    assert ok.status == 200, ok.body
    assert (wrong.status, wrong.body["status"]) == (401, "5.7.8")
    assert none.status == 401
    assert (premium.status, premium.body["status"]) == (403, "5.7.1")
    add_account(strict, alice(gateway="gw2", maxsend=1, sent=1))
    over = await call(strict, f"/sms/?number=%2B15551234567&data=hi&user=alice&pass={PASSWORD}")
    assert (over.status, over.body["status"]) == (429, "4.2.2") and "Retry-After" in over.headers


async def pipelined_rcpts(client: LmtpClient, sender: str, recipients: list[str]) -> list[Reply]:
    """MAIL, every RCPT and RSET in one write (PIPELINING); the RCPT replies."""
    lines = [f"MAIL FROM:<{sender}>", *(f"RCPT TO:<{r}>" for r in recipients), "RSET"]

    async def write() -> None:
        client.writer.write(("\r\n".join(lines) + "\r\n").encode())
        await client.writer.drain()

    writing = asyncio.create_task(write())  # read while writing: neither side's buffer can fill up
    replies = [await client.read_reply() for _ in lines]
    await writing
    assert replies[0].code == 250 and replies[-1].code == 250
    return replies[1:-1]


ABUSE_ATTEMPTS = 10_000


async def test_abuse_10000_premium_and_over_limit_attempts_never_reach_the_transport(
    config: Config, state_dir: Path
) -> None:
    changed = with_policy(config, sender_messages_per_hour=5, blocked_prefixes=["+44"])
    daemon = Daemon(changed)
    await daemon.start()
    started = time.monotonic()
    try:
        client = await lmtp(daemon)
        premium: list[int] = []
        limited: list[int] = []
        try:
            _, rcpts, data = await client.send("busy@example.com", [rcpt()] * 5, mail("x"))  # the sender's 5
            assert [r.code for r in rcpts + data] == [250] * 10
            numbers = ["+19005550123", "+881612345678", "+979123456789", "+449098790000", "+870772112345"]
            for round_ in range(ABUSE_ATTEMPTS // 2 // 1000):
                replies = await pipelined_rcpts(client, f"fraud{round_}@example.com", [rcpt(n) for n in numbers] * 200)
                premium += [r.code for r in replies]
                replies = await pipelined_rcpts(client, "busy@example.com", [rcpt(f"+1555123{round_}{i:03}")
                                                                             for i in range(1000)])  # fmt: skip
                limited += [r.code for r in replies]
        finally:
            await client.close()
        assert len(premium) + len(limited) == ABUSE_ATTEMPTS
        assert set(premium) == {550} and set(limited) == {450}
        await async_wait_until(lambda: len(outbox_files(state_dir)) == 5, what="the five legitimate outbox files")
        assert daemon.store is not None
        queued = daemon.store.conn.execute("SELECT count(*) FROM message").fetchone()[0]
    finally:
        await daemon.stop()
    assert time.monotonic() - started < 15
    assert queued == 5
    assert {f["to"] for f in outbox_files(state_dir)} == {NUMBER}


async def test_no_password_reaches_logs_queue_rows_or_listings(
    strict: Daemon,
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="mailsms")  # a test before may have left it at WARNING (log.setup)
    ours = logging.getLogger("mailsms")  # log.setup (run by other tests) stops propagation
    ours.addHandler(caplog.handler)
    request.addfinalizer(lambda: ours.removeHandler(caplog.handler))
    client = await lmtp(strict)
    try:
        message = f"To: {rcpt(user='alice', password=PASSWORD)}\r\nSubject: hi\r\n\r\nhello\r\n".encode()
        await client.send("a@example.com", [rcpt(user="alice", password=PASSWORD), rcpt(user="alice",
                          password=PASSWORD + "x")], message)  # fmt: skip
    finally:
        await client.close()
    smtp = await smtp_client(strict)
    try:
        await smtp.command("EHLO c.example.test")
        await smtp.command("AUTH PLAIN " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
        await smtp.command("MAIL FROM:<a@example.com>")
        await smtp.command(f"RCPT TO:<{rcpt(user='alice', password=PASSWORD)}>")
    finally:
        await smtp.close()
    await call(strict, f"/sms/?number=%2B15551234567&data=hi&user=alice&pass={PASSWORD}")
    await call(strict, f"/sms/?number=%2B15551234567&data=hi&user=alice&pass={PASSWORD}z")
    await async_wait_until(lambda: len(outbox_files(state_dir)) >= 2, what="outbox files")
    stored = dump(strict.config)
    tools = config_file(state_dir.parent / "m.toml", state_dir, strict.config.store.url)
    assert main(["queue", "list", "--config", str(tools)]) == 0
    assert main(["accounts", "export", "--config", str(tools)]) == 0
    outbox = json.dumps(outbox_files(state_dir))
    assert "queued" in caplog.text and "authentication fail" in caplog.text
    for where in (caplog.text, stored, capsys.readouterr().out, outbox):
        assert PASSWORD not in where
    assert "pass=(set)" in stored  # the recipient is kept, its password value is not


def test_cli_add_import_export_disable_delete(
    tmp_path: Path, state_dir: Path, store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    cfg = ["--config", str(config_file(tmp_path / "m.toml", state_dir, store_url))]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["accounts", "add", "bob", "--password-stdin", "--maxsend", "10", *cfg]) == 0
    seed = tmp_path / "smsusers.dat"
    seed.write_text(f"carol:{PASSWORD}:gw2:Carol's phone:100:7:1715774400:42:45443:\ndave::::0:0::0::1\n")
    assert main(["accounts", "import", str(seed), *cfg]) == 0
    assert main(["accounts", "disable", "bob", *cfg]) == 0
    assert main(["accounts", "delete", "dave", *cfg]) == 0
    capsys.readouterr()
    assert main(["accounts", "export", *cfg]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["bob", "carol"]
    assert all(len(line.split(":")) == 10 and line.split(":")[1] == "" for line in lines)
    assert lines[0].endswith(":1") and lines[1].split(":")[8] == "45443"
    assert main(["accounts", "show", "carol", *cfg]) == 0
    assert main(["accounts", "list", *cfg]) == 0
    out = capsys.readouterr().out
    assert "password:    set" in out and "disabled" in out and PASSWORD not in out
    stored = dump(state_config(state_dir, store_url))
    assert PASSWORD not in stored and "$argon2id$" in stored
    bad = tmp_path / "bad.dat"
    bad.write_text(f"erin:{PASSWORD}::x:many:0:0:0::\n")
    assert main(["accounts", "import", str(bad), *cfg]) == 65
    err = capsys.readouterr().err
    assert "bad.dat:1: maxsend must be a whole number" in err and PASSWORD not in err
