"""Scale-out: ingest and submit rates of one node against two nodes on the same PostgreSQL queue, in one run.

    .venv/bin/python -m bench.scale [--messages 3000] [--connections 8] [--rounds 2] [--tmp-dir DIR]
                                    [--pg-dir /dev/shm] [--log-level info] [--json PATH]

Three configurations, each with fresh state (a new state directory per node,
a new database on one private PostgreSQL server from
``tests.support.postgres``):

* **sqlite**: one ``mailsms serve``, the default SQLite queue (reference);
* **pg1**: one ``mailsms serve`` with ``[store] url = "postgresql://..."``;
* **pg2**: two ``mailsms serve`` on the same database, each with its own
  state directory, LMTP and HTTP ports on 127.0.0.1 and the default
  ``outbox`` gateway (its outbox is in its own state directory).

The load is ``--messages`` LMTP messages, one recipient each, sent lockstep
over ``--connections`` connections spread round-robin over the nodes' LMTP
ports (as Postfix spreads over several LMTP destinations).  Ingest rate =
messages accepted / wall time of the load.  Submit rate = messages in state
``submitted`` / time from the first accept (the earliest ``message.created``)
to the last submission (the latest ``part.updated``), both read from the
queue once every message is submitted (polled, with a deadline).  The CPU
seconds of the mailsms nodes, of PostgreSQL (postmaster and its backends)
and of this process (the load client) are read around each case, to show
where the time goes: on 2 CPUs the nodes, PostgreSQL and the client compete.

Rounds alternate the order of the configurations; the best round of each
counts (the machine is shared, and noise only slows a case down).  Targets:
two nodes >= one node on PostgreSQL, for ingest and for submit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.ingest import Server, free_port, machine_line
from bench.loadclient import RCPT_DOMAIN, SENDER, _Client, _message, _ok
from bench.table import emit, row
from mailsms.store.engines import connect_existing
from tests.support.postgres import PostgresCluster

CONFIGS = ("sqlite", "pg1", "pg2")
LABELS = {"sqlite": "SQLite, one node", "pg1": "PostgreSQL, one node", "pg2": "PostgreSQL, two nodes"}
POLL = 0.2


@dataclass
class Case:
    round: int
    config: str
    nodes: int
    messages: int
    accepted: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    load_s: float = 0.0
    submitted: int = 0
    submit_s: float = 0.0
    drain_s: float = 0.0  # from the end of the load until every message was submitted
    cpu_nodes_s: float = 0.0
    cpu_pg_s: float = 0.0
    cpu_client_s: float = 0.0
    pg_commits: int = 0  # transactions committed in the database, start-up included (autocommit statements count)
    outbox_files: int = 0

    @property
    def ingest_rate(self) -> float:
        return self.accepted / self.load_s if self.load_s else 0.0

    @property
    def submit_rate(self) -> float:
        return self.submitted / self.submit_s if self.submit_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ingest_msg_per_s"] = round(self.ingest_rate, 1)
        data["submit_msg_per_s"] = round(self.submit_rate, 1)
        return data


# --- the load: a fixed number of messages over lockstep LMTP connections -----------------------------------


@dataclass
class _Quota:
    left: int
    accepted: int = 0
    rejected: int = 0
    samples: list[str] = field(default_factory=list)


async def _send(port: int, conn: int, quota: _Quota) -> None:
    transport, client = await asyncio.get_running_loop().create_connection(_Client, "127.0.0.1", port)
    try:
        (greeting,) = await client.read(1)
        if not _ok(greeting) or not _ok(await client.command("LHLO bench.example.test")):
            raise RuntimeError(f"port {port}: greeting or LHLO refused: {greeting}")
        seq = 0
        while quota.left > 0:
            quota.left -= 1
            seq += 1
            rcpt = f'"sms:+1555123{(conn * 1009 + seq) % 10000:04d}"@{RCPT_DOMAIN}'
            replies = [await client.command(f"MAIL FROM:<{SENDER}>"), await client.command(f"RCPT TO:<{rcpt}>")]
            if all(_ok(r) for r in replies) and (await client.command("DATA"))[:3] == "354":
                client.send(_message(conn, seq, [rcpt]))
                replies += await client.read(1)
            if all(_ok(r) for r in replies) and len(replies) == 3:
                quota.accepted += 1
                continue
            quota.rejected += 1
            if len(quota.samples) < 5:
                quota.samples.append(" / ".join(replies))
            await client.command("RSET")
        await client.command("QUIT")
    finally:
        transport.close()


async def send_messages(ports: list[int], messages: int, connections: int) -> tuple[_Quota, list[str], float]:
    """Send ``messages`` over ``connections`` spread round-robin over ``ports``; (quota, errors, seconds)."""
    quota = _Quota(left=messages)
    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(_send(ports[i % len(ports)], i, quota) for i in range(connections)), return_exceptions=True
    )
    seconds = time.monotonic() - started
    errors = [f"connection {i}: {o!r}" for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
    return quota, errors + quota.samples, seconds


# --- measuring -----------------------------------------------------------------------------------------------


def postgres_cpu(data_dir: Path) -> float:
    """CPU seconds of the postmaster, its live backends and the backends it has reaped."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid, ppid = int(stat_path.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(x) for x in fields[11:15]) / tick  # utime, stime, cutime, cstime
        elif ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def queue_progress(url: str, state_dir: Path) -> tuple[int, float | None, float | None]:
    """(submitted messages, first created, last part submission) in the queue of ``url``."""
    with connect_existing(url, state_dir, read_only=True) as conn:
        if conn is None:
            return 0, None, None
        done = conn.execute("SELECT COUNT(*) FROM message WHERE state IN ('submitted', 'delivered')").fetchone()[0]
        first = conn.execute("SELECT MIN(created) FROM message").fetchone()[0]
        last = conn.execute("SELECT MAX(updated) FROM part WHERE state IN ('submitted', 'delivered')").fetchone()[0]
    return int(done), first, last


