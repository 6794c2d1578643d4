"""Memory and restart: ``mailsms serve`` with 100,000 queued messages against the same with an empty queue.

    .venv/bin/python -m bench.memory_restart [--messages 100000] [--rounds 3] [--tmp-dir DIR] [--json PATH]

Two state directories, each with the daemon's queue file (``queue.sqlite``):

* **full**: ``--messages`` messages committed through the store's own
  ``enqueue`` in batches (two GSM parts each, with the headers and DSN
  fields ingest keeps), all due, all for one gateway;
* **empty**: the same schema and no messages (the baseline).

The gateway is the fake one with ``hang = "."``: a submit never completes,
so the scheduler claims what its concurrency allows (eight messages) and
the rest stays queued without churning, as behind an SMSC that stopped
answering.  Each round starts ``python -m mailsms serve`` (LMTP and HTTP on
free loopback ports) on each directory in turn and measures:

* start to serving: from just before the process is spawned until the LMTP
  port answers with its 220 greeting (polled every 5 ms);
* RSS: ``VmRSS`` from ``/proc/PID/status`` once the process has served and
  gone quiet (no CPU used for 0.5 s), and its peak (``VmHWM``).

The full directory is the same in every round, so rounds after the first
are restarts with the queue left as the previous process left it.  Medians
over rounds.  Targets (issue 15): RSS < 150 MB and start < 2 s with 100,000
messages queued.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.ingest import cpu_seconds, free_port, machine_line
from bench.queuefill import fill
from bench.table import emit, row
from mailsms.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parent.parent
TARGET_RSS_MB = 150.0
TARGET_START_S = 2.0
GATEWAY = "fake"
CONFIG = """\
[queue]
stop_grace_time = "1s"

