"""Replies by SMS, the daemon in-process: mail out as SMS, the reply SMS back into the mailbox, threaded.

The embedded defaults do the delivery: the outbox gateway takes the SMS, the
mail-out queue writes Maildirs under the state directory.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dkim
import pytest

from mailsms.config import Config, MailoutConfig
from mailsms.daemon import Daemon
from mailsms.dkim_sign import generate_key
from mailsms.errors import ConfigError
from mailsms.inbound_mail import SmsMail
from mailsms.store.engines import open_store
from mailsms.store.inbound import NewInbound, insert_inbound
from replylog.links import ReplyLink
from replylog.store import record
from tests.support.db import database
from tests.support.replies import (
    ALICE,
    BOB,
    NUMBER,
    SMS_DOMAIN,
    inject,
    links,
    mailbox,
    mo_state,
    send_mail,
    sms_to,
    wait_links,
    wait_mail,
    wait_settled,
    with_replies,
)
from tests.support.scheduling import concatenation_udh
from tests.support.wait import async_wait_until
from tests.support.web import call

POSTMASTER = "postmaster@mail.example.test"


async def started(config: Config) -> Daemon:
    running = Daemon(config)
    await running.start()
    return running


@pytest.fixture
async def replies(config: Config) -> AsyncIterator[Daemon]:
    running = await started(with_replies(config))
    try:
        yield running
    finally:
        await running.stop()


async def test_a_reply_sms_lands_in_the_senders_mailbox_threaded_under_the_mail(
    replies: Daemon, state_dir: Path
) -> None:
    queue_id = await send_mail(replies, ALICE, subject="Lunch?", message_id="<lunch-1@mail.example.test>")
    (link,) = await wait_links(replies, 1)
    assert (link.mailbox, link.gateway, link.message_id, link.subject, link.queue_id) == (
        ALICE, "outbox", "<lunch-1@mail.example.test>", "Lunch?", queue_id,
    )  # fmt: skip

    mo_id = await inject(replies, NUMBER, "Yes, at noon")

    (reply,) = await wait_mail(state_dir, ALICE)
    assert reply["From"].addresses[0].username == f"sms:{NUMBER}"
    assert reply["From"].addresses[0].domain == SMS_DOMAIN
    assert f'"sms:{NUMBER}"@{SMS_DOMAIN}' in str(reply["From"])
    assert reply["To"] == ALICE
    assert reply["In-Reply-To"] == reply["References"] == "<lunch-1@mail.example.test>"
    assert reply["Subject"] == "Re: Lunch?"
    assert reply["Message-ID"].endswith(">") and reply["Date"]
    assert reply.get_content() == "Yes, at noon\n"
    assert await wait_settled(replies, mo_id) == ("delivered", ALICE)


async def test_two_senders_to_one_number_send_the_replier_the_conflict_message(config: Config, state_dir: Path) -> None:
    daemon = await started(with_replies(config, unmatched_recipient=POSTMASTER))
    try:
        await send_mail(daemon, ALICE, subject="From Alice", message_id="<a@mail.example.test>")
        await send_mail(daemon, BOB, subject="From Bob", message_id="<b@mail.example.test>")
        await wait_links(daemon, 2)
        mo_id = await inject(daemon, NUMBER, "Who is this?")
        assert await wait_settled(daemon, mo_id) == ("delivered", POSTMASTER)
        await async_wait_until(lambda: len(sms_to(state_dir, NUMBER)) == 3, timeout=15, what="the conflict SMS")
    finally:
        await daemon.stop()
    conflict = sms_to(state_dir, NUMBER)[-1]
    assert conflict["parts"][0]["text"] == daemon.config.replylog.conflict_message
    assert conflict["gateway"] == "outbox"
    (kept,) = mailbox(state_dir, POSTMASTER)
    assert kept.get_content() == "Who is this?\n"
    assert "In-Reply-To" not in kept
    assert mailbox(state_dir, ALICE) == mailbox(state_dir, BOB) == []


async def test_a_conflict_without_unmatched_recipient_keeps_the_sms(replies: Daemon, state_dir: Path) -> None:
    await send_mail(replies, ALICE, subject="1", message_id="<1@x.test>")
    await send_mail(replies, BOB, subject="2", message_id="<2@x.test>")
    await wait_links(replies, 2)
    mo_id = await inject(replies, NUMBER, "Who is this?")
    assert await wait_settled(replies, mo_id) == ("conflict", "")
    await async_wait_until(lambda: len(sms_to(state_dir, NUMBER)) == 3, timeout=15, what="the conflict SMS")


async def test_an_auto_replying_phone_gets_one_conflict_message_per_interval(replies: Daemon, state_dir: Path) -> None:
    await send_mail(replies, ALICE, subject="1", message_id="<1@x.test>")
    await send_mail(replies, BOB, subject="2", message_id="<2@x.test>")
    await wait_links(replies, 2)
    first = await inject(replies, NUMBER, "Auto-reply: I am away")
    assert await wait_settled(replies, first) == ("conflict", "")
    await async_wait_until(lambda: len(sms_to(state_dir, NUMBER)) == 3, timeout=15, what="the conflict SMS")
    # The phone answers the conflict message automatically, again and again: no more conflict messages.
    for n in range(3):
        again = await inject(replies, NUMBER, f"Auto-reply: I am away ({n})")
        assert await wait_settled(replies, again) == ("conflict", "")
    # A conflict message is queued in the transaction that settles its SMS: counted there, none is missed.
    assert replies.store is not None
    (queued,) = replies.store.conn.execute(
        "SELECT COUNT(*) FROM message WHERE number = ? AND sender = ''", (NUMBER,)
    ).fetchone()
    assert queued == 1


async def test_an_email_tag_routes_to_that_local_mailbox_and_is_removed(replies: Daemon, state_dir: Path) -> None:
    await send_mail(replies, ALICE, subject="Lunch?", message_id="<lunch-1@mail.example.test>")
    await wait_links(replies, 1)
    mo_id = await inject(replies, NUMBER, "#bob@mail.example.test# Tell Alice I am late")
    (mail,) = await wait_mail(state_dir, BOB)
    assert mail.get_content() == "Tell Alice I am late\n"
    assert "In-Reply-To" not in mail and mail["Subject"] == f"SMS from {NUMBER}"
    assert await wait_settled(replies, mo_id) == ("delivered", BOB)
    assert mailbox(state_dir, ALICE) == []


async def test_a_foreign_domain_tag_is_ignored_and_the_reply_log_decides(
    replies: Daemon, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsms.inbound")
    await send_mail(replies, ALICE, subject="Lunch?", message_id="<lunch-1@mail.example.test>")
    await wait_links(replies, 1)
    await inject(replies, NUMBER, "#mallory@evil.example# forward this")
    (mail,) = await wait_mail(state_dir, ALICE)
    assert mail.get_content() == "#mallory@evil.example# forward this\n"
    assert not (state_dir / "mail" / "mallory@evil.example").exists()
    assert "tag at evil.example is not in inbound.local_domains: ignored" in caplog.text
    assert "mallory" not in caplog.text


async def test_an_sms_nobody_wrote_for_is_dropped_with_a_log_line_and_kept(
    replies: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsms.inbound")
    mo_id = await inject(replies, "+15550001111", "Hello?")
    line = f"{mo_id}: from=<+15550001111>, relay=outbox, status=dropped (no #email# tag and no reply link"
    await async_wait_until(lambda: line in caplog.text, what="the log line")
    assert mo_state(replies, mo_id) == ("dropped", "")
    assert "Hello?" not in caplog.text


async def test_an_empty_sms_is_dropped(replies: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailsms.inbound")
    mo_id = await inject(replies, NUMBER, "  ")
    await async_wait_until(lambda: "status=dropped (empty SMS)" in caplog.text, what="the log line")
    assert mo_state(replies, mo_id) == ("dropped", "")


async def test_parts_in_any_order_with_a_duplicate_make_one_mail(config: Config, state_dir: Path) -> None:
    daemon = await started(with_replies(config, unmatched_recipient=POSTMASTER))
    try:
        ids = []
        for seq, text in ((3, " three"), (1, "one"), (3, " three"), (2, " two")):
            ids.append(await inject(daemon, NUMBER, text, udh=concatenation_udh(0xA7, 3, seq).hex()))
        (mail,) = await wait_mail(state_dir, POSTMASTER)
        assert mail.get_content() == "one two three\n"
        states = [mo_state(daemon, i)[0] for i in ids]
        assert states == ["joined", "joined", "duplicate", "joined"]
    finally:
        await daemon.stop()


async def test_parts_that_never_complete_go_out_with_the_marker(config: Config, state_dir: Path) -> None:
    daemon = await started(with_replies(config, unmatched_recipient=POSTMASTER, reassembly_timeout=0.5))
    try:
        await inject(daemon, NUMBER, "first half", udh=concatenation_udh(7, 3, 1).hex())
        await inject(daemon, NUMBER, "third", udh=concatenation_udh(7, 3, 3).hex())
        (mail,) = await wait_mail(state_dir, POSTMASTER)
    finally:
        await daemon.stop()
    assert mail.get_content() == "first half [...] third\n"


async def test_an_mo_committed_before_a_crash_is_routed_after_the_restart(config: Config, state_dir: Path) -> None:
    """The webhook's commit is the promise: a daemon that died before routing routes it when it starts."""
    state_dir.mkdir(parents=True)
    store = open_store(config.store.url, state_dir, node="test")
    mo = NewInbound(id="MO0000000000001", received=time.time(), gateway="outbox", sender=NUMBER, to="", text="late")
    await store.write(lambda conn: insert_inbound(conn, mo))
    store.close()
    daemon = await started(with_replies(config, unmatched_recipient=POSTMASTER))
    try:
        assert await wait_settled(daemon, mo.id) == ("delivered", POSTMASTER)
    finally:
        await daemon.stop()


