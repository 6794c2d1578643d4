"""The fake gateway: scripted outcomes by number, recording in sent.jsonl, delivery reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.errors import ConfigError
from mailsms.schema import Problem, build
from tests.support.wait import async_wait_until
from transports import fake, registry
from transports.base import DeliveryReport, Outcome, OutgoingPart, OutgoingSms, PartResult, TransportContext

UDH_1 = bytes.fromhex("0500037f0201")
UDH_2 = bytes.fromhex("0500037f0202")


def sms(to: str = "+15551234567", queue_id: str = "Q1", **changes: object) -> OutgoingSms:
    fields: dict[str, object] = {
        "queue_id": queue_id,
        "to": to,
        "parts": (OutgoingPart(1, "Hello ", UDH_1), OutgoingPart(2, "world", UDH_2)),
        "total": 2,
        "encoding": "gsm7",
    }
    fields.update(changes)
    return OutgoingSms(**fields)  # type: ignore[arg-type]


class Gateways:
    """Builds started fakes sharing one state directory and one report list; closes them all."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.reports: list[DeliveryReport] = []
        self.started: list[fake.FakeTransport] = []

    async def sink(self, report: DeliveryReport) -> None:
        self.reports.append(report)

    async def make(self, **options: object) -> fake.FakeTransport:
        context = TransportContext(gateway_id="fake-1", state_dir=self.state_dir, report_sink=self.sink)
        transport = fake.create(fake.Options(**options), context)  # type: ignore[arg-type]
        await transport.start()
        self.started.append(transport)
        return transport


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
    made = Gateways(tmp_path / "var")
    yield made
    for transport in made.started:
        await transport.close()


async def test_submit_sends_every_part_with_fake_message_ids(gateways: Gateways) -> None:
    transport = await gateways.make()
    assert await transport.submit(sms()) == [
        PartResult(1, Outcome.SUBMITTED, message_id="fake-Q1-1"),
        PartResult(2, Outcome.SUBMITTED, message_id="fake-Q1-2"),
    ]


async def test_each_sent_part_is_one_line_in_sent_jsonl(gateways: Gateways) -> None:
    transport = await gateways.make()
    await transport.submit(sms(possible_duplicate=True))
    assert (gateways.state_dir / "fake" / "sent.jsonl").read_text().count("\n") == 2
    assert fake.read_sent(gateways.state_dir) == [
        {
            "queue_id": "Q1",
            "to": "+15551234567",
            "seq": 1,
            "total": 2,
            "text": "Hello ",
            "udh": "0500037f0201",
            "encoding": "gsm7",
            "message_id": "fake-Q1-1",
            "possible_duplicate": True,
            "gateway": "fake-1",
        },
        {
            "queue_id": "Q1",
            "to": "+15551234567",
            "seq": 2,
            "total": 2,
            "text": "world",
            "udh": "0500037f0202",
            "encoding": "gsm7",
            "message_id": "fake-Q1-2",
            "possible_duplicate": True,
            "gateway": "fake-1",
        },
    ]


async def test_binary_part_is_recorded_with_its_data(gateways: Gateways) -> None:
    transport = await gateways.make()
    await transport.submit(sms(parts=(OutgoingPart(1, "", b"", data=b"\x01\xfe"),), total=1, encoding="binary"))
    (record,) = fake.read_sent(gateways.state_dir)
    assert record["udh"] == ""
    assert record["data"] == "01fe"


async def test_read_sent_is_empty_before_anything_was_sent(tmp_path: Path) -> None:
    assert fake.read_sent(tmp_path) == []


async def test_read_sent_ignores_a_line_cut_by_a_crash(gateways: Gateways) -> None:
    transport = await gateways.make()
    await transport.submit(sms())
    with (gateways.state_dir / "fake" / "sent.jsonl").open("a") as file:
        file.write('{"queue_id": "Q9", "to"')
    assert [r["seq"] for r in fake.read_sent(gateways.state_dir)] == [1, 2]


async def test_permanent_fail_regex_fails_the_first_part_with_5_0_0(gateways: Gateways) -> None:
    transport = await gateways.make(permanent_fail=r"^\+1555000")
    assert await transport.submit(sms(to="+15550001111")) == [
        PartResult(1, Outcome.PERMANENT, "fake gateway: permanent failure for +15550001111", dsn="5.0.0")
    ]
    assert fake.read_sent(gateways.state_dir) == []
    assert (await transport.submit(sms(to="+15551111111")))[0].outcome is Outcome.SUBMITTED


async def test_temporary_fail_regex_is_searched_anywhere_in_the_number(gateways: Gateways) -> None:
    transport = await gateways.make(temporary_fail="999")
    assert await transport.submit(sms(to="+15559990000")) == [
        PartResult(1, Outcome.TEMPORARY, "fake gateway: temporary failure for +15559990000", dsn="4.0.0")
    ]
    assert fake.read_sent(gateways.state_dir) == []


async def test_permanent_wins_over_temporary(gateways: Gateways) -> None:
    transport = await gateways.make(permanent_fail="1", temporary_fail="1")
    assert (await transport.submit(sms()))[0].outcome is Outcome.PERMANENT


