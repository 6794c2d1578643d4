"""Reply-log benchmark: lookup latency with 1,000,000 links against the same lookup on an empty store, in one run.

    .venv/bin/python -m bench.replylog [--links 1000000] [--lookups 20000] [--tmp-dir DIR] [--json PATH]

The lookup is the one the inbound pipeline makes for every incoming SMS
(``replylog.store.live_links``: the live links of the sender's number), on
the queue file the daemon uses (``SqliteStore``: WAL, ``synchronous=FULL``,
the schema of ``mailsms.store.schema``).

1. The empty store: ``--lookups`` lookups of random numbers, after a warm-up.
2. The same file filled with ``--links`` links in one transaction: numbers
   drawn from a pool smaller than the links (so that some numbers have
   several senders), senders from 20,000 mailboxes, creation times spread
   over twice ``replylog.keep_minutes`` (about half of them expired, as
   before a purge).  Then the same number of lookups, half of numbers that
   have links and half of numbers that do not.

Each lookup is timed on its own (``perf_counter_ns``); p50, p99 and the
maximum are printed for both stores, with the ratio of the p99s.  Also
measured on the full store: recording a link (the upsert the scheduler's
commit makes) and one purge batch (how long the background purge holds the
writer).

Target (issue 7): p99 < 1 ms with 1,000,000 links.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ingest import machine_line
from bench.table import emit, row
from mailsms.inbound import PURGE_BATCH
from mailsms.store.sqlite import SqliteStore
from replylog.links import ReplyLink
from replylog.store import live_links, purge, record

TARGET_P99_US = 1000.0
KEEP = 10080 * 60.0
MAILBOXES = 20_000
WARMUP = 2000
FILL_CACHE_KIB = 512 * 1024


def numbers(rng: random.Random, count: int) -> list[str]:
    return [f"+1{rng.randrange(2_000_000_000, 9_999_999_999)}" for _ in range(count)]


def fill(store: SqliteStore, pool: list[str], count: int, now: float, rng: random.Random) -> float:
    """``count`` links in one transaction; seconds taken."""
    started = time.perf_counter()
    rows = sorted(
        (rng.choice(pool), f"user{rng.randrange(MAILBOXES)}@example.com", "outbox", f"<{i}@mail.example.com>", "",
         now - rng.random() * 2 * KEEP, f"{i:016X}")
        for i in range(count)
    )  # fmt: skip
    # Key order and a cache that holds the indexes: the fill is set-up, not what is measured.
    store.conn.execute(f"PRAGMA cache_size = {-FILL_CACHE_KIB}")
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO reply_link (number, mailbox, gateway, message_id, subject, created, queue_id)"
            " VALUES (?,?,?,?,?,?,?)",
            rows,
        )
    store.conn.execute("PRAGMA cache_size = -2000")  # SQLite's default again, as the daemon runs
    store.conn.execute("ANALYZE")
    return time.perf_counter() - started


def lookups(store: SqliteStore, wanted: list[str], now: float) -> tuple[list[float], int]:
    """Microseconds per lookup (after a warm-up), and the live links found in all."""
    conn = store.conn
    for number in wanted[:WARMUP]:
        live_links(conn, number, now, KEEP)
    times: list[float] = []
    found = 0
    clock = time.perf_counter_ns
    for number in wanted[WARMUP:]:
        start = clock()
        links = live_links(conn, number, now, KEEP)
        times.append((clock() - start) / 1000.0)
        found += len(links)
    return times, found


def stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "lookups": len(ordered),
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_us": round(ordered[-1], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


def upserts(store: SqliteStore, pool: list[str], now: float, count: int, rng: random.Random) -> float:
    """Microseconds per recorded link, ``count`` of them in one transaction."""
    links = [ReplyLink(rng.choice(pool), f"user{rng.randrange(MAILBOXES)}@example.com", "outbox", "<x@y>", "", now)
             for _ in range(count)]  # fmt: skip
    started = time.perf_counter()
    with store.transaction() as conn:
        for link in links:
            record(conn, link)
    return (time.perf_counter() - started) / count * 1e6


def purge_batch(store: SqliteStore, now: float) -> tuple[int, float]:
    started = time.perf_counter()
    with store.transaction() as conn:
        gone = purge(conn, before=now - KEEP, limit=PURGE_BATCH)
    return gone, (time.perf_counter() - started) * 1000.0


def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    now = time.time()
    store = SqliteStore.open(tmp)
    try:
        absent = numbers(rng, args.lookups + WARMUP)
        empty_times, _ = lookups(store, absent, now)
        pool = numbers(rng, max(1, int(args.links * 0.8)))
        fill_s = fill(store, pool, args.links, now, rng)
        stored = int(store.conn.execute("SELECT COUNT(*) FROM reply_link").fetchone()[0])
        half = (args.lookups + WARMUP) // 2
        mixed = [rng.choice(pool) for _ in range(half)] + absent[: args.lookups + WARMUP - half]
        rng.shuffle(mixed)
        full_times, found = lookups(store, mixed, now)
        upsert_us = upserts(store, pool, now, args.upserts, rng)
        purged, purge_ms = purge_batch(store, now)
    finally:
        store.close()
    empty, full = stats(empty_times), stats(full_times)
    return {
        "empty": empty,
        "full": {**full, "links": stored, "live_links_found": found},
        "ratio_p99": round(full["p99_us"] / empty["p99_us"], 2) if empty["p99_us"] else None,
        "fill_s": round(fill_s, 1),
        "upsert_us": round(upsert_us, 1),
        "purge_batch": {"deleted": purged, "ms": round(purge_ms, 1)},
    }


def render(result: dict[str, Any], machine: dict[str, Any]) -> str:
    empty, full = result["empty"], result["full"]
    met = full["p99_us"] < TARGET_P99_US
    return "\n".join([
        f"Reply-log lookup (replylog.store.live_links), {full['links']:,} links against an empty store, one run",
        f"machine: {machine['cpu_count']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, load {machine['loadavg']}, state on {machine['state_fs']}",
        "",
        "| store | links | lookups | p50 µs | p99 µs | max µs | mean µs |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| empty | 0 | {empty['lookups']} | {empty['p50_us']} | {empty['p99_us']} | {empty['max_us']} "
        f"| {empty['mean_us']} |",
        f"| full | {full['links']:,} | {full['lookups']} | {full['p50_us']} | {full['p99_us']} | {full['max_us']} "
        f"| {full['mean_us']} |",
        "",
        f"p99 ratio full/empty: {result['ratio_p99']}; live links found by the full-store lookups: "
        f"{full['live_links_found']:,}.",
        f"Target p99 < {TARGET_P99_US:.0f} µs with the full store: {'met' if met else 'NOT MET'}.",
        f"Filling {full['links']:,} links (one transaction): {result['fill_s']} s. Recording a link on the full "
        f"store: {result['upsert_us']} µs. One purge batch ({result['purge_batch']['deleted']:,} expired links): "
        f"{result['purge_batch']['ms']} ms.",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--links", type=int, default=1_000_000, help="links in the full store (default 1,000,000)")
    parser.add_argument("--lookups", type=int, default=20_000, help="timed lookups per store (default 20,000)")
    parser.add_argument("--upserts", type=int, default=10_000, help="links recorded on the full store")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the queue file goes (a real disk)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mailsms-bench-replylog-", dir=args.tmp_dir) as name:
        tmp = Path(name)
        machine = machine_line(tmp)
        result = bench(args, tmp)
    elapsed = time.monotonic() - started
    print(render(result, machine))
    print(f"Whole benchmark: {elapsed:.0f} s.")
    empty, full = result["empty"], result["full"]
    emit("replylog", [row(
        f"reply-log lookup p99, {full['links']:,} links", "µs", full["p99_us"], empty["p99_us"],
        baseline_name="same lookup, empty store", target=("mailsms", "<", TARGET_P99_US),
        path="replylog.store.live_links on the daemon's queue file (WAL, synchronous=FULL), one inbound SMS's lookup",
        notes=f"p50 {full['p50_us']} vs {empty['p50_us']} µs; {full['lookups']} lookups, half of numbers with links",
    )])  # fmt: skip
    if args.json:
        document = {"machine": machine, "settings": vars(args) | {"tmp_dir": str(args.tmp_dir), "json": None},
                    "result": result, "target_p99_us": TARGET_P99_US, "elapsed_s": round(elapsed, 1)}  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 0 if result["full"]["p99_us"] < TARGET_P99_US else 1


if __name__ == "__main__":
    sys.exit(main())
