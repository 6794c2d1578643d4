"""End to end through a real Kannel: parts/s that Kannel takes straight from a load client, and through mailsms.

    .venv/bin/python -m bench.e2e_kannel [--concurrency 8] [--warmup 2] [--duration 5] [--rounds 3]
                                         [--log-level info] [--tmp-dir DIR] [--json PATH]

One private Kannel on loopback (``tests.support.kannel``: bearerbox, smsbox,
and fakesmsc as a pure sink) serves every case of the run:

* **direct** (the baseline): ``--concurrency`` workers each send two-part
  messages the way mailsms must: one ``sendsms`` request per part with its
  UDH, ``dlr-mask=31`` and a ``dlr-url`` that a small aiohttp server in this
  process answers (the requests are built by ``transports.kannel``, from the
  parts mailsms's own segmenter makes of the load client's mail).
* **no reports** (context only): the same without ``dlr-mask``/``dlr-url``;
  Kannel is an order of magnitude faster then.
* **mailsms**: ``mailsms serve`` with the kannel gateway (``connections`` =
  ``--concurrency``: Kannel sees as many requests at once as from the direct
  client) and its HTTP listener as ``web.public_url``, so the reports come
  back to ``/dlr/kannel``.  The LMTP load client (``bench.loadclient``, eight
  connections) sends the same mail, paced at 1.1 times what the direct case
  reached, so the queue holds a backlog (mailsms is measured at its limit,
  not at the client's) that never grows far.

Each case counts the SMS bearerbox passed to fakesmsc during the measured
window (its admin ``/status`` counter), the same yardstick for every case;
the mailsms case also counts the parts whose delivery report came back and
was committed (``delivered`` in its queue).  The machine's idle share and
each process's CPU time per part are shown too: the machine is shared, and
Kannel's own rate with reports on varies a lot from run to run (it stalls
in steps of about 40 ms), hence several rounds, alternating, and the median.
After the case the backlog is drained and every part must end ``delivered``.

Ratio = mailsms parts/s / direct parts/s in the same round; target >= 0.9:
mailsms must not be the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from bench.ingest import Server, cpu_seconds, free_port, machine_line
from bench.loadclient import BODY, run_load
from bench.table import emit, row
from mailsms.segment import split_text
from mailsms.store.sqlite import DB_NAME
from tests.support.kannel import KannelInstance
from transports import kannel
from transports.base import OutgoingPart, OutgoingSms

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.9
LMTP_CONNECTIONS = 8  # enough that the pace, not lockstep replies, limits the load
OFFER = 1.1  # LMTP pace for mailsms, relative to the direct case's parts/s
# What mailsms composes of the load client's mail ("{subject}: {body}", subject "bench C.S").
SAMPLE_TEXT = f"bench 0.1: {BODY}"


@dataclass
class Window:
    """What happened during a case's measured window."""

    sent: int  # SMS bearerbox passed to fakesmsc
    delivered: int  # final delivery reports that came back
    idle: float  # share of the machine's CPU time left idle
    cpu: dict[str, float]  # CPU seconds of each process taking part


@dataclass
class Case:
    round: int
    name: str
    duration: float
    sent: int  # SMS bearerbox passed to fakesmsc in the window
    delivered: int = 0  # final delivery reports that came back in the window
    accepted: int = 0  # 202 answers the direct client counted in the window
    idle: float = 0.0  # share of the machine idle in the window
    cpu_us_per_part: dict[str, float] = field(default_factory=dict)  # per process, in the window
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, rnd: int, name: str, duration: float, window: Window, **extra: Any) -> Case:
        per_part = {k: round(v / max(window.sent, 1) * 1e6, 1) for k, v in window.cpu.items()}
        return cls(rnd, name, duration, window.sent, window.delivered, idle=round(window.idle, 3),
                   cpu_us_per_part=per_part, **extra)  # fmt: skip

    @property
    def rate(self) -> float:
        return self.sent / self.duration if self.duration else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parts_per_s"] = round(self.rate, 1)
        data["delivered_per_s"] = round(self.delivered / self.duration, 1) if self.duration else 0.0
        return data