[[gateway]]
id = "fake"
type = "fake"
hang = "."
"""


@dataclass
class Start:
    round: int
    queue: str  # "full" or "empty"
    start_s: float
    rss_mb: float
    hwm_mb: float
    settle_s: float
    queued: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def greeting(port: int) -> bool:
    """True when the port accepts and greets with 220."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.settimeout(2.0)
            return sock.recv(512).startswith(b"220")
    except OSError:
        return False


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def wait_quiet(pid: int, quiet: float = 0.5, timeout: float = 30.0) -> float:
    """Wait until the process used no CPU for ``quiet`` seconds; the seconds waited."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - before < 0.01:
            break
        before = now
    return time.monotonic() - started


def queued(state: Path) -> int:
    store = SqliteStore.open(state)
    try:
        return int(
            store.conn.execute("SELECT count(*) FROM message WHERE state IN ('queued','deferred')").fetchone()[0]
        )
    finally:
        store.close()


def start_once(state: Path, config: Path, log: Path, timeout: float = 60.0) -> tuple[float, float, float, float]:
    """(start-to-serving s, RSS MB, peak RSS MB, settle s) of one ``mailsms serve`` on ``state``."""
    lmtp, http = free_port(), free_port()
    argv = [sys.executable, "-m", "mailsms", "serve", "--config", str(config), "--log-level", "info",
            "--lmtp-listen", f"127.0.0.1:{lmtp}", "--http-listen", f"127.0.0.1:{http}",
            "--state-dir", str(state)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MAILSMS_CONFIG"}
    with log.open("ab") as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not greeting(lmtp):
            if proc.poll() is not None:
                raise RuntimeError(f"mailsms serve exited {proc.returncode}; see {log}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"mailsms serve not serving after {timeout:.0f} s")
            time.sleep(0.005)
        serving = time.monotonic() - started
        settle = wait_quiet(proc.pid)
        rss, hwm = status_kib(proc.pid, "VmRSS") / 1024, status_kib(proc.pid, "VmHWM") / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return serving, rss, hwm, settle


def bench(args: argparse.Namespace, tmp: Path) -> tuple[list[Start], float]:
    config = tmp / "mailsms.toml"
    config.write_text(CONFIG)
    dirs = {"empty": tmp / "empty", "full": tmp / "full"}
    for state in dirs.values():
        state.mkdir(mode=0o700)
        SqliteStore.open(state).close()  # the schema in both: the empty case is a restart too
    started = time.monotonic()
    store = SqliteStore.open(dirs["full"])
    try:
        fill(store, args.messages, time.time(), GATEWAY)
    finally:
        store.close()
    fill_s = time.monotonic() - started
    size = (dirs["full"] / "queue.sqlite").stat().st_size / 2**20
    print(f"  filled {args.messages:,} messages in {fill_s:.1f} s ({size:.0f} MiB queue file)", file=sys.stderr)
    starts: list[Start] = []
    for rnd in range(1, args.rounds + 1):
        for name in ("empty", "full"):
            waiting = queued(dirs[name])
            serving, rss, hwm, settle = start_once(dirs[name], config, tmp / f"{name}.log")
            starts.append(Start(rnd, name, round(serving, 3), round(rss, 1), round(hwm, 1), round(settle, 1), waiting))
            print(f"  round {rnd} {name:5} ({waiting:,} queued): serving after {serving:.3f} s, RSS {rss:.1f} MB "
                  f"(peak {hwm:.1f} MB) once quiet", file=sys.stderr, flush=True)  # fmt: skip
    return starts, fill_s


def summarise(starts: list[Start]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in ("empty", "full"):
        mine = [s for s in starts if s.queue == name]
        out[name] = {key: round(statistics.median(getattr(s, key) for s in mine), 3)
                     for key in ("start_s", "rss_mb", "hwm_mb", "queued")}  # fmt: skip
    return out


def render(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    empty, full = summary["empty"], summary["full"]
    rss_ok, start_ok = full["rss_mb"] < TARGET_RSS_MB, full["start_s"] < TARGET_START_S
    return "\n".join([
        "| queue | queued at start | start to serving (s) | RSS once quiet (MB) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
        f"| empty | {empty['queued']:,.0f} | {empty['start_s']:.3f} | {empty['rss_mb']:.1f} | {empty['hwm_mb']:.1f} |",
        f"| full | {full['queued']:,.0f} | {full['start_s']:.3f} | {full['rss_mb']:.1f} | {full['hwm_mb']:.1f} |",
        "",
        f"Medians of {args.rounds} rounds; the fake gateway hangs every submit, so the queue stays full.",
        f"Target RSS < {TARGET_RSS_MB:g} MB with {args.messages:,} queued: {'met' if rss_ok else 'NOT met'}; "
        f"target start < {TARGET_START_S:g} s: {'met' if start_ok else 'NOT met'}.",
    ])  # fmt: skip


def result_rows(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> list[dict[str, Any]]:
    empty, full = summary["empty"], summary["full"]
    notes = f"median of {args.rounds} starts each; fake gateway that hangs (8 in flight, the rest queued)"
    return [
        row(f"RSS with {args.messages:,} queued", "MB", full["rss_mb"], empty["rss_mb"],
            baseline_name="same, empty queue", target=("mailsms", "<", TARGET_RSS_MB),
            path="VmRSS of mailsms serve (LMTP + HTTP listeners, scheduler) once it has served and gone quiet",
            notes=f"{notes}; peak {full['hwm_mb']:.0f} vs {empty['hwm_mb']:.0f} MB"),
        row(f"start to serving with {args.messages:,} queued", "s", full["start_s"], empty["start_s"],
            baseline_name="same, empty queue", target=("mailsms", "<", TARGET_START_S),
            path="spawn of python -m mailsms serve until the LMTP port greets with 220 (interpreter start included)",
            notes=notes),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the full queue (default 100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="starts of each directory (default 3)")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the state directories go (a real disk)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mailsms-bench-memory-", dir=args.tmp_dir) as name:
        tmp = Path(name)
        machine = machine_line(tmp)
        try:
            starts, fill_s = bench(args, tmp)
        except RuntimeError as exc:
            print(f"bench.memory_restart: {exc}", file=sys.stderr)
            with contextlib.suppress(OSError):
                for log in tmp.glob("*.log"):
                    print(f"--- {log.name} ---\n{log.read_text()[-2000:]}", file=sys.stderr)
            return 2
    elapsed = time.monotonic() - started
    summary = summarise(starts)
    print(render(summary, args))
    print(f"Filling the queue: {fill_s:.1f} s. Whole benchmark: {elapsed:.0f} s.")
    emit("memory_restart", result_rows(summary, args))
    if args.json:
        document = {"machine": machine, "settings": {k: str(v) for k, v in vars(args).items()},
                    "starts": [s.as_dict() for s in starts], "summary": summary,
                    "fill_s": round(fill_s, 1)}  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