def error_lines(log: Path, limit: int = 8) -> list[str]:
    """The first lines of a node's log that report an error or a traceback."""
    found: list[str] = []
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        if any(word in line for word in ("ERROR", "error", "Traceback", "Error:")):
            found.append(line[:400])
            if len(found) >= limit:
                break
    return found


def pg_commits(url: str, state_dir: Path) -> int:
    """Transactions committed so far in the database of ``url`` (0 for SQLite)."""
    if not url:
        return 0
    with connect_existing(url, state_dir) as conn:
        assert conn is not None
        found = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(found.fetchone()[0])


def count_outbox(state_dir: Path) -> int:
    outbox = state_dir / "outbox"
    return sum(1 for _ in outbox.glob("*.json")) if outbox.is_dir() else 0


# --- one case ------------------------------------------------------------------------------------------------


def _node(tmp: Path, name: str, url: str, args: argparse.Namespace, env: dict[str, str]) -> tuple[Server, Path]:
    work = tmp / name
    state = work / "state"
    work.mkdir(parents=True)
    lmtp, http = free_port(), free_port()
    while http == lmtp:
        http = free_port()
    argv = [sys.executable, "-m", "mailsms", "serve", "--log-level", args.log_level, "--state-dir", str(state),
            "--lmtp-listen", f"127.0.0.1:{lmtp}", "--http-listen", f"127.0.0.1:{http}"]  # fmt: skip
    if url:
        config = work / "mailsms.toml"
        config.write_text(f'[store]\nurl = "{url}"\nlease_seconds = {args.lease_seconds}\n')
        argv[4:4] = ["--config", str(config)]
    return Server(name, argv, lmtp, work / "mailsms.log", env), state


