"""``mailsms replylog list|purge`` and ``mailsms dkim-keygen`` as real processes."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from mailsms.store.queue import QueueStore
from replylog.links import ReplyLink
from replylog.store import record
from tests.support.proc import run_cli


@pytest.fixture
def config_file(tmp_path: Path, store_url: str) -> Path:
    state = tmp_path / "var"
    path = tmp_path / "mailsms.toml"
    path.write_text(f"[state]\ndir = '{state}'\n[store]\nurl = '{store_url}'\n[replylog]\nkeep_minutes = 60\n")
    return path


def cli(config_file: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli([*args, "--config", str(config_file)])
    return done.returncode, done.stdout, done.stderr


def fill(config_file: Path, open_queue: Callable[[], QueueStore]) -> None:
    state = config_file.parent / "var"
    state.mkdir()
    store = open_queue()
    now = time.time()
    with store.transaction() as conn:
        record(conn, ReplyLink("+15551234567", "alice@x.test", "outbox", "<a@x>", "Lunch?", now - 60, "Q1"))
        record(conn, ReplyLink("+15551234567", "bob@x.test", "kannel", "", "", now - 7200, "Q2"))  # expired
        record(conn, ReplyLink("+15557654321", "alice@x.test", "outbox", "", "", now - 30, "Q3"))
    store.close()


def test_list_shows_live_links_newest_first_with_the_contract_fields(
    config_file: Path, open_queue: Callable[[], QueueStore]
) -> None:
    fill(config_file, open_queue)
    code, out, err = cli(config_file, "replylog", "list", "--json")
    assert (code, err) == (0, "")
    entries = json.loads(out)
    assert [(e["number"], e["sender"]) for e in entries] == [("+15557654321", "alice@x.test"),
                                                            ("+15551234567", "alice@x.test")]  # fmt: skip
    assert set(entries[1]) == {"number", "sender", "gateway", "message_id", "subject", "created", "expires", "live",
                               "queue_id"}  # fmt: skip
    assert (entries[1]["message_id"], entries[1]["live"], entries[1]["queue_id"]) == ("<a@x>", True, "Q1")
    assert entries[1]["created"].endswith("Z") and entries[1]["expires"] > entries[1]["created"]


def test_list_filters_by_number_and_sender_and_all_shows_expired_ones(
    config_file: Path, open_queue: Callable[[], QueueStore]
) -> None:
    fill(config_file, open_queue)
    number = json.loads(cli(config_file, "replylog", "list", "--json", "--number", "1 555 123 4567")[1])
    assert [e["sender"] for e in number] == ["alice@x.test"]
    everything = json.loads(cli(config_file, "replylog", "list", "--json", "--all", "--number", "+15551234567")[1])
    assert [(e["sender"], e["live"]) for e in everything] == [("alice@x.test", True), ("bob@x.test", False)]
    sender = json.loads(cli(config_file, "replylog", "list", "--json", "--sender", "<alice@X.TEST>")[1])
    assert [e["number"] for e in sender] == ["+15557654321", "+15551234567"]
    code, out, _ = cli(config_file, "replylog", "list", "--all")
    assert code == 0 and "bob@x.test (expired)" in out and out.rstrip().endswith("-- 3 links")


def test_purge_deletes_expired_links(config_file: Path, open_queue: Callable[[], QueueStore]) -> None:
    fill(config_file, open_queue)
    assert cli(config_file, "replylog", "purge") == (0, "mailsms: 1 expired link purged\n", "")
    all_left = json.loads(cli(config_file, "replylog", "list", "--json", "--all")[1])
    assert len(all_left) == 2


def test_without_a_queue_there_are_no_links(config_file: Path) -> None:
    assert cli(config_file, "replylog", "list", "--json") == (0, "[]\n", "")
    assert cli(config_file, "replylog", "list")[1] == "mailsms: no reply links\n"
    assert cli(config_file, "replylog", "purge")[0] == 0


def test_dkim_keygen_writes_a_private_key_and_prints_a_record_that_verifies(config_file: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "dkim.key"
    code, out, err = cli(config_file, "dkim-keygen", "--algorithm", "ed25519", "--selector", "sms",
                         "--domain", "sms.example.test", "--out", str(key_file))  # fmt: skip
    assert (code, err) == (0, "")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    record_line = out.splitlines()[-1]
    assert record_line.startswith('sms._domainkey.sms.example.test. IN TXT ( "v=DKIM1; k=ed25519; p=')
    txt = "".join(record_line.split('"')[1::2]).encode()
    from mailsms.dkim_sign import DkimSigner

    signed = DkimSigner("sms", "sms.example.test", key_file.read_bytes(), "ed25519").sign(
        b"From: a@sms.example.test\r\nSubject: x\r\n\r\nhi\r\n"
    )
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: txt)
    again = cli(config_file, "dkim-keygen", "--algorithm", "ed25519", "--selector", "sms", "--domain",
                "sms.example.test", "--out", str(key_file))  # fmt: skip
    assert again[0] == 73 and "exists" in again[2]


def test_dkim_keygen_takes_its_defaults_from_the_configuration(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    path = tmp_path / "c.toml"
    path.write_text(
        f"[mailout]\ndkim_selector = 'mx'\ndkim_domain = 'sms.example.test'\ndkim_key_file = '{key_file}'\n"
    )
    code, out, _ = cli(path, "dkim-keygen", "--bits", "1024")
    assert code == 0 and key_file.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert 'mx._domainkey.sms.example.test. IN TXT ( "v=DKIM1; k=rsa; p=' in out
    (tmp_path / "empty.toml").write_text("")
    code, _, err = cli(tmp_path / "empty.toml", "dkim-keygen")
    assert (code, err) == (64, "mailsms: give --selector (or set mailout.dkim_selector)\n")
