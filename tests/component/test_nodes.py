"""Several nodes on one PostgreSQL queue, in one process: what they share and how they split the work.

The crash test with two real ``serve`` processes is ``tests/reliability/test_crash_kill.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from mailsms.config import Config, PolicyConfig, QueueConfig, ServerConfig, StateConfig, StoreConfig
from mailsms.errors import InternalError
from mailsms.store.buckets import SharedBuckets
from mailsms.store.conn import NODE_NUMBERS, node_tag
from mailsms.store.engines import NODE_ID_FILE, node_id, open_store
from mailsms.store.pg import NODE_FORGOTTEN, PgStore
from mailsms.values import ListenAddress
from tests.support import db
from tests.support.lmtp import LmtpClient
from tests.support.postgres import PostgresCluster
from tests.support.scheduling import new_message
from tests.support.wait import async_wait_until
from tests.support.web import call, outbox_gateway, running

MAIL = b"From: <alice@example.com>\r\nSubject: hi\r\n\r\nhello from a node\r\n"


def node(tmp_path: Path, name: str, url: str, **changes: object) -> Config:
    """A node named ``name`` (its node id, written before its first start) on the queue at ``url``."""
    state = tmp_path / name
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    (state / NODE_ID_FILE).write_text(f"node-{name}\n")
    config = Config(
        server=ServerConfig(
            lmtp_listen=ListenAddress("127.0.0.1", 0), smtp_listen=None, http_listen=ListenAddress("127.0.0.1", 0)
        ),
        state=StateConfig(dir=str(state)),
        store=StoreConfig(url=url),
        # Long enough that a message sent at once was woken by the other node's NOTIFY, not found by a poll.
        queue=QueueConfig(queue_run_delay=300.0),
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


async def lmtp_send(config_daemon: object, number: str) -> str:
    bound = config_daemon.bound["lmtp"]  # type: ignore[attr-defined]
    client = await LmtpClient.connect(bound.host, bound.port)
    try:
        await client.command("LHLO mta.example.test")
        _, rcpts, replies = await client.send("alice@example.com", [f'"sms:{number}"@sms.example.test'], MAIL)
    finally:
        await client.close()
    answers = [*(r for r in rcpts if r.code // 100 != 2), *replies]
    return answers[0].text


def outbox_files(config: Config) -> list[Path]:
    return sorted(p for p in (config.state_dir / "outbox").rglob("*") if p.is_file())


async def test_two_nodes_starting_together_on_an_empty_database_both_come_up(tmp_path: Path, pg_url: str) -> None:
    stores = await asyncio.gather(
        *(asyncio.to_thread(open_store, pg_url, tmp_path / name, node=name) for name in ("a", "b", "c"))
    )
    for store in stores:
        store.close()
    assert db.one(node(tmp_path, "a", pg_url), "SELECT MAX(version) FROM mailsms_schema") == 1


def test_a_node_id_is_made_once_and_kept(tmp_path: Path) -> None:
    first = node_id(tmp_path / "var")
    assert first == node_id(tmp_path / "var")
    assert (tmp_path / "var" / NODE_ID_FILE).read_text().strip() == first
    assert first != node_id(tmp_path / "other")


async def test_mail_taken_by_one_node_is_sent_by_the_node_that_has_the_gateway(tmp_path: Path, pg_url: str) -> None:
    """Gateway ``outbox`` is local to node b (``nodes``): node a accepts the mail, b sends it, woken by NOTIFY."""
    local_to_b = dataclasses.replace(outbox_gateway(), nodes=("node-b",))
    a = node(tmp_path, "a", pg_url, gateways=(local_to_b,))
    b = node(tmp_path, "b", pg_url, gateways=(local_to_b,))
    async with running(b) as node_b, running(a) as node_a:
        assert node_a.transports == {}
        assert set(node_b.transports) == {"outbox"}
        answer = await lmtp_send(node_a, "+15551230001")
        assert answer.startswith("2.0.0") or " 2.0.0 " in f" {answer}", answer
        await async_wait_until(lambda: outbox_files(b), timeout=5.0, what="node b's outbox to get the SMS")
        assert outbox_files(a) == []
        await async_wait_until(
            lambda: db.rows(a, "SELECT state, lease_node FROM message") == [("submitted", "node-b")],
            what="the message submitted by node b",
        )


async def test_hourly_rate_limits_count_what_every_node_took(tmp_path: Path, pg_url: str) -> None:
    policy = PolicyConfig(sender_messages_per_hour=2)
    a, b = node(tmp_path, "a", pg_url, policy=policy), node(tmp_path, "b", pg_url, policy=policy)
    async with running(a) as node_a, running(b) as node_b:
        first = await lmtp_send(node_a, "+15551230002")
        second = await lmtp_send(node_b, "+15551230003")
        third = await lmtp_send(node_a, "+15551230004")
    assert "2.0.0" in first and "2.0.0" in second
    assert "rate limit" in third and third.startswith("4."), third


async def test_the_same_mo_and_report_given_to_both_nodes_count_once(tmp_path: Path, pg_url: str) -> None:
    a, b = node(tmp_path, "a", pg_url), node(tmp_path, "b", pg_url)
    async with running(a) as node_a, running(b) as node_b:
        form = {"from": "+4915112345678", "to": "12345", "text": "hi", "smsc_id": "smsc-42"}
        answers = await asyncio.gather(
            call(node_a, "/inbound/outbox", method="POST", data=form),
            call(node_b, "/inbound/outbox", method="POST", data=form),
        )
        assert [x.status for x in answers] == [200, 200]
        assert sorted(x.body["duplicate"] for x in answers) == [False, True]
        assert answers[0].body["id"] == answers[1].body["id"]
        assert db.one(a, "SELECT COUNT(*) FROM inbound") == 1
        sent = await call(node_a, "/sms/?number=%2B15551234567&data=hi")
        queue_id = sent.body["queue_id"]
        await async_wait_until(
            lambda: db.one(a, "SELECT state FROM message WHERE id = ?", (queue_id,)) == "submitted",
            what="the part submitted",
        )
        reports = await asyncio.gather(
            call(node_a, f"/dlr/outbox?id={queue_id}.1&status=delivered"),
            call(node_b, f"/dlr/outbox?id={queue_id}.1&status=delivered"),
        )
        assert [r.status for r in reports] == [200, 200]
        assert db.one(a, "SELECT state FROM message WHERE id = ?", (queue_id,)) == "delivered"


def test_a_cut_connection_is_made_again_but_never_in_the_middle_of_a_transaction(pg_url: str) -> None:
    from mailsms.store.pg import PgConnection

    conn, admin = PgConnection(pg_url), PgConnection(pg_url)
    try:
        conn.execute("CREATE TABLE t (n BIGINT)")

        def cut() -> None:
            pid = conn.raw.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(?)", (pid,))
            with contextlib.suppress(sqlite3.Error):
                conn.execute("SELECT 1")  # the client sees the cut here

        cut()
        assert conn.execute("SELECT 2").fetchone() == (2,)  # outside a transaction: connected again
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (1)")
        cut()
        with pytest.raises(sqlite3.OperationalError, match="lost in this transaction"):
            conn.execute("INSERT INTO t VALUES (2)")  # never alone on a new connection
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("ROLLBACK")
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (3)")
        conn.execute("COMMIT")
        assert conn.execute("SELECT n FROM t").fetchall() == [(3,)]
    finally:
        conn.close()
        admin.close()


async def test_postgresql_crashing_under_a_running_node_loses_no_accepted_mail(tmp_path: Path) -> None:
    """The server dies (``pg_ctl stop -m immediate``) and comes back: mail acknowledged before is sent;
    while it is down, mail gets 4xx (the MTA keeps it); afterwards the node accepts and sends again
    without a restart."""
    with PostgresCluster(parent=Path("/dev/shm") if Path("/dev/shm").is_dir() else None) as cluster:
        url = cluster.create_database()
        config = node(tmp_path, "a", url)
        async with running(config) as daemon:
            before = [await lmtp_send(daemon, f"+1555123{n:04d}") for n in range(5)]
            assert all("2.0.0" in answer for answer in before), before
            await asyncio.to_thread(cluster.crash)
            down = await lmtp_send(daemon, "+15551239999")
            assert down.startswith("4."), down  # never a 250 that is not committed, never a 5xx
            await asyncio.to_thread(cluster.start_again)

            async def accepted_again() -> bool:
                return "2.0.0" in await lmtp_send(daemon, "+15551230100")

            await async_wait_until(accepted_again, timeout=30, what="mail accepted again after the restart")
            ids = [answer.split()[1] for answer in before]
            await async_wait_until(
                lambda: db.rows(config, "SELECT COUNT(*) FROM message WHERE state = 'submitted'")[0][0] >= 6,
                timeout=30,
                what="the mail accepted before and after the crash submitted",
            )
            states = dict(db.rows(config, "SELECT id, state FROM message"))
            assert all(states.get(i) == "submitted" for i in ids), (ids, states)


async def test_a_node_whose_claim_ran_out_never_starts_sending_what_another_node_took(
    tmp_path: Path, pg_url: str
) -> None:
    """Node a stalled past its lease and node b claimed the message: a's ``sending`` is refused."""
    a = open_store(pg_url, tmp_path / "a", node="node-a", lease_seconds=2)
    b = open_store(pg_url, tmp_path / "b", node="node-b", lease_seconds=2)
    try:
        now = time.time()
        await a.enqueue([new_message("SMS1", "+15551230001", now)], now=now)
        assert a.claim(now, 10) == ["SMS1"]
        assert b.claim(now, 10) == []  # a holds it
        a.conn.execute("UPDATE message SET lease_until = lease_until - 60")  # a stalled: its lease ran out
        assert b.claim(now, 10) == ["SMS1"]
        assert a.renew(["SMS1"], now) == 0  # a learns it lost the claim
        with pytest.raises(InternalError, match="passed to node node-b"):
            await a.mark_sending("SMS1", [1], now, via="outbox")
        await b.mark_sending("SMS1", [1], now, via="outbox")
        assert db.one(node(tmp_path, "a", pg_url), "SELECT state FROM part WHERE message_id = 'SMS1'") == "sending"
    finally:
        a.close()
        b.close()


