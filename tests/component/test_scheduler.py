"""The scheduler against a real queue (SQLite and PostgreSQL) and real transports (fake, outbox), on a fake clock."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.queue_admin import QueueAdmin
from mailsms.scheduler import RetryPolicy, outgoing
from tests.support.scheduling import WAIT, FakeClock, Queue, TransportDouble, clock_ahead, opened
from tests.support.wait import async_wait_until
from transports import fake, outbox
from transports.base import DeliveryReport, Transport, TransportContext

OK = "+15550000001"
OK_2 = "+15550000011"
TEMPORARY = "+15550000002"
PERMANENT = "+15550000003"
EXPLODES = "+15550000005"
HANGS = "+15550000006"
HANGS_2 = "+15550000016"
SCRIPT = {"temporary_fail": "0002$", "permanent_fail": "0003$", "hang": "6$"}

POLICY = RetryPolicy(
    minimal_backoff_time=300.0, maximal_backoff_time=1000.0, maximal_queue_lifetime=3600.0, queue_run_delay=1.0
)


@pytest.fixture
def clock() -> FakeClock:
    return clock_ahead()


@pytest.fixture
async def queue(tmp_path: Path, store_url: str, clock: FakeClock) -> AsyncIterator[Queue]:
    async with opened(tmp_path / "var", clock, POLICY, store_url=store_url) as made:
        yield made


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    # mailsms.log.setup() (run by other tests in the session) stops propagation to the root, where caplog listens.
    monkeypatch.setattr(logging.getLogger("mailsms"), "propagate", True)
    caplog.set_level(logging.INFO, logger="mailsms")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, qid: str = "") -> list[str]:
    """Scheduler log lines, only those of ``qid`` when given."""
    found = [r.getMessage() for r in caplog.records if r.name == "mailsms.scheduler"]
    return [line for line in found if line.startswith(f"{qid}: ")] if qid else found


async def logged(caplog: pytest.LogCaptureFixture, qid: str, count: int) -> list[str]:
    """``lines`` once there are ``count`` of them: each line is written just after the commit a test waits for."""
    await async_wait_until(lambda: len(lines(caplog, qid)) >= count, what=f"{count} log lines of {qid}")
    return lines(caplog, qid)


# -- parts in order, submitted, delivery reports ------------------------------------------------


async def test_three_parts_are_sent_in_order_and_the_message_ends_submitted(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake()
    queue.start()
    await queue.enqueue("SMS1", OK, parts=3)
    message = await queue.wait_state("SMS1", "submitted")
    assert [(r["queue_id"], r["seq"], r["total"], r["text"], r["udh"]) for r in queue.sent()] == [
        ("SMS1", 1, 3, "part 1", "0500037f0301"),
        ("SMS1", 2, 3, "part 2", "0500037f0302"),
        ("SMS1", 3, 3, "part 3", "0500037f0303"),
    ]
    assert [(p.state, p.gateway_msgid) for p in message.parts] == [
        ("submitted", "fake-SMS1-1"),
        ("submitted", "fake-SMS1-2"),
        ("submitted", "fake-SMS1-3"),
    ]
    assert (message.attempts, message.reason, message.possible_duplicate) == (1, "", False)
    assert await logged(logs, "SMS1", 1) == [
        f"SMS1: to=<{OK}>, relay=fake, parts=3/3, delay=0.00, dsn=2.0.0, status=sent"
        " (gateway id fake-SMS1-1, fake-SMS1-2, fake-SMS1-3)"
    ]


async def test_delivered_reports_for_every_part_make_the_message_delivered(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(report="delivered")
    queue.start()
    await queue.enqueue("SMS1", OK, parts=3)
    message = await queue.wait_state("SMS1", "delivered")
    assert [p.state for p in message.parts] == ["delivered", "delivered", "delivered"]
    assert (message.reason, message.dsn_code) == ("", "")
    assert (await logged(logs, "SMS1", 4))[1:] == [
        "SMS1: relay=fake, dsn=2.0.0, status=delivered (fake gateway: delivered)",
    ] * 3


async def test_a_failed_delivery_report_fails_the_message_with_its_reason(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(report="failed")
    queue.start()
    await queue.enqueue("SMS1", OK, parts=3)
    await queue.wait_parts("SMS1", ["failed", "failed", "failed"])
    message = queue.message("SMS1")
    assert (message.state, message.reason, message.dsn_code) == ("failed", "fake gateway: not delivered", "5.0.0")
    last = (await logged(logs, "SMS1", 4))[-1]
    assert last == "SMS1: relay=fake, dsn=5.0.0, status=bounced (fake gateway: not delivered)"


# -- permanent failure, backoff, expiry --------------------------------------------------------


async def test_permanent_failure_fails_the_message_with_a_5xx_dsn_and_logs_bounced(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.enqueue("SMS1", PERMANENT, parts=2, age=12.5)
    message = await queue.wait_state("SMS1", "failed")
    reason = f"fake gateway: permanent failure for {PERMANENT}"
    assert (message.reason, message.dsn_code, message.attempts) == (reason, "5.0.0", 1)
    assert message.dsn_code.startswith("5.")
    assert [p.state for p in message.parts] == ["failed", "failed"]
    assert queue.sent() == []
    assert await logged(logs, "SMS1", 1) == [
        f"SMS1: to=<{PERMANENT}>, relay=fake, parts=0/2, delay=12.50, dsn=5.0.0, status=bounced ({reason})"
    ]


async def test_temporary_failure_defers_for_minimal_backoff_time(
    queue: Queue, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.enqueue("SMS1", TEMPORARY, parts=2)
    message = await queue.wait_attempts("SMS1", 1, "deferred")
    reason = f"fake gateway: temporary failure for {TEMPORARY}"
    assert message.next_attempt == clock.now + POLICY.minimal_backoff_time
    assert (message.reason, message.dsn_code) == (reason, "4.0.0")
    assert [p.state for p in message.parts] == ["queued", "queued"]
    assert await logged(logs, "SMS1", 1) == [
        f"SMS1: to=<{TEMPORARY}>, relay=fake, parts=0/2, delay=0.00, dsn=4.0.0, status=deferred ({reason})"
    ]


async def test_retries_double_the_backoff_up_to_maximal_backoff_time(queue: Queue, clock: FakeClock) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.enqueue("SMS1", TEMPORARY)
    await queue.wait_attempts("SMS1", 1, "deferred")
    waits = [queue.message("SMS1").next_attempt - clock.now]
    for attempt in (2, 3, 4):
        clock.advance(waits[-1] - 1)  # one second early: not due; a due sentinel proves the queue was looked at
        await queue.enqueue(f"EARLY{attempt}", OK)
        await queue.wait_state(f"EARLY{attempt}", "submitted")
        assert queue.message("SMS1").attempts == attempt - 1
        clock.advance(1)
        queue.scheduler.wake()
        message = await queue.wait_attempts("SMS1", attempt, "deferred")
        waits.append(message.next_attempt - clock.now)
    assert waits == [300.0, 600.0, 1000.0, 1000.0]


async def test_queue_retry_makes_a_deferred_message_due_at_once(queue: Queue, clock: FakeClock) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.enqueue("SMS1", TEMPORARY)
    await queue.wait_attempts("SMS1", 1, "deferred")
    admin = QueueAdmin(queue.store)
    assert admin.retry("SMS1") is True
    assert queue.state("SMS1") == "queued"
    queue.scheduler.wake()
    message = await queue.wait_attempts("SMS1", 2, "deferred")
    assert message.next_attempt == clock.now + 600.0  # the second try backs off twice as long, without any wait


async def test_a_message_older_than_maximal_queue_lifetime_expires_with_4_4_7(
    queue: Queue, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.enqueue("SMS1", TEMPORARY, parts=2)
    await queue.wait_attempts("SMS1", 1, "deferred")
    clock.advance(POLICY.maximal_queue_lifetime)
    queue.scheduler.wake()
    message = await queue.wait_state("SMS1", "expired")
    reason = f"message expired after 60 minutes: fake gateway: temporary failure for {TEMPORARY}"
    assert (message.reason, message.dsn_code, message.attempts) == (reason, "4.4.7", 2)
    assert [p.state for p in message.parts] == ["failed", "failed"]
    assert (await logged(logs, "SMS1", 2))[-1] == (
        f"SMS1: to=<{TEMPORARY}>, relay=fake, parts=0/2, delay=3600.00, dsn=4.4.7, status=expired ({reason})"
    )


async def test_a_message_still_young_is_deferred_not_expired(queue: Queue) -> None:
    await queue.fake(**SCRIPT)
    queue.start()
    await queue.enqueue("SMS1", TEMPORARY, age=POLICY.maximal_queue_lifetime - 1)
    assert (await queue.wait_attempts("SMS1", 1, "deferred")).dsn_code == "4.0.0"


# -- a transport that raises ---------------------------------------------------------------------


async def test_a_transport_that_raises_holds_the_message_and_the_others_still_go_out(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.add(TransportDouble(await queue.fake(), explode_for="0005$"))
    queue.start()
    await queue.enqueue("BAD", EXPLODES, parts=2)
    await queue.enqueue("GOOD", OK)
    held = await queue.wait_state("BAD", "hold")
    await queue.wait_state("GOOD", "submitted")
    reason = "held after an unexpected error: RuntimeError"
    assert (held.reason, held.dsn_code, held.attempts) == (reason, "4.3.0", 1)
    assert [p.state for p in held.parts] == ["queued", "queued"]  # sent again as a whole once released
    assert [r["queue_id"] for r in queue.sent()] == ["GOOD"]
    assert f"BAD: to=<{EXPLODES}>, relay=fake, status=hold ({reason})" in await logged(logs, "BAD", 1)
    (crash,) = [r for r in logs.records if r.exc_info]
    assert crash.getMessage() == "BAD: transport raised unexpectedly; message put on hold"


async def test_a_held_message_stays_put_until_released(queue: Queue) -> None:
    double = TransportDouble(await queue.fake(), explode_for="0005$")
    await queue.add(double)
    queue.start()
    await queue.enqueue("BAD", EXPLODES)
    await queue.wait_state("BAD", "hold")
    await queue.enqueue("SENTINEL", OK)
    await queue.wait_state("SENTINEL", "submitted")
    assert [s.queue_id for s in double.submits] == ["BAD", "SENTINEL"]
    double.explode_for = ""  # the library got fixed
    assert QueueAdmin(queue.store).release("BAD") is True
    queue.scheduler.wake()
    assert (await queue.wait_state("BAD", "submitted")).attempts == 2


async def test_a_message_for_an_unconfigured_gateway_is_held_with_4_3_5(queue: Queue, clock: FakeClock) -> None:
    """Its gateway left the configuration before a restart: held at start, and looked for once a minute."""
    await queue.fake()
    await queue.enqueue("SMS1", OK, gateway="gone")
    queue.start()
    message = await queue.wait_state("SMS1", "hold")
    assert (message.reason, message.dsn_code, message.attempts) == ("gateway 'gone' is not configured", "4.3.5", 0)
    await queue.enqueue("SMS2", OK, gateway="gone")
    clock.advance(61)
    queue.scheduler.wake()
    await queue.wait_state("SMS2", "hold")


# -- a hanging gateway ------------------------------------------------------------------------


async def test_hung_submits_take_their_gateway_slots_but_never_block_other_gateways(
    tmp_path: Path, clock: FakeClock, store_url: str
) -> None:
    queue = Queue(tmp_path / "var", clock, POLICY, concurrency=2, store_url=store_url)
    try:
        slow = await queue.fake("slow", hang="6$")
        await queue.fake("fast")
        queue.start()
        # One hung submit leaves the second slot: other numbers on the same gateway still go out.
        await queue.enqueue("HUNG1", HANGS, gateway="slow", age=2)
        await queue.enqueue("SLOW1", OK, gateway="slow", age=1)
        await queue.wait_state("SLOW1", "submitted")
        # Two hung submits (= concurrency) take every slot of "slow"; "fast" does not notice.
        await queue.enqueue("HUNG2", HANGS_2, gateway="slow", age=0.3)
        await queue.enqueue("SLOW2", OK_2, gateway="slow", age=0.2)
        await queue.enqueue("FAST", OK, gateway="fast", age=0.1)
        await queue.wait_state("FAST", "submitted")
        await queue.wait_parts("HUNG2", ["sending"])
        assert queue.part_states("HUNG1") == ["sending"]
        assert (queue.message("SLOW2").attempts, queue.part_states("SLOW2")) == (0, ["queued"])
        assert [r["queue_id"] for r in queue.sent()] == ["SLOW1", "FAST"]
        # Releasing the hung submits frees the slots: SLOW2 goes out, the hung ones are retried later.
        await slow.close()
        await queue.wait_state("SLOW2", "submitted")
        for qid in ("HUNG1", "HUNG2"):
            message = await queue.wait_state(qid, "deferred")
            assert message.reason == "fake gateway: closed while hanging"
    finally:
        await queue.close()


async def test_messages_waiting_for_a_hung_gateway_do_not_starve_another_gateway(
    tmp_path: Path, clock: FakeClock, store_url: str
) -> None:
    queue = Queue(tmp_path / "var", clock, POLICY, concurrency=1, store_url=store_url)
    try:
        await queue.fake("slow", hang="6$")
        await queue.fake("fast")
        queue.start()
        await queue.enqueue("HUNG", HANGS, gateway="slow", age=4)
        for n in range(3):  # ordinary numbers, waiting for the one slot of "slow"
            await queue.enqueue(f"WAIT{n}", f"+1555000010{n}", gateway="slow", age=3 - n)
        await queue.wait_parts("HUNG", ["sending"])
        await queue.enqueue("FAST", OK, gateway="fast")
        await queue.wait_state("FAST", "submitted", timeout=0.3)  # milliseconds when right
    finally:
        await queue.close()


async def test_a_message_in_flight_does_not_make_the_scheduler_spin(queue: Queue, clock: FakeClock) -> None:
    await queue.fake(hang="6$")
    await queue.fake("slow", delay=0.2)
    queue.start()
    await queue.enqueue("HUNG", HANGS)
    await queue.enqueue("SLOW", OK, gateway="slow")
    await queue.wait_parts("HUNG", ["sending"])
    reads = clock.calls
    await queue.wait_state("SLOW", "submitted")  # 0.2 s of real time with both in flight
    # Each pass of the queue loop reads the clock; while nothing is due it must wait, not poll.
    assert clock.calls - reads < 10


# -- graceful stop and recovery -------------------------------------------------------------------


async def test_stop_lets_a_submit_in_flight_finish(queue: Queue) -> None:
    await queue.fake(delay=0.05)
    queue.start()
    await queue.enqueue("SMS1", OK, parts=2)
    await queue.wait_parts("SMS1", ["sending", "sending"])
    began = time.monotonic()
    await queue.stop(grace=WAIT)
    assert time.monotonic() - began < WAIT
    assert queue.state("SMS1") == "submitted"
    assert [r["seq"] for r in queue.sent()] == [1, 2]


async def test_stop_gives_up_on_a_hung_submit_after_grace_and_leaves_the_part_sending(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(hang="6$")
    queue.start()
    await queue.enqueue("SMS1", HANGS)
    await queue.wait_parts("SMS1", ["sending"])
    began = time.monotonic()
    await queue.stop(grace=0.1)
    assert 0.09 <= time.monotonic() - began < WAIT  # the event loop's timers may fire a clock tick early
    message = queue.message("SMS1")
    assert (message.state, message.attempts, [p.state for p in message.parts]) == ("queued", 1, ["sending"])
    assert "stopping: waiting for 1 message(s) in flight" in lines(logs)


async def test_recovery_resends_a_part_left_sending_once_and_the_fake_needs_no_duplicate_flag(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(hang="6$")
    queue.start()
    await queue.enqueue("SMS1", HANGS)
    await queue.wait_parts("SMS1", ["sending"])
    await queue.stop(grace=0.0)
    restarted = queue.new_fake()  # no longer hangs
    assert restarted.detects_duplicates is True
    await queue.restart([restarted])
    queue.start()
    message = await queue.wait_state("SMS1", "submitted")
    assert [(r["seq"], r["possible_duplicate"]) for r in queue.sent()] == [(1, False)]
    assert (message.attempts, message.possible_duplicate) == (2, False)
    assert not [line for line in lines(logs) if "possible duplicate" in line]


async def test_recovery_without_duplicate_detection_resends_once_and_logs_a_possible_duplicate(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake(hang="6$")
    queue.start()
    await queue.enqueue("SMS1", HANGS, parts=2)
    await queue.wait_parts("SMS1", ["sending", "sending"])
    await queue.stop(grace=0.0)
    forgetful = TransportDouble(queue.new_fake(), can_detect_duplicates=False)
    await queue.restart([forgetful])
    queue.start()
    message = await queue.wait_state("SMS1", "submitted")
    assert [(r["seq"], r["possible_duplicate"]) for r in queue.sent()] == [(1, True), (2, True)]
    assert len(forgetful.submits) == 1
    assert message.possible_duplicate is True
    assert [line for line in lines(logs) if "possible duplicate" in line] == [
        f"SMS1: to=<{HANGS}>, relay=fake, parts=2, status=possible duplicate"
        " (part found in sending after a restart is sent again)"
    ]


# -- recovery with transports that detect duplicates ------------------------------------------------


def gateway(queue: Queue, kind: str) -> Transport:
    """A fresh gateway of ``kind`` ("outbox" or "fake") with that id, as a new process would configure it."""
    context = TransportContext(kind, queue.state_dir, queue.report_sink)
    if kind == "outbox":
        return outbox.create(outbox.Options(), context)
    return fake.create(fake.Options(), context)


def gateway_files(queue: Queue) -> dict[str, tuple[bytes, int]]:
    """Everything the gateways wrote under the state directory (content and mtime), the queue excepted."""
    return {
        str(path.relative_to(queue.state_dir)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(queue.state_dir.rglob("*"))
        if path.is_file() and not path.name.startswith("queue.sqlite")
    }


@pytest.mark.parametrize("kind", ["outbox", "fake"])
async def test_a_part_left_sending_that_reached_the_gateway_is_not_sent_again_and_ends_submitted(
    queue: Queue, clock: FakeClock, kind: str, logs: pytest.LogCaptureFixture
) -> None:
    crashed = gateway(queue, kind)
    await queue.add(crashed)
    await queue.enqueue("SMS1", OK, gateway=kind, parts=2)
    await queue.store.mark_sending("SMS1", [1, 2], clock.now)  # committed before the I/O...
    await crashed.submit(outgoing(queue.message("SMS1"), {1, 2}))  # ...which got through; then the process died
    written = gateway_files(queue)
    assert written
    spy = TransportDouble(gateway(queue, kind))
    await queue.restart([spy])
    queue.start()
    message = await queue.wait_state("SMS1", "submitted")
    assert spy.submits == []
    assert gateway_files(queue) == written
    assert ([p.state for p in message.parts], message.possible_duplicate) == (["submitted", "submitted"], False)
    assert await logged(logs, "SMS1", 1) == [
        f"SMS1: to=<{OK}>, relay={kind}, status=recovered (parts found in sending had reached the gateway)"
    ]


async def test_a_delivery_report_for_a_recovered_part_still_finds_it(queue: Queue, clock: FakeClock) -> None:
    crashed = queue.new_fake()
    await queue.add(crashed)
    await queue.enqueue("SMS1", OK)
    await queue.store.mark_sending("SMS1", [1], clock.now)
    (result,) = await crashed.submit(outgoing(queue.message("SMS1"), {1}))
    await queue.restart([queue.new_fake()])
    queue.start()
    await queue.wait_state("SMS1", "submitted")
    await queue.scheduler.on_report(DeliveryReport("fake", result.message_id, delivered=True))
    assert queue.state("SMS1") == "delivered"


async def test_a_part_left_sending_that_never_reached_the_outbox_is_written_once_without_a_duplicate_flag(
    queue: Queue, clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    await queue.enqueue("SMS1", OK, gateway="outbox", parts=2)
    await queue.store.mark_sending("SMS1", [1, 2], clock.now)  # the process died before the write
    spy = TransportDouble(gateway(queue, "outbox"))
    await queue.restart([spy])
    queue.start()
    message = await queue.wait_state("SMS1", "submitted")
    assert [len(s.parts) for s in spy.submits] == [2]
    document = json.loads((queue.state_dir / "outbox" / "SMS1.json").read_text())
    assert [p["seq"] for p in document["parts"]] == [1, 2]
    assert message.possible_duplicate is False
    assert not [line for line in lines(logs) if "possible duplicate" in line]


# -- delivery reports nobody asked for ------------------------------------------------------------


async def test_a_delivery_report_for_an_unknown_id_is_ignored_with_a_log_line(
    queue: Queue, logs: pytest.LogCaptureFixture
) -> None:
    await queue.fake()
    queue.start()
    await queue.enqueue("SMS1", OK)
    await queue.wait_state("SMS1", "submitted")
    await queue.scheduler.on_report(DeliveryReport("fake", "fake-NOPE-1", delivered=False, reason="no such id"))
    await queue.scheduler.on_report(DeliveryReport("other", "fake-SMS1-1", delivered=False))  # another gateway's id
    message = queue.message("SMS1")
    assert (message.state, [p.state for p in message.parts], message.reason) == ("submitted", ["submitted"], "")
    assert lines(logs)[-2:] == [
        "delivery report for unknown id fake-NOPE-1 from fake ignored",
        "delivery report for unknown id fake-SMS1-1 from other ignored",
    ]


# -- what `mailsms queue list` shows -------------------------------------------------------------


async def test_queue_list_shows_the_state_each_outcome_left(queue: Queue, tmp_path: Path) -> None:
    await queue.add(TransportDouble(await queue.fake(**SCRIPT), explode_for="0005$"))
    await queue.fake("dlr", report="delivered")
    queue.start()
    expected = {
        "DEFERRED": ("deferred", 0),
        "HOLD": ("hold", 0),
        "SUBMITTED": ("submitted", 2),
        "DELIVERED": ("delivered", 2),
        "FAILED": ("failed", 0),
        "EXPIRED": ("expired", 0),
    }
    await queue.enqueue("DEFERRED", TEMPORARY, parts=2)
    await queue.enqueue("HOLD", EXPLODES, parts=2)
    await queue.enqueue("SUBMITTED", OK, parts=2)
    await queue.enqueue("DELIVERED", OK, gateway="dlr", parts=2)
    await queue.enqueue("FAILED", PERMANENT, parts=2)
    await queue.enqueue("EXPIRED", TEMPORARY, parts=2, age=POLICY.maximal_queue_lifetime)
    for qid, (state, _) in expected.items():
        await queue.wait_state(qid, state)
    await queue.stop()
    await queue.enqueue("QUEUED", OK, parts=2)  # accepted while the scheduler is down
    expected["QUEUED"] = ("queued", 0)
    admin = QueueAdmin.open(queue.state_dir, queue.store_url)  # its own connection, as the CLI has
    assert admin is not None
    try:
        rows = json.loads(admin.render_list(include_final=True, as_json=True))
        active = json.loads(admin.render_list(include_final=False, as_json=True))
        table = admin.render_list(include_final=True, as_json=False)
    finally:
        admin.close()
    assert {r["id"]: (r["state"], r["sent_parts"]) for r in rows} == expected
    assert {r["id"] for r in active} == {"QUEUED", "DEFERRED", "HOLD", "SUBMITTED"}
    assert {r["id"]: r["next_attempt"] is not None for r in rows if r["id"] in ("QUEUED", "DEFERRED", "HOLD")} == {
        "QUEUED": True,
        "DEFERRED": True,
        "HOLD": False,
    }
    for qid, (state, _) in expected.items():
        assert any(line.startswith(qid) and f" {state} " in line for line in table.splitlines()), (qid, table)
