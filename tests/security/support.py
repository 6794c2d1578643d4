"""Helpers of the security tests: incoming SMS stored as a transport stores them, a daemon relaying to a sink."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailsms.config import Config, MailoutConfig
from mailsms.daemon import Daemon
from mailsms.mo import mo_from_transport
from mailsms.store.engines import open_store
from mailsms.store.inbound import insert_inbound
from tests.support.replies import LOCAL, with_replies
from tests.support.smtpsink import SinkHandler, smtp_sink
from tests.support.wait import async_wait_until
from tests.support.web import running
from transports.base import IncomingSms

POSTMASTER = f"postmaster@{LOCAL}"
SETTLED = ("delivered", "undeliverable", "dropped", "conflict", "hold", "duplicate", "joined")


async def store_mos(config: Config, smses: Sequence[IncomingSms]) -> list[str]:
    """Commit ``smses`` to the inbound store before the daemon starts, as a modem or SMPP transport would."""
    state_dir = Path(config.state.dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.store.url, state_dir, node="test")
    ids = []
    try:
        for number, sms in enumerate(smses, 1):
            mo = mo_from_transport(sms, id=f"MOSEC{number:010d}", received=time.time())
            await store.write(functools.partial(insert_inbound, mo=mo))
            ids.append(mo.id)
    finally:
        store.close()
    return ids


def relaying(config: Config, relay: str, **inbound: Any) -> Config:
    """Replies configured (local domain mail.example.test), mail out by SMTP to ``relay``."""
    with_inbound = with_replies(config, unmatched_recipient=POSTMASTER, **inbound)
    return dataclasses.replace(
        with_inbound, mailout=MailoutConfig(mode="smtp", relay=relay, hostname="gw.example.test")
    )


def states(daemon: Daemon, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    assert daemon.store is not None
    marks = ",".join("?" * len(ids))
    rows = daemon.store.conn.execute(f"SELECT id, state, routed_to FROM inbound WHERE id IN ({marks})", tuple(ids))
    return {str(i): (str(s), str(r or "")) for i, s, r in rows.fetchall()}


async def route_through_sink(
    config: Config, smses: Sequence[IncomingSms]
) -> tuple[list[str], dict[str, tuple[str, str]], SinkHandler]:
    """Store ``smses``, run a daemon relaying to an SMTP sink until each is routed and its mail delivered:
    their ids, each one's (state, routed_to), and what the sink received."""
    ids = await store_mos(config, smses)
    async with smtp_sink() as sink, running(relaying(config, sink.relay)) as daemon:
        settled = await wait_all_settled(daemon, ids)
    return ids, settled, sink.handler


async def wait_all_settled(daemon: Daemon, ids: Sequence[str], timeout: float = 20.0) -> dict[str, tuple[str, str]]:
    await async_wait_until(lambda: all(s in SETTLED for s, _ in states(daemon, ids).values())
                           and len(states(daemon, ids)) == len(ids), timeout=timeout,
                           what="every incoming SMS routed and its mail delivered")  # fmt: skip
    return states(daemon, ids)
