"""``mailsms split``: the command-line contract scripts rely on."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mailsms.cli import main

MAILSMS = Path(sys.executable).parent / "mailsms"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["split", "--json", *argv]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one object, one line
    document: dict[str, Any] = json.loads(out)
    return document


def test_json_has_exactly_the_contract_keys(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, "Hello world")
    assert document == {
        "encoding": "gsm7",
        "count": 1,
        "truncated": False,
        "parts": [{"text": "Hello world", "udh": "", "units": 11}],
    }


def test_json_parts_carry_udh_hex_and_septets(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, "x" * 150 + "€" * 10)
    assert document["count"] == 2
    assert [p["udh"] for p in document["parts"]] == ["050003000201", "050003000202"]
    assert [p["units"] for p in document["parts"]] == [152, 18]  # the next € would straddle 153
    assert "".join(p["text"] for p in document["parts"]) == "x" * 150 + "€" * 10


def test_json_units_are_utf16_units_for_ucs2(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, "ж😀")
    assert (document["encoding"], document["parts"][0]["units"]) == ("ucs2", 3)


def test_maxmsgs_truncates_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, "--maxmsgs", "2", "x" * 500)
    assert (document["count"], document["truncated"]) == (2, True)
    assert document["parts"][-1]["text"].endswith("...")


def test_encoding_can_be_forced(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "--encoding", "ucs2", "Hello")["encoding"] == "ucs2"
    assert run_json(capsys, "--encoding", "gsm7", "Привет")["parts"][0]["text"] == "??????"


def test_transliterate_option_makes_a_pasted_text_gsm(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, "--transliterate", "It’s “fine” — really… " * 8)
    assert (document["encoding"], document["count"]) == ("gsm7", 2)


def test_dash_reads_standard_input_without_its_final_newline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("Grüße €\n".encode())))
    assert run_json(capsys, "-")["parts"][0]["text"] == "Grüße €"


def test_over_255_parts_exits_65_with_one_line_naming_5_3_4(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["split", "x" * (153 * 255 + 1)]) == 65
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "mailsms: 5.3.4 text needs 256 parts, more than 255\n"


def test_255_parts_are_fine(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "x" * (153 * 255))["count"] == 255


@pytest.mark.parametrize("value", ["0", "256", "many"])
def test_maxmsgs_out_of_range_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["split", "--maxmsgs", value, "text"])
    assert info.value.code == 64


def test_table_lists_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["split", "x" * 200]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "encoding: gsm7, 2 parts, 200 septets"
    assert lines[2].split()[:3] == ["1", "153", "050003000201"]
    assert lines[3].split()[:3] == ["2", "47", "050003000202"]
    assert not any("transliteration" in line for line in lines)


def test_table_shows_newlines_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["split", "a\nb"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("a\\nb")


def test_table_says_what_transliteration_would_save(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["split", "It’s “fine” — really… " * 8]) == 0
    assert "transliteration would save 1 part (3 -> 2)" in capsys.readouterr().out


def test_table_says_what_transliteration_saved(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["split", "--transliterate", "It’s “fine” — really… " * 8]) == 0
    out = capsys.readouterr().out
    assert out.startswith("encoding: gsm7, 2 parts")
    assert "transliteration saved 1 part (3 -> 2)" in out


def test_table_with_transliterate_says_when_it_saves_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["split", "--transliterate", "plain"]) == 0
    assert "transliteration saves no part (1 either way)" in capsys.readouterr().out


def test_table_marks_truncation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["split", "--maxmsgs", "1", "x" * 400]) == 0
    assert "truncated: the whole text needs 3 parts" in capsys.readouterr().out


def test_installed_command_answers(tmp_path: Path) -> None:
    """Start-up is measured, not asserted: a loaded machine must not fail the suite."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(MAILSMS), "split", "--json", "Hello"], capture_output=True, text=True, timeout=60, check=False
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["count"] == 1
    print(f"mailsms split answered in {elapsed * 1000:.0f} ms")


def test_split_path_imports_nothing_heavy() -> None:
    code = (
        "import sys; from mailsms.cli import main; main(['split', '--json', 'hi']); "
        "print(sorted(m for m in ('aiohttp', 'aiosmtpd', 'phonenumbers', 'sqlite3') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
