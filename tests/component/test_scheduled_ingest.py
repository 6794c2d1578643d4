"""Scheduled sends and per-number caps through LMTP: what the MTA is told and what the queue holds."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator

import pytest

from mailsms.address_params import iso_time
from mailsms.config import Config, QueueConfig
from mailsms.daemon import Daemon
from mailsms.queue_admin import QueueAdmin
from tests.support.lmtp import LmtpClient, Reply

NUMBER = "+15551234567"


@pytest.fixture
async def daemon(config: Config) -> AsyncIterator[Daemon]:
    running = Daemon(dataclasses.replace(config, queue=QueueConfig(max_messages_per_number=2, queue_run_delay=0.05)))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def deliver(daemon: Daemon, recipients: list[str], head: str = "") -> list[Reply]:
    addr = daemon.bound["lmtp"]
    client = await LmtpClient.connect(addr.host, addr.port)
    try:
        await client.command("LHLO mta.example.test")
        mail = f"From: alice@example.com\r\n{head}Subject: hi\r\n\r\nSee you\r\n".encode()
        _, rcpt, data = await client.send("alice@example.com", recipients, mail)
    finally:
        await client.close()
    after_data = iter(data)
    return [next(after_data) if r.code == 250 else r for r in rcpt]  # the final word on each recipient


def listing(daemon: Daemon) -> list[dict[str, object]]:
    admin = QueueAdmin.open(daemon.config.state_dir, daemon.config.store.url)
    assert admin is not None
    try:
        return list(json.loads(admin.render_list(include_final=False, as_json=True)))
    finally:
        admin.close()


async def test_at_and_deferred_delivery_wait_in_the_queue_and_show_when(daemon: Daemon) -> None:
    later = float(int(time.time()) + 7200)
    at = iso_time(later)
    by_param = await deliver(daemon, [f'"sms:+15550000001?at={at}"@sms.example.test'])
    header = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(later + 60))
    by_header = await deliver(daemon, ['"sms:+15550000002"@sms.example.test'], head=f"Deferred-Delivery: {header}\r\n")
    assert [r.code for r in by_param + by_header] == [250, 250]
    rows = {row["to"]: row for row in listing(daemon)}
    assert rows['"sms:+15550000001?at=' + at + '"@sms.example.test']["scheduled"] == at
    assert rows['"sms:+15550000002"@sms.example.test']["scheduled"] == iso_time(later + 60)
    assert all(row["state"] == "queued" and row["sent_parts"] == 0 for row in rows.values())


async def test_a_send_time_a_year_ahead_is_refused_at_once(daemon: Daemon) -> None:
    far = iso_time(time.time() + 400 * 86400)
    (reply,) = await deliver(daemon, [f'"sms:{NUMBER}?at={far}"@sms.example.test'])
    assert (reply.code, reply.enhanced) == (553, "5.1.3")


async def test_a_number_with_max_messages_waiting_gets_452_4_2_2(daemon: Daemon) -> None:
    later = iso_time(time.time() + 3600)  # scheduled: they stay waiting
    address = f'"sms:{NUMBER}?at={later}"@sms.example.test'
    replies = await deliver(daemon, [address, address, address, '"sms:+15550000009"@sms.example.test'])
    assert [(r.code, r.enhanced) for r in replies] == [(250, "2.0.0"), (250, "2.0.0"), (452, "4.2.2"), (250, "2.0.0")]
    (again,) = await deliver(daemon, [address])
    assert (again.code, again.enhanced) == (452, "4.2.2")
    assert NUMBER in again.text
