"""Run every atheris harness for a given time, each in its own process, and print executions and findings.

    python -m bench.fuzz --seconds 60            # every harness, one after the other
    python -m bench.fuzz --only webhooks --seconds 10
    python -m bench.fuzz.address --replay crash-1a2b   # re-run a saved input without atheris

A harness stops at its first finding (libFuzzer's way); it is started again
until its time is used, so one run can report several distinct findings.
Crash inputs and the corpus stay under ``--work`` (default: a temporary
directory named in the output).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.fuzz import HARNESSES

DICTS = Path(__file__).with_name("dicts")
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"Done (\d+) runs in")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_MIN_RESTART = 2.0  # seconds: less than this left is not worth a restart


@dataclass
class Result:
    harness: str
    seconds: float = 0.0
    executions: int = 0
    runs: int = 0
    findings: list[str] = field(default_factory=list)  # one line per distinct finding: the exception, the file
    artifacts: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)')


def _finding(output: str) -> tuple[str, str]:
    """(signature, description) of what atheris printed: the exception type and where it was raised.

    Findings with the same signature are one bug met through different inputs.
    """
    lines = [line for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "Uncaught Python exception" in line:
            # atheris prints the exception, then the traceback, which ends with the exception again
            exception = lines[index + 1] if index + 1 < len(lines) else line
            where = "?"
            for text in lines[index + 2 :]:
                frame = _FRAME.match(text)
                if frame:
                    where = f"{Path(frame.group(1)).name}:{frame.group(2)}"
                elif not text.startswith((" ", "Traceback")):
                    break
            kind = exception.split(":", 1)[0]
            return f"{kind} at {where}", f"{kind} at {where} ({exception[len(kind) + 1 :].strip()[:60]!r})"
    for line in lines:
        if "ERROR: libFuzzer" in line or "ERROR: AddressSanitizer" in line:
            return line.strip()[:120], line.strip()[:200]
    return "unrecognised exit", "exit without a recognised finding"


def run_one(name: str, seconds: float, work: Path) -> Result:
    """Fuzz harness ``name`` for ``seconds``, restarting it after each finding."""
    corpus = work / name / "corpus"
    artifacts = work / name / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    result = Result(name)
    signatures: set[str] = set()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) >= _MIN_RESTART or result.runs == 0:
        command = [sys.executable, "-m", f"bench.fuzz.{name}", f"-max_total_time={max(1, int(left))}"]
        command += ["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={artifacts}/"]
        dictionary = DICTS / f"{name}.dict"
        if dictionary.exists():
            command.append(f"-dict={dictionary}")
        command.append(str(corpus))
        started = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False,
                              timeout=left + 60, cwd=Path(__file__).parents[2])  # fmt: skip
        result.seconds += time.monotonic() - started
        result.runs += 1
        output = proc.stdout + proc.stderr
        counts = _EXECUTED.findall(output) or _DONE.findall(output)
        result.executions += int(counts[-1]) if counts else 0
        if proc.returncode != 0:
            signature, finding = _finding(output)
            written = _ARTIFACT.findall(output)
            result.artifacts += written
            if signature not in signatures:
                signatures.add(signature)
                result.findings.append(finding)
            if not counts and not written:  # the harness itself is broken: restarting will not help
                result.findings.append(output.strip().splitlines()[-1][:200] if output.strip() else "no output")
                break
        else:
            break
    return result


def table(results: list[Result]) -> str:
    lines = ["| harness | seconds | executions | exec/s | findings |", "|---|---:|---:|---:|---|"]
    for r in results:
        found = "; ".join(r.findings) or "none"
        lines.append(f"| {r.harness} | {r.seconds:.0f} | {r.executions:,} | {r.per_second:,.0f} | {found} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time per harness (default 60)")
    parser.add_argument("--only", action="append", choices=HARNESSES, help="run only this harness (repeatable)")
    parser.add_argument("--work", type=Path, help="corpus and crash files (default: a new temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    try:
        import atheris  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        print(f"atheris is not installed ({exc}): pip install -e '.[bench]'", file=sys.stderr)
        return 69
    work = args.work or Path(tempfile.mkdtemp(prefix="mailsms-fuzz-"))
    results = []
    for name in args.only or HARNESSES:
        result = run_one(name, args.seconds, work)
        results.append(result)
        summary = f"{result.executions:,} executions in {result.seconds:.0f} s ({result.per_second:,.0f}/s)"
        print(f"{name}: {summary}, findings: {len(result.findings)}", file=sys.stderr, flush=True)
    print(table(results))
    print(f"\ncorpus and crash files: {work}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"per_second": r.per_second} for r in results], indent=2))
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
