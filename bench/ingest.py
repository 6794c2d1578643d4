"""Ingest benchmark: ``mailsms serve`` with its durable queue against an aiosmtpd LMTP null sink, in one run.

    .venv/bin/python -m bench.ingest [--rounds 2] [--warmup 2] [--duration 7] [--json PATH]
                                     [--gateway outbox|fake] [--log-level info] [--tmp-dir DIR]

Two servers, each its own process on a free loopback port:

* the ceiling: an aiosmtpd ``LMTP`` null sink whose handler accepts every
  recipient and answers one ``250 OK`` per recipient after DATA;
* ``python -m mailsms serve`` with LMTP only, its state (the SQLite queue in
  WAL mode with ``synchronous=FULL``) in a temporary directory.  With the
  default ``--gateway outbox`` there is no configuration file: the built-in
  outbox gateway is used, so the scheduler in the same process also writes
  (and fsyncs) one outbox file per accepted recipient while mail comes in.
  ``--gateway fake`` configures the fake gateway instead (one JSON line per
  part appended to a file, no fsync).

The same load client (``bench.loadclient``: raw asyncio LMTP, lockstep, two
recipients a message) drives each with 1 and then 8 connections.  The cases
alternate (sink 1, mailsms 1, sink 8, mailsms 8) and the round repeats,
because the machine is noisy; the ratio of a round is mailsms / sink for the
same connection count, and the summary is the median over the rounds.  The
CPU time of each server process (utime + stime from ``/proc/<pid>/stat``,
read before the case and after the process goes quiet again, so the
scheduler's work for the case is included) is divided by the messages of the
case, warm-up included.

Target (issue 5): ratio >= 0.8 with 8 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadclient import LoadResult, run_load
from bench.table import emit, row

REPO = Path(__file__).resolve().parent.parent
TARGET_CONNECTIONS = 8
TARGET_RATIO = 0.8
CONNECTION_COUNTS = (1, 8)

SINK_SCRIPT = r"""
import asyncio, signal, sys
from aiosmtpd.lmtp import LMTP

class Sink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return "\r\n".join("250 OK" for _ in envelope.rcpt_tos)

async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    server = await loop.create_server(lambda: LMTP(Sink(), data_size_limit=None), sys.argv[1], int(sys.argv[2]))
    await stop
    server.close()

asyncio.run(main())
"""

FAKE_CONFIG = """\
[[gateway]]
id = "fake"
type = "fake"
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # after "pid (comm) ": state is field 3, utime 14 and stime 15 (1-based over the whole line)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Until the port answers with a 220 greeting; fails early if the process dies."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 1.0)
            except (OSError, TimeoutError) as exc:
                last = repr(exc)
                await asyncio.sleep(0.05)
                continue
            try:
                greeting = await asyncio.wait_for(reader.readline(), 2.0)
                if greeting.startswith(b"220"):
                    writer.write(b"QUIT\r\n")
                    with contextlib.suppress(OSError, TimeoutError):
                        await asyncio.wait_for(reader.readline(), 1.0)
                    return
                last = f"greeting {greeting!r}"
            except (OSError, TimeoutError) as exc:
                last = repr(exc)
            finally:
                writer.close()
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready on 127.0.0.1:{self.port} after {timeout:.0f} s ({last})")

    async def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> float:
        """Wait until the process stops using CPU (its backlog done); returns its CPU seconds."""
        deadline = time.monotonic() + timeout
        before = cpu_seconds(self.pid)
        while True:
            await asyncio.sleep(quiet)
            now = cpu_seconds(self.pid)
            if now - before < 0.01 or time.monotonic() > deadline:
                return now
            before = now

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


