"""A crash at any point loses nothing: SIGKILL after a 250, then restart."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from tests.support.lmtp import LmtpClient
from tests.support.proc import free_port, run_cli, serve_process
from tests.support.wait import wait_until

FAKE = """
[state]
dir = "{state}"
[queue]
minimal_backoff_time = "1s"
[[gateway]]
id = "fake"
type = "fake"
delay = "{delay}"
"""


def sent(state: Path) -> list[dict[str, object]]:
    path = state / "fake" / "sent.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def submit_one(port: int, number: str) -> int:
    client = await LmtpClient.connect("127.0.0.1", port)
    await client.command("LHLO mta")
    body = b"Subject: s\r\n\r\n" + b"long text " * 30
    _, _, data = await client.send("alice@example.com", [f'"sms:{number}?maxmsgs=2"@x'], body)
    await client.close()
    return data[0].code


def test_sigkill_while_a_part_is_sending_resends_it_exactly_once(tmp_path: Path) -> None:
    state = tmp_path / "var"
    config = tmp_path / "slow.toml"
    config.write_text(FAKE.format(state=state, delay="30s"))  # the kill lands while the part is in `sending`
    port = free_port()
    args = ["--config", str(config), "--lmtp-listen", f"127.0.0.1:{port}", "--http-listen", ""]
    with serve_process(args, cwd=tmp_path, wait_ports=[port]) as proc:
        assert asyncio.run(submit_one(port, "+15551234567")) == 250
        wait_until(lambda: _sending(state), what="part in sending")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert sent(state) == []
    config.write_text(FAKE.format(state=state, delay="0s"))
    with serve_process(args, cwd=tmp_path, wait_ports=[port]) as proc:
        wait_until(lambda: len(sent(state)) == 2, what="both parts sent after restart")
        rows: list[dict[str, object]] = []

        def listed_submitted() -> bool:  # recorded once the gateway's answer is back, after its sent.jsonl line
            listing = run_cli(["queue", "list", "--all", "--json", "--config", str(config)], cwd=tmp_path)
            rows[:] = json.loads(listing.stdout)
            return [r["state"] for r in rows] == ["submitted"]

        wait_until(listed_submitted, what="the message listed as submitted")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    assert [p["seq"] for p in sent(state)] == [1, 2]
    (row,) = rows
    assert row["sent_parts"] == 2


def test_sigkill_right_after_250_still_sends_the_message(tmp_path: Path) -> None:
    state = tmp_path / "var"
    config = tmp_path / "m.toml"
    config.write_text(FAKE.format(state=state, delay="30s"))
    port = free_port()
    args = ["--config", str(config), "--lmtp-listen", f"127.0.0.1:{port}", "--http-listen", ""]
    with serve_process(args, cwd=tmp_path, wait_ports=[port]) as proc:
        assert asyncio.run(submit_one(port, "+15557654321")) == 250
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    config.write_text(FAKE.format(state=state, delay="0s"))
    with serve_process(args, cwd=tmp_path, wait_ports=[port]):
        wait_until(lambda: len(sent(state)) == 2, what="message sent after restart")
    assert [(p["to"], p["seq"]) for p in sent(state)] == [("+15557654321", 1), ("+15557654321", 2)]


def _sending(state: Path) -> bool:
    import sqlite3

    db = state / "queue.sqlite"
    if not db.exists():
        return False
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM part WHERE state = 'sending'").fetchone()[0] > 0
