"""The benchmark table (``bench.table``) and runner (``bench.__main__``) on synthetic results.

No benchmark runs here: the rows are made up, and the runner is pointed at
tiny stand-in modules that print a result line, crash or hang.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import __main__ as runner
from bench.table import (
    FAILED,
    INFO,
    MET,
    MISSED,
    emit,
    failure_row,
    filesystem_of,
    judge,
    machine_description,
    machine_text,
    parse_result,
    render_markdown,
    replace_table,
    result_line,
    row,
    summary_counts,
)


def test_ratio_defaults_to_mailsms_over_baseline() -> None:
    assert row("x", "msg/s", 600.0, 1200.0)["ratio"] == 0.5


def test_ratio_target_met_and_missed() -> None:
    target = ("ratio", ">=", 0.8)
    assert judge(row("a", "msg/s", 900.0, 1000.0, target=target)) == MET
    assert judge(row("a", "msg/s", 799.0, 1000.0, target=target)) == MISSED


def test_target_on_the_mailsms_figure_ignores_the_ratio() -> None:
    # RSS 120 MB against a 50 MB baseline: ratio 2.4, but the target is on the figure itself.
    assert judge(row("rss", "MB", 120.0, 50.0, target=("mailsms", "<", 150.0))) == MET
    assert judge(row("rss", "MB", 151.0, 50.0, target=("mailsms", "<", 150.0))) == MISSED


def test_upper_bound_on_a_ratio() -> None:
    assert judge(row("lookup", "µs", 12.0, 10.0, target=("ratio", "<=", 1.25))) == MET
    assert judge(row("lookup", "µs", 13.0, 10.0, target=("ratio", "<=", 1.25))) == MISSED


def test_zero_wrong_splits_target() -> None:
    assert judge(row("wrong", "texts", 0, 12, ratio=None, target=("mailsms", "<=", 0))) == MET
    assert judge(row("wrong", "texts", 1, 12, ratio=None, target=("mailsms", "<=", 0))) == MISSED


def test_row_without_target_is_context_only() -> None:
    assert judge(row("modem", "µs/part", 900.0, 400.0)) == INFO


def test_row_with_a_target_but_no_figure_failed() -> None:
    assert judge(row("x", "msg/s", None, 100.0, target=("ratio", ">=", 0.8))) == FAILED


def test_failure_row_is_failed() -> None:
    assert judge(failure_row("ingest", "timed out after 240 s")) == FAILED


def test_markdown_marks_every_target_and_counts_them() -> None:
    results = [
        {"bench": "ingest", "rows": [
            row("8 connections", "msg/s", 530.0, 1100.0, baseline_name="null sink", target=("ratio", ">=", 0.8),
                path="LMTP -> mailsms"),
            row("1 connection", "msg/s", 900.0, 1000.0, target=("ratio", ">=", 0.8)),
        ]},
        {"bench": "modem", "rows": [row("per part", "µs/part", 900.0, 400.0)]},
        {"bench": "growth", "rows": [failure_row("growth", "exited 1 without a result line")]},
    ]  # fmt: skip
    text = render_markdown(results)
    lines = [line for line in text.splitlines() if line.startswith("| ingest") or line.startswith("| modem")]
    assert "**MISSED**" in lines[0] and ">= 0.80" in lines[0] and "1,100 (null sink)" in lines[0]
    assert lines[1].endswith("| met |")
    assert lines[2].endswith("| - |")
    assert "| growth | growth: no result |" in text and "**FAILED**" in text
    assert "Targets: 1 met, 1 missed, 1 failed to run." in text
    assert "LMTP -> mailsms" in text
    assert summary_counts(results) == {MET: 1, MISSED: 1, FAILED: 1, INFO: 1}


def test_markdown_cells_escape_pipes() -> None:
    text = render_markdown([{"bench": "b", "rows": [row("a | b", "x", 1.0, 2.0)]}])
    assert "a \\| b" in text


def test_parse_result_takes_the_last_result_line(capsys: pytest.CaptureFixture[str]) -> None:
    emit("old", [row("first", "x", 1.0, 2.0)])
    print("human output | with a table")
    emit("segment", [row("second", "x", 3.0, 4.0)])
    result = parse_result(capsys.readouterr().out)
    assert result is not None
    assert result["bench"] == "segment"
    assert [r["name"] for r in result["rows"]] == ["second"]


@pytest.mark.parametrize("output", ["", "no marker here\n", "BENCH-RESULT {not json\n", 'BENCH-RESULT {"rows": 3}\n'])
def test_parse_result_without_a_valid_line_is_none(output: str) -> None:
    assert parse_result(output) is None


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@given(
    name=st.text(),
    notes=st.text(),
    mailsms=st.none() | finite,
    baseline=st.none() | finite,
    noise=st.lists(st.text().filter(lambda t: not t.startswith("BENCH-RESULT"))),
)
def test_emit_then_parse_gives_the_rows_back(
    name: str, notes: str, mailsms: float | None, baseline: float | None, noise: list[str]
) -> None:
    made = row(name, "msg/s", mailsms, baseline, notes=notes, target=("ratio", ">=", 0.8))
    # Lines of human output before it, each one line (a newline inside would start a new line).
    human = "".join(line.replace("\n", " ") + "\n" for line in noise)
    output = human + result_line("b", [made]) + "\n"
    result = parse_result(output)
    assert result is not None
    assert result["rows"] == [json.loads(json.dumps(made))]
    verdict = judge(result["rows"][0])
    ratio = made["ratio"]
    if ratio is None:
        assert verdict == FAILED
    else:
        assert verdict == (MET if ratio >= 0.8 else MISSED)
        assert not math.isnan(ratio)


def test_replace_table_touches_only_the_text_between_the_markers() -> None:
    document = (
        "# Performance\n\n<!-- bench table: begin -->\nold table\n<!-- bench table: end -->\n\n"
        "More words.\n\n## Fuzzing\n\nexecutions...\n"
    )
    updated = replace_table(document, "| new | table |\n")
    assert updated == document.replace("old table", "| new | table |")
    assert replace_table(updated, "again") == document.replace("old table", "again")


def test_replace_table_without_markers_refuses() -> None:
    with pytest.raises(ValueError, match="no <!-- bench table: begin -->"):
        replace_table("# Performance\n\n## Fuzzing\n", "table")


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid 0 0
/dev/vdb /tmpdata xfs rw 0 0
"""


