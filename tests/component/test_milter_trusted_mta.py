"""server.trusted_mta: X-Mailsms-Auth names the account only when a trusted MTA delivers the mail."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.config import Config
from mailsms.daemon import Daemon
from mailsms.store.accounts import get_account
from tests.component.test_ingest import lmtp, outbox_files
from tests.component.test_policy_ingest import PASSWORD, add_account, alice, rcpt, with_policy
from tests.conftest import replace_server
from tests.support.lmtp import Reply
from tests.support.wait import async_wait_until
from tests.support.web import outbox_gateway

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


def mail(*headers: str) -> bytes:
    return ("".join(h + "\r\n" for h in headers) + "From: a@example.test\r\nSubject: hi\r\n\r\nSee you\r\n").encode()


async def started(config: Config, *, trusted_mta: tuple[object, ...], require_auth: bool = False) -> Daemon:
    changed = with_policy(config, require_auth=require_auth, auth_failure_delay=0.0)
    changed = replace_server(changed, trusted_mta=trusted_mta)
    changed = dataclasses.replace(changed, gateways=(outbox_gateway("outbox"), outbox_gateway("gw2")))
    daemon = Daemon(changed)
    await daemon.start()
    add_account(daemon, alice(gateway="gw2", maxsend=5))
    return daemon


@pytest.fixture
async def from_trusted_mta(config: Config) -> AsyncIterator[Daemon]:
    daemon = await started(config, trusted_mta=LOOPBACK)
    try:
        yield daemon
    finally:
        await daemon.stop()


@pytest.fixture
async def strict_trusted_mta(config: Config) -> AsyncIterator[Daemon]:
    daemon = await started(config, trusted_mta=LOOPBACK, require_auth=True)
    try:
        yield daemon
    finally:
        await daemon.stop()


@pytest.fixture
async def from_anyone(config: Config) -> AsyncIterator[Daemon]:
    daemon = await started(config, trusted_mta=())
    try:
        yield daemon
    finally:
        await daemon.stop()


async def deliver(daemon: Daemon, recipients: list[str], message: bytes) -> tuple[list[Reply], list[Reply]]:
    client = await lmtp(daemon)
    try:
        _, rcpts, data = await client.send("list@example.test", recipients, message)
    finally:
        await client.close()
    return rcpts, data


def sent_by_alice(daemon: Daemon) -> int:
    assert daemon.store is not None
    account = get_account(daemon.store.conn, "alice")
    assert account is not None
    return account.sent


async def test_trusted_mta_header_counts_the_mail_against_the_account_and_its_gateway(
    from_trusted_mta: Daemon, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rcpts, data = await deliver(from_trusted_mta, [rcpt()], mail("X-Mailsms-Auth: alice"))
    assert [r.code for r in rcpts + data] == [250, 250]
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    assert outbox_files(state_dir)[0]["gateway"] == "gw2"
    assert sent_by_alice(from_trusted_mta) == 1
    assert "X-Mailsms-Auth" not in caplog.text  # nothing to say about a header that is trusted


async def test_untrusted_client_header_is_ignored_and_logged_once(
    from_anyone: Daemon, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    two = [rcpt("+15551234567"), rcpt("+15551234568")]
    rcpts, data = await deliver(from_anyone, two, mail("X-Mailsms-Auth: alice"))
    assert [r.code for r in rcpts + data] == [250] * 4
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 2, what="two outbox files")
    assert {f["gateway"] for f in outbox_files(state_dir)} == {"outbox"}
    assert sent_by_alice(from_anyone) == 0
    assert caplog.text.count("X-Mailsms-Auth from untrusted client 127.0.0.1 ignored") == 1


async def test_header_naming_an_unknown_user_is_not_authenticated(
    from_trusted_mta: Daemon, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rcpts, data = await deliver(from_trusted_mta, [rcpt()], mail("X-Mailsms-Auth: ghost"))
    assert [r.code for r in rcpts + data] == [250, 250]
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    assert outbox_files(state_dir)[0]["gateway"] == "outbox"
    assert "X-Mailsms-Auth names no account 'ghost'" in caplog.text


async def test_require_auth_from_a_trusted_mta_is_decided_after_data_per_recipient(
    strict_trusted_mta: Daemon, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with_pass = rcpt("+15551234569", "alice", PASSWORD)
    # no header: the recipient without credentials is refused after DATA, the one with pass= goes
    rcpts, data = await deliver(strict_trusted_mta, [rcpt(), with_pass], mail())
    assert [r.code for r in rcpts] == [250, 250]
    assert [(r.code, r.enhanced) for r in data] == [(530, "5.7.0"), (250, "2.0.0")]
    # a header naming no account is no better
    _, data = await deliver(strict_trusted_mta, [rcpt()], mail("X-Mailsms-Auth: ghost"))
    assert [(r.code, r.enhanced) for r in data] == [(530, "5.7.0")]
    # the header of the MTA authenticates the mail
    _, data = await deliver(strict_trusted_mta, [rcpt("+15551234560")], mail("X-Mailsms-Auth: alice"))
    assert [r.code for r in data] == [250]
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 2, what="two outbox files")
    assert sent_by_alice(strict_trusted_mta) == 2
    assert PASSWORD not in caplog.text


async def test_require_auth_from_an_untrusted_client_is_still_refused_at_rcpt(config: Config) -> None:
    daemon = await started(config, trusted_mta=(), require_auth=True)
    try:
        client = await lmtp(daemon)
        try:
            await client.command("MAIL FROM:<a@example.test>")
            refused = await client.command(f"RCPT TO:<{rcpt()}>")
        finally:
            await client.close()
    finally:
        await daemon.stop()
    assert (refused.code, refused.enhanced) == (530, "5.7.0")
