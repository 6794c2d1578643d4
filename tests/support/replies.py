"""Replies by SMS in tests: a daemon configured for them, mail in, MOs in, mailboxes and links out."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mailsms.config import Config, InboundConfig, ReplylogConfig
from mailsms.daemon import Daemon
from replylog.links import ReplyLink
from replylog.store import list_links
from tests.support.lmtp import LmtpClient
from tests.support.wait import async_wait_until
from tests.support.web import call

LOCAL = "mail.example.test"
SMS_DOMAIN = "sms.example.test"
ALICE = f"alice@{LOCAL}"
BOB = f"bob@{LOCAL}"
NUMBER = "+15551234567"


def with_replies(config: Config, *, replylog: dict[str, Any] | None = None, **inbound: Any) -> Config:
    """``config`` with [inbound] (local domain mail.example.test, From in sms.example.test) and [replylog] keys."""
    settings = {"local_domains": (LOCAL,), "from_template": f"sms:%s@{SMS_DOMAIN}", **inbound}
    return dataclasses.replace(
        config,
        inbound=dataclasses.replace(InboundConfig(), **settings),
        replylog=dataclasses.replace(ReplylogConfig(), **(replylog or {})),
    )


def mail(sender: str, number: str, *, subject: str, message_id: str, head: str = "") -> bytes:
    """A user's mail to ``sms:<number>`` (``head``: more header lines, CRLF-terminated, put first)."""
    return (
        f"{head}From: <{sender}>\r\nTo: <sms:{number}@{SMS_DOMAIN}>\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n\r\nSee you soon.\r\n"
    ).encode()


async def send_mail(daemon: Daemon, sender: str, number: str = NUMBER, **fields: Any) -> str:
    """Mail ``sender`` -> ``"sms:<number>"@sms.example.test`` over LMTP; the queue id."""
    lmtp = daemon.bound["lmtp"]
    client = await LmtpClient.connect(lmtp.host, lmtp.port)
    try:
        await client.command("LHLO client.example.test")
        _, rcpts, replies = await client.send(sender, [f'"sms:{number}"@{SMS_DOMAIN}'], mail(sender, number, **fields))
    finally:
        await client.close()
    assert [r.code for r in rcpts] == [250] and [r.code for r in replies] == [250], (rcpts, replies)
    return replies[0].text.split()[1]


async def inject(daemon: Daemon, sender: str = NUMBER, text: str = "Yes, at noon", **fields: str) -> str:
    """An MO through ``/inbound/outbox``, as a gateway posts it; its id."""
    form = {"from": sender, "text": text, "to": "12345", **fields}
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in form.items())
    answer = await call(daemon, f"/inbound/outbox?{query}")
    assert answer.status == 200, answer.body
    return str(answer.body["id"])


def mailbox(state_dir: Path, address: str) -> list[EmailMessage]:
    """The mails in ``<state>/mail/<address>/new`` (mail-out's Maildir), oldest first."""
    folder = state_dir / "mail" / address / "new"
    if not folder.is_dir():
        return []
    paths = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    found = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]
    return [m for m in found if isinstance(m, EmailMessage)]


async def wait_mail(state_dir: Path, address: str, count: int = 1) -> list[EmailMessage]:
    await async_wait_until(lambda: len(mailbox(state_dir, address)) >= count, timeout=15, what=f"mail to {address}")
    return mailbox(state_dir, address)


def links(daemon: Daemon, number: str = NUMBER) -> list[ReplyLink]:
    assert daemon.store is not None
    return list_links(daemon.store.conn, number=number)


async def wait_links(daemon: Daemon, count: int, number: str = NUMBER) -> list[ReplyLink]:
    await async_wait_until(lambda: len(links(daemon, number)) >= count, timeout=15, what=f"{count} reply link(s)")
    return links(daemon, number)


def mo_state(daemon: Daemon, mo_id: str) -> tuple[str, str]:
    assert daemon.store is not None
    row = daemon.store.conn.execute("SELECT state, routed_to FROM inbound WHERE id = ?", (mo_id,)).fetchone()
    return (str(row[0]), str(row[1] or "")) if row else ("", "")


async def wait_settled(daemon: Daemon, mo_id: str) -> tuple[str, str]:
    # "mailed" is on the way: its mail is in the mail-out queue, delivered or not soon
    await async_wait_until(lambda: mo_state(daemon, mo_id)[0] not in ("", "received", "part", "mailed"), timeout=15,
                           what=f"MO {mo_id} to be routed and its mail delivered")  # fmt: skip
    return mo_state(daemon, mo_id)


def sms_to(state_dir: Path, number: str) -> list[dict[str, Any]]:
    """The outbox files for ``number`` (the default outbox gateway)."""
    folder = state_dir / "outbox"
    docs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
    return [doc for doc in docs if doc.get("to") == number]
