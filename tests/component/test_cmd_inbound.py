"""``mailsms inject-sms`` and ``mailsms inbound list`` as real processes against a real ``serve``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proc import free_port, run_cli, serve_process
from tests.support.wait import wait_until


@pytest.fixture
def config_file(tmp_path: Path, store_url: str) -> Path:
    """A configuration with its own ports, an outbox gateway and a kannel-like one with a secret."""
    path = tmp_path / "mailsms.toml"
    path.write_text(
        f"[server]\nlmtp_listen = '127.0.0.1:{free_port()}'\nhttp_listen = '127.0.0.1:{free_port()}'\n"
        f"[state]\ndir = '{tmp_path / 'var'}'\n[store]\nurl = '{store_url}'\n"
        "[[gateway]]\nid = 'outbox'\ntype = 'outbox'\n"
        "[[gateway]]\nid = 'second'\ntype = 'outbox'\nwebhook_secret = 'hush'\nwebhook_allow = ['127.0.0.1']\n"
    )
    return path


@pytest.fixture
def running(config_file: Path, tmp_path: Path) -> Iterator[Path]:
    text = config_file.read_text()
    http_port = int(text.split("http_listen = '127.0.0.1:")[1].split("'")[0])
    with serve_process(["--config", str(config_file)], cwd=tmp_path, wait_ports=[http_port]):
        yield config_file


def cli(config_file: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli([*args, "--config", str(config_file)])
    return done.returncode, done.stdout, done.stderr


def test_injected_sms_is_listed_with_the_contract_fields(running: Path) -> None:
    code, out, err = cli(running, "inject-sms", "--from", "+4915112345678", "--to", "12345", "Grüße & +mehr")
    assert (code, err) == (0, "")
    assert out.startswith("mailsms: stored as ")
    entries: list[dict[str, str]] = []

    def routed() -> bool:  # no #email# tag, no reply link, no unmatched recipient: dropped, and kept
        entries[:] = json.loads(cli(running, "inbound", "list", "--json")[1])
        return bool(entries) and entries[0]["state"] == "dropped"

    wait_until(routed, timeout=15, what="the inbound pipeline to route the SMS")
    (entry,) = entries
    out = json.dumps(entries)
    assert set(entry) == {"id", "gateway", "from", "to", "text", "received", "state", "routed_to"}
    assert out.count(entry["id"]) == 1
    assert (entry["gateway"], entry["from"], entry["to"], entry["text"]) == (
        "outbox",
        "+4915112345678",
        "12345",
        "Grüße & +mehr",
    )
    assert entry["routed_to"] == ""
    assert entry["received"].endswith("Z")


def test_a_repeated_smsc_id_is_stored_once_and_the_secret_is_sent_for_the_gateway(running: Path) -> None:
    first = cli(running, "inject-sms", "--gateway", "second", "--smsc-id", "x1", "--from", "+15551234567", "hi")
    again = cli(running, "inject-sms", "--gateway", "second", "--smsc-id", "x1", "--from", "+15551234567", "hi")
    assert first[0] == again[0] == 0
    assert "stored once" in again[1]
    assert first[1].split()[3] == again[1].split()[3]  # the same id
    code, out, _ = cli(running, "inbound", "list")
    assert code == 0
    assert "-- 1 message" in out and "second" in out


def test_bad_sms_is_refused_with_65_and_nothing_is_stored(running: Path) -> None:
    code, _, err = cli(running, "inject-sms", "--from", "", "hi")
    assert code == 65
    assert err.strip() == "mailsms: refused: 5.5.4 field 'from' is empty"
    assert cli(running, "inbound", "list", "--json")[1].strip() == "[]"


def test_unknown_gateway_is_a_usage_error(config_file: Path) -> None:
    code, _, err = cli(config_file, "inject-sms", "--gateway", "nope", "--from", "+15551234567", "hi")
    assert code == 64
    assert "no gateway 'nope'" in err


def test_daemon_not_running_exits_69(config_file: Path) -> None:
    code, _, err = cli(config_file, "inject-sms", "--from", "+15551234567", "hi")
    assert code == 69
    assert err.startswith("mailsms: cannot reach the daemon at http://127.0.0.1:")


def test_inbound_list_without_a_queue_file_is_empty(config_file: Path) -> None:
    assert cli(config_file, "inbound", "list", "--json")[:2] == (0, "[]\n")
    assert cli(config_file, "inbound", "list")[:2] == (0, "mailsms: no incoming SMS\n")