async def test_hang_never_completes_while_other_numbers_are_sent(gateways: Gateways) -> None:
    transport = await gateways.make(hang="666$")
    hanging = asyncio.ensure_future(transport.submit(sms(to="+15550000666")))
    other = await transport.submit(sms(to="+15550000777", queue_id="Q2"))
    assert [r.outcome for r in other] == [Outcome.SUBMITTED, Outcome.SUBMITTED]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(hanging), 0.2)
    assert not hanging.done()
    assert [r["to"] for r in fake.read_sent(gateways.state_dir)] == ["+15550000777", "+15550000777"]
    await transport.close()
    assert await hanging == [PartResult(1, Outcome.TEMPORARY, "fake gateway: closed while hanging")]


async def test_delay_waits_before_each_part(gateways: Gateways) -> None:
    transport = await gateways.make(delay=0.05)
    began = time.monotonic()
    await transport.submit(sms())
    assert time.monotonic() - began >= 0.1


async def test_delivered_reports_arrive_for_each_sent_part(gateways: Gateways) -> None:
    transport = await gateways.make(report="delivered", report_delay=0.01)
    await transport.submit(sms())
    await async_wait_until(lambda: len(gateways.reports) == 2, timeout=5, what="two delivery reports")
    assert gateways.reports == [
        DeliveryReport("fake-1", "fake-Q1-1", delivered=True, reason="fake gateway: delivered"),
        DeliveryReport("fake-1", "fake-Q1-2", delivered=True, reason="fake gateway: delivered"),
    ]


async def test_failed_reports_carry_a_permanent_dsn(gateways: Gateways) -> None:
    transport = await gateways.make(report="failed")
    await transport.submit(sms(parts=(OutgoingPart(1, "hi"),), total=1))
    await async_wait_until(lambda: gateways.reports, timeout=5, what="a delivery report")
    assert gateways.reports == [
        DeliveryReport("fake-1", "fake-Q1-1", delivered=False, reason="fake gateway: not delivered", dsn="5.0.0")
    ]


async def test_no_reports_for_failed_parts_or_report_none(gateways: Gateways) -> None:
    failing = await gateways.make(report="delivered", temporary_fail=".")
    silent = await gateways.make(report="none")
    await failing.submit(sms())
    await silent.submit(sms())
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("fake-dlr-")]
    assert gateways.reports == []


async def test_close_cancels_reports_not_yet_sent(gateways: Gateways) -> None:
    transport = await gateways.make(report="delivered", report_delay=3600)
    await transport.submit(sms())
    await asyncio.wait_for(transport.close(), 5)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("fake-dlr-")]
    assert gateways.reports == []


async def test_a_failing_report_sink_does_not_stop_the_others(tmp_path: Path) -> None:
    received: list[str] = []

    async def flaky(report: DeliveryReport) -> None:
        if report.message_id.endswith("-1"):
            raise RuntimeError("sink broke")
        received.append(report.message_id)

    transport = fake.create(fake.Options(report="delivered"), TransportContext("fake-1", tmp_path, flaky))
    await transport.start()
    await transport.submit(sms())
    await async_wait_until(lambda: received, timeout=5, what="the second report")
    assert received == ["fake-Q1-2"]
    await transport.close()


async def test_already_submitted_reads_what_an_earlier_run_sent(gateways: Gateways) -> None:
    first = await gateways.make()
    await first.submit(sms())
    await first.submit(sms(to="+15550000000", queue_id="Q2"))
    restarted = await gateways.make()
    assert restarted.detects_duplicates is True
    assert await restarted.already_submitted(sms()) == {1: "fake-Q1-1", 2: "fake-Q1-2"}
    assert await restarted.already_submitted(sms(to="+15559999999")) == {}
    assert await restarted.already_submitted(sms(queue_id="Q3")) == {}


def test_options_defaults() -> None:
    options = fake.Options()
    assert (options.permanent_fail, options.temporary_fail, options.hang) == ("", "", "")
    assert (options.delay, options.report, options.report_delay) == (0.0, "none", 0.0)
    assert options.validate() == []


def test_options_are_read_from_a_gateway_table() -> None:
    problems: list[Problem] = []
    table = {"hang": "^\\+49", "delay": "2s", "report": "failed", "report_delay": "1m"}
    options = build(fake.Options, table, "gateway[0]", problems, lambda key: None)
    assert problems == []
    assert options == fake.Options(hang="^\\+49", delay=2.0, report="failed", report_delay=60.0)
    build(fake.Options, {"report": "maybe"}, "gateway[0]", problems, lambda key: None)
    assert [p.key for p in problems] == ["gateway[0].report"]


def test_validate_names_each_bad_regex() -> None:
    problems = fake.Options(permanent_fail="(", hang="[a-").validate()
    assert [key for key, _ in problems] == ["permanent_fail", "hang"]
    assert all(message.startswith("bad regular expression: ") for _, message in problems)


def test_create_refuses_a_bad_regex(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="temporary_fail"):
        fake.create(fake.Options(temporary_fail="*"), TransportContext("fake-1", tmp_path))


def test_registry_knows_the_fake() -> None:
    assert registry.options_class("fake") is fake.Options