def sample_parts() -> list[OutgoingPart]:
    """The parts mailsms makes of the load client's mail (2 GSM parts with UDH)."""
    split = split_text(SAMPLE_TEXT, maxmsgs=2, reference=1)
    return [OutgoingPart(seq, part.text, part.udh) for seq, part in enumerate(split.parts, start=1)]


class ReportSink:
    """The small local server that answers the direct case's dlr-url."""

    def __init__(self) -> None:
        self.final = 0
        self.other = 0
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if request.query.get("status") in ("1", "2", "16"):
            self.final += 1
        else:
            self.other += 1
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/dlr/direct", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def direct_case(
    kannel_box: KannelInstance, sink: ReportSink | None, rnd: int, args: argparse.Namespace, timing: tuple[float, float]
) -> Case:
    """Workers send 2-part messages straight to sendsms, one request per part, for warm-up + duration."""
    name = "direct" if sink else "no reports"
    warmup, duration = timing
    report_base = f"http://127.0.0.1:{sink.port}" if sink else ""
    options = kannel.Options(
        url=kannel_box.sendsms_url, username=kannel_box.username, password=kannel_box.password, dlr_mask=31
    )
    parts = sample_parts()
    start = time.monotonic()
    window = (start + warmup, start + warmup + duration)
    accepted = 0
    errors: list[str] = []

    async def worker(session: aiohttp.ClientSession, number: int) -> None:
        nonlocal accepted
        seq = 0
        while time.monotonic() < window[1]:
            seq += 1
            queue_id = f"D{rnd}x{number}x{seq}"
            message = OutgoingSms(queue_id, f"+1555{number:03d}{seq % 10000:04d}", tuple(parts), len(parts), "gsm7")
            for part in parts:
                report = kannel.dlr_url(report_base, "direct", f"{queue_id}.{part.seq}") if report_base else ""
                query = kannel.sendsms_query(options, message, part, report)
                url = URL(f"{kannel_box.sendsms_url}?{query}", encoded=True)
                async with session.get(url) as response:
                    await response.read()
                    now = time.monotonic()
                    if response.status != 202:
                        errors.append(f"{response.status}")
                    elif window[0] <= now < window[1]:
                        accepted += 1

    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        counter = asyncio.create_task(_count_window(kannel_box, window, {"client": os.getpid()}, sink))
        await asyncio.gather(*(worker(session, n) for n in range(args.concurrency)))
        measured = await counter
    case = Case.of(rnd, name, duration, measured, accepted=accepted, errors=errors[:5])
    _progress(case)
    return case


def _machine_times() -> tuple[int, int]:
    """(all, idle) CPU ticks of the machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]  # idle + iowait


async def _count_window(
    kannel_box: KannelInstance,
    window: tuple[float, float],
    pids: dict[str, int],
    sink: ReportSink | None = None,
    db: Path | None = None,
) -> Window:
    """Kannel's sent counter, the final reports, the machine's idle share and each process's CPU in the window."""
    procs = {name: proc.pid for name, proc in kannel_box.processes.items()} | pids

    def read() -> tuple[int, int, tuple[int, int], dict[str, float]]:
        delivered = sink.final if sink else _delivered_parts(db) if db else 0
        return kannel_box.sms_sent(), delivered, _machine_times(), {n: cpu_seconds(p) for n, p in procs.items()}

    await asyncio.sleep(max(window[0] - time.monotonic(), 0))
    sent_0, delivered_0, (all_0, idle_0), cpu_0 = await asyncio.to_thread(read)
    await asyncio.sleep(max(window[1] - time.monotonic(), 0))
    sent_1, delivered_1, (all_1, idle_1), cpu_1 = await asyncio.to_thread(read)
    idle = (idle_1 - idle_0) / max(all_1 - all_0, 1)
    return Window(sent_1 - sent_0, delivered_1 - delivered_0, idle, {n: cpu_1[n] - cpu_0[n] for n in procs})


