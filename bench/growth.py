"""Cost of growth: ingest rate and lookup latency at 10 k, 100 k and 1 M stored rows, in one run.

    .venv/bin/python -m bench.growth [--sizes 10000,100000,1000000] [--ingest 2000] [--lookups 2000]
                                     [--passes 3] [--tmp-dir DIR] [--json PATH]

One queue file per size in ``--sizes`` (``SqliteStore``: WAL,
``synchronous=FULL``, the daemon's schema), each filled with that many
finished messages (``delivered``, two parts each, with text, headers and
DSN fields as ingest stores them) and as many reply-log links,
bulk-inserted in key order in one transaction.  Then ``--passes`` passes
take turns over the sizes (forwards, then backwards), and each pass does,
on each file:

* **ingest**: ``--ingest`` new messages committed through ``store.enqueue``
  by eight concurrent tasks, one message each per call (as eight LMTP
  sessions do): the writer thread's group commit; messages per second;
* **due claim**: ``store.due(now, 8, gateway)``, the scheduler's query after
  every commit (the messages just ingested are due; they are deleted again
  at the end of the pass, so every pass and size has the same backlog);
* **reply-log lookup**: ``replylog.store.live_links`` of a random number,
  half with links, half without (what every incoming SMS costs);
* **queue show**: ``QueueAdmin.render_show(id, as_json=True)`` of a random
  stored message (``mailsms queue show ID --json`` without the process start).

Each lookup is timed on its own ``--lookups`` times after a warm-up; the
figure is the median (p99 is printed too).  The best pass counts (the
highest rate, the lowest median): on a shared machine, noise only ever adds
time.  The ratio is the largest size's figure over the smallest's.  Target (issue 15): flat, i.e. within about
0.8-1.25: the rate at 1 M >= 0.8 of the rate at 10 k, each latency at 1 M
<= 1.25 of its latency at 10 k.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ingest import machine_line
from bench.queuefill import messages
from bench.table import emit, row
from mailsms.queue_admin import QueueAdmin
from mailsms.store import NewMessage
from mailsms.store.sqlite import SqliteStore
from replylog.store import live_links

GATEWAY = "fake"
KEEP = 10080 * 60.0
WRITERS = 8
WARMUP = 200
FILL_CACHE_KIB = 512 * 1024
RATE_FLOOR, LATENCY_CEILING = 0.8, 1.25
LOOKUPS = ("due claim", "reply-log lookup", "queue show")


def _history(batch: list[NewMessage]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Message and part rows of finished (delivered) messages."""
    msgs = [(m.id, m.created, m.sender, m.recipient, m.number, m.gateway, m.encoding, m.text, m.params, m.dsn,
             m.headers, 0, "delivered", 1, m.created, "", "2.0.0", 0, m.created + 5, m.mail_id, m.notify, None,
             0, "", 0.0, None, GATEWAY) for m in batch]  # fmt: skip
    parts = [(m.id, p.seq, p.text, p.udh, None, "delivered", f"gw-{m.id}-{p.seq}", m.created + 5)
             for m in batch for p in m.parts]  # fmt: skip
    return msgs, parts


def grow(store: SqliteStore, count: int, first: int, rng: random.Random, pool: list[str]) -> tuple[float, list[str]]:
    """Add ``count`` finished messages and ``count`` reply links in one transaction; seconds, the new ids."""
    started = time.perf_counter()
    now = time.time()
    ids: list[str] = []
    store.conn.execute(f"PRAGMA cache_size = {-FILL_CACHE_KIB}")  # set-up, not what is measured
    with store.transaction() as conn:
        step = 20_000
        for offset in range(0, count, step):
            batch = list(messages(min(step, count - offset), now - 86400 * rng.random(), GATEWAY, first + offset))
            ids.extend(m.id for m in batch)
            msgs, parts = _history(batch)
            conn.executemany(
                "INSERT INTO message (id, created, sender, recipient, number, gateway, encoding, text, params, dsn,"
                " headers, truncated, state, attempts, next_attempt, reason, dsn_code, possible_duplicate, updated,"
                " mail_id, notify, warn_at, authenticated, alternate, fallback_after, not_before, via)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                msgs,
            )
            conn.executemany(
                "INSERT INTO part (message_id, seq, text, udh, data, state, gateway_msgid, updated)"
                " VALUES (?,?,?,?,?,?,?,?)",
                parts,
            )
            links = [(rng.choice(pool), f"user{rng.randrange(20_000)}@example.com", GATEWAY, f"<{m.id}@example.com>",
                      "", now - rng.random() * 2 * KEEP, m.id) for m in batch]  # fmt: skip
            conn.executemany(
                "INSERT OR IGNORE INTO reply_link (number, mailbox, gateway, message_id, subject, created, queue_id)"
                " VALUES (?,?,?,?,?,?,?)",
                links,
            )
    store.conn.execute("PRAGMA cache_size = -2000")  # SQLite's default again, as the daemon runs
    return time.perf_counter() - started, ids