async def test_authenticated_only_records_links_for_mail_the_mta_authenticated(config: Config) -> None:
    daemon = await started(with_replies(config, replylog={"record": "authenticated"}))
    try:
        await send_mail(daemon, ALICE, subject="forged?", message_id="<f@x.test>")
        received = "Received: from client (client [127.0.0.1]) by mx.example.test (Postfix) with ESMTPSA id 4X;\r\n"
        await send_mail(daemon, BOB, subject="real", message_id="<r@x.test>", head=received)
        (link,) = await wait_links(daemon, 1)
        assert link.mailbox == BOB
        await async_wait_until(lambda: _submitted(daemon) == 2, timeout=15, what="both messages submitted")
        assert [x.mailbox for x in links(daemon)] == [BOB]
    finally:
        await daemon.stop()


def _submitted(daemon: Daemon) -> int:
    assert daemon.store is not None
    return int(daemon.store.conn.execute("SELECT COUNT(*) FROM message WHERE state = 'submitted'").fetchone()[0])


async def test_expired_links_are_purged_in_the_background_and_never_route(config: Config, state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    open_store(config.store.url, state_dir, node="test").close()  # the schema
    old = time.time() - 2 * 3600
    with database(config) as conn:
        record(conn, ReplyLink(NUMBER, ALICE, "outbox", "<old@x.test>", "", old))
        record(conn, ReplyLink("+15559998888", BOB, "outbox", "", "", time.time()))
    daemon = await started(with_replies(config, replylog={"keep_minutes": 60}, unmatched_recipient=POSTMASTER))
    try:
        await async_wait_until(lambda: links(daemon) == [], timeout=15, what="the expired link to be purged")
        assert len(links(daemon, "+15559998888")) == 1
        mo_id = await inject(daemon, NUMBER, "too late")
        assert await wait_settled(daemon, mo_id) == ("delivered", POSTMASTER)
    finally:
        await daemon.stop()


async def test_replies_are_dkim_signed_when_configured(config: Config, state_dir: Path, tmp_path: Path) -> None:
    key = generate_key("ed25519")
    key_file = tmp_path / "dkim.key"
    key_file.write_bytes(key.private)
    signing = MailoutConfig(dkim_selector="sms", dkim_domain=SMS_DOMAIN, dkim_key_file=str(key_file),
                            dkim_algorithm="ed25519")  # fmt: skip
    daemon = await started(dataclasses.replace(with_replies(config, unmatched_recipient=POSTMASTER), mailout=signing))
    try:
        await inject(daemon, NUMBER, "signed, sealed")
        await wait_mail(state_dir, POSTMASTER)
    finally:
        await daemon.stop()
    (path,) = (state_dir / "mail" / POSTMASTER / "new").iterdir()
    raw = path.read_bytes().split(b"\n", 2)[2]  # without Return-Path and Delivered-To, added at delivery
    assert raw.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;")
    dns = {b"sms._domainkey.sms.example.test.": key.txt_value().encode()}
    assert dkim.verify(raw.replace(b"\n", b"\r\n"), dnsfunc=lambda name, timeout=5: dns.get(name))


async def test_an_unusable_dkim_key_stops_the_start_with_its_key_named(config: Config, tmp_path: Path) -> None:
    key_file = tmp_path / "dkim.key"
    key_file.write_text("not a key")
    signing = MailoutConfig(dkim_selector="sms", dkim_domain=SMS_DOMAIN, dkim_key_file=str(key_file))
    daemon = Daemon(dataclasses.replace(config, mailout=signing))
    with pytest.raises(ConfigError, match=r"mailout\.dkim_key_file"):
        await daemon.start()
    assert daemon.store is None


async def test_a_send_api_request_with_reply_makes_the_link_to_that_mailbox(replies: Daemon, state_dir: Path) -> None:
    team = "team@example.com"  # reply= must be deliverable: not a .test domain
    answer = await call(replies, f"/sms/?number=%2B15557654321&data=Call+me&reply={team}")
    assert answer.status == 200, answer.body
    (link,) = await wait_links(replies, 1, number="+15557654321")
    assert (link.mailbox, link.message_id) == (team, "")
    await inject(replies, "+15557654321", "Calling you now")
    (mail,) = await wait_mail(state_dir, team)
    assert mail["Subject"] == "SMS from +15557654321" and "In-Reply-To" not in mail


async def test_line_breaks_in_an_sms_and_an_alphanumeric_sender_cannot_add_headers(
    config: Config, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsms.inbound")
    daemon = await started(with_replies(config, unmatched_recipient=POSTMASTER, subject_template="{from}: {text}"))
    try:
        await inject(daemon, "My Bank", "Bcc: mallory@evil.example\r\n\r\nYour code is 1234")
        (mail,) = await wait_mail(state_dir, POSTMASTER)
    finally:
        await daemon.stop()
    assert set(mail.keys()) == {"Return-Path", "Delivered-To", "From", "To", "Subject", "Date", "Message-ID",
                                "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}  # fmt: skip
    assert mail["Subject"] == "My Bank: Bcc: mallory@evil.example"
    (sender,) = mail["From"].addresses
    assert (sender.display_name, sender.username) == ("My Bank", "sms:MyBank")
    assert mail.get_content() == "Bcc: mallory@evil.example\n\nYour code is 1234\n"
    assert sms_to(state_dir, "My Bank") == []


async def test_an_sms_the_pipeline_fails_on_is_held_and_the_next_one_goes_through(
    config: Config, state_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mailsms.inbound

    real = mailsms.inbound.compose_mail

    def fails_once(mail: SmsMail, *args: Any, **kwargs: Any) -> bytes:
        if mail.text == "poison":
            raise RuntimeError("a bug")
        return real(mail, *args, **kwargs)

    monkeypatch.setattr(mailsms.inbound, "compose_mail", fails_once)
    daemon = await started(with_replies(config, unmatched_recipient=POSTMASTER))
    try:
        bad = await inject(daemon, NUMBER, "poison")
        good = await inject(daemon, NUMBER, "fine")
        assert await wait_settled(daemon, bad) == ("hold", "")
        assert await wait_settled(daemon, good) == ("delivered", POSTMASTER)
    finally:
        await daemon.stop()
    assert f"{bad}: the inbound pipeline failed on this SMS; it is kept on hold" in caplog.text
    assert "RuntimeError: a bug" in caplog.text