def _part_states(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return {str(state): int(n) for state, n in conn.execute("SELECT state, count(*) FROM part GROUP BY state")}
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def _delivered_parts(db: Path) -> int:
    return _part_states(db).get("delivered", 0)


def mailsms_config(kannel_box: KannelInstance, http_port: int, args: argparse.Namespace) -> str:
    return f"""\
[segment]
maxmsgs = 2

[queue]
minimal_backoff_time = "2s"
maximal_backoff_time = "4s"

[web]
public_url = "http://127.0.0.1:{http_port}"

{kannel_box.gateway_toml("kannel")}connections = {args.concurrency}
"""


async def mailsms_case(
    kannel_box: KannelInstance, rnd: int, args: argparse.Namespace, tmp: Path, direct_rate: float
) -> tuple[Case, dict[str, Any]]:
    """LMTP into mailsms, paced above Kannel's direct rate; count what reaches fakesmsc and what comes back."""
    state = tmp / f"state-{rnd}"
    lmtp_port, http_port = free_port(), free_port()
    config = tmp / f"mailsms-{rnd}.toml"
    config.write_text(mailsms_config(kannel_box, http_port, args))
    argv = [
        sys.executable, "-m", "mailsms", "serve", "--config", str(config), "--log-level", args.log_level,
        "--lmtp-listen", f"127.0.0.1:{lmtp_port}", "--http-listen", f"127.0.0.1:{http_port}",
        "--state-dir", str(state),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MAILSMS_CONFIG"}
    server = Server("mailsms", argv, lmtp_port, tmp / f"mailsms-{rnd}.log", env)
    db = state / DB_NAME
    extra: dict[str, Any] = {}
    try:
        server.start()
        await server.wait_ready()
        parts_per_message = len(sample_parts())
        rate = max(direct_rate, 1.0) * OFFER / parts_per_message
        start = time.monotonic()
        window = (start + args.warmup, start + args.warmup + args.duration)
        pids = {"mailsms": server.pid, "client": os.getpid()}
        counter = asyncio.create_task(_count_window(kannel_box, window, pids, db=db))
        load = await run_load(
            "127.0.0.1",
            lmtp_port,
            connections=LMTP_CONNECTIONS,
            duration=args.duration,
            warmup=args.warmup,
            recipients=1,
            rate=rate,
        )
        measured = await counter
        extra["lmtp"] = {"messages": load.total_messages, "non_2xx": load.non_2xx, "errors": load.errors[:3]}
        extra["drain_s"], extra["part_states"] = await _drain(db, timeout=args.drain)
        extra["parts_expected"] = load.total_messages * parts_per_message
    finally:
        extra["exit"] = server.stop()
        if args.verbose or extra.get("exit") not in (0, None):
            print(f"mailsms log tail:\n{server.log_tail()}", file=sys.stderr)
    errors = [*load.errors[:3], *(f"LMTP {k}: {v}" for k, v in load.non_2xx.items())]
    case = Case.of(rnd, "mailsms", args.duration, measured, errors=errors)
    _progress(case)
    return case, extra


async def _drain(db: Path, timeout: float, settle: float = 3.0) -> tuple[float, dict[str, int]]:
    """Wait until every part is final, or nothing moved for ``settle`` seconds; the part states then.

    A part left ``submitted`` once nothing moves lost its delivery report.
    """
    start = time.monotonic()
    states = await asyncio.to_thread(_part_states, db)
    changed = start
    while time.monotonic() - start < timeout and time.monotonic() - changed < settle:
        await asyncio.sleep(0.2)
        now = await asyncio.to_thread(_part_states, db)
        if now != states:
            states, changed = now, time.monotonic()
        if states and not any(states.get(s) for s in ("queued", "sending", "submitted")):
            break
    return round(time.monotonic() - start, 1), states


def _kannel_us(case: Case) -> float:
    return sum(v for k, v in case.cpu_us_per_part.items() if k in ("bearerbox", "smsbox", "fakesmsc"))


def _progress(case: Case) -> None:
    cpu = ", ".join(f"{name} {us:,.0f}" for name, us in case.cpu_us_per_part.items())
    problems = f"  ERRORS {case.errors}" if case.errors else ""
    print(
        f"  round {case.round} {case.name:10} {case.rate:8,.0f} parts/s to fakesmsc, "
        f"{case.delivered / case.duration:,.0f} reports/s back; machine {case.idle:.0%} idle; "
        f"CPU µs/part: {cpu}{problems}",
        file=sys.stderr,
        flush=True,
    )


async def bench(args: argparse.Namespace, tmp: Path) -> tuple[list[Case], list[dict[str, Any]]]:
    cases: list[Case] = []
    checks: list[dict[str, Any]] = []
    sink = ReportSink()
    await sink.start()
    kannel_box = KannelInstance(log_level=3, interactive=False)
    try:
        await asyncio.to_thread(kannel_box.start)
        for rnd in range(1, args.rounds + 1):
            direct = await direct_case(kannel_box, sink, rnd, args, (args.warmup, args.duration))
            cases.append(direct)
            if rnd == 1 and not args.skip_reference:
                cases.append(await direct_case(kannel_box, None, rnd, args, (1.0, 3.0)))
            case, extra = await mailsms_case(kannel_box, rnd, args, tmp, direct.rate)
            cases.append(case)
            checks.append({"round": rnd, **extra})
    finally:
        await asyncio.to_thread(kannel_box.stop)
        await sink.stop()
    return cases, checks


async def run(args: argparse.Namespace) -> tuple[list[Case], list[dict[str, Any]], dict[str, Any], float]:
    """The whole benchmark in a temporary directory: cases, checks, the machine, seconds taken."""
    with tempfile.TemporaryDirectory(prefix="mailsms-bench-kannel-", dir=args.tmp_dir) as name:
        machine = machine_line(Path(name))
        started = time.monotonic()
        cases, checks = await bench(args, Path(name))
        return cases, checks, machine, time.monotonic() - started


def summarise(cases: list[Case]) -> dict[str, Any]:
    direct = [c for c in cases if c.name == "direct"]
    mails = [c for c in cases if c.name == "mailsms"]
    ratios = [m.rate / d.rate if d.rate else 0.0 for d, m in zip(direct, mails, strict=True)]
    reference = [c for c in cases if c.name == "no reports"]
    return {
        "ratios": [round(r, 3) for r in ratios],
        "ratio": round(statistics.median(ratios), 3),
        "direct_parts_per_s": round(statistics.median(d.rate for d in direct), 1),
        "mailsms_parts_per_s": round(statistics.median(m.rate for m in mails), 1),
        "mailsms_delivered_per_s": round(statistics.median(m.delivered / m.duration for m in mails), 1),
        "no_reports_parts_per_s": round(reference[0].rate, 1) if reference else None,
    }


def render(cases: list[Case], summary: dict[str, Any], checks: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "| round | direct parts/s | mailsms parts/s | ratio | reports back/s (mailsms) | machine idle "
        "(direct / mailsms) | Kannel CPU µs/part (direct / mailsms) | mailsms CPU µs/part |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    direct = [c for c in cases if c.name == "direct"]
    mails = [c for c in cases if c.name == "mailsms"]
    for d, m in zip(direct, mails, strict=True):
        ratio = m.rate / d.rate if d.rate else 0.0
        lines.append(
            f"| {d.round} | {d.rate:,.0f} | {m.rate:,.0f} | {ratio:.2f} | {m.delivered / m.duration:,.0f} "
            f"| {d.idle:.0%} / {m.idle:.0%} | {_kannel_us(d):,.0f} / {_kannel_us(m):,.0f} "
            f"| {m.cpu_us_per_part.get('mailsms', 0):,.0f} |"
        )
    if args.rounds > 1:
        lines.append(
            f"| **median** | {summary['direct_parts_per_s']:,.0f} | {summary['mailsms_parts_per_s']:,.0f} "
            f"| **{summary['ratio']:.2f}** | {summary['mailsms_delivered_per_s']:,.0f} | | | |"
        )
    lines.append("")
    if summary["no_reports_parts_per_s"] is not None:
        lines.append(
            f"Without delivery reports Kannel takes {summary['no_reports_parts_per_s']:,.0f} parts/s "
            "from the same client (context, not part of the ratio)."
        )
    lines.append(
        f"Each case: {args.warmup:g} s warm-up + {args.duration:g} s measured; {args.concurrency} requests in "
        f"flight (direct workers; mailsms's connections); 2 GSM parts a message, dlr-mask=31; parts/s = SMS "
        "bearerbox passed to fakesmsc in the window. mailsms is fed over LMTP at "
        f"{OFFER:g}x the direct rate (log level {args.log_level})."
    )
    for check in checks:
        states = check.get("part_states", {})
        lines.append(
            f"Round {check['round']} drain: {check.get('drain_s')} s after the load; parts "
            f"{json.dumps(states, sort_keys=True)} for {check.get('parts_expected')} expected; "
            f"LMTP non-2xx {check.get('lmtp', {}).get('non_2xx')}."
        )
    verdict = "met" if summary["ratio"] >= TARGET_RATIO else "NOT met"
    lines.append(f"Target ratio >= {TARGET_RATIO}: {verdict} ({summary['ratio']:.2f}).")
    return "\n".join(lines)


def _all_delivered(checks: list[dict[str, Any]]) -> bool:
    for check in checks:
        states = check.get("part_states", {})
        if states.get("delivered", 0) != check.get("parts_expected") or set(states) - {"delivered"}:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight to Kannel (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per case, not counted (default 2)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per case (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of direct + mailsms, median (default 3)")
    parser.add_argument("--drain", type=float, default=30.0, help="most seconds to wait for mailsms's backlog")
    parser.add_argument("--skip-reference", action="store_true", help="skip the case without delivery reports")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where mailsms's state goes (a real disk)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON here")
    parser.add_argument("--verbose", action="store_true", help="print mailsms's log tail after each case")
    args = parser.parse_args(argv)

    try:
        cases, checks, machine, elapsed = asyncio.run(run(args))
    except (RuntimeError, AssertionError) as exc:  # Kannel or mailsms did not start
        print(f"bench.e2e_kannel: {exc}", file=sys.stderr)
        return 2
    summary = summarise(cases)
    print(render(cases, summary, checks, args))
    complete = _all_delivered(checks)
    errors = [c for c in cases if c.errors]
    print(f"Every part delivered after the drain: {'yes' if complete else 'NO'}; cases with errors: {len(errors)}.")
    print(f"Whole benchmark: {elapsed:.0f} s.")
    emit("e2e_kannel", [row(
        "parts/s through Kannel with delivery reports", "parts/s", summary["mailsms_parts_per_s"],
        summary["direct_parts_per_s"], baseline_name="client straight to Kannel sendsms", ratio=summary["ratio"],
        target=("ratio", ">=", TARGET_RATIO),
        path="LMTP -> mailsms serve -> kannel gateway -> bearerbox -> fakesmsc, reports back to /dlr/kannel; "
             "baseline: the same sendsms requests (one per part, dlr-url) from a bare client",
        notes=f"median of {args.rounds} rounds; every part delivered after the drain: {'yes' if complete else 'NO'}",
    )])  # fmt: skip
    if args.json:
        document = {
            "machine": machine,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "cases": [c.as_dict() for c in cases],
            "summary": summary,
            "target": {"ratio": TARGET_RATIO, "met": summary["ratio"] >= TARGET_RATIO},
            "checks": checks,
            "elapsed_s": round(elapsed, 1),
        }
        with contextlib.suppress(OSError):
            args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if complete and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
