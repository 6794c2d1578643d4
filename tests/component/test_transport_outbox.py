"""The outbox transport against a real directory: file format, atomicity, no rewrites, crash recovery."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from mailsms.errors import TransportDown
from transports import outbox, registry
from transports.base import Outcome, OutgoingPart, OutgoingSms, PartResult, TransportContext

UDH_1 = bytes.fromhex("0500037f0201")
UDH_2 = bytes.fromhex("0500037f0202")


def sms(queue_id: str = "4XyZ12", to: str = "+15551234567", **changes: object) -> OutgoingSms:
    fields: dict[str, object] = {
        "queue_id": queue_id,
        "to": to,
        "parts": (OutgoingPart(1, "Hello ", UDH_1), OutgoingPart(2, "world", UDH_2)),
        "total": 2,
        "encoding": "gsm7",
        "sender": "alice@example.org",
    }
    fields.update(changes)
    return OutgoingSms(**fields)  # type: ignore[arg-type]


def context(state_dir: Path) -> TransportContext:
    return TransportContext(gateway_id="box-1", state_dir=state_dir)


async def started(directory: Path) -> outbox.OutboxTransport:
    transport = outbox.OutboxTransport(directory, "box-1")
    await transport.start()
    return transport


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def fail_with(code: int) -> Callable[..., None]:
    def failing(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    return failing


async def test_submit_writes_queue_id_json_with_every_part(tmp_path: Path) -> None:
    transport = await started(tmp_path / "out")
    results = await transport.submit(sms())
    assert results == [
        PartResult(1, Outcome.SUBMITTED, message_id="4XyZ12.1"),
        PartResult(2, Outcome.SUBMITTED, message_id="4XyZ12.2"),
    ]
    assert listing(tmp_path / "out") == ["4XyZ12.json"]
    document = json.loads((tmp_path / "out" / "4XyZ12.json").read_text())
    assert document == {
        "queue_id": "4XyZ12",
        "to": "+15551234567",
        "sender": "alice@example.org",
        "encoding": "gsm7",
        "parts": [
            {"seq": 1, "text": "Hello ", "udh": "0500037f0201"},
            {"seq": 2, "text": "world", "udh": "0500037f0202"},
        ],
        "gateway": "box-1",
    }
    assert list(document) == ["queue_id", "to", "sender", "encoding", "parts", "gateway"]


async def test_single_part_has_empty_udh_and_unicode_survives(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    await transport.submit(sms(parts=(OutgoingPart(1, "Grüße ☺"),), total=1, encoding="ucs2"))
    document = json.loads((tmp_path / "4XyZ12.json").read_text())
    assert document["parts"] == [{"seq": 1, "text": "Grüße ☺", "udh": ""}]
    assert document["encoding"] == "ucs2"


async def test_binary_part_adds_data_as_hex(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    part = OutgoingPart(1, "", bytes.fromhex("06050415820000"), data=b"\x00\xffAB")
    await transport.submit(sms(parts=(part,), total=1, encoding="binary"))
    document = json.loads((tmp_path / "4XyZ12.json").read_text())
    assert document["parts"] == [{"seq": 1, "text": "", "udh": "06050415820000", "data": "00ff4142"}]


async def test_default_dir_is_outbox_under_state_dir_with_mode_0700(tmp_path: Path) -> None:
    transport = registry.create("outbox", outbox.Options(), context(tmp_path / "var"))
    await transport.start()
    await transport.submit(sms())
    assert (tmp_path / "var" / "outbox" / "4XyZ12.json").is_file()
    assert stat.S_IMODE((tmp_path / "var" / "outbox").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "var" / "outbox" / "4XyZ12.json").stat().st_mode) == 0o600


async def test_configured_dir_is_used(tmp_path: Path) -> None:
    transport = outbox.create(outbox.Options(dir=str(tmp_path / "spool")), context(tmp_path / "var"))
    await transport.start()
    await transport.submit(sms())
    assert listing(tmp_path / "spool") == ["4XyZ12.json"]


async def test_existing_file_is_never_rewritten_and_counts_as_submitted(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    await transport.submit(sms())
    before = (tmp_path / "4XyZ12.json").read_bytes()
    again = sms(parts=(OutgoingPart(1, "other text", UDH_1), OutgoingPart(2, "x", UDH_2)), possible_duplicate=True)
    results = await transport.submit(again)
    assert [(r.seq, r.outcome) for r in results] == [(1, Outcome.SUBMITTED), (2, Outcome.SUBMITTED)]
    assert (tmp_path / "4XyZ12.json").read_bytes() == before
    assert listing(tmp_path) == ["4XyZ12.json"]


async def test_file_of_another_number_is_left_alone_and_submit_is_temporary(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    await transport.submit(sms(to="+15550000001"))
    before = (tmp_path / "4XyZ12.json").read_bytes()
    results = await transport.submit(sms(to="+15550000002"))
    assert [(r.seq, r.outcome) for r in results] == [(1, Outcome.TEMPORARY)]
    assert "another number" in results[0].reason
    assert (tmp_path / "4XyZ12.json").read_bytes() == before


async def test_part_missing_from_existing_file_is_temporary_after_those_present(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    await transport.submit(sms(parts=(OutgoingPart(1, "Hello ", UDH_1),)))
    results = await transport.submit(sms())
    assert [(r.seq, r.outcome) for r in results] == [(1, Outcome.SUBMITTED), (2, Outcome.TEMPORARY)]


async def test_already_submitted_lists_the_seqs_in_the_file(tmp_path: Path) -> None:
    await (await started(tmp_path)).submit(sms())
    restarted = await started(tmp_path)  # a new process after a crash
    assert restarted.detects_duplicates is True
    assert await restarted.already_submitted(sms()) == {1: "4XyZ12.1", 2: "4XyZ12.2"}
    assert await restarted.already_submitted(sms(to="+15559999999")) == {}
    assert await restarted.already_submitted(sms(queue_id="Other1")) == {}


async def test_already_submitted_is_empty_for_a_file_that_is_not_ours(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    (tmp_path / "4XyZ12.json").write_text("not json")
    assert await transport.already_submitted(sms()) == {}
    results = await transport.submit(sms())
    assert results[0].outcome is Outcome.TEMPORARY
    assert (tmp_path / "4XyZ12.json").read_text() == "not json"


async def test_content_is_written_under_a_temporary_name_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_at_fsync: list[list[str]] = []
    real_fsync = os.fsync

    def spying_fsync(fd: int) -> None:
        seen_at_fsync.append(listing(tmp_path))
        real_fsync(fd)

    transport = await started(tmp_path)
    monkeypatch.setattr(os, "fsync", spying_fsync)
    await transport.submit(sms())
    (temp_name,) = seen_at_fsync[0]  # the file's own fsync: only the temporary name exists
    assert temp_name.startswith(".mailsms-")
    assert temp_name.endswith(".tmp")
    assert not temp_name.endswith(".json")
    assert len(seen_at_fsync) == 2  # then the directory, after the final name appeared
    assert listing(tmp_path) == ["4XyZ12.json"]


@pytest.mark.parametrize("step", ["fsync", "link"])
async def test_disk_full_midway_is_temporary_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    transport = await started(tmp_path)
    monkeypatch.setattr(os, step, fail_with(errno.ENOSPC))
    results = await transport.submit(sms())
    assert len(results) == 1
    assert results[0].seq == 1
    assert results[0].outcome is Outcome.TEMPORARY
    assert "No space left on device" in results[0].reason
    assert results[0].dsn == "4.3.1"
    assert listing(tmp_path) == []


async def test_other_write_errors_are_temporary_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transport = await started(tmp_path)
    monkeypatch.setattr(os, "write", fail_with(errno.EIO))
    results = await transport.submit(sms())
    assert [(r.seq, r.outcome) for r in results] == [(1, Outcome.TEMPORARY)]
    assert "Input/output error" in results[0].reason
    assert listing(tmp_path) == []


async def test_without_hard_links_it_renames_and_still_never_rewrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = await started(tmp_path)
    monkeypatch.setattr(os, "link", fail_with(errno.EPERM))
    assert (await transport.submit(sms()))[0].outcome is Outcome.SUBMITTED
    before = (tmp_path / "4XyZ12.json").read_bytes()
    assert (await transport.submit(sms(sender="bob@example.org")))[1].outcome is Outcome.SUBMITTED
    assert (tmp_path / "4XyZ12.json").read_bytes() == before
    assert listing(tmp_path) == ["4XyZ12.json"]


async def test_start_removes_temporary_files_left_by_a_crash_and_nothing_else(tmp_path: Path) -> None:
    for name in (".mailsms-4XyZ12-0a1b2c3d.tmp", ".mailsms-Q2-00000000.tmp", "done.json", "other.tmp", ".hidden"):
        (tmp_path / name).write_text("x")
    await started(tmp_path)
    assert listing(tmp_path) == [".hidden", "done.json", "other.tmp"]


async def test_start_raises_transport_down_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    transport = outbox.OutboxTransport(tmp_path / "file" / "outbox", "box-1")
    with pytest.raises(TransportDown) as info:
        await transport.start()
    assert str(tmp_path / "file" / "outbox") in info.value.reason
    assert info.value.reply().startswith("451 4.4.1 ")


async def test_queue_id_that_is_not_a_plain_file_name_is_refused(tmp_path: Path) -> None:
    transport = await started(tmp_path / "out")
    for bad in ("../escape", ".hidden", "a/b", ""):
        results = await transport.submit(sms(queue_id=bad))
        assert [(r.seq, r.outcome) for r in results] == [(1, Outcome.PERMANENT)]
        assert await transport.already_submitted(sms(queue_id=bad)) == {}
    assert listing(tmp_path) == ["out"]
    assert listing(tmp_path / "out") == []


async def test_nothing_to_send_writes_nothing(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    assert await transport.submit(sms(parts=())) == []
    assert listing(tmp_path) == []
    await transport.close()


async def test_concurrent_submits_share_one_sync_and_each_gets_its_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = await started(tmp_path)
    syncs: list[int] = []
    real_sync_files = outbox.sync_files

    def counting(fds: list[int]) -> None:
        syncs.append(len(fds))
        real_sync_files(fds)

    monkeypatch.setattr(outbox, "sync_files", counting)
    ids = [f"Q{n:03d}" for n in range(12)]
    results = await asyncio.gather(*(transport.submit(sms(queue_id=i)) for i in ids))
    assert [r[0].outcome for r in results] == [Outcome.SUBMITTED] * len(ids)
    assert [r[1].message_id for r in results] == [f"{i}.2" for i in ids]
    assert listing(tmp_path) == [f"{i}.json" for i in ids]  # no temporary file left
    assert sum(syncs) == len(ids)  # every file's content was synced ...
    assert len(syncs) < len(ids)  # ... in fewer syncs than files


async def test_a_failure_in_a_batch_fails_only_its_own_message(tmp_path: Path) -> None:
    transport = await started(tmp_path)
    (tmp_path / "Q2.json").write_text(json.dumps({"to": "+15550000000", "parts": []}))  # another number's file
    results = await asyncio.gather(*(transport.submit(sms(queue_id=f"Q{n}")) for n in range(1, 4)))
    assert [r[0].outcome for r in results] == [Outcome.SUBMITTED, Outcome.TEMPORARY, Outcome.SUBMITTED]
    assert "another number" in results[1][0].reason


def test_sync_files_syncs_a_batch(tmp_path: Path) -> None:
    fds = [os.open(tmp_path / f"f{n}", os.O_WRONLY | os.O_CREAT, 0o600) for n in range(3)]
    try:
        for fd in fds:
            os.write(fd, b"data")
        outbox.sync_files(fds)  # syncfs (or an fsync each) succeeds on a real file system
        outbox.sync_files(fds[:1])
    finally:
        for fd in fds:
            os.close(fd)
