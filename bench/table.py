"""The benchmark table: result rows, their verdicts, the machine's description, Markdown.

Every benchmark module ends its run with one line on stdout::

    BENCH-RESULT {"bench": "ingest", "rows": [{...}, ...]}

(``emit``), after its human output.  ``python -m bench`` runs each module in
a subprocess, finds that line (``parse_result``), judges every row against
its target (``judge``) and writes the table (``render_markdown``) and a JSON
document.  A row is one figure with the baseline measured in the same run::

    {"name": "ingest, 8 connections", "metric": "msg/s", "mailsms": 610.0,
     "baseline": 1150.0, "baseline_name": "aiosmtpd LMTP null sink", "ratio": 0.53,
     "target": {"on": "ratio", "op": ">=", "value": 0.8},
     "path": "LMTP client -> mailsms serve -> SQLite commit -> 250", "notes": "median of 2 rounds"}

``target`` is None for a figure given for context; ``on`` names the field the
target applies to (``ratio`` or ``mailsms``), ``op`` is ``>=``, ``<=``, ``<``
or ``>``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sqlite3
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MARKER = "BENCH-RESULT "
DOC_BEGIN, DOC_END = "<!-- bench table: begin -->", "<!-- bench table: end -->"
OPS = (">=", "<=", ">", "<")
MET, MISSED, INFO, FAILED = "met", "MISSED", "-", "FAILED"


def row(
    name: str,
    metric: str,
    mailsms: float | None,
    baseline: float | None,
    *,
    baseline_name: str = "",
    ratio: float | None = None,
    target: tuple[str, str, float] | None = None,
    path: str = "",
    notes: str = "",
) -> dict[str, Any]:
    """One result row; ``ratio`` defaults to mailsms / baseline; ``target`` is (on, op, value)."""
    if ratio is None and mailsms is not None and baseline:
        ratio = mailsms / baseline
    return {
        "name": name,
        "metric": metric,
        "mailsms": _round(mailsms),
        "baseline": _round(baseline),
        "baseline_name": baseline_name,
        "ratio": None if ratio is None else round(ratio, 3),
        "target": None if target is None else {"on": target[0], "op": target[1], "value": target[2]},
        "path": path,
        "notes": notes,
    }


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 3) if abs(value) < 100 else round(value, 1)


def result_line(bench: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The one line that carries a benchmark's rows (JSON escapes any newline inside a value)."""
    return MARKER + json.dumps({"bench": bench, "rows": list(rows)}, ensure_ascii=False)


