"""The SMPP transport against an in-test SMSC (``tests.fakes.smsc_smpp.FakeSmsc``) on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mailsms.segment import split_text
from tests.fakes.smsc_smpp import FakeSmsc
from tests.support.wait import async_wait_until
from transports import smpp
from transports import smpp_pdu as p
from transports.base import DeliveryReport, IncomingSms, Outcome, OutgoingPart, OutgoingSms, TransportContext

PASSWORD = "pw-never"
LONG_UCS2 = "Привет из mailsms! Это длинный текст, который не помещается в одно сообщение. " * 2 + "👋 конец"


class Host:
    """What the daemon would be: it records reports and incoming SMS, and can refuse to commit."""

    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []
        self.mos: list[IncomingSms] = []
        self.fail_commit = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = 0

    async def report(self, report: DeliveryReport) -> None:
        self.reports.append(report)

    async def mo(self, sms: IncomingSms) -> str:
        self.entered += 1
        await self.gate.wait()
        if self.fail_commit:
            raise OSError("disk full")
        self.mos.append(sms)
        return f"in{len(self.mos)}"


Make = Callable[..., Awaitable[smpp.SmppTransport]]


@pytest.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    fake = FakeSmsc()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def host() -> Host:
    return Host()


@pytest.fixture
async def make(tmp_path: Path, host: Host) -> AsyncIterator[Make]:
    started: list[smpp.SmppTransport] = []

    async def build(port: int, **changes: object) -> smpp.SmppTransport:
        fields: dict[str, object] = {
            "host": "127.0.0.1", "port": port, "system_id": "mailsms", "password": PASSWORD,
            "reconnect_delay": 0.05, "response_timeout": 5.0, "connect_timeout": 5.0, "throttle_delay": 0.2,
        }  # fmt: skip
        fields.update(changes)
        context = TransportContext("smpp-1", tmp_path, report_sink=host.report, mo_sink=host.mo)
        transport = smpp.create(smpp.Options(**fields), context)  # type: ignore[arg-type]
        await transport.start()
        started.append(transport)
        return transport

    yield build
    for transport in started:
        await transport.close()


def one_part(text: str = "hello", queue_id: str = "Q1", to: str = "+15551234567") -> OutgoingSms:
    return OutgoingSms(queue_id, to, (OutgoingPart(1, text),), 1, "gsm7")


async def test_a_long_ucs2_text_goes_in_three_parts_with_udh(smsc: FakeSmsc, make: Make) -> None:
    segmentation = split_text(LONG_UCS2, reference=0x2A)
    parts = tuple(OutgoingPart(i + 1, part.text, part.udh) for i, part in enumerate(segmentation.parts))
    assert (len(parts), segmentation.encoding) == (3, "ucs2")
    transport = await make(smsc.port)

    results = await transport.submit(OutgoingSms("Q7", "+15551234567", parts, 3, "ucs2"))

    assert [(r.seq, r.outcome, r.message_id) for r in results] == [
        (1, Outcome.SUBMITTED, "1"), (2, Outcome.SUBMITTED, "2"), (3, Outcome.SUBMITTED, "3")]  # fmt: skip
    assert [(sm.esm_class, sm.data_coding, sm.registered_delivery) for sm in smsc.submits] == [(0x40, 8, 1)] * 3
    assert [sm.short_message[:6] for sm in smsc.submits] == [bytes.fromhex(f"0500032a030{i}") for i in (1, 2, 3)]
    text = b"".join(sm.short_message[6:] for sm in smsc.submits).decode("utf-16-be")
    assert text == LONG_UCS2
    assert {(sm.destination_addr, sm.dest_addr_ton, sm.dest_addr_npi) for sm in smsc.submits} == {
        ("15551234567", 1, 1)}  # fmt: skip
    assert [kind for kind, _ in smsc.binds] == [p.BIND_TRANSCEIVER]
    assert (smsc.binds[0][1].system_id, smsc.binds[0][1].password) == ("mailsms", PASSWORD)


async def test_no_more_than_window_submits_wait_for_an_answer(smsc: FakeSmsc, make: Make) -> None:
    transport = await make(smsc.port, window=4)
    smsc.release.clear()

    sends = [asyncio.create_task(transport.submit(one_part(queue_id=f"Q{i}"))) for i in range(7)]
    await async_wait_until(lambda: smsc.waiting == 4, what="four submits outstanding")
    assert (await smsc.request(p.ENQUIRE_LINK)).status == 0  # the client had time to send more: it did not
    assert len(smsc.submits) == 4 and transport.concurrency == 4
    smsc.release.set()
    results = await asyncio.gather(*sends)

    assert [r[0].outcome for r in results] == [Outcome.SUBMITTED] * 7
    assert len({r[0].message_id for r in results}) == 7


async def test_throttling_pauses_submits_then_they_recover(smsc: FakeSmsc, make: Make) -> None:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    def throttle_twice(sm: p.ShortMessage, index: int) -> tuple[int, str]:
        times.append(loop.time())
        return (p.ESME_RTHROTTLED, "") if index < 2 else smsc.accept(sm, index)

    smsc.answer = throttle_twice
    transport = await make(smsc.port, throttle_delay=0.2)

    first = await transport.submit(one_part())
    second = await transport.submit(one_part())
    third = await transport.submit(one_part())

    assert [(r[0].outcome, r[0].dsn) for r in (first, second)] == [(Outcome.TEMPORARY, "4.4.5")] * 2
    assert "ESME_RTHROTTLED" in first[0].reason
    assert third[0].outcome is Outcome.SUBMITTED
    assert times[1] - times[0] >= 0.19 and times[2] - times[1] >= 0.39  # paused, and longer the second time
    assert transport.throttled == 2


async def test_a_drop_mid_window_makes_unanswered_parts_temporary_and_reconnects(smsc: FakeSmsc, make: Make) -> None:
    transport = await make(smsc.port, window=3)
    smsc.release.clear()
    sends = [asyncio.create_task(transport.submit(one_part(queue_id=f"Q{i}"))) for i in range(3)]
    await async_wait_until(lambda: smsc.waiting == 3, what="three submits outstanding")

    smsc.drop()
    results = [r[0] for r in await asyncio.gather(*sends)]

    assert {(r.outcome, r.dsn) for r in results} == {(Outcome.TEMPORARY, "4.4.2")}
    assert all("may have the part" in r.reason for r in results)
    smsc.release.set()
    await async_wait_until(lambda: transport.binds == 2 and transport.ready, what="a new bind")
    assert (await transport.submit(one_part()))[0].outcome is Outcome.SUBMITTED


async def test_an_mo_without_udh_is_committed_then_acknowledged(smsc: FakeSmsc, make: Make, host: Host) -> None:
    await make(smsc.port)
    host.gate.clear()
    sm = p.ShortMessage("447700900123", "4477", b"Yes \x1b\x65 5", source_addr_ton=1)

    answer = asyncio.create_task(smsc.deliver(sm))
    await async_wait_until(lambda: host.entered == 1, what="the commit to start")
    assert not answer.done()  # no deliver_sm_resp before the commit
    host.gate.set()

    assert await answer == p.ESME_ROK
    assert [(m.gateway_id, m.sender, m.to, m.text, m.udh, m.coding) for m in host.mos] == [
        ("smpp-1", "+447700900123", "4477", "Yes € 5", b"", 0)]  # fmt: skip


async def test_an_mo_with_udh_keeps_it_apart_from_the_text(smsc: FakeSmsc, make: Make, host: Host) -> None:
    await make(smsc.port)
    udh = bytes.fromhex("0500030a0202")
    sm = p.ShortMessage("447700900123", "4477", udh + "мир".encode("utf-16-be"), esm_class=0x40, data_coding=8)

    assert await smsc.deliver(sm) == p.ESME_ROK
    assert [(m.udh, m.text, m.coding) for m in host.mos] == [(udh, "мир", 2)]


async def test_an_mo_that_cannot_be_committed_is_refused_so_the_smsc_retries(
    smsc: FakeSmsc, make: Make, host: Host
) -> None:
    await make(smsc.port)
    host.fail_commit = True

    assert await smsc.deliver(p.ShortMessage("4477", "1", b"hi")) == p.ESME_RX_T_APPN
    host.fail_commit = False
    assert await smsc.deliver(p.ShortMessage("4477", "1", b"hi")) == p.ESME_ROK
    assert len(host.mos) == 1


async def test_a_receipt_is_matched_to_the_submit_id_even_in_another_base(
    smsc: FakeSmsc, make: Make, host: Host
) -> None:
    smsc.answer = lambda sm, index: (p.ESME_ROK, "1C2E")
    transport = await make(smsc.port)
    [result] = await transport.submit(one_part())
    receipt = "id:7214 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD err:000 text:"

    status = await smsc.deliver(p.ShortMessage("15551234567", "mailsms", receipt.encode(), esm_class=0x04))

    assert status == p.ESME_ROK
    assert host.reports == [
        DeliveryReport("smpp-1", result.message_id, True, "smpp: stat:DELIVRD delivered to the phone")
    ]


async def test_receipt_tlvs_win_and_intermediate_receipts_are_only_acknowledged(
    smsc: FakeSmsc, make: Make, host: Host
) -> None:
    await make(smsc.port)
    enroute = p.ShortMessage("1", "2", b"id:AB stat:ENROUTE", esm_class=0x04)
    tlvs = ((p.TLV_RECEIPTED_MESSAGE_ID, b"AB\x00"), (p.TLV_MESSAGE_STATE, b"\x05"))
    final = p.ShortMessage("1", "2", b"id:XX stat:DELIVRD err:001", esm_class=0x04, tlvs=tlvs)

    assert await smsc.deliver(enroute) == p.ESME_ROK
    assert await smsc.deliver(final) == p.ESME_ROK
    assert [(r.message_id, r.delivered, r.dsn) for r in host.reports] == [("AB", False, "5.1.1")]


async def test_malformed_pdus_are_answered_or_reset_and_nothing_breaks(
    smsc: FakeSmsc, make: Make, host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    transport = await make(smsc.port)
    caplog.set_level(logging.WARNING, "mailsms.smpp")

    nack = await smsc.request(0x00000103, b"\x00")  # data_sm: not for us
    bad_body = await smsc.deliver_raw(b"\x00\x01")
    assert (nack.command_id, nack.status) == (p.GENERIC_NACK, p.ESME_RINVCMDID)
    assert bad_body.status == p.ESME_RINVCMDLEN
    assert transport.binds == 1 and (await transport.submit(one_part()))[0].outcome is Outcome.SUBMITTED

    smsc.send_raw(bytes.fromhex("00000008000000050000000000000009"))  # length shorter than the header
    await async_wait_until(lambda: transport.binds == 2 and transport.ready, what="a reset and a new bind")
    assert (await transport.submit(one_part()))[0].outcome is Outcome.SUBMITTED
    assert "malformed PDU" in caplog.text and "unknown command 0x00000103" in caplog.text


async def test_a_refused_bind_defers_parts_and_is_retried(
    smsc: FakeSmsc, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    smsc.bind_status = p.ESME_RINVPASWD
    caplog.set_level(logging.INFO, "mailsms.smpp")
    transport = await make(smsc.port, connect_timeout=0.3)

    [result] = await transport.submit(one_part())

    assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, "4.4.1")
    assert "ESME_RINVPASWD" in result.reason and not transport.ready
    assert "bind_transceiver refused with 0x0000000E" in caplog.text
    smsc.bind_status = p.ESME_ROK
    await async_wait_until(lambda: transport.ready, what="the bind to be accepted")
    assert (await transport.submit(one_part()))[0].outcome is Outcome.SUBMITTED
    assert PASSWORD not in caplog.text and "hello" not in caplog.text


async def test_an_smsc_that_refuses_everything_fails_each_part_by_its_status(smsc: FakeSmsc, make: Make) -> None:
    codes = {0: 0x0B, 1: 0x45, 2: 0x14}
    smsc.answer = lambda sm, index: (codes.get(index, 0x66), "")
    transport = await make(smsc.port, throttle_delay=0.05)

    results = [(await transport.submit(one_part()))[0] for _ in range(4)]

    assert [(r.outcome, r.dsn) for r in results] == [
        (Outcome.PERMANENT, "5.1.1"), (Outcome.TEMPORARY, "4.0.0"), (Outcome.TEMPORARY, "4.3.1"),
        (Outcome.PERMANENT, "5.7.1")]  # fmt: skip


async def test_enquire_link_is_answered_and_sent(smsc: FakeSmsc, make: Make) -> None:
    await make(smsc.port, enquire_link_interval=0.05)

    answer = await smsc.request(p.ENQUIRE_LINK)

    assert (answer.command_id, answer.status) == (p.ENQUIRE_LINK | p.RESPONSE, 0)
    await async_wait_until(lambda: p.ENQUIRE_LINK in smsc.requests, what="our own enquire_link")


async def test_a_pair_binds_transmitter_and_receiver(smsc: FakeSmsc, make: Make, host: Host) -> None:
    transport = await make(smsc.port, bind="pair")

    [result] = await transport.submit(one_part())
    status = await smsc.deliver(p.ShortMessage("4477", "1", b"hi"))

    assert [kind for kind, _ in smsc.binds] == [p.BIND_TRANSMITTER, p.BIND_RECEIVER]
    assert result.outcome is Outcome.SUBMITTED and status == p.ESME_ROK and len(host.mos) == 1


async def test_close_unbinds(smsc: FakeSmsc, make: Make) -> None:
    transport = await make(smsc.port)
    await transport.close()
    assert smsc.requests[-1] == p.UNBIND


async def test_an_smsc_that_stops_answering_is_dropped_and_the_part_deferred(smsc: FakeSmsc, make: Make) -> None:
    transport = await make(smsc.port, response_timeout=0.3)
    smsc.release.clear()

    [result] = await transport.submit(one_part())

    assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, "4.4.2")
    assert "timed out" in result.reason
    smsc.release.set()
    await async_wait_until(lambda: transport.binds == 2 and transport.ready, what="a new bind")
