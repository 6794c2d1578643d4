"""``mailsms send``: one number or a CSV list, through the API's checks into the daemon's queue."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.cli import main
from mailsms.cmd_send import ListError, Row, cli_queue_ids, progress_line, read_numbers
from mailsms.config import Config
from mailsms.daemon import Daemon
from mailsms.ingest import new_queue_id
from mailsms.store.queue import QueueStore
from tests.component.test_ingest import outbox_files
from tests.support.db import one, rows, state_config
from tests.support.wait import async_wait_until

TEXT = "Meeting moved to 3pm"


def config_file(tmp_path: Path, extra: str = "", store_url: str = "") -> Path:
    path = tmp_path / "m.toml"
    path.write_text(f"[state]\ndir = '{tmp_path / 'var'}'\n[store]\nurl = '{store_url}'\n{extra}")
    return path


@pytest.fixture
def queue_config(tmp_path: Path, store_url: str, open_queue: Callable[[], QueueStore]) -> Path:
    """A configuration whose queue exists (the daemon ran once), refusing +44 destinations."""
    (tmp_path / "var").mkdir(mode=0o700)
    open_queue().close()
    return config_file(tmp_path, "[policy]\nblocked_prefixes = ['+44']\n", store_url)


def messages(tmp_path: Path, store_url: str) -> list[tuple[str, str, str, int]]:
    """(number, text, gateway, parts) of every queued message, oldest first."""
    return [
        (number, text, gateway, int(parts))
        for number, text, gateway, parts in rows(
            state_config(tmp_path / "var", store_url),
            "SELECT number, text, gateway, (SELECT COUNT(*) FROM part WHERE message_id = m.id)"
            " FROM message m ORDER BY id",
        )
    ]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- one number ------------------------------------------------------------------------


def test_one_number_is_queued_with_the_text(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    code, out, _ = run(capsys, "send", "--config", str(queue_config), "+15551234567", TEXT)
    assert code == 0
    assert out.startswith("mailsms: queued as ") and out.rstrip().endswith("(1 part)")
    assert [m[:2] for m in messages(tmp_path, store_url)] == [("+15551234567", TEXT)]


def test_long_text_is_split_like_the_api_and_maxmsgs_caps_it(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    run(capsys, "send", "--config", str(queue_config), "+15551234567", "x" * 400)
    run(capsys, "send", "--config", str(queue_config), "--maxmsgs", "2", "+15557654321", "x" * 400)
    assert [m[3] for m in messages(tmp_path, store_url)] == [3, 2]


def test_a_number_policy_refuses_is_not_queued(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    code, out, err = run(capsys, "send", "--config", str(queue_config), "+447700900123", TEXT)
    assert code == 65
    assert out == ""
    assert "550 5.7.1" in err and "blocked" in err
    assert messages(tmp_path, store_url) == []


def test_bad_number_gets_the_address_rules_reply(queue_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "send", "--config", str(queue_config), "12ab", TEXT)
    assert code == 65
    assert "refused: 5" in err


def test_sender_and_unknown_gateway_are_address_parameters(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    code, _, _ = run(capsys, "send", "--config", str(queue_config), "--sender", "ACME", "+15551234567", TEXT)
    assert code == 0
    params = one(state_config(tmp_path / "var", store_url), "SELECT params FROM message")
    assert '"sender":"ACME"' in params
    code, _, err = run(capsys, "send", "--config", str(queue_config), "--gateway", "nope", "+15551234567", TEXT)
    assert code == 65
    assert "550 5.1.1" in err


def test_control_characters_in_the_text_refuse_everything(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    code, _, err = run(capsys, "send", "--config", str(queue_config), "+15551234567", "a\x07b")
    assert code == 65
    assert "control characters" in err
    assert messages(tmp_path, store_url) == []


def test_no_queue_yet_is_no_input_and_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SQLite only: "no queue" is a missing queue file (a PostgreSQL database is used as it is).
    code, _, err = run(capsys, "send", "--config", str(config_file(tmp_path)), "+15551234567", TEXT)
    assert code == 66
    assert "no queue in" in err
    assert not (tmp_path / "var").exists()


def test_wrong_number_of_words_is_a_usage_error(queue_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "send", "--config", str(queue_config), TEXT)[0] == 64
    assert run(capsys, "send", "--config", str(queue_config), "--file", "x.csv", "+15551234567", TEXT)[0] == 64


# -- accounts ----------------------------------------------------------------------------


def add_account(config: Path, capsys: pytest.CaptureFixture[str], *options: str) -> None:
    code, _, err = run(capsys, "accounts", "add", "shop", "--no-password", *options, "--config", str(config))
    assert code == 0, err


def test_account_monthly_limit_counts_rows_of_this_run(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_account(queue_config, capsys, "--maxsend", "2")
    numbers = tmp_path / "list.csv"
    numbers.write_text("+15550000001\n+15550000002\n+15550000003\n")
    code, out, err = run(capsys, "send", "--config", str(queue_config), "--account", "shop", "--file", str(numbers),
                         TEXT)  # fmt: skip
    assert code == 65
    assert "2 queued, 1 rejected" in out
    assert "line 3: +15550000003: 452 4.2.2" in err
    code, _, err = run(capsys, "send", "--config", str(queue_config), "--user", "shop", "+15550000004", TEXT)
    assert code == 65
    assert "monthly limit" in err


def test_unknown_account_refuses_before_anything_is_queued(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    code, _, err = run(capsys, "send", "--config", str(queue_config), "--account", "ghost", "+15551234567", TEXT)
    assert code == 77
    assert "ghost" in err
    assert messages(tmp_path, store_url) == []


# -- lists -------------------------------------------------------------------------------


def test_list_with_a_header_column_queues_each_number_and_lists_rejected_rows(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    numbers = tmp_path / "list.csv"
    numbers.write_text(
        "name;mobile\n"
        "Ann;+15550000001\n"
        "Bob;+447700900123\n"  # blocked by policy
        "\n"
        "Cid;not a number\n"
        "Dee;+1 555 000 0004\n"
        "Ann again;+15550000001\n"  # the same number again
    )
    code, out, err = run(capsys, "send", "--config", str(queue_config), "--file", str(numbers), "--column", "Mobile",
                         TEXT)  # fmt: skip
    assert code == 65
    assert out.strip() == "mailsms: 2 queued, 3 rejected, of 5 number(s)"
    lines = err.splitlines()
    assert lines[0].startswith("line 3: +447700900123: 550 5.7.1")
    assert lines[1].startswith("line 5: not a number: 5")
    assert lines[2] == "line 7: +15550000001: duplicate of line 2"
    assert TEXT not in out + err
    assert [m[0] for m in messages(tmp_path, store_url)] == ["+15550000001", "+15550000004"]


def test_list_of_plain_numbers_all_queued_exits_0(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    numbers = tmp_path / "list.csv"
    numbers.write_text("\n".join(f"+1555000{n:04d}" for n in range(450)) + "\n")
    code, out, _ = run(capsys, "send", "--config", str(queue_config), "--file", str(numbers), TEXT)
    assert code == 0
    assert out.strip() == "mailsms: 450 queued, 0 rejected, of 450 number(s)"
    queued = messages(tmp_path, store_url)
    assert len(queued) == 450 and len({m[0] for m in queued}) == 450


def test_missing_file_is_no_input(queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "send", "--config", str(queue_config), "--file", str(tmp_path / "none.csv"), TEXT)
    assert code == 66
    assert "cannot read" in err


def test_missing_column_or_empty_list_is_a_data_error(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = tmp_path / "list.csv"
    numbers.write_text("name,phone\nAnn,+15550000001\n")
    code, _, err = run(capsys, "send", "--config", str(queue_config), "--file", str(numbers), "--column", "mobile",
                       TEXT)  # fmt: skip
    assert code == 65
    assert "no column 'mobile'" in err
    numbers.write_text("# nothing here\n\n")
    assert run(capsys, "send", "--config", str(queue_config), "--file", str(numbers), TEXT)[0] == 65


async def test_the_running_daemon_sends_what_send_queued(
    config: Config, state_dir: Path, tmp_path: Path, store_url: str
) -> None:
    running = Daemon(config)
    await running.start()
    try:
        path = config_file(tmp_path, store_url=config.store.url)
        code = await asyncio.to_thread(main, ["send", "--config", str(path), "+15551234567", TEXT])
        assert code == 0
        await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    finally:
        await running.stop()
    (sent,) = outbox_files(state_dir)
    assert sent["to"] == "+15551234567"
    assert sent["parts"][0]["text"] == TEXT  # type: ignore[index]


# -- pure parts ------------------------------------------------------------------------


def test_first_line_without_digits_is_a_header_and_comments_are_skipped() -> None:
    content = "number,name\r\n# a comment\r\n+15550000001,Ann\r\n\r\n+15550000002\r\n"
    assert read_numbers(content) == [Row(3, "+15550000001"), Row(5, "+15550000002")]


def test_tab_separated_column_by_name() -> None:
    assert read_numbers("Name\tPhone\nAnn\t+15550000001\nBob\t\n", "phone") == [Row(2, "+15550000001")]


def test_column_without_header_match_is_a_list_error() -> None:
    with pytest.raises(ListError, match="no column 'phone'"):
        read_numbers("+15550000001\n", "phone")


@given(st.lists(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True), min_size=1, max_size=30))
def test_one_number_per_line_reads_back_with_its_line(numbers: list[str]) -> None:
    assert read_numbers("\n".join(numbers) + "\n") == [Row(i, n) for i, n in enumerate(numbers, start=1)]


@given(st.text(max_size=300), st.none() | st.text(min_size=1, max_size=10))
def test_any_text_reads_as_rows_or_a_list_error(content: str, column: str | None) -> None:
    try:
        rows = read_numbers(content, column)
    except ListError:
        return
    assert all(row.number and row.number == row.number.strip() and row.line >= 1 for row in rows)


def test_progress_line_fills_with_the_share_done() -> None:
    assert progress_line(0, 4, width=8) == "0/4 [--------]   0%"
    assert progress_line(1, 4, width=8) == "1/4 [##------]  25%"
    assert progress_line(4, 4, width=8) == "4/4 [########] 100%"


def test_cli_queue_ids_never_equal_the_daemons_of_the_same_millisecond() -> None:
    ours = cli_queue_ids()
    in_order = [ours() for _ in range(1000)]
    mine = set(in_order)
    theirs = {new_queue_id() for _ in range(1000)}
    assert len(mine) == 1000
    assert sorted(in_order) == in_order  # they sort by arrival, as the daemon's do
    assert not mine & theirs
    assert all(len(i) == 16 and int(i, 16) & 1 << 19 for i in mine)


def test_old_mac_line_endings_are_lines_too() -> None:
    assert read_numbers("+15550000001\r+15550000002\r") == [Row(1, "+15550000001"), Row(2, "+15550000002")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_runs_on_a_terminal_and_is_cleared(
    queue_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = tmp_path / "list.csv"
    numbers.write_text("+15550000001\n+15550000002\n")
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["send", "--config", str(queue_config), "--file", str(numbers), TEXT]) == 0
    shown = terminal.getvalue()
    assert "\r1/2 [###############---------------]  50%" in shown
    assert "\r2/2 [##############################] 100%" in shown
    assert shown.endswith("\r")