async def run_case(rnd: int, config: str, tmp: Path, cluster: PostgresCluster, args: argparse.Namespace) -> Case:
    env = {k: v for k, v in os.environ.items() if k != "MAILSMS_CONFIG"}
    url = "" if config == "sqlite" else cluster.create_database(f"scale_{config}_{rnd}")
    count = 2 if config == "pg2" else 1
    nodes = [_node(tmp / f"r{rnd}-{config}", f"node{i + 1}", url, args, env) for i in range(count)]
    case = Case(rnd, config, count, args.messages)
    try:
        for server, _ in nodes:  # one after the other: the first creates the schema
            server.start()
            await server.wait_ready(30.0)
        cpu_nodes = [await server.settle(timeout=5.0) for server, _ in nodes]
        cpu_pg, cpu_client = postgres_cpu(cluster.data), time.process_time()
        quota, errors, case.load_s = await send_messages([s.port for s, _ in nodes], args.messages, args.connections)
        case.accepted, case.rejected, case.errors = quota.accepted, quota.rejected, errors
        ended = time.monotonic()
        deadline = ended + args.drain_timeout
        first = last = None
        while time.monotonic() < deadline:
            case.submitted, first, last = queue_progress(url, nodes[0][1])
            if case.submitted >= case.accepted:
                break
            await asyncio.sleep(POLL)
        case.drain_s = time.monotonic() - ended
        if first is not None and last is not None:
            case.submit_s = last - first
        case.cpu_nodes_s = sum([await s.settle() for s, _ in nodes]) - sum(cpu_nodes)
        case.cpu_pg_s = postgres_cpu(cluster.data) - cpu_pg
        case.cpu_client_s = time.process_time() - cpu_client
        case.outbox_files = sum(count_outbox(state) for _, state in nodes)
    finally:
        for server, _ in nodes:
            code = server.stop()
            trouble = error_lines(server.log_path) if case.rejected or case.errors or code not in (0, None) else []
            if trouble:
                print(f"{config} {server.name} (exit {code}) errors in its log:", *trouble, sep="\n  ", file=sys.stderr)
    case.pg_commits = pg_commits(url, nodes[0][1])  # read once the nodes are gone: their backends flushed
    per = 1e6 / case.accepted if case.accepted else 0.0
    print(
        f"  round {rnd} {config:6}: ingest {case.ingest_rate:6,.0f} msg/s ({case.accepted} in {case.load_s:.2f} s), "
        f"submit {case.submit_rate:6,.0f} msg/s ({case.submitted} in {case.submit_s:.2f} s, drain "
        f"{case.drain_s:.1f} s after the load); CPU µs/msg: nodes {case.cpu_nodes_s * per:.0f}, "
        f"postgres {case.cpu_pg_s * per:.0f}, client {case.cpu_client_s * per:.0f}"
        + (f"; {case.pg_commits * per / 1e6:.1f} PostgreSQL commits/msg" if case.pg_commits else "")
        + (f"  PROBLEMS {case.rejected} rejected {case.errors[:3]}" if case.errors or case.rejected else ""),
        file=sys.stderr,
        flush=True,
    )
    return case


async def bench(args: argparse.Namespace, tmp: Path) -> list[Case]:
    cases: list[Case] = []
    with PostgresCluster(parent=args.pg_dir) as cluster:
        for rnd in range(1, args.rounds + 1):
            order = CONFIGS if rnd % 2 else tuple(reversed(CONFIGS))
            for config in order:
                cases.append(await run_case(rnd, config, tmp, cluster, args))
        trouble = error_lines(cluster.log, limit=12)
        if trouble:
            print("PostgreSQL's log:", *trouble, sep="\n  ", file=sys.stderr)
    return cases


# --- the summary ---------------------------------------------------------------------------------------------


def best(cases: list[Case]) -> dict[str, dict[str, float]]:
    """Per configuration: the best ingest and the best submit rate over the rounds, and CPU per message."""
    summary: dict[str, dict[str, float]] = {}
    for config in CONFIGS:
        mine = [c for c in cases if c.config == config]
        top = max(mine, key=lambda c: c.ingest_rate)
        per = 1e6 / top.accepted if top.accepted else 0.0
        summary[config] = {
            "ingest": max(c.ingest_rate for c in mine),
            "submit": max(c.submit_rate for c in mine),
            "cpu_nodes_us": top.cpu_nodes_s * per,
            "cpu_pg_us": top.cpu_pg_s * per,
            "cpu_client_us": top.cpu_client_s * per,
        }
    return summary


