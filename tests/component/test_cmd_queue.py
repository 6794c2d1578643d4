"""``mailsms queue``: list, show, hold, release, retry, delete, flush — with the daemon stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mailsms.cli import main
from mailsms.store import NewMessage, NewPart
from mailsms.store.queue import QueueStore


def config_for(tmp_path: Path, store_url: str) -> str:
    path = tmp_path / "m.toml"
    path.write_text(f"[state]\ndir = '{tmp_path / 'var'}'\n[store]\nurl = '{store_url}'\n")
    return str(path)


async def queue_two(state: Path, open_queue: Callable[[], QueueStore]) -> None:
    state.mkdir(mode=0o700)
    store = open_queue()
    for qid, number in (("AAAA00000001", "+15551234567"), ("AAAA00000002", "+15557654321")):
        await store.enqueue([
            NewMessage(id=qid, created=1_700_000_000.0, sender="alice@example.com",
                       recipient=f'"sms:{number}?pass=(set)"@x', number=number, gateway="outbox",
                       encoding="gsm7", text="hello", parts=(NewPart(1, "hello"),))
        ])  # fmt: skip
    store.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_queue_list_json_has_the_contract_fields(
    tmp_path: Path, store_url: str, open_queue: Callable[[], QueueStore], capsys: pytest.CaptureFixture[str]
) -> None:
    await queue_two(tmp_path / "var", open_queue)
    code, out, _ = run(capsys, "queue", "list", "--json", "--config", config_for(tmp_path, store_url))
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["AAAA00000001", "AAAA00000002"]
    assert set(rows[0]) == {
        "id",
        "from",
        "to",
        "state",
        "parts",
        "sent_parts",
        "attempts",
        "created",
        "next_attempt",
        "reason",
        "scheduled",
    }
    assert rows[0]["state"] == "queued"
    assert rows[0]["scheduled"] is None
    assert rows[0]["from"] == "alice@example.com"


async def test_hold_release_delete_and_flush(
    tmp_path: Path, store_url: str, open_queue: Callable[[], QueueStore], capsys: pytest.CaptureFixture[str]
) -> None:
    await queue_two(tmp_path / "var", open_queue)
    cfg = config_for(tmp_path, store_url)
    assert run(capsys, "queue", "hold", "AAAA00000001", "--config", cfg)[0] == 0
    states = {r["id"]: r["state"] for r in json.loads(run(capsys, "queue", "list", "--json", "--config", cfg)[1])}
    assert states == {"AAAA00000001": "hold", "AAAA00000002": "queued"}
    assert run(capsys, "queue", "release", "AAAA00000001", "--config", cfg)[0] == 0
    assert run(capsys, "queue", "release", "AAAA00000001", "--config", cfg)[0] == 65  # not held any more
    assert run(capsys, "queue", "delete", "AAAA00000002", "--config", cfg)[0] == 0
    code, _, err = run(capsys, "queue", "delete", "AAAA00000002", "--config", cfg)
    assert code == 65
    assert "no such message" in err
    assert run(capsys, "queue", "flush", "--config", cfg)[0] == 0
    assert [r["id"] for r in json.loads(run(capsys, "queue", "list", "--json", "--config", cfg)[1])] == ["AAAA00000001"]


async def test_show_never_shows_a_password(
    tmp_path: Path, store_url: str, open_queue: Callable[[], QueueStore], capsys: pytest.CaptureFixture[str]
) -> None:
    await queue_two(tmp_path / "var", open_queue)
    code, out, _ = run(capsys, "queue", "show", "AAAA00000001", "--json", "--config", config_for(tmp_path, store_url))
    assert code == 0
    shown = json.loads(out)
    assert shown["number"] == "+15551234567"
    assert "pass=(set)" in shown["recipient"]


def test_list_without_a_queue_is_empty(tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "queue", "list", "--json", "--config", config_for(tmp_path, store_url))
    assert (code, out.strip()) == (0, "[]")
