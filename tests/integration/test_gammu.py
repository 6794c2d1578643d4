"""Real gammu-smsd (files backend, dummy phone) between mailsms and a directory: mail out, MO in.

Fails (never skips) when /usr/bin/gammu-smsd is missing.  The dummy phone of
gammu 1.42 keeps no copy of what it sends: each part is seen in gammu-smsd's
log ("Found 1 sms ... with text ..."; "Transmitted <file>").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.config import Config, GatewayConfig
from mailsms.daemon import Daemon
from mailsms.store.inbound import list_inbound
from tests.integration.test_smsd import BODY, part_states, send_long_mail
from tests.support.gammu import place_mo, running_gammu_smsd
from tests.support.replies import with_replies
from tests.support.wait import async_wait_until
from transports import gammu


@pytest.fixture
async def gateway(tmp_path: Path, config: Config) -> AsyncIterator[Daemon]:
    with running_gammu_smsd(tmp_path):
        options = gammu.Options(spool=str(tmp_path / "spool"), poll_interval=0.2, settle=0.3, retries=0)
        gateways = (GatewayConfig("sms1", "gammu", options),)
        daemon = Daemon(dataclasses.replace(with_replies(config), gateways=gateways))
        await daemon.start()
        try:
            yield daemon
        finally:
            await daemon.stop()


async def test_long_mail_parts_reach_the_dummy_phone_in_order(gateway: Daemon, tmp_path: Path) -> None:
    queue_id = await send_long_mail(gateway)
    log = tmp_path / "smsd.log"

    def transmitted() -> list[str]:
        text = log.read_text(errors="replace")
        return re.findall(rf"Transmitted (OUT\S*_mailsms\.{re.escape(queue_id)}\.\d+\.\S+)", text)

    parts = len(part_states(gateway, queue_id))
    assert parts >= 2
    await async_wait_until(lambda: len(transmitted()) == parts, timeout=60, what="gammu-smsd to send every part")
    await async_wait_until(lambda: not list((tmp_path / "spool" / "sent").iterdir()), timeout=10,
                           what="mailsms to take sent/")  # fmt: skip
    texts = re.findall(r'Found 1 sms to "\+15551234567" with text "(.*)" cod', log.read_text(errors="replace"))
    assert BODY.strip() in "".join(texts)
    assert [gammu.fmt.parse_name(n)[1] for n in transmitted()] == list(range(1, len(texts) + 1))  # type: ignore[index]


async def test_mo_at_the_dummy_phone_reaches_the_inbound_store(gateway: Daemon, tmp_path: Path) -> None:
    text = "Привет, see you 😀"
    place_mo(tmp_path, "+15557654321", text)
    assert gateway.store is not None
    store = gateway.store

    def stored() -> list[str]:
        return [r.text for r in list_inbound(store.conn) if r.smsc_id.startswith("gammu-")]

    inbox = tmp_path / "spool" / "inbox"
    # The file is removed after the store commits, so wait for both.
    await async_wait_until(
        lambda: stored() == [text] and not list(inbox.iterdir()),
        timeout=30,
        what="the MO in the inbound store and its file taken from the inbox",
    )
    assert stored() == [text]