def test_filesystem_is_the_longest_mount_holding_the_path() -> None:
    assert filesystem_of(Path("/tmp/x/y"), MOUNTS) == "tmpfs (tmpfs on /tmp)"
    assert filesystem_of(Path("/tmpdata/q"), MOUNTS) == "xfs (/dev/vdb on /tmpdata)"  # not /tmp: a prefix, not a parent
    assert filesystem_of(Path("/var/lib"), MOUNTS) == "ext4 (/dev/vda on /)"


def test_machine_description_names_what_the_table_needs(tmp_path: Path) -> None:
    machine = machine_description(tmp_path)
    for key in ("cpu_model", "cpu_count", "ram_mib", "kernel", "python", "sqlite", "state_fs", "date"):
        assert machine[key] not in (None, ""), key
    text = machine_text(machine)
    assert machine["sqlite"] in text and machine["kernel"] in text


# --- the runner, with stand-in benchmark modules -------------------------------------------------

STANDINS = {
    "standin_good": "from bench.table import emit, row\nprint('human output')\n"
    "emit('good', [row('r', 'msg/s', 9.0, 10.0, target=('ratio', '>=', 0.8))])\nraise SystemExit(1)\n",
    "standin_crash": "print('about to fail')\nraise RuntimeError('boom')\n",
    "standin_hang": "import threading\nprint('waiting', flush=True)\nthreading.Event().wait()  # hangs until killed\n",
}


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, code in STANDINS.items():
        (tmp_path / f"{name}.py").write_text(code)
    repo = Path(runner.__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{repo}")
    return tmp_path


def _bench(module: str, timeout: float = 30.0) -> runner.Benchmark:
    return runner.Benchmark(module, module, (), (), timeout, timeout, tmp_dir=False)


def test_runner_keeps_the_rows_of_a_benchmark_that_exits_non_zero(standins: Path) -> None:
    outcome = runner.run_one(_bench("standin_good"), quick=False, tmp_dir=None)
    assert outcome.exit == 1
    assert outcome.result["bench"] == "standin_good"
    assert [judge(r) for r in outcome.result["rows"]] == [MET]


def test_runner_marks_a_crash_failed(standins: Path) -> None:
    outcome = runner.run_one(_bench("standin_crash"), quick=False, tmp_dir=None)
    assert outcome.exit == 1
    assert [judge(r) for r in outcome.result["rows"]] == [FAILED]
    assert "without a result line" in outcome.result["error"]


def test_runner_stops_a_hang_at_its_timeout(standins: Path) -> None:
    outcome = runner.run_one(_bench("standin_hang", timeout=1.0), quick=True, tmp_dir=None)
    assert outcome.exit is None
    assert outcome.seconds < 20
    assert "timed out after 1 s" in outcome.result["error"]


def test_every_benchmark_has_a_module_and_a_quick_variant() -> None:
    names = [b.name for b in runner.BENCHMARKS]
    assert len(names) == len(set(names))
    bench_dir = Path(runner.__file__).parent
    for benchmark in runner.BENCHMARKS:
        assert (bench_dir / f"{benchmark.module.split('.')[-1]}.py").is_file(), benchmark.module
        assert benchmark.quick_timeout <= benchmark.timeout