async def ingest(store: SqliteStore, count: int, first: int) -> float:
    """Messages per second committed through ``store.enqueue`` by WRITERS concurrent one-message calls,
    after a warm-up of a tenth as many (not timed)."""

    async def run(batch: list[NewMessage]) -> float:
        work = iter(batch)

        async def writer() -> None:
            for message in work:
                await store.enqueue([message])

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(WRITERS)))
        return len(batch) / (time.perf_counter() - started)

    await run(list(messages(max(count // 10, WRITERS), time.time(), GATEWAY, first)))
    return await run(list(messages(count, time.time(), GATEWAY, first + count)))


def forget_ingested(store: SqliteStore) -> None:
    """Delete the queued messages an ingest pass added (the stored rows are the finished ones)."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM part WHERE message_id IN (SELECT id FROM message WHERE state = 'queued')")
        conn.execute("DELETE FROM message WHERE state = 'queued'")


def timed(call: Callable[[Any], object], args: list[Any]) -> dict[str, float]:
    """Median, p99 and mean µs of ``call(arg)`` for each arg after the first WARMUP."""
    for arg in args[:WARMUP]:
        call(arg)
    clock = time.perf_counter_ns
    times: list[float] = []
    for arg in args[WARMUP:]:
        start = clock()
        call(arg)
        times.append((clock() - start) / 1000.0)
    times.sort()
    return {"p50_us": round(statistics.median(times), 1), "p99_us": round(times[int(len(times) * 0.99)], 1),
            "mean_us": round(statistics.fmean(times), 1)}  # fmt: skip


def lookups(store: SqliteStore, ids: list[str], pool: list[str], n: int, rng: random.Random) -> dict[str, Any]:
    now = time.time()
    admin = QueueAdmin(store)
    absent = [f"+1999{rng.randrange(10_000_000):07d}" for _ in range(n + WARMUP)]
    numbers = [rng.choice(pool) if i % 2 else absent[i] for i in range(n + WARMUP)]
    return {
        "due claim": timed(lambda _: store.due(now, 8, GATEWAY), [None] * (n + WARMUP)),
        "reply-log lookup": timed(lambda number: live_links(store.conn, number, now, KEEP), numbers),
        "queue show": timed(lambda qid: admin.render_show(qid, as_json=True),
                            [rng.choice(ids) for _ in range(n + WARMUP)]),
    }  # fmt: skip


def measure(
    store: SqliteStore, ids: list[str], pool: list[str], args: argparse.Namespace, rng: random.Random, first: int
) -> dict[str, Any]:
    """One pass on one store: ingest (a backlog of due messages), the lookups, then the backlog deleted again."""
    rate = asyncio.run(ingest(store, args.ingest, first))
    # The lookups read a checkpointed file: how much of a small file sits in the WAL must not decide.
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    found = lookups(store, ids, pool, args.lookups, rng)
    forget_ingested(store)  # every pass and every size sees the same backlog
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"ingest_msg_per_s": rate, **found}


def bench(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rng = random.Random(args.seed)
    pool = [f"+1{rng.randrange(2_000_000_000, 9_999_999_999)}" for _ in range(max(args.sizes) * 4 // 5)]
    stores: dict[int, SqliteStore] = {}
    ids: dict[int, list[str]] = {}
    fills: dict[int, float] = {}
    passes: dict[int, list[dict[str, Any]]] = {size: [] for size in args.sizes}
    try:
        for size in args.sizes:
            (tmp / str(size)).mkdir()
            stores[size] = SqliteStore.open(tmp / str(size))
            fills[size], ids[size] = grow(stores[size], size, 0, rng, pool)
            print(f"  filled {size:,} in {fills[size]:.1f} s", file=sys.stderr, flush=True)
        for number in range(args.passes):
            # Take turns, forwards then backwards: noise of the moment hits every size alike.
            order = args.sizes if number % 2 == 0 else args.sizes[::-1]
            for size in order:
                first = 50_000_000 + number * 4 * args.ingest
                passes[size].append(measure(stores[size], ids[size], pool, args, rng, first))
        steps: list[dict[str, Any]] = []
        for size in args.sizes:
            # Best of the passes: on a shared machine noise only ever adds time.
            rate = max(p["ingest_msg_per_s"] for p in passes[size])
            found = {name: min((p[name] for p in passes[size]), key=lambda f: f["p50_us"]) for name in LOOKUPS}
            db_mib = (tmp / str(size) / "queue.sqlite").stat().st_size / 2**20
            steps.append({"size": size, "fill_s": round(fills[size], 1), "db_mib": round(db_mib),
                          "ingest_msg_per_s": round(rate, 1), **found,
                          "passes": [{"ingest_msg_per_s": round(p["ingest_msg_per_s"], 1),
                                      **{n: p[n]["p50_us"] for n in LOOKUPS}} for p in passes[size]]})  # fmt: skip
            figures = ", ".join(f"{name} p50 {found[name]['p50_us']} µs (p99 {found[name]['p99_us']})"
                                for name in LOOKUPS)  # fmt: skip
            print(f"  {size:>9,} stored ({db_mib:,.0f} MiB): ingest {rate:,.0f} msg/s; {figures}",
                  file=sys.stderr, flush=True)  # fmt: skip
    finally:
        for store in stores.values():
            store.close()
    return steps


def render(steps: list[dict[str, Any]]) -> str:
    head = "| stored | ingest msg/s | " + " | ".join(f"{n} p50 µs (p99)" for n in LOOKUPS) + " |"
    lines = [head, "|---:|---:|" + "---:|" * len(LOOKUPS)]
    for step in steps:
        cells = " | ".join(f"{step[n]['p50_us']} ({step[n]['p99_us']})" for n in LOOKUPS)
        lines.append(f"| {step['size']:,} | {step['ingest_msg_per_s']:,.0f} | {cells} |")
    first, last = steps[0], steps[-1]
    ratios = [f"ingest {last['ingest_msg_per_s'] / first['ingest_msg_per_s']:.2f}"]
    ratios += [f"{n} {last[n]['p50_us'] / first[n]['p50_us']:.2f}" for n in LOOKUPS]
    lines += ["", f"Ratio {last['size']:,} / {first['size']:,}: " + ", ".join(ratios) +
              f" (target: ingest >= {RATE_FLOOR}, latencies <= {LATENCY_CEILING})."]  # fmt: skip
    return "\n".join(lines)


def result_rows(steps: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    first, last = steps[0], steps[-1]
    at = f"{last['size']:,} vs {first['size']:,} stored"
    notes = (
        f"sizes {', '.join(f'{s:,}' for s in args.sizes)}, one queue file each; figure at the largest, "
        "baseline at the smallest; stored = finished messages (2 parts each) + as many reply links; best of "
        f"{args.passes} passes taking turns over the sizes"
    )
    rows = [row(f"ingest rate, {at}", "msg/s", last["ingest_msg_per_s"], first["ingest_msg_per_s"],
                baseline_name=f"same at {first['size']:,}", target=("ratio", ">=", RATE_FLOOR),
                path=f"SqliteStore.enqueue from {WRITERS} concurrent tasks, one message a call: writer-thread "
                     "group commit, synchronous=FULL", notes=notes)]  # fmt: skip
    paths = {
        "due claim": "SqliteStore.due(now, 8, gateway): the scheduler's query after every commit",
        "reply-log lookup": "replylog.store.live_links: the lookup of every incoming SMS",
        "queue show": "QueueAdmin.render_show(id, json): mailsms queue show ID --json without the process start",
    }
    for name in LOOKUPS:
        rows.append(row(f"{name} median, {at}", "µs", last[name]["p50_us"], first[name]["p50_us"],
                        baseline_name=f"same at {first['size']:,}", target=("ratio", "<=", LATENCY_CEILING),
                        path=paths[name], notes=f"p99 {last[name]['p99_us']} vs {first[name]['p99_us']} µs; "
                        f"{args.lookups} timed calls, best median of {args.passes} passes"))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=lambda v: sorted(int(x) for x in v.split(",")),
                        default=[10_000, 100_000, 1_000_000],
                        help="stored rows at each step (default 10k,100k,1M)")  # fmt: skip
    parser.add_argument("--ingest", type=int, default=2000, help="messages ingested at each size (default 2000)")
    parser.add_argument("--lookups", type=int, default=2000, help="timed calls of each lookup (default 2000)")
    parser.add_argument("--passes", type=int, default=3, help="passes at each size; the best counts (default 3)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the queue file goes (a real disk)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mailsms-bench-growth-", dir=args.tmp_dir) as name:
        tmp = Path(name)
        machine = machine_line(tmp)
        steps = bench(args, tmp)
    elapsed = time.monotonic() - started
    print(render(steps))
    print(f"Whole benchmark: {elapsed:.0f} s.")
    emit("growth", result_rows(steps, args))
    if args.json:
        document = {"machine": machine, "settings": {k: str(v) for k, v in vars(args).items()}, "steps": steps,
                    "elapsed_s": round(elapsed, 1)}  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
