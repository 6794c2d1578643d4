"""``mailsms stats``: counters by day and gateway from a queue filled by the real ingest path."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailsms import config
from mailsms.address import number_address
from mailsms.cli import main
from mailsms.ingest import Recipient
from mailsms.server import Handler
from mailsms.store import EXPIRED, FAILED
from mailsms.store.conn import has_table
from mailsms.store.engines import open_store
from tests.support.db import database, state_config

DAY = 86400.0


def config_file(tmp_path: Path, store_url: str = "") -> Path:
    path = tmp_path / "m.toml"
    path.write_text(
        f"[state]\ndir = '{tmp_path / 'var'}'\n[store]\nurl = '{store_url}'\n"
        "[[gateway]]\nid = 'outbox'\ntype = 'outbox'\n[[gateway]]\nid = 'spare'\ntype = 'fake'\n"
    )
    return path


def day_of(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d")


class Queue:
    """Messages enqueued as /sms/ enqueues them, then moved along by the scheduler's store calls."""

    def __init__(self, tmp_path: Path, store_url: str) -> None:
        self.config = config.load(config_file(tmp_path, store_url))
        self.config.state_dir.mkdir(mode=0o700)
        self.store = open_store(self.config.store.url, self.config.state_dir, node="test")
        self.when = 0.0
        self.handler = Handler(self.config, self.store, lambda: None, clock=lambda: self.when)

    async def add(self, when: float, number: str = "+15551234567", query: str = "", text: str = "hi") -> str:
        self.when = when
        address = number_address(number, query, self.config.address)
        row = self.handler.new_message(Recipient(address=address, shown=address.redacted()), "", text, when)
        await self.handler.commit([row])
        return row.id

    async def submit(self, message_id: str, gateway_id: str, via: str = "outbox") -> None:
        await self.store.mark_sending(message_id, [1], self.when, via=via)
        await self.store.record_submitted(message_id, [(1, gateway_id)], self.when)

    async def report(self, gateway: str, gateway_id: str, *, delivered: bool) -> None:
        reason = "" if delivered else "unknown subscriber"
        await self.store.record_report(gateway, gateway_id, delivered=delivered, reason=reason,
                                       dsn_code="" if delivered else "5.1.1", now=self.when)  # fmt: skip


@pytest.fixture
async def filled(tmp_path: Path, store_url: str) -> tuple[Path, float]:
    """Yesterday: 1 delivered, 1 failed at submission, 1 submitted on 'spare'; today: 1 expired,
    1 failed by a delivery report, 1 still queued; 40 days ago: 1 delivered."""
    now = time.time()
    queue = Queue(tmp_path, store_url)
    old = await queue.add(now - 40 * DAY)
    await queue.submit(old, "old-1")
    await queue.report("outbox", "old-1", delivered=True)
    delivered = await queue.add(now - DAY)
    await queue.submit(delivered, "gw-1")
    await queue.report("outbox", "gw-1", delivered=True)
    refused = await queue.add(now - DAY)
    await queue.store.mark_sending(refused, [1], queue.when, via="outbox")
    await queue.store.finish(refused, FAILED, "refused", "5.0.0", queue.when)
    spare = await queue.add(now - DAY, query="id=spare")
    await queue.submit(spare, "spare-1", via="spare")
    expired = await queue.add(now)
    await queue.store.finish(expired, EXPIRED, "expired", "4.4.7", now)
    bounced = await queue.add(now)
    await queue.submit(bounced, "gw-2")
    await queue.report("outbox", "gw-2", delivered=False)
    await queue.add(now, text="still waiting")
    queue.store.close()
    return config_file(tmp_path, store_url), now


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_counts_each_day_and_gateway(filled: tuple[Path, float], capsys: pytest.CaptureFixture[str]) -> None:
    path, now = filled
    code, out, _ = run(capsys, "stats", "--json", "--config", str(path))
    assert code == 0
    report = json.loads(out)
    yesterday, today = day_of(now - DAY), day_of(now)
    assert report["days"] == [
        {"date": yesterday, "gateway": "outbox", "stored": 2, "sent": 1, "delivered": 1, "failed": 1, "expired": 0},
        {"date": yesterday, "gateway": "spare", "stored": 1, "sent": 1, "delivered": 0, "failed": 0, "expired": 0},
        # never sent: counted for the routing target, "*" (any gateway)
        {"date": today, "gateway": "*", "stored": 2, "sent": 0, "delivered": 0, "failed": 0, "expired": 1},
        {"date": today, "gateway": "outbox", "stored": 1, "sent": 1, "delivered": 0, "failed": 1, "expired": 0},
    ]
    assert report["totals"] == {"stored": 6, "sent": 3, "delivered": 1, "failed": 2, "expired": 1}


def test_days_widens_the_window_to_older_messages(
    filled: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    path, now = filled
    code, out, _ = run(capsys, "stats", "--json", "--days", "41", "--config", str(path))
    assert code == 0
    report = json.loads(out)
    assert report["days"][0]["date"] == day_of(now - 40 * DAY)
    assert report["totals"]["stored"] == 7
    assert report["totals"]["delivered"] == 2
    _, out, _ = run(capsys, "stats", "--json", "--days", "1", "--config", str(path))
    assert json.loads(out)["totals"]["stored"] == 3


def test_table_has_a_row_per_day_and_gateway_and_a_total(
    filled: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    path, now = filled
    code, out, _ = run(capsys, "stats", "--config", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["DATE", "GATEWAY", "STORED", "SENT", "DELIVERED", "FAILED", "EXPIRED"]
    assert lines[1].split() == [day_of(now - DAY), "outbox", "2", "1", "1", "1", "0"]
    assert lines[5].split() == ["total", "6", "3", "1", "2", "1"]
    assert "still waiting" not in out and "hi" not in out.split()


QUEUE_TABLES = ("message", "part", "early_report", "inbound", "original", "mailout", "reply_link", "account",
                "rate_bucket")  # fmt: skip


def queue_contents(path: Path, store_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the queue, in a stable order."""
    with database(state_config(path.parent / "var", store_url)) as conn:
        return {
            table: sorted((tuple(row) for row in conn.execute(f"SELECT * FROM {table}").fetchall()), key=repr)
            for table in QUEUE_TABLES
            if has_table(conn, table)
        }


def test_stats_never_changes_the_queue(
    filled: tuple[Path, float], store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = filled
    before = queue_contents(path, store_url)
    assert before["message"]
    db = path.parent / "var" / "queue.sqlite"
    file_before = db.read_bytes() if store_url == "" else b""
    run(capsys, "stats", "--config", str(path))
    if store_url == "":  # the file is opened read-only: not even its header changes
        assert db.read_bytes() == file_before
    assert queue_contents(path, store_url) == before


def test_no_queue_yet_counts_zero_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SQLite only: "no queue" is a missing queue file (a PostgreSQL database is used as it is).
    code, out, err = run(capsys, "stats", "--json", "--config", str(config_file(tmp_path)))
    assert code == 0
    assert json.loads(out) == {
        "days": [],
        "totals": {"stored": 0, "sent": 0, "delivered": 0, "failed": 0, "expired": 0},
    }
    assert "no queue in" in err
    assert not (tmp_path / "var").exists()
    code, out, _ = run(capsys, "stats", "--config", str(config_file(tmp_path)))
    assert (code, out.strip()) == (0, "mailsms: no messages stored the last 7 days (UTC)")


def test_days_must_be_a_positive_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["stats", "--days", "0", "--config", str(config_file(tmp_path))])
    assert stopped.value.code == 64
    err = capsys.readouterr().err
    assert "at least 1" in err