def result_rows(
    summary: dict[str, dict[str, float]], cases: list[Case], args: argparse.Namespace
) -> list[dict[str, Any]]:
    load = f"{args.messages} LMTP messages (1 recipient), {args.connections} connections"
    notes = f"best of {args.rounds} rounds; {load}; 2 nodes + PostgreSQL + client share the machine's CPUs"
    refused = sum(c.rejected for c in cases if c.config == "pg2")
    two_notes = notes
    if refused:  # the rate counts accepted messages only; say how many were turned away
        two_notes += f"; two nodes refused {refused} of {args.messages * args.rounds} messages (4xx)"
    rows = []
    for what, figure in (("ingest", "ingest"), ("submit", "submit (outbox)")):
        rows.append(row(
            f"{figure}, two nodes vs one, PostgreSQL", "msg/s", summary["pg2"][what], summary["pg1"][what],
            baseline_name=LABELS["pg1"], target=("ratio", ">=", 1.0),
            path=f"LMTP spread over 2 mailsms serve -> one PostgreSQL queue ({what})", notes=two_notes,
        ))  # fmt: skip
    for what, figure in (("ingest", "ingest"), ("submit", "submit (outbox)")):
        rows.append(row(
            f"{figure}, PostgreSQL vs SQLite, one node", "msg/s", summary["pg1"][what], summary["sqlite"][what],
            baseline_name=LABELS["sqlite"],
            path=f"LMTP -> one mailsms serve -> PostgreSQL (cluster on {args.pg_dir}) vs SQLite ({what})",
            notes=notes + "; reference, no target",
        ))  # fmt: skip
    return rows


def render(cases: list[Case], summary: dict[str, dict[str, float]]) -> str:
    lines = [
        "| round | config | ingest msg/s | submit msg/s | 451s | drain s | CPU µs/msg nodes | postgres | client "
        "| PG commits/msg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        per = 1e6 / c.accepted if c.accepted else 0.0
        lines.append(
            f"| {c.round} | {LABELS[c.config]} | {c.ingest_rate:,.0f} | {c.submit_rate:,.0f} | {c.rejected} | "
            f"{c.drain_s:.1f} | {c.cpu_nodes_s * per:.0f} | {c.cpu_pg_s * per:.0f} | {c.cpu_client_s * per:.0f} | "
            f"{c.pg_commits * per / 1e6:.1f} |"
        )
    for config in CONFIGS:
        s = summary[config]
        lines.append(
            f"| best | **{LABELS[config]}** | {s['ingest']:,.0f} | {s['submit']:,.0f} | | | "
            f"{s['cpu_nodes_us']:.0f} | {s['cpu_pg_us']:.0f} | {s['cpu_client_us']:.0f} | |"
        )
    for what in ("ingest", "submit"):
        two, one, lite = summary["pg2"][what], summary["pg1"][what], summary["sqlite"][what]
        lines.append(
            f"{what}: two nodes / one node (PostgreSQL) = {two / one if one else 0:.2f}; "
            f"PostgreSQL / SQLite (one node) = {one / lite if lite else 0:.2f}."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=3000, help="messages a case (default 3000)")
    parser.add_argument("--connections", type=int, default=8, help="LMTP connections, over all nodes (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three configurations (default 2)")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for submission")
    parser.add_argument("--lease-seconds", type=int, default=60, help="[store] lease_seconds of the nodes")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the nodes' state goes (a real disk)")
    parser.add_argument("--pg-dir", type=Path, default=Path("/dev/shm"), help="parent of the PostgreSQL cluster")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mailsms-bench-scale-", dir=args.tmp_dir) as name:
        tmp = Path(name)
        machine = machine_line(tmp)
        try:
            cases = asyncio.run(bench(args, tmp))
        except RuntimeError as exc:  # a server or PostgreSQL did not start
            print(f"bench.scale: {exc}", file=sys.stderr)
            return 2
    summary = best(cases)
    print(render(cases, summary))
    print(f"Machine: {machine}; PostgreSQL cluster under {args.pg_dir}.")
    bad = [c for c in cases if c.errors or c.rejected or c.submitted < c.accepted or c.outbox_files < c.submitted]
    for c in bad:
        print(f"PROBLEM round {c.round} {c.config}: accepted {c.accepted}/{c.messages}, submitted {c.submitted}, "
              f"outbox files {c.outbox_files}, {c.errors[:3]}")  # fmt: skip
    print(f"Whole benchmark: {time.monotonic() - started:.0f} s.")
    emit("scale", result_rows(summary, cases, args))
    if args.json:
        document = {"machine": machine, "settings": {k: str(v) for k, v in vars(args).items()},
                    "cases": [c.as_dict() for c in cases], "summary": summary}  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
