"""The reply log and the inbound pipeline's store operations on a real queue (SQLite and PostgreSQL)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from mailsms.store import NewMessage, NewPart
from mailsms.store.conn import Conn, has_table
from mailsms.store.inbound import NewInbound, insert_inbound
from mailsms.store.inbound_flow import file_part, give_up, oldest_waiting, pending, settle, states
from mailsms.store.mailout import NewMail
from mailsms.store.mailout import pending as mail_pending
from mailsms.store.queue import QueueStore
from mailsms.store.schema import SCHEMA_VERSION
from replylog.links import ReplyLink
from replylog.store import list_links, live_links, purge, record, record_on_submit
from tests.support.scheduling import concatenation_udh

NUMBER = "+15551234567"


@pytest.fixture
def store(open_queue: Callable[[], QueueStore]) -> Iterator[QueueStore]:
    opened = open_queue()
    try:
        yield opened
    finally:
        opened.close()


def write(store: QueueStore, op: object) -> object:
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    result = op(conn)  # type: ignore[operator]
    conn.execute("COMMIT")
    return result


def link(mailbox: str, created: float, number: str = NUMBER, message_id: str = "") -> ReplyLink:
    return ReplyLink(number, mailbox, "outbox", message_id, "", created)


def test_the_schema_is_at_the_replies_version(store: QueueStore) -> None:
    assert SCHEMA_VERSION >= 4
    assert has_table(store.conn, "reply_link")
    assert store.conn.execute("SELECT authenticated FROM message WHERE 1 = 0").fetchall() == []  # the column exists


def test_one_link_per_mailbox_and_number_refreshed_by_the_latest_mail(store: QueueStore) -> None:
    write(store, lambda c: record(c, link("alice@x.test", 100.0, message_id="<1@x>")))
    write(store, lambda c: record(c, link("alice@x.test", 200.0, message_id="<2@x>")))
    write(store, lambda c: record(c, link("alice@x.test", 150.0, message_id="<late@x>")))  # older: no change
    (only,) = live_links(store.conn, NUMBER, now=300.0, keep_seconds=1000.0)
    assert (only.created, only.message_id) == (200.0, "<2@x>")


def test_lookups_return_only_live_links_of_the_number(store: QueueStore) -> None:
    for mailbox, created, number in (("a@x.test", 100.0, NUMBER), ("b@x.test", 900.0, NUMBER),
                                     ("c@x.test", 900.0, "+15550000000")):  # fmt: skip
        write(store, functools.partial(record, link=link(mailbox, created, number)))
    assert [x.mailbox for x in live_links(store.conn, NUMBER, now=1000.0, keep_seconds=500.0)] == ["b@x.test"]
    assert [x.mailbox for x in live_links(store.conn, NUMBER, now=1000.0, keep_seconds=5000.0)] == [
        "b@x.test", "a@x.test",
    ]  # fmt: skip
    assert [x.number for x in list_links(store.conn, mailbox="c@x.test")] == ["+15550000000"]


def test_purge_deletes_expired_links_in_batches(store: QueueStore) -> None:
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO reply_link (number, mailbox, created) VALUES (?,?,?)",
            [(f"+1555{i:07d}", "a@x.test", float(i)) for i in range(2500)],
        )
    assert write(store, lambda c: purge(c, before=1999.0, limit=1000)) == 1000
    assert write(store, lambda c: purge(c, before=1999.0, limit=1000)) == 1000
    assert write(store, lambda c: purge(c, before=1999.0, limit=1000)) == 0
    assert store.conn.execute("SELECT COUNT(*), MIN(created) FROM reply_link").fetchone() == (500, 2000.0)


def message_row(qid: str, *, sender: str, authenticated: bool, params: str = "{}") -> NewMessage:
    headers = json.dumps([["Subject", "Lunch?"], ["Message-ID", "<m@x.test>"]])
    return NewMessage(qid, 1.0, sender, f"sms:{NUMBER}", NUMBER, "outbox", "gsm7", "hi", (NewPart(1, "hi"),),
                      params=params, headers=headers, authenticated=authenticated)  # fmt: skip


async def test_a_submission_records_the_link_in_its_own_transaction(store: QueueStore) -> None:
    store.submit_hooks.append(functools.partial(record_on_submit, mode="authenticated"))
    await store.enqueue([message_row("Q1", sender="alice@x.test", authenticated=True),
                         message_row("Q2", sender="bob@x.test", authenticated=False)])  # fmt: skip
    await store.record_submitted("Q1", [(1, "g1")], now=50.0)
    await store.record_submitted("Q2", [(1, "g2")], now=50.0)
    (only,) = live_links(store.conn, NUMBER, now=60.0, keep_seconds=100.0)
    assert (only.mailbox, only.message_id, only.subject, only.queue_id) == ("alice@x.test", "<m@x.test>", "Lunch?",
                                                                            "Q1")  # fmt: skip


async def test_a_link_that_cannot_be_written_never_fails_the_submission(
    store: QueueStore, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(conn: Conn, message_id: str, now: float) -> None:
        record_on_submit(conn, message_id, now, mode="all")

    store.submit_hooks.append(broken)
    await store.enqueue([message_row("Q1", sender="alice@x.test", authenticated=False)])
    store.conn.execute("DROP TABLE reply_link")
    with caplog.at_level(logging.ERROR, logger="mailsms.replylog"):
        await store.record_submitted("Q1", [(1, "g1")], now=50.0)
    assert store.conn.execute("SELECT state FROM message WHERE id = 'Q1'").fetchone() == ("submitted",)
    assert "Q1: reply link not recorded" in caplog.text


# -- the pipeline's operations ----------------------------------------------------------------------


def mo(mo_id: str, text: str, udh: bytes = b"", received: float = 1.0, sender: str = NUMBER) -> NewInbound:
    return NewInbound(id=mo_id, received=received, gateway="outbox", sender=sender, to="12345", text=text, udh=udh)


def test_three_hundred_parts_for_one_reference_make_one_sms_and_the_rest_are_duplicates(store: QueueStore) -> None:
    total = 255  # the most one reference can number; 45 more arrive as repeats
    for i in range(300):
        seq = i % total + 1
        write(store, functools.partial(insert_inbound, mo=mo(f"P{i:03d}", f"<{seq}>", concatenation_udh(9, total, seq),
                                                             received=float(i))))  # fmt: skip
    outcomes = [write(store, functools.partial(file_part, mo_id=m.id, new_id="WHOLE", marker="[...]", since=0.0))
                for m in pending(store.conn, 1000)]  # fmt: skip
    kinds = [o.outcome for o in outcomes]  # type: ignore[attr-defined]
    assert kinds.count("complete") == 1 and kinds.count("duplicate") == 45 and kinds.count("waiting") == 254
    (whole,) = pending(store.conn, 10)
    assert whole.id == "WHOLE" and whole.udh == b"" and whole.received == 0.0
    assert whole.text == "".join(f"<{s}>" for s in range(1, total + 1))
    assert states(store.conn, ["P000", "P255"]) == {"P000": ("joined", "WHOLE"), "P255": ("duplicate", "P000")}


def test_parts_of_different_senders_or_references_never_mix(store: QueueStore) -> None:
    rows = [mo("A1", "a1", concatenation_udh(1, 2, 1)), mo("B2", "b2", concatenation_udh(1, 2, 2), sender="+1555000"),
            mo("C2", "c2", concatenation_udh(2, 2, 2))]  # fmt: skip
    for row in rows:
        write(store, functools.partial(insert_inbound, mo=row))
        assert write(store, functools.partial(file_part, mo_id=row.id, new_id="W", marker="", since=0.0)).outcome == (  # type: ignore[attr-defined]
            "waiting"
        )
    assert oldest_waiting(store.conn) == ("A1", 1.0)


def test_given_up_parts_are_joined_with_the_marker(store: QueueStore) -> None:
    for row in (
        mo("A3", "three", concatenation_udh(1, 3, 3), received=5.0),
        mo("A1", "one", concatenation_udh(1, 3, 1)),
    ):
        write(store, functools.partial(insert_inbound, mo=row))
        write(store, functools.partial(file_part, mo_id=row.id, new_id="W", marker="[...]", since=0.0))
    given = write(store, functools.partial(give_up, part_id="A1", new_id="W", marker="[...]"))
    assert given is not None and given.missing == (2,)  # type: ignore[attr-defined]
    (whole,) = pending(store.conn, 10)
    assert (whole.id, whole.text) == ("W", "one [...] three")
    assert oldest_waiting(store.conn) is None


def test_settle_commits_the_state_with_the_mail_and_only_once(store: QueueStore) -> None:
    write(store, functools.partial(insert_inbound, mo=mo("M1", "hi")))
    mail = NewMail("MAIL1", 1.0, "", ("alice@x.test",), b"Subject: x\r\n\r\nhi\r\n", "SMS M1")
    assert write(store, functools.partial(settle, mo_id="M1", state="mailed", routed_to="alice@x.test", mail=mail))
    assert not write(store, functools.partial(settle, mo_id="M1", state="mailed", routed_to="x@x.test", mail=mail))
    assert [m.id for m in mail_pending(store.conn)] == ["MAIL1"]
    assert states(store.conn, ["M1"]) == {"M1": ("mailed", "alice@x.test")}


@pytest.mark.parametrize(("accepted", "final"), [(True, "delivered"), (False, "undeliverable")])
def test_an_mo_is_done_only_when_its_mail_leaves_the_mail_out_queue(
    store: QueueStore, accepted: bool, final: str
) -> None:
    from mailsms.store import mailout as mailout_store

    write(store, functools.partial(insert_inbound, mo=mo("M1", "hi")))
    mail = NewMail("MAIL1", 1.0, "", ("alice@x.test",), b"Subject: x\r\n\r\nhi\r\n", "SMS M1")
    write(store, functools.partial(settle, mo_id="M1", state="mailed", routed_to="alice@x.test", mail=mail))
    assert states(store.conn, ["M1"]) == {"M1": ("mailed", "alice@x.test")}
    write(store, functools.partial(mailout_store.finish, mail_id="MAIL1", accepted=accepted))
    assert states(store.conn, ["M1"]) == {"M1": (final, "alice@x.test")}
    assert mail_pending(store.conn) == []