def test_a_node_keeps_its_number_and_a_new_node_takes_the_smallest_free_one(pg_url: str) -> None:
    first = PgStore(pg_url, node="node-a")
    second = PgStore(pg_url, node="node-b")
    try:
        assert (first.node_number, second.node_number) == (1, 2)
        first.conn.execute("DELETE FROM node WHERE id = 'node-a'")  # as if it had been forgotten
        third = PgStore(pg_url, node="node-c")
        again = PgStore(pg_url, node="node-b")
        try:
            assert (third.node_number, again.node_number) == (1, 2)
        finally:
            third.close()
            again.close()
    finally:
        first.close()
        second.close()


@pytest.fixture
def store(pg_url: str) -> Iterator[PgStore]:
    """Node a on a fresh queue, registered first (number 1)."""
    first = PgStore(pg_url, node="node-a")
    assert first.node_number == 1
    yield first
    first.close()


def add_nodes(store: PgStore, numbers: Iterable[int], ago: Mapping[int, float] | None = None) -> None:
    """Register nodes ``old-<number>``, seen a minute ago, or ``ago[number]`` seconds ago."""
    for number in numbers:
        store.conn.execute(
            "INSERT INTO node (id, number, host, started, seen)"
            " VALUES (?, ?, 'h', 0, EXTRACT(EPOCH FROM clock_timestamp()) - ?)",
            (f"old-{number}", number, (ago or {}).get(number, 60.0)),
        )


