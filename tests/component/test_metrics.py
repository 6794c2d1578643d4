"""``/metrics``: the values move as mail, submissions, reports and SMS flow through a daemon."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.config import Config, GatewayConfig
from mailsms.daemon import Daemon
from mailsms.metrics import Metrics, reply_codes, samples, signal_dbm
from mailsms.store.queue import QueueStore
from tests.component.test_ingest import LONG, lmtp, mail, outbox_files
from tests.support.replies import ALICE, LOCAL, inject, send_mail, with_replies
from tests.support.wait import async_wait_until
from tests.support.web import call, rows, with_gateways, with_web
from transports import fake
from transports.base import Transport

SMS = "sms.example.test"


async def scrape(daemon: Daemon, headers: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """GET /metrics: status, content type and body."""
    addr = daemon.bound["http"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{addr.host}:{addr.port}/metrics", headers=headers) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def value(daemon: Daemon, name: str, **labels: str) -> float:
    """One sample of the scraped text (0 when absent, as Prometheus treats a counter not yet seen)."""
    status, _, text = await scrape(daemon)
    assert status == 200, text
    for found, found_labels, number in samples(text):
        if found == name and found_labels == labels:
            return number
    return 0.0


async def reaches(daemon: Daemon, want: float, name: str, **labels: str) -> bool:
    """Whether the sample is ``want`` (counters move just after the commit a test waits for)."""
    return await value(daemon, name, **labels) == want


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- messages in ---------------------------------------------------------------------------


async def test_accepted_total_counts_each_committed_recipient_and_parts_submitted_each_part(
    daemon: Daemon, state_dir: Path
) -> None:
    assert await value(daemon, "mailsms_messages_accepted_total") == 0
    assert await value(daemon, "mailsms_parts_submitted_total", gateway="outbox") == 0  # shown before any part
    client = await lmtp(daemon)
    _, _, data = await client.send(
        "alice@example.com", [f'"sms:+15551234567"@{SMS}', f'"sms:+15557654321"@{SMS}'], mail("short")
    )
    _, _, more = await client.send("alice@example.com", [f'"sms:+15550001111?maxmsgs=4"@{SMS}'], mail(LONG))
    await client.close()
    assert [r.code for r in (*data, *more)] == [250, 250, 250]
    assert await value(daemon, "mailsms_messages_accepted_total") == 3
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 3, what="three outbox files")
    parts = sum(len(f["parts"]) for f in outbox_files(state_dir))  # type: ignore[arg-type]
    assert parts == 1 + 1 + 4
    await async_wait_until(lambda: _submitted_rows(daemon.config) == 3, what="three messages submitted")
    # The counter moves just after the commit.
    await async_wait_until(
        lambda: reaches(daemon, 6, "mailsms_parts_submitted_total", gateway="outbox"), what="6 parts counted"
    )
    assert await value(daemon, "mailsms_parts_failed_total", gateway="outbox") == 0


def _submitted_rows(config: Config) -> int:
    return int(rows(config, "SELECT COUNT(*) FROM message WHERE state = 'submitted'")[0][0])


async def test_rejected_recipients_count_by_reply_code_and_enhanced_code(daemon: Daemon) -> None:
    client = await lmtp(daemon)
    _, rcpts, data = await client.send(
        "alice@example.com",
        [f'"sms:12"@{SMS}', f'"sms:+15551234567?colour=red"@{SMS}', f'"sms:+15551234567"@{SMS}', f'"sms:34"@{SMS}'],
        mail("hi"),
    )
    await client.close()
    assert [r.code for r in rcpts] == [550, 553, 250, 550]
    assert [r.enhanced for r in rcpts[:2]] == ["5.1.1", "5.1.3"]
    assert [r.code for r in data] == [250]
    assert await value(daemon, "mailsms_messages_rejected_total", code="550", enhanced="5.1.1") == 2
    assert await value(daemon, "mailsms_messages_rejected_total", code="553", enhanced="5.1.3") == 1
    assert await value(daemon, "mailsms_messages_accepted_total") == 1


# -- parts out, reports back -------------------------------------------------------------------


async def test_delivery_report_counts_the_part_delivered_and_its_latency(daemon: Daemon, config: Config) -> None:
    queue_id = str((await call(daemon, "/sms/?number=%2B15551234567&data=hello")).body["queue_id"])
    await async_wait_until(lambda: _submitted_rows(config) == 1, what="the part submitted")
    assert await value(daemon, "mailsms_dlr_latency_seconds_count") == 0
    answer = await call(daemon, f"/dlr/outbox?id={queue_id}.1&status=delivered")
    assert answer.status == 200, answer.body
    assert await value(daemon, "mailsms_parts_delivered_total", gateway="outbox") == 1
    assert await value(daemon, "mailsms_parts_failed_total", gateway="outbox") == 0
    assert await value(daemon, "mailsms_dlr_latency_seconds_count") == 1
    assert 0 <= await value(daemon, "mailsms_dlr_latency_seconds_sum") < 60
    # a report for a part nobody sent moves nothing
    assert (await call(daemon, "/dlr/outbox?id=NOPE.1&status=1")).status == 404
    assert await value(daemon, "mailsms_parts_delivered_total", gateway="outbox") == 1


async def test_failed_report_counts_a_failed_part(daemon: Daemon, config: Config) -> None:
    queue_id = str((await call(daemon, "/sms/?number=%2B15551234567&data=hello")).body["queue_id"])
    await async_wait_until(lambda: _submitted_rows(config) == 1, what="the part submitted")
    assert (await call(daemon, f"/dlr/outbox?id={queue_id}.1&status=16")).status == 200
    assert await value(daemon, "mailsms_parts_failed_total", gateway="outbox") == 1
    assert await value(daemon, "mailsms_parts_delivered_total", gateway="outbox") == 0


async def test_permanent_refusal_counts_every_unsent_part_failed(config: Config) -> None:
    refusing = GatewayConfig(id="fake", type="fake", options=fake.Options(permanent_fail=r"^\+1555"))
    running = Daemon(with_gateways(config, refusing))
    await running.start()
    try:
        answer = await call(running, f"/sms/?number=%2B15551234567&data={'word%20' * 100}")  # 4 parts
        assert (answer.status, answer.body["parts"]) == (200, 4)
        await async_wait_until(
            lambda: rows(config, "SELECT state FROM message")[0][0] == "failed", what="the message failed"
        )
        await async_wait_until(
            lambda: reaches(running, 4, "mailsms_parts_failed_total", gateway="fake"), what="4 parts counted failed"
        )
        assert await value(running, "mailsms_parts_submitted_total", gateway="fake") == 0
    finally:
        await running.stop()


# -- read at scrape time -------------------------------------------------------------------


async def test_queue_depth_and_oldest_age_are_read_from_the_store(config: Config) -> None:
    hanging = GatewayConfig(id="fake", type="fake", options=fake.Options(hang=r"^\+1555"))
    quick = dataclasses.replace(config, queue=dataclasses.replace(config.queue, stop_grace_time=0.2))
    running = Daemon(with_gateways(quick, hanging))
    await running.start()
    try:
        for _ in range(2):
            assert (await call(running, "/sms/?number=%2B15551234567&data=hi")).status == 200
        assert (await call(running, "/sms/?number=%2B4915112345678&data=hi")).status == 200
        await async_wait_until(lambda: _submitted_rows(config) == 1, what="the other number submitted")
        (created,) = rows(config, "SELECT MIN(created) FROM message WHERE number = '+15551234567'")[0]
        running.metrics.clock = lambda: float(created) + 125.0
        assert await value(running, "mailsms_queue_messages", state="queued") == 2  # in flight, still queued
        assert await value(running, "mailsms_queue_messages", state="submitted") == 1
        assert await value(running, "mailsms_queue_messages", state="hold") == 0
        assert await value(running, "mailsms_queue_oldest_age_seconds") == pytest.approx(125.0)
    finally:
        await running.stop()


async def test_breaker_state_is_read_from_the_scheduler(daemon: Daemon) -> None:
    assert await value(daemon, "mailsms_gateway_breaker_state", gateway="outbox") == 0
    assert daemon.scheduler is not None
    daemon.scheduler.breaker_states = lambda: {"outbox": "half-open"}  # type: ignore[method-assign]
    assert await value(daemon, "mailsms_gateway_breaker_state", gateway="outbox") == 1
    daemon.scheduler.breaker_states = lambda: {"outbox": "open"}  # type: ignore[method-assign]
    assert await value(daemon, "mailsms_gateway_breaker_state", gateway="outbox") == 2


@dataclass
class _Running:
    store: QueueStore | None = None
    scheduler: object | None = None
    transports: dict[str, Transport] = field(default_factory=dict)


def test_modem_signal_is_shown_where_a_transport_knows_it() -> None:
    metrics = Metrics()
    modem = SimpleNamespace(info=SimpleNamespace(signal="-73 dBm (CSQ 20)"))
    silent = SimpleNamespace(info=SimpleNamespace(signal="unknown (CSQ 99)"))
    metrics.watch(_Running(transports={"gsm": modem, "gsm2": silent, "web": SimpleNamespace()}))  # type: ignore[dict-item]
    found = {(n, tuple(sorted(labels.items()))): v for n, labels, v in samples(metrics.exposition().decode())}
    assert found[("mailsms_modem_signal_dbm", (("gateway", "gsm"),))] == -73
    assert ("mailsms_modem_signal_dbm", (("gateway", "gsm2"),)) not in found
    assert ("mailsms_modem_signal_dbm", (("gateway", "web"),)) not in found


def test_two_daemons_keep_separate_registries() -> None:
    one, two = Metrics(), Metrics()
    one.accepted(3)
    assert one.registry.get_sample_value("mailsms_messages_accepted_total") == 3
    assert two.registry.get_sample_value("mailsms_messages_accepted_total") == 0


# -- incoming SMS and the reply log ----------------------------------------------------------


async def test_inbound_and_reply_log_lookups_count_each_route(config: Config) -> None:
    running = Daemon(with_replies(config))
    await running.start()
    try:
        await inject(running, sender="+15559990000", text="nobody wrote to me")  # no link, no tag
        await inject(running, sender="+15559990001", text=f"#bob@{LOCAL}# hello")
        await send_mail(running, ALICE, subject="Lunch", message_id="<m1@example.test>")
        await async_wait_until(
            lambda: rows(config, "SELECT COUNT(*) FROM reply_link")[0][0] == 1, what="the reply link"
        )
        await inject(running)  # from the number ALICE wrote to
        await async_wait_until(
            lambda: rows(config, "SELECT COUNT(*) FROM inbound WHERE state = 'received'")[0][0] == 0,
            what="every MO routed",
        )
        assert await value(running, "mailsms_inbound_total", gateway="outbox") == 3
        assert await value(running, "mailsms_replylog_lookups_total", result="unmatched") == 1
        assert await value(running, "mailsms_replylog_lookups_total", result="tag") == 1
        assert await value(running, "mailsms_replylog_lookups_total", result="hit") == 1
        assert await value(running, "mailsms_replylog_lookups_total", result="conflict") == 0
    finally:
        await running.stop()


# -- access --------------------------------------------------------------------------------


async def test_metrics_are_open_to_trusted_networks_in_the_text_format(daemon: Daemon) -> None:
    status, kind, text = await scrape(daemon)
    assert status == 200
    assert kind.startswith("text/plain") and "version=" in kind
    assert "# TYPE mailsms_messages_accepted_total counter" in text


async def test_metrics_from_elsewhere_need_the_admin_credentials(config: Config) -> None:
    running = Daemon(with_web(config, trusted_networks=[], admin_user="ops", admin_password="pw-1"))
    await running.start()
    try:
        status, _, _ = await scrape(running)
        assert status == 401
        assert (await scrape(running, basic("ops", "wrong")))[0] == 401
        assert (await scrape(running, basic("ops", "pw-1")))[0] == 200
    finally:
        await running.stop()


async def test_metrics_from_elsewhere_without_an_admin_are_refused(config: Config) -> None:
    running = Daemon(with_web(config, trusted_networks=[]))
    await running.start()
    try:
        assert (await scrape(running))[0] == 403
    finally:
        await running.stop()


# -- the reply-code parser --------------------------------------------------------------------


def test_reply_codes_of_typical_replies() -> None:
    assert reply_codes("550 5.1.1 bad number") == ("550", "5.1.1")
    assert reply_codes("452 4.2.2 over quota") == ("452", "4.2.2")
    assert reply_codes("451 try later") == ("451", "-")
    assert reply_codes("") == ("-", "-")


@given(st.integers(200, 599), st.integers(0, 999), st.integers(0, 999), st.text(max_size=40))
def test_reply_codes_read_code_and_enhanced_code_back(code: int, subject: int, detail: int, rest: str) -> None:
    klass = str(code)[0] if str(code)[0] in "245" else "5"
    enhanced = f"{klass}.{subject}.{detail}"
    assert reply_codes(f"{code} {enhanced} {rest}") == (str(code), enhanced)


@given(st.text(max_size=80))
def test_reply_codes_never_raise_and_give_three_digits_or_a_dash(text: str) -> None:
    code, enhanced = reply_codes(text)
    assert code == "-" or (len(code) == 3 and code.isdigit())
    assert enhanced == "-" or enhanced.count(".") == 2


def test_signal_dbm_reads_the_modem_description() -> None:
    assert signal_dbm(SimpleNamespace(info=SimpleNamespace(signal="-51 dBm (CSQ 31)"))) == -51
    assert signal_dbm(SimpleNamespace(info=SimpleNamespace(signal=""))) is None
    assert signal_dbm(object()) is None
