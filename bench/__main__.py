"""Run every benchmark and print one table of ratios, each target marked met or missed.

    .venv/bin/python -m bench [--quick] [--only NAME ...] [--json PATH] [--markdown PATH] [--tmp-dir DIR]
                              [--doc docs/PERFORMANCE.md]

Each benchmark runs in its own subprocess (``python -m bench.<module>``) with
a timeout, so one that crashes or hangs is marked FAILED and the rest still
run.  Each ends its output with a result line (``bench.table.emit``); the
rows of all of them make the table.  ``--quick`` runs short versions (a
smoke test of the whole chain; its figures are not the ones to quote).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench.table import (
    failure_row,
    machine_description,
    parse_result,
    render_markdown,
    replace_table,
    summary_counts,
)

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    full: tuple[str, ...]  # arguments of the full run
    quick: tuple[str, ...]  # arguments of --quick
    timeout: float  # seconds, full run
    quick_timeout: float
    tmp_dir: bool = True  # takes --tmp-dir


BENCHMARKS = (
    Benchmark("segment", "bench.segment", (), ("--count", "300", "--repeat", "2"), 300, 120, tmp_dir=False),
    Benchmark("ingest", "bench.ingest", ("--rounds", "2"), ("--rounds", "1", "--warmup", "1", "--duration", "2"),
              240, 90),
    Benchmark("postfix_ingest", "bench.postfix_ingest",
              ("--messages", "3000", "--pipe-messages", "1000", "--rounds", "2"),
              ("--messages", "200", "--pipe-messages", "100", "--rounds", "1"), 480, 150),
    Benchmark("replylog", "bench.replylog", (), ("--links", "50000", "--lookups", "3000", "--upserts", "1000"),
              420, 120),
    Benchmark("e2e_kannel", "bench.e2e_kannel", ("--rounds", "3"),
              ("--rounds", "1", "--warmup", "1", "--duration", "2", "--skip-reference"), 420, 120),
    Benchmark("smpp", "bench.smpp", ("--rounds", "5"), ("--rounds", "1", "--messages", "300"), 300, 120),
    Benchmark("modem", "bench.modem", ("--rounds", "5"), ("--rounds", "1", "--parts", "50"), 180, 60),
    Benchmark("memory_restart", "bench.memory_restart", ("--messages", "100000", "--rounds", "3"),
              ("--messages", "5000", "--rounds", "1"), 420, 120),
    Benchmark("growth", "bench.growth", ("--sizes", "10000,100000,1000000", "--ingest", "4000"),
              ("--sizes", "2000,20000"), 900, 180),
    Benchmark("scale", "bench.scale", ("--messages", "3000", "--rounds", "2"),
              ("--messages", "300", "--rounds", "1"), 360, 120),
)  # fmt: skip


@dataclass
class Outcome:
    benchmark: Benchmark
    argv: list[str]
    exit: int | None
    seconds: float
    result: dict[str, Any]
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # at its start: the machine is shared

    def as_dict(self) -> dict[str, Any]:
        return {"module": self.benchmark.module, "argv": self.argv, "exit": self.exit,
                "seconds": round(self.seconds, 1), "loadavg_at_start": [round(x, 2) for x in self.loadavg],
                **self.result}  # fmt: skip


def _pump(stream: TextIO, sink: list[str], prefix: str) -> None:
    for line in stream:
        sink.append(line)
        if not line.startswith("BENCH-RESULT "):
            sys.stderr.write(prefix + line)
            sys.stderr.flush()


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the benchmark's process group (its servers clean up), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_one(benchmark: Benchmark, quick: bool, tmp_dir: Path | None) -> Outcome:
    argv = [sys.executable, "-m", benchmark.module, *(benchmark.quick if quick else benchmark.full)]
    if tmp_dir is not None and benchmark.tmp_dir:
        argv += ["--tmp-dir", str(tmp_dir)]
    timeout = benchmark.quick_timeout if quick else benchmark.timeout
    print(f"== {benchmark.name}: {' '.join(argv[1:])} (timeout {timeout:.0f} s)", file=sys.stderr, flush=True)
    started, load = time.monotonic(), os.getloadavg()
    lines: list[str] = []
    proc = subprocess.Popen(
        argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: a hang is stopped with everything it started
    )  # fmt: skip
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines, f"[{benchmark.name}] "), daemon=True)
    reader.start()
    reason = ""
    try:
        code: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        code, reason = None, f"timed out after {timeout:.0f} s"
    reader.join(10)
    seconds = time.monotonic() - started
    result = parse_result("".join(lines))
    if result is None:
        reason = reason or f"exited {code} without a result line"
        result = {"bench": benchmark.name, "rows": [failure_row(benchmark.name, reason)], "error": reason}
    result["bench"] = benchmark.name
    print(f"== {benchmark.name}: exit {code}, {seconds:.0f} s", file=sys.stderr, flush=True)
    return Outcome(benchmark, argv[1:], code, seconds, result, load)


def main(argv: list[str] | None = None) -> int:
    names = [b.name for b in BENCHMARKS]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test, not figures to quote")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"run only these: {names}")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write the Markdown table here")
    parser.add_argument("--tmp-dir", type=Path, help="where the benchmarks' state goes (a real disk)")
    parser.add_argument("--doc", type=Path, metavar="PATH", help="replace the table between the markers in this file")
    args = parser.parse_args(argv)

    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    machine = machine_description(args.tmp_dir or Path(tempfile.gettempdir()))
    started = time.monotonic()
    outcomes = [run_one(b, args.quick, args.tmp_dir) for b in chosen]
    results = [o.result for o in outcomes]
    machine["mode"] = "quick" if args.quick else "full"
    machine["total_s"] = round(time.monotonic() - started)
    markdown = render_markdown(results, machine)
    print(markdown)
    counts = summary_counts(results)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"machine": machine, "counts": counts, "benchmarks": [o.as_dict() for o in outcomes]}
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if args.doc:  # last: a file without the markers must not cost the results above
        args.doc.write_text(replace_table(args.doc.read_text(), markdown))
    return 1 if counts["FAILED"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
