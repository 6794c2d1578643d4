"""The gammu transport against a simulated gammu-smsd playing in a real spool directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.errors import TransportDown
from tests.fakes.gammu import SimulatedGammu
from tests.support.spool_host import Host, Make, message, transports_of
from transports import gammu, gammu_format, registry
from transports.base import Outcome

LONG = "The quick brown fox {jumps} over the lazy dog @ noon. " * 4  # two GSM parts, with escapes


@pytest.fixture
def smsd(tmp_path: Path) -> SimulatedGammu:
    return SimulatedGammu(tmp_path / "spool")


@pytest.fixture
def host() -> Host:
    return Host()


@pytest.fixture
async def make(tmp_path: Path, smsd: SimulatedGammu, host: Host) -> AsyncIterator[Make]:
    async for build in transports_of(gammu, smsd.spool, tmp_path / "state", host):
        yield build


def test_registry_knows_the_gammu_type() -> None:
    assert registry.options_class("gammu") is gammu.Options


async def test_long_gsm_text_becomes_one_backup_file_per_part_in_order(make: Make, smsd: SimulatedGammu) -> None:
    transport = await make()
    results = await transport.submit(message(LONG))
    assert [(r.seq, r.outcome, r.message_id) for r in results] == [
        (1, Outcome.SUBMITTED, "Q1.1"),
        (2, Outcome.SUBMITTED, "Q1.2"),
    ]
    files = smsd.outbox()
    assert [f.fields["UDH"] for f in files] == ["0500035F0201", "0500035F0202"]
    assert all(f.name.startswith("OUTC") and f.name.endswith(".smsbackup") for f in files)
    assert [gammu_format.parse_name(f.name) for f in files] == [("Q1", 1, 0), ("Q1", 2, 0)]
    assert {f.fields["Coding"] for f in files} == {"Default_No_Compression"}
    assert files[0].fields["Number"] == '"+15551234567"'
    assert "".join(f.text for f in files) == LONG
    assert not list((smsd.spool / ".mailsms").iterdir())


async def test_ucs2_text_is_written_with_unicode_coding(make: Make, smsd: SimulatedGammu) -> None:
    transport = await make()
    await transport.submit(message("Привет 😀"))
    (file,) = smsd.outbox()
    assert (file.fields["Coding"], file.fields["UDH"], file.fields["Length"]) == ("Unicode_No_Compression", "", "9")
    assert file.text == "Привет 😀"


async def test_sent_files_are_journaled_and_removed(make: Make, smsd: SimulatedGammu, host: Host) -> None:
    transport = await make()
    await transport.submit(message(LONG))
    smsd.send_all()
    await transport.poll()
    assert not list((smsd.spool / "sent").iterdir()) and host.reports == []
    restarted = await make()
    assert await restarted.already_submitted(message(LONG)) == {1: "Q1.1", 2: "Q1.2"}


async def test_error_is_resubmitted_then_fails_the_part(make: Make, smsd: SimulatedGammu, host: Host) -> None:
    transport = await make(retries=1, retry_delay=0.0)
    await transport.submit(message("short"))
    smsd.send_all("error")
    await transport.poll()
    assert host.reports == []
    (again,) = smsd.outbox()
    assert gammu_format.parse_name(again.name) == ("Q1", 1, 1)
    smsd.send_all("error")
    await transport.poll()
    (report,) = host.reports
    assert (report.message_id, report.delivered, report.dsn) == ("Q1.1", False, "4.4.1")
    assert not list((smsd.spool / "error").iterdir())


async def test_error_waits_for_retry_delay(make: Make, smsd: SimulatedGammu, host: Host) -> None:
    transport = await make(retries=1, retry_delay=3600.0)
    await transport.submit(message("short"))
    smsd.send_all("error")
    await transport.poll()
    assert smsd.outbox() == [] and host.reports == [] and len(list((smsd.spool / "error").iterdir())) == 1


async def test_multipart_unicode_mo_is_joined_stripped_of_padding_and_removed(
    make: Make, smsd: SimulatedGammu, host: Host
) -> None:
    transport = await make()
    smsd.receive("+15557654321", "Привет, part one ", "and two 😀")
    smsd.receive("+15557654321", "plain {x} @ home", serial=1)
    await transport.poll()
    by_text = {m.text: m for m in host.mos}
    assert set(by_text) == {"Привет, part one and two 😀", "plain {x} @ home"}
    assert (by_text["Привет, part one and two 😀"].coding, by_text["plain {x} @ home"].coding) == (2, 0)
    assert {m.sender for m in host.mos} == {"+15557654321"}
    assert all(m.smsc_id.startswith("gammu-") and m.sent for m in host.mos)
    assert not list((smsd.spool / "inbox").iterdir())


async def test_mo_stays_when_the_store_refuses_it_and_keeps_its_id(
    make: Make, smsd: SimulatedGammu, host: Host
) -> None:
    transport = await make()
    host.refuse = True
    (path,) = smsd.receive("+15557654321", "keep me", when=1_700_000_000)
    copy = path.read_bytes()
    await transport.poll()
    assert path.exists()
    host.refuse = False
    await transport.poll()
    path.write_bytes(copy)  # seen again, as after a crash before the removal
    await transport.poll()
    assert [m.text for m in host.mos] == ["keep me", "keep me"]
    assert host.mos[0].smsc_id == host.mos[1].smsc_id  # the inbound store keeps it once
    assert not path.exists()


async def test_inbox_file_still_being_written_waits(make: Make, smsd: SimulatedGammu, host: Host) -> None:
    transport = await make(settle=60.0)
    smsd.receive("+15557654321", "not yet")
    await transport.poll()
    assert host.mos == []


async def test_unreadable_inbox_file_goes_to_bad(make: Make, smsd: SimulatedGammu, host: Host, tmp_path: Path) -> None:
    transport = await make()
    (smsd.spool / "inbox" / "IN20240101_101010_00_+1555_00.txt").write_bytes(b"\xff\xfe\xff\xfe\x00\xd8")
    (smsd.spool / "inbox" / "notes.txt").write_bytes(b"not gammu's")
    smsd.receive("+15557654321", "fine")
    await transport.poll()
    assert [m.text for m in host.mos] == ["fine"]
    bad = [p.name for p in (tmp_path / "state" / "gammu" / "sms1" / "bad").iterdir()]
    assert bad == ["inbox-IN20240101_101010_00_+1555_00.txt"]
    assert (smsd.spool / "inbox" / "notes.txt").exists()


async def test_start_refuses_a_missing_spool_with_its_path(make: Make, tmp_path: Path) -> None:
    with pytest.raises(TransportDown, match=r"spool directory .*nowhere does not exist"):
        await make(spool=str(tmp_path / "nowhere"))


async def test_start_refuses_a_spool_without_error(make: Make, smsd: SimulatedGammu) -> None:
    (smsd.spool / "error").rmdir()
    with pytest.raises(TransportDown, match="error does not exist"):
        await make()


async def test_submit_while_the_spool_is_gone_is_temporary(make: Make, smsd: SimulatedGammu) -> None:
    transport = await make()
    (smsd.spool / "outbox").rename(smsd.spool / "elsewhere")
    (result,) = await transport.submit(message("short"))
    assert result.outcome is Outcome.TEMPORARY and "outbox" in result.reason
    await transport.poll()


def test_options_validate_names_the_key() -> None:
    problems = gammu.Options(spool="relative", priority="cc").validate()
    assert [key for key, _ in problems] == ["spool", "priority"]
