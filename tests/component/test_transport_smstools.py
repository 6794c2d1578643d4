"""The smstools transport against a simulated smsd playing in a real spool directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.errors import TransportDown
from tests.fakes.smsd import SimulatedSmsd
from tests.support.spool_host import Host, Make, message, transports_of
from transports import smstools
from transports.base import Outcome, OutgoingSms

LONG = "The quick brown fox {jumps} over the lazy dog @ noon. " * 4  # two GSM parts, with escapes


@pytest.fixture
def smsd(tmp_path: Path) -> SimulatedSmsd:
    return SimulatedSmsd(tmp_path / "spool")


@pytest.fixture
def host() -> Host:
    return Host()


@pytest.fixture
async def make(tmp_path: Path, smsd: SimulatedSmsd, host: Host) -> AsyncIterator[Make]:
    async for build in transports_of(smstools, smsd.spool, tmp_path / "state", host):
        yield build


async def test_long_gsm_text_becomes_one_file_per_part_with_udh(make: Make, smsd: SimulatedSmsd) -> None:
    transport = await make(queue="FAST")
    results = await transport.submit(message(LONG))
    assert [(r.seq, r.outcome, r.message_id) for r in results] == [
        (1, Outcome.SUBMITTED, "Q1.1"),
        (2, Outcome.SUBMITTED, "Q1.2"),
    ]
    files = smsd.outgoing()
    assert [f.headers["UDH-DATA"] for f in files] == ["05 00 03 5F 02 01", "05 00 03 5F 02 02"]
    first = files[0].headers
    assert (first["To"], first["Alphabet"], first["Hex"], first["Autosplit"], first["Report"], first["Queue"]) == (
        "15551234567", "GSM", "yes", "0", "yes", "FAST",
    )  # fmt: skip
    septets = b"".join(bytes.fromhex(f.body.decode()) for f in files)
    assert b"\x1b(" in septets and b"\x00" in septets  # "{" as an escape pair, "@" as septet 0
    assert not list((smsd.spool / ".mailsms").iterdir())  # nothing left under a temporary name


async def test_ucs2_text_is_written_as_utf16be(make: Make, smsd: SimulatedSmsd) -> None:
    transport = await make()
    await transport.submit(message("Привет 😀"))
    (file,) = smsd.outgoing()
    assert file.headers["Alphabet"] == "UCS2"
    assert file.body.decode("utf-16-be") == "Привет 😀"


async def test_status_reports_mark_each_part_delivered(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make()
    await transport.submit(message(LONG))
    smsd.send_all()
    await transport.poll()
    assert not list((smsd.spool / "sent").iterdir())
    smsd.status_report(0, "+15551234567")
    smsd.status_report(1, "+15551234567")
    await transport.poll()
    assert sorted((r.message_id, r.delivered) for r in host.reports) == [("Q1.1", True), ("Q1.2", True)]
    assert not list((smsd.spool / "report").iterdir())


async def test_failed_status_report_fails_the_part(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make()
    await transport.submit(message("short"))
    smsd.send_all()
    await transport.poll()
    smsd.status_report(0, "+15551234567", status=0x41)  # incompatible destination
    await transport.poll()
    (report,) = host.reports
    assert (report.message_id, report.delivered, report.dsn[0]) == ("Q1.1", False, "5")


async def test_network_refusal_in_failed_is_permanent(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make()
    await transport.submit(message("short"))
    smsd.fail_all("+CMS ERROR: 1")
    await transport.poll()
    (report,) = host.reports
    assert (report.message_id, report.delivered, report.dsn) == ("Q1.1", False, "5.1.1")
    assert "+CMS ERROR: 1" in report.reason
    assert not list((smsd.spool / "failed").iterdir())


async def test_modem_error_is_resubmitted_then_fails_temporarily(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make(retries=1, retry_delay=0.0)
    await transport.submit(message("short"))
    smsd.fail_all("ERROR")
    await transport.poll()
    assert host.reports == []
    (again,) = smsd.outgoing()
    assert smstools.parse_name(again.name)[1:] == (1, 1)  # type: ignore[index]
    assert "Fail_reason" not in again.headers and "Modem" not in again.headers
    smsd.fail_all("ERROR")
    await transport.poll()
    (report,) = host.reports
    assert (report.delivered, report.dsn[0]) == (False, "4")


async def test_mo_files_reach_the_inbound_sink_and_are_removed(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make()
    smsd.receive("+15557654321", "Hi there {x} @ home")
    smsd.receive("+15557654321", "Привет 😀", ucs2=True)
    smsd.receive("+15557654321", "part one ", udh=bytes.fromhex("0500037702 01"))
    await transport.poll()
    by_text = {m.text: m for m in host.mos}
    assert set(by_text) == {"Hi there {x} @ home", "Привет 😀", "part one "}
    assert by_text["part one "].udh == bytes.fromhex("050003770201")
    assert by_text["Привет 😀"].coding == 2
    assert {m.sender for m in host.mos} == {"+15557654321"}
    assert all(m.smsc_id.startswith("smsd-") and m.sent for m in host.mos)
    assert not list((smsd.spool / "incoming").iterdir())


async def test_mo_stays_when_the_store_refuses_it(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make()
    host.refuse = True
    path = smsd.receive("+15557654321", "keep me")
    await transport.poll()
    assert path.exists()
    host.refuse = False
    await transport.poll()
    assert [m.text for m in host.mos] == ["keep me"] and not path.exists()


async def test_incoming_file_still_being_written_waits(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make(settle=60.0)
    smsd.receive("+15557654321", "not yet")
    await transport.poll()
    assert host.mos == []


async def test_unreadable_files_go_to_bad_and_do_not_stop_the_rest(
    make: Make, smsd: SimulatedSmsd, host: Host, tmp_path: Path
) -> None:
    transport = await make()
    (smsd.spool / "incoming" / "GSM1.trunc").write_bytes(b"From: 1555")
    (smsd.spool / "incoming" / "GSM1.latin").write_bytes(b"From: 1555\nAlphabet: UTF-8\n\n\xff\xfe")
    (smsd.spool / "incoming" / "GSM1.xyz.LOCK").write_bytes(b"")
    (smsd.spool / "incoming" / "GSM1-concatenated").write_bytes(b"05 00 03 78 02 01 0044")
    smsd.receive("+15557654321", "fine", udh=b"")
    await transport.poll()
    assert [m.text for m in host.mos] == ["fine"]
    bad = sorted(p.name for p in (tmp_path / "state" / "smstools" / "sms1" / "bad").iterdir())
    assert bad == ["incoming-GSM1.latin", "incoming-GSM1.trunc"]
    assert (smsd.spool / "incoming" / "GSM1-concatenated").exists()


async def test_a_report_seen_again_after_a_crash_is_applied_once(make: Make, smsd: SimulatedSmsd, host: Host) -> None:
    transport = await make()
    await transport.submit(message("short"))
    smsd.send_all()
    await transport.poll()
    path = smsd.status_report(0, "+15551234567")
    copy = path.read_bytes()
    await transport.poll()
    await transport.close()
    path.write_bytes(copy)  # the crash came before the file was removed
    again = await make()
    await again.poll()
    assert len(host.reports) == 1 and not path.exists()


async def test_already_submitted_finds_parts_in_the_spool_and_the_journal(make: Make, smsd: SimulatedSmsd) -> None:
    transport = await make()
    sms = message(LONG)
    await transport.submit(sms)
    smsd.send_all()
    await transport.poll()  # part 1 and 2 in the journal only now
    other = message(LONG, queue_id="Q2")
    await transport.submit(OutgoingSms("Q2", other.to, other.parts[:1], 2, other.encoding))
    os.rename(smsd.spool / "outgoing" / smsd.outgoing()[0].name, smsd.spool / "checked" / "x")
    os.rename(smsd.spool / "checked" / "x", smsd.spool / "checked" / smstools.file_name("Q2", 1, 0))
    restarted = await make()
    assert await restarted.already_submitted(sms) == {1: "Q1.1", 2: "Q1.2"}
    assert await restarted.already_submitted(other) == {1: "Q2.1"}


async def test_start_refuses_a_missing_spool_with_its_path(make: Make, tmp_path: Path) -> None:
    with pytest.raises(TransportDown, match=r"spool directory .*nowhere does not exist"):
        await make(spool=str(tmp_path / "nowhere"))


async def test_start_refuses_a_spool_without_sent(make: Make, smsd: SimulatedSmsd) -> None:
    (smsd.spool / "sent").rmdir()
    with pytest.raises(TransportDown, match="sent does not exist"):
        await make()


async def test_submit_while_the_spool_is_gone_is_temporary(make: Make, smsd: SimulatedSmsd) -> None:
    transport = await make()
    (smsd.spool / "outgoing").rename(smsd.spool / "elsewhere")
    (result,) = await transport.submit(message("short"))
    assert result.outcome is Outcome.TEMPORARY and "outgoing" in result.reason
    await transport.poll()  # a poll over a broken spool logs and goes on


def test_options_validate_names_the_key() -> None:
    problems = smstools.Options(spool="relative", queue="bad queue").validate()
    assert [key for key, _ in problems] == ["spool", "queue"]
    archive = smstools.Options(spool="/var/spool/sms", archive="done").validate()
    assert archive == [("archive", "must be an absolute path")]