@dataclass
class Case:
    round: int
    server: str
    connections: int
    load: LoadResult
    cpu_seconds: float
    outbox_files: int | None = None

    @property
    def cpu_us_per_msg(self) -> float:
        return self.cpu_seconds / self.load.total_messages * 1e6 if self.load.total_messages else 0.0

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "round": self.round,
            "server": self.server,
            "connections": self.connections,
            **self.load.as_dict(),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "cpu_us_per_msg": round(self.cpu_us_per_msg, 1),
        }
        if self.outbox_files is not None:
            data["outbox_files"] = self.outbox_files
        return data


def count_outbox(state_dir: Path) -> int | None:
    outbox = state_dir / "outbox"
    return sum(1 for _ in outbox.glob("*.json")) if outbox.is_dir() else None


def queue_rows(state_dir: Path) -> tuple[int, str] | None:
    """(rows in the message table, journal mode) of a stopped mailsms' queue, or None."""
    path = state_dir / "queue.sqlite"
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT count(*) FROM message").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return int(rows), str(mode)
    except sqlite3.Error as exc:
        return -1, f"error: {exc}"
    finally:
        conn.close()


def machine_line(state_dir: Path) -> dict[str, Any]:
    fs = "?"
    with contextlib.suppress(OSError):
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and str(state_dir).startswith(parts[1]) and len(parts[1]) >= len(best):
                best, fs = parts[1], f"{parts[2]} ({parts[0]} on {parts[1]})"
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "state_fs": fs,
    }


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def render(cases: list[Case], summary: dict[str, Any], machine: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "| case | connections | msg/s sink | msg/s mailsms | ratio | CPU µs/msg sink | CPU µs/msg mailsms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    by_key = {(c.round, c.server, c.connections): c for c in cases}
    for rnd in range(1, args.rounds + 1):
        for conns in CONNECTION_COUNTS:
            sink, mail = by_key[(rnd, "sink", conns)], by_key[(rnd, "mailsms", conns)]
            ratio = mail.load.rate / sink.load.rate if sink.load.rate else 0.0
            lines.append(
                f"| round {rnd} | {conns} | {_fmt_rate(sink.load.rate)} | {_fmt_rate(mail.load.rate)} | "
                f"{ratio:.2f} | {sink.cpu_us_per_msg:.0f} | {mail.cpu_us_per_msg:.0f} |"
            )
    for conns in CONNECTION_COUNTS:
        med = summary[str(conns)]
        lines.append(
            f"| **median** | {conns} | {_fmt_rate(med['sink_msg_per_s'])} | {_fmt_rate(med['mailsms_msg_per_s'])} | "
            f"**{med['ratio']:.2f}** | {med['sink_cpu_us_per_msg']:.0f} | {med['mailsms_cpu_us_per_msg']:.0f} |"
        )
    lines.append("")
    lines.append(
        f"Machine: {machine['cpu_count']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, load average {machine['loadavg']} at start; state on {machine['state_fs']}."
    )
    gateway = (
        "the built-in outbox gateway (no config file): the scheduler writes and fsyncs one outbox file per "
        "recipient in the same process"
        if args.gateway == "outbox"
        else "the fake gateway (one JSON line per part, no fsync) configured in a file"
    )
    lines.append(
        f"Each case: {args.warmup:g} s warm-up (not counted) + {args.duration:g} s measured, lockstep LMTP, "
        f"2 recipients a message; mailsms (log level {args.log_level}) uses {gateway}. "
        "Ratio = mailsms / sink in the same round; median over rounds. CPU per message includes the warm-up and, "
        "for mailsms, the scheduler's work until the process is idle again."
    )
    target = summary[str(TARGET_CONNECTIONS)]["ratio"]
    verdict = "met" if target >= TARGET_RATIO else "NOT met"
    lines.append(
        f"Target ratio >= {TARGET_RATIO} with {TARGET_CONNECTIONS} connections (synchronous=FULL): "
        f"{verdict} ({target:.2f})."
    )
    return "\n".join(lines)


def summarise(cases: list[Case]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for conns in CONNECTION_COUNTS:
        sinks = sorted((c for c in cases if c.server == "sink" and c.connections == conns), key=lambda c: c.round)
        mails = sorted((c for c in cases if c.server == "mailsms" and c.connections == conns), key=lambda c: c.round)
        ratios = [m.load.rate / s.load.rate if s.load.rate else 0.0 for s, m in zip(sinks, mails, strict=True)]
        summary[str(conns)] = {
            "ratios": [round(r, 3) for r in ratios],
            "ratio": round(statistics.median(ratios), 3),
            "sink_msg_per_s": round(statistics.median(s.load.rate for s in sinks), 1),
            "mailsms_msg_per_s": round(statistics.median(m.load.rate for m in mails), 1),
            "sink_cpu_us_per_msg": round(statistics.median(s.cpu_us_per_msg for s in sinks), 1),
            "mailsms_cpu_us_per_msg": round(statistics.median(m.cpu_us_per_msg for m in mails), 1),
        }
    return summary


async def run_case(server: Server, rnd: int, conns: int, args: argparse.Namespace, state_dir: Path | None) -> Case:
    cpu_before = await server.settle(timeout=3.0)
    files_before = count_outbox(state_dir) if state_dir else None
    load = await run_load(
        "127.0.0.1", server.port, connections=conns, duration=args.duration, warmup=args.warmup, recipients=2
    )
    cpu_after = await server.settle()
    files_after = count_outbox(state_dir) if state_dir else None
    outbox = files_after - (files_before or 0) if files_after is not None else None
    case = Case(rnd, server.name, conns, load, cpu_after - cpu_before, outbox)
    extra = f", {outbox} outbox files" if outbox is not None else ""
    problems = ""
    if load.non_2xx or load.errors:
        problems = f"  NON-2xx {load.non_2xx} {load.samples[:3]} errors {load.errors[:3]}"
    print(
        f"  round {rnd} {server.name:7} {conns} conn: {load.rate:8,.0f} msg/s "
        f"({load.messages} msgs measured, {load.total_messages} in all), "
        f"{case.cpu_us_per_msg:5.0f} µs CPU/msg{extra}{problems}",
        file=sys.stderr,
        flush=True,
    )
    return case


async def bench(args: argparse.Namespace, tmp: Path) -> tuple[list[Case], dict[str, Any]]:
    state_dir = tmp / "state"
    env = {k: v for k, v in os.environ.items() if k != "MAILSMS_CONFIG"}
    sink_port, mail_port = free_port(), free_port()
    while mail_port == sink_port:
        mail_port = free_port()
    sink = Server(
        "sink", [sys.executable, "-c", SINK_SCRIPT, "127.0.0.1", str(sink_port)], sink_port, tmp / "sink.log", env
    )
    mail_argv = [
        sys.executable, "-m", "mailsms", "serve", "--log-level", args.log_level,
        "--lmtp-listen", f"127.0.0.1:{mail_port}", "--http-listen", "", "--state-dir", str(state_dir),
    ]  # fmt: skip
    if args.gateway == "fake":
        config = tmp / "mailsms.toml"
        config.write_text(FAKE_CONFIG)
        mail_argv[4:4] = ["--config", str(config)]
    mailsms = Server("mailsms", mail_argv, mail_port, tmp / "mailsms.log", env)
    cases: list[Case] = []
    extra: dict[str, Any] = {}
    try:
        sink.start()
        mailsms.start()
        await asyncio.gather(sink.wait_ready(), mailsms.wait_ready())
        for rnd in range(1, args.rounds + 1):
            for conns in CONNECTION_COUNTS:
                cases.append(await run_case(sink, rnd, conns, args, None))
                cases.append(await run_case(mailsms, rnd, conns, args, state_dir))
    finally:
        extra["sink_exit"] = sink.stop()
        extra["mailsms_exit"] = mailsms.stop()
        if extra["mailsms_exit"] not in (0, None) or args.verbose:
            print(f"mailsms log tail:\n{mailsms.log_tail()}", file=sys.stderr)
    accepted = sum(c.load.total_messages * c.load.recipients for c in cases if c.server == "mailsms")
    # total_messages includes failed ones; with non-2xx present the check is approximate
    rows = queue_rows(state_dir)
    if rows is not None:
        extra["queue_rows"], extra["journal_mode"] = rows
        extra["recipients_accepted"] = accepted
    return cases, extra


def result_rows(summary: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows of ``python -m bench``'s table: one per connection count."""
    return [
        row(f"LMTP ingest, {conns} connection{'s' if conns > 1 else ''}", "msg/s",
            summary[str(conns)]["mailsms_msg_per_s"], summary[str(conns)]["sink_msg_per_s"],
            baseline_name="aiosmtpd LMTP null sink", ratio=summary[str(conns)]["ratio"],
            target=("ratio", ">=", TARGET_RATIO),
            path=f"load client -> LMTP -> mailsms serve (SQLite WAL, synchronous=FULL, group commit; {args.gateway} "
                 "gateway sending in the same process) -> 250 per recipient; baseline: the same client -> aiosmtpd "
                 "LMTP sink that stores nothing",
            notes=f"2 recipients a message; median of {args.rounds} alternating rounds of {args.duration:g} s")
        for conns in CONNECTION_COUNTS
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the four cases (default 2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per case, not counted (default 2)")
    parser.add_argument("--duration", type=float, default=7.0, help="measured seconds per case (default 7)")
    parser.add_argument("--gateway", choices=("outbox", "fake"), default="outbox", help="mailsms gateway")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the state directory goes (a real disk)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON here")
    parser.add_argument("--verbose", action="store_true", help="print mailsms' log tail at the end")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mailsms-bench-", dir=args.tmp_dir) as name:
        tmp = Path(name)
        machine = machine_line(tmp)
        started = time.monotonic()
        try:
            cases, extra = asyncio.run(bench(args, tmp))
        except RuntimeError as exc:  # a server did not start
            print(f"bench.ingest: {exc}", file=sys.stderr)
            return 2
        elapsed = time.monotonic() - started
    summary = summarise(cases)
    print(render(cases, summary, machine, args))
    if "queue_rows" in extra:
        print(
            f"Queue check after stop: {extra['queue_rows']} rows in message "
            f"for {extra['recipients_accepted']} recipients answered; journal_mode={extra['journal_mode']}."
        )
    outbox = [(c.outbox_files, c.load.total_messages * c.load.recipients) for c in cases if c.outbox_files is not None]
    if outbox:
        written, accepted = sum(o[0] for o in outbox), sum(o[1] for o in outbox)
        print(
            f"Scheduler during the mailsms cases: {written} outbox files written for {accepted} recipients accepted "
            "(counted once the process was idle again)."
        )
    bad = [c for c in cases if c.load.non_2xx or c.load.errors or c.load.failed_messages]
    if bad:
        for c in bad:
            print(
                f"PROBLEM round {c.round} {c.server} {c.connections}: {c.load.non_2xx} {c.load.samples} {c.load.errors}"
            )
    else:
        print("Non-2xx replies: 0; connection errors: 0.")
    print(f"Whole benchmark: {elapsed:.0f} s.")
    emit("ingest", result_rows(summary, args))
    if args.json:
        document = {
            "machine": machine,
            "settings": {
                "rounds": args.rounds,
                "warmup_s": args.warmup,
                "duration_s": args.duration,
                "recipients": 2,
                "gateway": args.gateway,
                "log_level": args.log_level,
                "synchronous": "FULL",
            },
            "cases": [c.as_dict() for c in cases],
            "summary": summary,
            "target": {
                "connections": TARGET_CONNECTIONS,
                "ratio": TARGET_RATIO,
                "met": summary[str(TARGET_CONNECTIONS)]["ratio"] >= TARGET_RATIO,
            },
            "checks": extra,
            "elapsed_s": round(elapsed, 1),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
