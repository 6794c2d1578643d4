"""The modem transport against fake modems on pty pairs, one quirk at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from smspdudecoder.fields import SMSSubmit

from mailsms.cli import main
from mailsms.config import Config, GatewayConfig
from mailsms.daemon import Daemon
from mailsms.segment import Part, split_text
from mailsms.segment.pdu import decode_submit_pdu
from mailsms.segment.pdu_deliver import encode_deliver_pdu, encode_status_report_pdu
from mailsms.store.inbound import list_inbound
from tests.fakes.modem import FakeModem
from tests.support.lmtp import LmtpClient
from tests.support.wait import async_wait_until
from transports.base import DeliveryReport, IncomingSms, Outcome, OutgoingPart, OutgoingSms, TransportContext
from transports.modem import ModemTransport, Options

NUMBER = "+15551234567"
WHEN = 1_700_000_000.0


class Host:
    """What the daemon gives a transport: sinks that record, and can be told to fail."""

    def __init__(self) -> None:
        self.mos: list[IncomingSms] = []
        self.reports: list[DeliveryReport] = []
        self.fail_mo = 0  # commits to refuse before taking them again
        self.on_commit: Callable[[], int] | None = None
        self.sim_sizes: list[int] = []  # what on_commit said at each commit

    async def mo(self, sms: IncomingSms) -> str:
        if self.on_commit is not None:
            self.sim_sizes.append(self.on_commit())
        if self.fail_mo:
            self.fail_mo -= 1
            raise OSError("database is locked")
        self.mos.append(sms)
        return f"mo-{len(self.mos)}"

    async def report(self, report: DeliveryReport) -> None:
        self.reports.append(report)


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "ttyGSM0"


@pytest.fixture
def host() -> Host:
    return Host()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(logging.getLogger("mailsms"), "propagate", True)
    caplog.set_level(logging.INFO, logger="mailsms")
    return caplog


def fast(link: Path, **changes: Any) -> Options:
    """Options with timeouts small enough for tests."""
    settings: dict[str, Any] = {"read_timeout": 0.5, "reopen_delay": 0.05, "sweep_interval": 0.3}
    return Options(device=str(link), **(settings | changes))


@pytest.fixture
def fake(link: Path) -> Iterator[FakeModem]:
    modem = FakeModem(link).start()
    yield modem
    modem.stop()


def quirky(fake: FakeModem, **quirks: Any) -> FakeModem:
    for key, value in quirks.items():
        setattr(fake.quirks, key, value)
    if "pin" in quirks:
        fake.sim_state = "SIM PIN"
    if "first_reference" in quirks:
        fake.next_reference = quirks["first_reference"]
    return fake


@asynccontextmanager
async def modem(options: Options, tmp_path: Path, host: Host, **kwargs: Any) -> AsyncIterator[ModemTransport]:
    context = TransportContext("gsm1", tmp_path / "var", host.report, mo_sink=host.mo)
    transport = ModemTransport(options, context, **kwargs)
    await transport.start()
    try:
        yield transport
    finally:
        await transport.close()


def message(text: str, queue_id: str = "Q1", reference: int = 0x2A, **changes: Any) -> OutgoingSms:
    seg = split_text(text, reference=reference)
    parts = tuple(OutgoingPart(n, p.text, p.udh) for n, p in enumerate(seg.parts, start=1))
    return OutgoingSms(queue_id, NUMBER, parts, len(parts), seg.encoding, **changes)


def deliver_pdu(text: str, seq: int = 1, total: int = 1, reference: int = 7, sender: str = "+4917012345") -> bytes:
    udh = bytes((5, 0, 3, reference, total, seq)) if total > 1 else b""
    encoding = "gsm7" if text.isascii() else "ucs2"
    data = text.encode("ascii") if encoding == "gsm7" else text.encode("utf-16-be")
    return encode_deliver_pdu(sender, Part(text, udh, len(data), data), encoding, timestamp=WHEN)


# -- sending -------------------------------------------------------------------------------------------


async def test_three_part_ucs2_message_goes_out_byte_for_byte(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    sms = message("Ж" * 150)
    async with modem(fast(fake.link), tmp_path, host) as transport:
        results = await transport.submit(sms)
    assert [r.outcome for r in results] == [Outcome.SUBMITTED] * 3
    assert [r.message_id for r in results] == ["Q1.1.mr0", "Q1.2.mr1", "Q1.3.mr2"]
    for seq, (pdu, chars) in enumerate(zip(fake.sent, (67, 67, 16), strict=True), start=1):
        expected = (
            "00"  # SMSC: the modem's own
            "41"  # SMS-SUBMIT with a user data header, no report requested, no validity period
            "00"  # TP-MR: the modem numbers it
            "0B915155214365F7"  # +15551234567
            "00"  # TP-PID
            "08"  # TP-DCS: UCS-2
            f"{6 + 2 * chars:02X}"  # TP-UDL in octets, header included
            f"0500032A03{seq:02X}" + "0416" * chars  # concatenation: reference 0x2A, 3 parts, this one  # Ж in UTF-16BE
        )
        assert pdu.hex().upper() == expected
        decoded: dict[str, Any] = SMSSubmit.decode(StringIO(pdu.hex().upper()))  # the independent decoder
        assert decoded["recipient"]["number"] == NUMBER[1:]
        assert decoded["dcs"]["encoding"] == "ucs2"
        assert decoded["user_data"]["data"] == "Ж" * chars
        element = decoded["user_data"]["header"]["elements"][0]["data"]
        assert element == {"reference": 0x2A, "parts_count": 3, "part_number": seq}


async def test_message_references_wrap_at_255_and_reports_find_their_parts(
    fake: FakeModem, tmp_path: Path, host: Host
) -> None:
    quirky(fake, first_reference=254)
    async with modem(fast(fake.link, report=True), tmp_path, host) as transport:
        assert transport.delivery_reports
        results = await transport.submit(message("x" * 400))
        assert [r.message_id for r in results] == ["Q1.1.mr254", "Q1.2.mr255", "Q1.3.mr0"]
        await async_wait_until(lambda: len(host.reports) == 3, timeout=5, what="three reports")
        await async_wait_until(lambda: not fake.sim, timeout=5, what="the reports deleted once applied")
    assert 'AT+CPMS="SR"' in fake.commands  # read where the indication said they were
    assert sorted(r.message_id for r in host.reports) == sorted(r.message_id for r in results)
    assert all(r.delivered for r in host.reports)


async def test_a_reused_reference_does_not_confuse_old_and_new_reports(
    fake: FakeModem, tmp_path: Path, host: Host, logs: pytest.LogCaptureFixture
) -> None:
    now = [WHEN]
    async with modem(fast(fake.link), tmp_path, host, clock=lambda: now[0]) as transport:
        fake.next_reference = 5
        old = (await transport.submit(message("first", "OLD")))[0]
        now[0] = WHEN + 3600  # 256 submits later the modem hands out 5 again
        fake.next_reference = 5
        new = (await transport.submit(message("second", "NEW")))[0]
        for submitted in (WHEN + 3601, WHEN + 2, WHEN + 2):  # the new part's report, the old one's, a repeat
            report = encode_status_report_pdu(5, NUMBER, submitted=submitted, discharged=submitted, status=0)
            fake.unsolicited(f"\r\n+CDS: {len(report) - 1}\r\n{report.hex().upper()}\r\n")
        await async_wait_until(lambda: "repeated status report" in logs.text, timeout=5, what="the repeat")
        await async_wait_until(lambda: len(host.reports) == 2, timeout=5, what="two reports")
    assert (old.message_id, new.message_id) == ("OLD.1.mr5", "NEW.1.mr5")
    assert sorted(r.message_id for r in host.reports) == ["NEW.1.mr5", "OLD.1.mr5"]  # each found its own part


async def test_a_failed_status_report_carries_its_status(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, report_status=0x41)  # incompatible destination
    async with modem(fast(fake.link, report=True, cnmi="2,1,0,1,0"), tmp_path, host) as transport:
        await transport.submit(message("hello"))
        await async_wait_until(lambda: host.reports, timeout=5, what="a report")
    report = host.reports[0]
    assert (report.message_id, report.delivered, report.dsn) == ("Q1.1.mr0", False, "5.3.3")
    assert "incompatible destination" in report.reason


async def test_a_report_before_cmgs_still_finds_its_part(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, report_before_cmgs=True)
    async with modem(fast(fake.link, report=True), tmp_path, host) as transport:
        results = await transport.submit(message("hello"))
        await async_wait_until(lambda: host.reports, timeout=5, what="the early report")
    assert host.reports[0].message_id == results[0].message_id


async def test_a_report_for_an_unknown_reference_is_logged_and_ignored(
    fake: FakeModem, tmp_path: Path, host: Host, logs: pytest.LogCaptureFixture
) -> None:
    report = encode_status_report_pdu(77, NUMBER, submitted=WHEN, discharged=WHEN, status=0)
    async with modem(fast(fake.link, read_timeout=0.25), tmp_path, host) as transport:
        fake.unsolicited(f"\r\n+CDS: {len(report) - 1}\r\n{report.hex().upper()}\r\n")
        await async_wait_until(lambda: "unknown reference 77" in logs.text, timeout=5, what="the log line")
        assert (await transport.submit(message("still fine")))[0].outcome is Outcome.SUBMITTED
    assert not host.reports


@pytest.mark.parametrize(
    ("code", "outcome", "dsn"), [(38, Outcome.TEMPORARY, "4.4.0"), (304, Outcome.PERMANENT, "5.6.0")]
)
async def test_cms_error_on_the_second_send_is_mapped(
    fake: FakeModem, tmp_path: Path, host: Host, code: int, outcome: Outcome, dsn: str
) -> None:
    quirky(fake, cms_error_on_send={2: code})
    async with modem(fast(fake.link), tmp_path, host) as transport:
        results = await transport.submit(message("x" * 400))
    assert [r.outcome for r in results] == [Outcome.SUBMITTED, outcome]
    assert (results[1].dsn, f"+CMS ERROR: {code}" in results[1].reason) == (dsn, True)


async def test_failed_sends_in_a_row_reinitialise_the_modem(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, cms_error_on_send={1: 38, 2: 38})
    async with modem(fast(fake.link, max_failures=2), tmp_path, host) as transport:
        for queue_id in ("Q1", "Q2"):
            assert (await transport.submit(message("hi", queue_id)))[0].outcome is Outcome.TEMPORARY
        await async_wait_until(lambda: transport.reopened == 1, timeout=5, what="a re-initialisation")
        assert (await transport.submit(message("hi", "Q3")))[0].outcome is Outcome.SUBMITTED


@pytest.mark.parametrize("quirk", ["hang_on_send", "hang_at_prompt"])
async def test_a_hang_mid_send_is_recovered_and_the_part_sent_once(
    fake: FakeModem, tmp_path: Path, host: Host, quirk: str
) -> None:
    quirky(fake, **{quirk: 2})
    async with modem(fast(fake.link, read_timeout=0.25), tmp_path, host) as transport:
        results = await transport.submit(message("x" * 400))
        assert transport.reopened >= 1
    assert [r.outcome for r in results] == [Outcome.SUBMITTED] * 3
    assert fake.closes >= 1
    assert [decode_submit_pdu(pdu).udh[-1] for pdu in fake.sent] == [1, 2, 3]  # each part once


async def test_echo_slow_answers_and_unsolicited_lines_mid_reply(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, echo=True, urc_mid_reply=True, answer_delay=0.02)
    fake.preload(deliver_pdu("waiting on the SIM"))
    async with modem(fast(fake.link), tmp_path, host) as transport:
        results = await transport.submit(message("x" * 200))
        await async_wait_until(lambda: host.mos, timeout=5, what="the stored SMS")
    assert [r.outcome for r in results] == [Outcome.SUBMITTED] * 2
    assert host.mos[0].text == "waiting on the SIM"


async def test_garbage_bytes_on_the_line_do_not_stop_the_modem(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, garbage=b"\xff\x00\x13\x88junk")
    async with modem(fast(fake.link), tmp_path, host) as transport:
        assert (await transport.submit(message("hello")))[0].outcome is Outcome.SUBMITTED
        fake.deliver(deliver_pdu("through the noise"))
        await async_wait_until(lambda: host.mos, timeout=5, what="the SMS")
    assert host.mos[0].text == "through the noise"


# -- the SIM ---------------------------------------------------------------------------------------


async def test_a_wrong_pin_stops_with_a_clear_error_and_no_retries(
    fake: FakeModem, tmp_path: Path, host: Host, logs: pytest.LogCaptureFixture
) -> None:
    quirky(fake, pin="1234")
    async with modem(fast(fake.link, pin="9999"), tmp_path, host) as transport:
        assert "refused the PIN" in transport.stopped
        result = (await transport.submit(message("waits in the queue")))[0]
    assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, "4.3.5")
    assert "stopped: the SIM refused the PIN (+CME ERROR: 16)" in result.reason
    assert any(r.levelno == logging.ERROR and "refused the PIN" in r.getMessage() for r in logs.records)
    assert fake.pin_attempts == 1
    async with modem(fast(fake.link, pin="9999"), tmp_path, host) as transport:  # a restart does not try again
        assert "refused this PIN before" in transport.stopped
    assert fake.pin_attempts == 1
    async with modem(fast(fake.link, pin="1234"), tmp_path, host) as transport:  # a new PIN is tried
        assert transport.ready
    assert fake.pin_attempts == 2


async def test_a_sim_asking_for_a_pin_without_one_configured_stops(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, pin="1234")
    async with modem(fast(fake.link), tmp_path, host) as transport:
        assert "none is configured" in transport.stopped
    assert fake.pin_attempts == 0


async def test_a_wrong_pin_during_recovery_stops_the_modem(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    async with modem(fast(fake.link, pin="9999"), tmp_path, host) as transport:  # no PIN asked at first
        quirky(fake, pin="1234")
        fake.unplug()
        fake.plug()  # comes back asking for its PIN
        await async_wait_until(lambda: transport.stopped, timeout=5, what="the stop")
        result = (await transport.submit(message("hi")))[0]
    assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, "4.3.5")
    assert "refused the PIN" in result.reason
    assert fake.pin_attempts == 1


# -- receiving -----------------------------------------------------------------------------------


async def test_two_part_mo_out_of_order_is_committed_then_deleted(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    async with modem(fast(fake.link), tmp_path, host):
        fake.deliver(deliver_pdu("world", seq=2, total=2))
        fake.deliver(deliver_pdu("Hello ", seq=1, total=2))
        await async_wait_until(lambda: len(host.mos) == 2 and not fake.sim, timeout=5, what="both parts")
    second, first = host.mos
    assert (second.text, second.udh.hex()) == ("world", "050003070202")
    assert (first.text, first.udh.hex()) == ("Hello ", "050003070201")
    assert (first.sender, first.to, first.coding, first.sent) == ("+4917012345", "+15550001111", 0, WHEN)


async def test_two_part_mo_out_of_order_reaches_the_daemons_inbound_store(fake: FakeModem, config: Config) -> None:
    gateway = GatewayConfig("gsm1", "modem", fast(fake.link))
    daemon = Daemon(dataclasses.replace(config, gateways=(gateway,)))
    await daemon.start()
    try:
        assert isinstance(daemon.transports["gsm1"], ModemTransport)
        fake.deliver(deliver_pdu("world", seq=2, total=2))
        fake.deliver(deliver_pdu("Hello ", seq=1, total=2))
        await async_wait_until(lambda: not fake.sim, timeout=5, what="both parts taken off the SIM")
        assert daemon.store is not None
        again = fake.preload(deliver_pdu("Hello ", seq=1, total=2), stat=0)  # the same SMS read a second time
        await async_wait_until(lambda: again not in fake.sim, timeout=5, what="the repeat taken off the SIM")
        rows = [r for r in list_inbound(daemon.store.conn) if r.smsc_id.startswith("pdu-")]  # as they arrived
    finally:
        await daemon.stop()
    assert [(r.gateway, r.sender, r.to, r.text, r.udh.hex()) for r in rows] == [  # the repeat stored once
        ("gsm1", "+4917012345", "+15550001111", "world", "050003070202"),
        ("gsm1", "+4917012345", "+15550001111", "Hello ", "050003070201"),
    ]


async def test_mail_through_the_daemon_goes_out_by_modem_and_its_reports_come_back(
    fake: FakeModem, config: Config
) -> None:
    gateway = GatewayConfig("gsm1", "modem", fast(fake.link, report=True))
    daemon = Daemon(dataclasses.replace(config, gateways=(gateway,)))
    await daemon.start()
    try:
        lmtp = daemon.bound["lmtp"]
        client = await LmtpClient.connect(lmtp.host, lmtp.port)
        await client.command("LHLO test")
        body = b"From: a@example.com\r\nSubject: x\r\n\r\n" + b"Meet me at the station. " * 10
        _, _, replies = await client.send("a@example.com", ['"sms:+15551234567?maxmsgs=3"@example.com'], body)
        await client.close()
        assert [r.code for r in replies] == [250]
        assert daemon.store is not None
        store = daemon.store

        def states() -> list[str]:
            return [p.state for m in store.conn.execute("SELECT id FROM message") for p in store.load(m[0]).parts]

        await async_wait_until(lambda: states() == ["delivered", "delivered"], timeout=10, what="both delivered")
    finally:
        await daemon.stop()
    assert [decode_submit_pdu(pdu).destination for pdu in fake.sent] == ["+15551234567"] * 2


async def test_an_mo_stays_on_the_sim_until_it_is_committed(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    host.fail_mo = 1
    host.on_commit = lambda: len(fake.sim)
    async with modem(fast(fake.link), tmp_path, host):
        fake.deliver(deliver_pdu("Привет"))
        await async_wait_until(lambda: host.mos and not fake.sim, timeout=5, what="the sweep's commit")
    assert host.sim_sizes == [1, 1]  # refused, then taken: on the SIM both times
    assert (host.mos[0].text, host.mos[0].coding) == ("Привет", 2)


async def test_dropped_indications_are_made_up_for_by_the_sweep(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, drop_indications=True)
    async with modem(fast(fake.link), tmp_path, host):
        fake.deliver(deliver_pdu("no +CMTI for me"))
        await async_wait_until(lambda: host.mos, timeout=5, what="the sweep")


async def test_a_full_sim_is_emptied_at_start(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, storage_size=5)
    for n in range(5):
        fake.preload(deliver_pdu(f"old {n}"))
    assert fake.deliver(deliver_pdu("refused")) is None
    async with modem(fast(fake.link), tmp_path, host):
        await async_wait_until(lambda: len(host.mos) == 5 and not fake.sim, timeout=5, what="the SIM emptied")
        assert fake.deliver(deliver_pdu("room again")) is not None
        await async_wait_until(lambda: len(host.mos) == 6, timeout=5, what="the new SMS")


async def test_a_pdu_that_lies_about_its_length_is_saved_and_the_rest_committed(
    fake: FakeModem, tmp_path: Path, host: Host
) -> None:
    quirky(fake, list_length_lie=3)  # every +CMGL header lies too
    liar = bytearray(deliver_pdu("short"))
    liar[-6] = 150  # TP-UDL claims 150 septets
    fake.preload(bytes(liar))
    fake.preload(deliver_pdu("honest"))
    async with modem(fast(fake.link), tmp_path, host) as transport:
        await async_wait_until(lambda: not fake.sim, timeout=5, what="the SIM emptied")
        saved = list((transport.directory / "undecodable").iterdir())
    assert [m.text for m in host.mos] == ["honest"]
    assert len(saved) == 1 and saved[0].read_text().startswith(bytes(liar).hex().upper())


# -- the device comes and goes ----------------------------------------------------------------------


async def test_a_vanishing_device_is_reopened_when_it_comes_back(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    async with modem(fast(fake.link), tmp_path, host) as transport:
        fake.unplug()
        await async_wait_until(lambda: not transport.ready, timeout=5, what="the hang-up")
        sending = asyncio.create_task(transport.submit(message("queued meanwhile")))
        fake.plug()
        results = await sending
    assert results[0].outcome is Outcome.SUBMITTED
    assert len(fake.sent) == 1


async def test_power_cycle_runs_when_reopening_alone_fails(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    marker = tmp_path / "power-cycled"
    command = f"{sys.executable} -c \"open('{marker}', 'a').write('x')\""
    async with modem(fast(fake.link, power_cycle=command), tmp_path, host) as transport:
        fake.unplug()
        await async_wait_until(marker.exists, timeout=5, what="the power cycle")
        fake.plug()
        await async_wait_until(lambda: transport.ready, timeout=5, what="the modem back")


async def test_a_silent_modem_at_start_is_not_fatal(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    quirky(fake, silent=True)
    async with modem(fast(fake.link, read_timeout=0.1), tmp_path, host) as transport:
        assert not transport.ready
        result = (await transport.submit(message("hi")))[0]
        assert (result.outcome, result.dsn) == (Outcome.TEMPORARY, "4.4.1")
        fake.quirks.silent = False
        await async_wait_until(lambda: transport.ready, timeout=5, what="the modem waking up")


async def test_parts_sent_before_a_restart_are_known_after_it(fake: FakeModem, tmp_path: Path, host: Host) -> None:
    sms = message("x" * 400)
    async with modem(fast(fake.link), tmp_path, host) as transport:
        results = await transport.submit(sms)
    async with modem(fast(fake.link), tmp_path, host) as transport:
        found = await transport.already_submitted(sms)
        assert transport.detects_duplicates
    assert found == {r.seq: r.message_id for r in results}


# -- mailsms modem probe ---------------------------------------------------------------------------


def test_probe_prints_what_the_modem_is(fake: FakeModem, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["modem", "probe", "--device", str(fake.link), "--timeout", "0.5", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "device": str(fake.link), "manufacturer": "Fake Modems Ltd", "model": "FM-1", "revision": "1.0.7",
        "imei": "490154203237518", "own_number": "+15550001111", "sim": "READY",
        "registration": "registered (home network)", "signal": "-73 dBm (CSQ 20)", "smsc": "+15550000000",
        "storage": "SM 0/20", "indications": "2,1,0,2,0",
    }  # fmt: skip
    assert not any(c.startswith(("AT+CMGL", "AT+CMGR", "AT+CMGD", "AT+CMGS")) for c in fake.commands)


def test_probe_of_a_missing_device_exits_69(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["modem", "probe", "--device", str(tmp_path / "nothing"), "--timeout", "0.5"]) == 69
    assert "cannot open" in capsys.readouterr().err


def test_probe_uses_the_gateways_pin_once(fake: FakeModem, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quirky(fake, pin="1234")
    conf = tmp_path / "mailsms.toml"
    conf.write_text(
        f'[state]\ndir = "{tmp_path / "var"}"\n\n[[gateway]]\nid = "gsm1"\ntype = "modem"\n'
        f'device = "{fake.link}"\npin = "4321"\nread_timeout = "1s"\n'
    )
    argv = ["--config", str(conf), "modem", "probe", "--device", str(fake.link)]
    assert main(argv) == 78
    assert main(argv) == 78  # remembered: not entered a second time
    assert "refused this PIN before" in capsys.readouterr().err
    assert fake.pin_attempts == 1