def test_a_node_not_seen_for_a_week_gives_its_number_to_a_new_one_when_all_are_held(
    pg_url: str, store: PgStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsms.store")
    week = NODE_FORGOTTEN
    # Nodes 2..127: 9 and 40 last seen more than a week ago, 40 the longest; the others lately.
    add_nodes(store, range(2, NODE_NUMBERS + 1), {9: week + 60, 40: week + 3600})
    newcomer = PgStore(pg_url, node="node-new")
    later = PgStore(pg_url, node="node-later")
    crowded = PgStore(pg_url, node="node-crowded")
    try:
        assert (newcomer.node_number, later.node_number, crowded.node_number) == (40, 9, NODE_NUMBERS + 1)
    finally:
        for other in (newcomer, later, crowded):
            other.close()
    numbers = dict(store.conn.execute("SELECT id, number FROM node WHERE number IN (9, 40)").fetchall())
    assert numbers == {"node-new": 40, "node-later": 9}
    logged = [r.getMessage() for r in caplog.records if r.name == "mailsms.store"]
    assert "node number 40 of node old-40, not seen for 7 days, is given to a new node" in logged
    assert any(line.startswith("every node number 1..127 is held") for line in logged)


def test_renewing_claims_marks_the_node_seen(store: PgStore) -> None:
    store.conn.execute("UPDATE node SET seen = 0")
    store.renew([], 0.0)
    (seen,) = store.conn.execute("SELECT seen FROM node WHERE id = 'node-a'").fetchone()
    assert seen > time.time() - 3600


def test_a_tag_held_through_a_number_past_127_is_not_given_out_again(pg_url: str, store: PgStore) -> None:
    # Numbers 2..127 held by nodes seen lately, except 47, free; node 300 carries tag 47 and is alive.
    add_nodes(store, [*range(2, 47), *range(48, NODE_NUMBERS + 1), 300])
    assert node_tag(300) == 47
    newcomer = PgStore(pg_url, node="node-new")
    try:
        assert newcomer.node_number == 301  # shares a tag only because all 127 are held by live nodes
    finally:
        newcomer.close()


def test_a_node_whose_registration_was_forgotten_registers_again_when_it_renews(pg_url: str, store: PgStore) -> None:
    told: list[int] = []
    store.numbered = told.append
    store.conn.execute("DELETE FROM node WHERE id = 'node-a'")
    other = PgStore(pg_url, node="node-b")
    try:
        assert other.node_number == 1  # took the number meanwhile
        store.renew([], 0.0)
        assert (store.node_number, told) == (2, [2])
    finally:
        other.close()


def test_shared_buckets_refill_on_the_databases_clock(store: PgStore) -> None:
    buckets = SharedBuckets(store.conn, "sender", per_hour=2)
    assert buckets.wait("alice", 1) == 0.0
    buckets.take("alice", 2)
    assert 1790 < buckets.wait("alice", 1) <= 1800  # one token comes back in half an hour
    assert buckets.wait("bob", 2) == 0.0  # another key has its own bucket
    store.conn.execute("UPDATE rate_bucket SET updated = updated - 1800 WHERE key = 'sender:alice'")
    assert buckets.wait("alice", 1) == 0.0
    assert 1790 < buckets.wait("alice", 2) <= 1800
    buckets.take("alice", 1)
    (tokens,) = store.conn.execute("SELECT tokens FROM rate_bucket WHERE key = 'sender:alice'").fetchone()
    assert -0.01 < tokens < 0.01