def emit(bench: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Print the result line ``python -m bench`` reads (the last line of a benchmark's stdout)."""
    print(result_line(bench, rows), flush=True)


def parse_result(output: str) -> dict[str, Any] | None:
    """The last result line in a benchmark's output, or None when there is none (or it is broken)."""
    # Only "\n" ends a line: the JSON may hold U+2028 and friends, which str.splitlines() splits on.
    for raw in reversed(output.split("\n")):
        line = raw.removesuffix("\r")
        if line.startswith(MARKER):
            try:
                document = json.loads(line[len(MARKER) :])
            except json.JSONDecodeError:
                return None
            if isinstance(document, dict) and isinstance(document.get("rows"), list):
                return document
            return None
    return None


def compare(value: float, op: str, limit: float) -> bool:
    if op == ">=":
        return value >= limit
    if op == "<=":
        return value <= limit
    if op == ">":
        return value > limit
    if op == "<":
        return value < limit
    raise ValueError(f"unknown comparison {op!r}")


def judge(result: Mapping[str, Any]) -> str:
    """``met``, ``MISSED``, ``FAILED`` (no figure to judge) or ``-`` (no target) for one row."""
    if result.get("error"):
        return FAILED
    target = result.get("target")
    if not target:
        return INFO
    value = result.get(target.get("on", "ratio"))
    if not isinstance(value, int | float) or isinstance(value, bool):
        return FAILED
    return MET if compare(float(value), str(target["op"]), float(target["value"])) else MISSED


def failure_row(bench: str, reason: str) -> dict[str, Any]:
    """The row of a benchmark that crashed, hung or printed no result: its targets count as missed."""
    failed = row(f"{bench}: no result", "-", None, None, notes=reason)
    failed["error"] = reason
    return failed


def target_text(target: Mapping[str, Any] | None) -> str:
    if not target:
        return ""
    on = "" if target.get("on", "ratio") == "ratio" else "mailsms "
    return f"{on}{target['op']} {_number(float(target['value']))}"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row of every benchmark, flattened, each with its ``bench`` and ``verdict``."""
    flat: list[dict[str, Any]] = []
    for result in results:
        for item in result.get("rows", []):
            flat.append({**item, "bench": result.get("bench", "?"), "verdict": judge(item)})
    return flat


def render_markdown(results: Sequence[Mapping[str, Any]], machine: Mapping[str, Any] | None = None) -> str:
    """The whole table: one line per figure, the verdict on each target, then the paths measured."""
    rows = table_rows(results)
    lines = [
        "| benchmark | figure | metric | mailsms | baseline | ratio | target | verdict |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for item in rows:
        baseline = _number(item.get("baseline"))
        if baseline and item.get("baseline_name"):
            baseline = f"{baseline} ({item['baseline_name']})"
        elif item.get("baseline_name"):
            baseline = item["baseline_name"]
        cells = [
            item["bench"],
            item.get("name", ""),
            item.get("metric", ""),
            _number(item.get("mailsms")),
            baseline,
            _number(item.get("ratio")),
            target_text(item.get("target")),
            f"**{item['verdict']}**" if item["verdict"] in (MISSED, FAILED) else item["verdict"],
        ]
        lines.append("| " + " | ".join(_cell(str(c)) for c in cells) + " |")
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in (MET, MISSED, FAILED)}
    lines += ["", f"Targets: {counts[MET]} met, {counts[MISSED]} missed, {counts[FAILED]} failed to run."]
    notes: list[str] = []
    previous = ("", "")
    for item in rows:
        path = item.get("path") or ""
        # The rows of one benchmark often share their path: say it once.
        said = path if (item["bench"], path) != previous else "same path as above"
        previous = (item["bench"], path)
        extra = f" — {item['notes']}" if item.get("notes") else ""
        notes.append(f"- **{item['bench']} / {item['name']}**: {said}{extra}")
    if notes:
        lines += ["", "What each figure measures:", "", *notes]
    if machine:
        lines += ["", machine_text(machine)]
    return "\n".join(lines) + "\n"


def summary_counts(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    rows = table_rows(results)
    return {v: sum(1 for r in rows if r["verdict"] == v) for v in (MET, MISSED, FAILED, INFO)}


# --- the machine -------------------------------------------------------------


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return "unknown"


def _mem_total_mib(meminfo: str) -> int | None:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def filesystem_of(path: Path, mounts: str) -> str:
    """``type (device on mountpoint)`` of the longest mount point that holds ``path``."""
    best, found = "", "unknown"
    target = str(path.resolve())
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, found = point, f"{parts[2]} ({parts[0]} on {point})"
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _postfix_version() -> str:
    try:
        out = subprocess.run(["/usr/sbin/postconf", "-d", "-h", "mail_version"], capture_output=True, text=True,
                             timeout=10, check=False)  # fmt: skip
    except OSError:
        return "not installed"
    return out.stdout.strip() or "unknown"


def machine_description(state_dir: Path) -> dict[str, Any]:
    """CPU model and count, RAM, kernel, Python, SQLite, the state directory's file system, the date."""
    return {
        "cpu_model": _cpu_model(_read("/proc/cpuinfo")),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "ram_mib": _mem_total_mib(_read("/proc/meminfo")),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postfix": _postfix_version(),
        "state_dir": str(state_dir),
        "state_fs": filesystem_of(state_dir, _read("/proc/mounts")),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_text(machine: Mapping[str, Any]) -> str:
    ram = f"{machine['ram_mib'] / 1024:.1f} GiB RAM" if machine.get("ram_mib") else "RAM unknown"
    return (
        f"Machine: {machine.get('cpu_model')} × {machine.get('cpu_count')} CPUs "
        f"({machine.get('cpus_usable')} usable), {ram}, Linux {machine.get('kernel')}, "
        f"Python {machine.get('python')}, SQLite {machine.get('sqlite')}, Postfix {machine.get('postfix')}; "
        f"state on {machine.get('state_fs')}; load average {machine.get('loadavg_at_start')} at start; "
        f"{machine.get('date')}"
        + (f"; {machine['mode']} run, {machine.get('total_s')} s." if machine.get("mode") else ".")
    )


def replace_table(document: str, table: str) -> str:
    """``document`` with the text between the table markers replaced by ``table``; the rest untouched."""
    start, end = document.find(DOC_BEGIN), document.find(DOC_END)
    if start < 0 or end < start:
        raise ValueError(f"no {DOC_BEGIN} ... {DOC_END} in the document")
    return document[: start + len(DOC_BEGIN)] + "\n" + table.strip("\n") + "\n" + document[end:]
