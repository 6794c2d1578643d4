"""Real smstools3 smsd between mailsms and the fake modem on a pty: mail out, PDUs, reports, MOs.

Fails (never skips) when /usr/sbin/smsd is missing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.config import Config, GatewayConfig
from mailsms.daemon import Daemon
from mailsms.segment import Part
from mailsms.segment.pdu import decode_submit_pdu
from mailsms.segment.pdu_deliver import encode_deliver_pdu
from mailsms.store.inbound import list_inbound
from tests.fakes.modem import FakeModem
from tests.support.lmtp import LmtpClient
from tests.support.replies import SMS_DOMAIN, with_replies
from tests.support.smsd import running_smsd
from tests.support.wait import async_wait_until
from transports import smstools

NUMBER = "+15551234567"
BODY = "Meet me at the station {platform 3} at noon, bring the tickets @ the desk. " * 4


@pytest.fixture
def modem(tmp_path: Path) -> AsyncIterator[FakeModem]:
    with FakeModem(tmp_path / "modem") as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
async def gateway(tmp_path: Path, modem: FakeModem, config: Config) -> AsyncIterator[Daemon]:
    with running_smsd(tmp_path, modem.link):
        options = smstools.Options(spool=str(tmp_path / "spool"), poll_interval=0.2, settle=0.3, retries=0)
        gateways = (GatewayConfig("sms1", "smstools", options),)
        daemon = Daemon(dataclasses.replace(with_replies(config), gateways=gateways))
        await daemon.start()
        try:
            yield daemon
        finally:
            await daemon.stop()


async def send_long_mail(daemon: Daemon) -> str:
    lmtp = daemon.bound["lmtp"]
    client = await LmtpClient.connect(lmtp.host, lmtp.port)
    mail = f"From: <alice@mail.example.test>\r\nTo: <sms:{NUMBER}@{SMS_DOMAIN}>\r\nSubject: \r\n\r\n{BODY}\r\n"
    try:
        await client.command("LHLO client.example.test")
        _, rcpts, replies = await client.send("alice@mail.example.test", [f'"sms:{NUMBER}?maxmsgs=5"@{SMS_DOMAIN}'],
                                              mail.encode())  # fmt: skip
    finally:
        await client.close()
    assert [r.code for r in rcpts] == [250] and [r.code for r in replies] == [250], (rcpts, replies)
    return replies[0].text.split()[1]


def part_states(daemon: Daemon, queue_id: str) -> list[str]:
    assert daemon.store is not None
    rows = daemon.store.conn.execute("SELECT state FROM part WHERE message_id = ? ORDER BY seq", (queue_id,))
    return [row[0] for row in rows]


async def test_long_mail_goes_out_as_pdus_and_reports_mark_parts_delivered(gateway: Daemon, modem: FakeModem) -> None:
    queue_id = await send_long_mail(gateway)

    def delivered() -> bool:
        states = part_states(gateway, queue_id)
        return bool(states) and set(states) == {"delivered"}

    await async_wait_until(delivered, timeout=60, what="every part delivered")
    submits = [decode_submit_pdu(pdu) for pdu in modem.sent]
    assert len(submits) == len(part_states(gateway, queue_id)) >= 2
    assert {s.destination for s in submits} == {NUMBER}
    assert all(s.status_report for s in submits)
    assert [s.udh[-2:] for s in submits] == [bytes([len(submits), n]) for n in range(1, len(submits) + 1)]
    assert BODY.strip() in "".join(s.text or "" for s in submits)


async def test_mo_at_the_modem_reaches_the_inbound_store(gateway: Daemon, modem: FakeModem, tmp_path: Path) -> None:
    text = "Привет, see you 😀"
    data = text.encode("utf-16-be")
    modem.deliver(encode_deliver_pdu("+15557654321", Part(text, b"", len(data) // 2, data), "ucs2",
                                     timestamp=time.time()))  # fmt: skip
    assert gateway.store is not None
    store = gateway.store

    def stored() -> list[str]:
        return [r.text for r in list_inbound(store.conn) if r.smsc_id.startswith("smsd-")]

    await async_wait_until(lambda: stored() == [text], timeout=30, what="the MO in the inbound store")
    # The spool file goes once the commit is confirmed to the transport, a moment after it is readable.
    incoming = tmp_path / "spool" / "incoming"
    await async_wait_until(lambda: not [p for p in incoming.iterdir() if p.name.startswith("GSM1.")], timeout=10,
                           what="smsd's incoming file removed after the commit")  # fmt: skip


async def test_a_modem_error_ends_as_a_failure_with_smsds_reason(gateway: Daemon, modem: FakeModem) -> None:
    modem.quirks.cms_error_on_send = {1: 38, 2: 38, 3: 38}  # smsd tries three times
    queue_id = await send_long_mail(gateway)
    assert gateway.store is not None
    conn = gateway.store.conn

    def message() -> tuple[str, str]:
        row = conn.execute("SELECT state, reason FROM message WHERE id = ?", (queue_id,)).fetchone()
        return (row[0], row[1]) if row else ("", "")

    await async_wait_until(lambda: message()[0] == "failed", timeout=60, what="the message failed")
    assert "smsd: " in message()[1]
