"""Faults around a real ``mailsms serve``: the SMSC away, the disk full, the queue locked, a slow relay.

Each test starts the daemon as a process with its peers in this process
(``tests/reliability/peers.py``) and checks the promises of ARCHITECTURE.md
("Durable queue"): nothing that got a 250 is lost, nothing is sent twice,
acceptance resumes without a restart once the fault is gone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.peers import FakeSmsc, MailSink
from tests.reliability.serve import Lmtp, Serve, integrity, mail, queue_id, recipient
from tests.support.wait import wait_until

NUMBERS = ("+15550000001", "+15550000002", "+15550000003")
LONG_TEXT = " ".join(f"word{n}" for n in range(60))  # 3 GSM parts


@dataclass
class Rig:
    serve: Serve
    smsc: FakeSmsc
    sink: MailSink

    def states(self) -> dict[str, str]:
        return {str(qid): str(state) for qid, state in self.serve.query("SELECT id, state FROM message")}

    def message_count(self) -> int:
        (count,) = self.serve.query("SELECT COUNT(*) FROM message")
        return int(str(count[0]))


@contextlib.contextmanager
def rig(tmp_path: Path, *, smsc_up: bool = True, queue: str = "", extra: str = "") -> Iterator[Rig]:
    """The daemon, a fake SMSC (started unless ``smsc_up`` is false) and an SMTP sink for mail-out."""
    smsc, sink = FakeSmsc(), MailSink()
    serve = Serve(tmp_path)
    serve.write_config(smsc.url, sink.relay, extra=extra, queue=queue)
    sink.start()
    if smsc_up:
        smsc.start()
    try:
        serve.start()
        yield Rig(serve, smsc, sink)
        assert serve.stop() == 0, serve.log_text()[-3000:]
        assert integrity(serve) == "ok"
    finally:
        serve.kill()
        smsc.stop()
        sink.stop()


def send(port: int, number: str, text: str = "hello", maxmsgs: int = 1, recipients: int = 1) -> list[str]:
    """One mail to ``recipients`` numbers (``number`` and the next ones); the answers after DATA."""
    client = Lmtp(port)
    try:
        client.command("LHLO mta.example.test")
        rcpts = [recipient(f"{number[:-1]}{int(number[-1]) + n}", maxmsgs) for n in range(recipients)]
        return client.send(rcpts, mail(text))
    finally:
        client.close()


def reports(sink: MailSink, action: str) -> dict[str, int]:
    """How many reports with ``Action: <action>`` name each of NUMBERS."""
    mails = [m for m in sink.mails() if f"Action: {action}".encode() in m]
    return {n: sum(1 for m in mails if n.encode() in m) for n in NUMBERS}


# -- the SMSC away, then back ---------------------------------------------------------


def deferrals(serve: Serve, ids: list[str]) -> dict[str, int]:
    """How many times the daemon logged each message as deferred."""
    lines = [line for line in serve.log_text().splitlines() if "status=deferred" in line]
    return {qid: sum(1 for line in lines if f": {qid}: to=" in line) for qid in ids}


def test_smsc_down_then_back_delivers_everything_once_with_one_delay_warning_each(tmp_path: Path) -> None:
    gateway = 'breaker_reset = "1s"'
    with rig(tmp_path, smsc_up=False, queue='delay_warning_time = "2s"', extra=gateway) as r:
        answers = [send(r.serve.lmtp_port, NUMBERS[0], LONG_TEXT, maxmsgs=3)[0]]
        answers += [send(r.serve.lmtp_port, n)[0] for n in NUMBERS[1:]]
        assert [a[:9] for a in answers] == ["250 2.0.0"] * 3
        ids = [queue_id(a) for a in answers]
        wait_until(lambda: set(reports(r.sink, "delayed").values()) == {1}, timeout=20, what="a delay warning each")
        # Still down: each message is deferred twice more (a try, or the open circuit), and nobody is warned again.
        before = deferrals(r.serve, ids)
        wait_until(
            lambda: all(n >= before[qid] + 2 for qid, n in deferrals(r.serve, ids).items()),
            timeout=20, what="two more deferrals each",
        )  # fmt: skip
        assert r.smsc.parts() == 0
        r.smsc.start()
        wait_until(lambda: set(r.states().values()) == {"submitted"}, timeout=20, what="all submitted")
        assert sorted(r.smsc.seen) == sorted([(ids[0], 1), (ids[0], 2), (ids[0], 3), (ids[1], 1), (ids[2], 1)])
        assert r.smsc.duplicates() == {}
        assert reports(r.sink, "delayed") == dict.fromkeys(NUMBERS, 1)
        assert reports(r.sink, "failed") == dict.fromkeys(NUMBERS, 0)
        assert "possible duplicate" not in r.serve.log_text()


# -- the queue database locked by another process -------------------------------------


@contextlib.contextmanager
def exclusive_lock(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``BEGIN EXCLUSIVE`` on ``db`` until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "conn.execute('BEGIN EXCLUSIVE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.readline()\n"
         "conn.execute('COMMIT')\n",
         str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        with contextlib.suppress(OSError):
            holder.stdin.write("\n")
            holder.stdin.flush()
        holder.wait(timeout=10)


def test_queue_locked_by_another_process_tempfails_past_the_busy_timeout_and_resumes(tmp_path: Path) -> None:
    with rig(tmp_path, smsc_up=False) as r:
        (early,) = send(r.serve.lmtp_port, NUMBERS[0])
        wait_until(lambda: r.states() == {queue_id(early): "deferred"}, what="deferred while the SMSC is down")
        with exclusive_lock(r.serve.db):
            r.smsc.start()  # its retry (1 s after the deferral) falls due while the lock is held
            started = time.monotonic()
            answers = send(r.serve.lmtp_port, NUMBERS[1], recipients=2)
            assert time.monotonic() - started >= 4.0  # it waited for the lock: SQLite's busy timeout, 5 s
            assert [a[:9] for a in answers] == ["451 4.3.0"] * 2, answers
            # The scheduler could not commit `sending` either: it sent nothing, and holds nothing.
            wait_until(lambda: "delivery not started" in r.serve.log_text(), timeout=15, what="the retry failing")
            assert r.smsc.parts() == 0
        assert r.message_count() == 1  # nothing of the refused mail was written
        # A lock held for a moment only: the mail waits for it within the busy timeout.
        client = Lmtp(r.serve.lmtp_port)
        client.command("LHLO mta.example.test")
        client.command("MAIL FROM:<alice@example.com>")
        client.command(f"RCPT TO:<{recipient(NUMBERS[2])}>")
        assert client.command("DATA").startswith("354")
        with exclusive_lock(r.serve.db):
            client.write(b"Subject: s\r\n\r\nwaits for the lock\r\n.\r\n")
        late = client.reply()
        client.close()
        assert late.startswith("250 2.0.0"), late
        wait_until(lambda: set(r.states().values()) == {"submitted"}, timeout=20, what="both submitted, none held")
        assert sorted(r.smsc.seen) == sorted([(queue_id(early), 1), (queue_id(late), 1)])
        assert r.smsc.duplicates() == {}


# -- the disk full during DATA ----------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path``: a real file system that fills up."""
    assert os.geteuid() == 0, "mounting a tmpfs needs root, as the test suite's Postfix does (CI runs as root)"
    path.mkdir(mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"cannot mount a tmpfs as root: {mounted.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; the file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def test_disk_full_during_data_gives_452_per_recipient_and_resumes_once_space_is_back(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "var", "2m") as state, rig(tmp_path) as r:
        (first,) = send(r.serve.lmtp_port, NUMBERS[0])
        wait_until(lambda: r.states() == {queue_id(first): "submitted"}, what="the first message submitted")
        rows = r.serve.query("SELECT (SELECT COUNT(*) FROM message), (SELECT COUNT(*) FROM part)")
        filler = fill(state)
        big = " ".join(f"w{n}" for n in range(3000))
        answers = send(r.serve.lmtp_port, NUMBERS[1], big, maxmsgs=40, recipients=2)
        assert answers == ["452 4.3.1 queue file write error: insufficient system storage"] * 2
        assert r.serve.query("SELECT (SELECT COUNT(*) FROM message), (SELECT COUNT(*) FROM part)") == rows
        filler.unlink()  # space is back: no restart needed
        answers = send(r.serve.lmtp_port, NUMBERS[1], big, maxmsgs=40, recipients=2)
        assert [a[:9] for a in answers] == ["250 2.0.0"] * 2, answers
        wait_until(lambda: set(r.states().values()) == {"submitted"}, timeout=20, what="all submitted")
        assert r.smsc.parts() == 1 + 2 * 40 and r.smsc.duplicates() == {}


# -- a slow relay for the inbound path ------------------------------------------------------

INBOUND = """
[inbound]
local_domains = ["example.com"]
unmatched_recipient = "inbox@example.com"
"""


def post_mo(port: int, smsc_id: str) -> tuple[int, bytes, float]:
    """POST an incoming SMS to /inbound/smsc: the status, the body and how long the answer took."""
    form = f"from=%2B15551230000&to=12345&text=reply+{smsc_id}&smsc_id={smsc_id}".encode()
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/inbound/smsc", data=form, timeout=10) as answer:
        return answer.status, answer.read(), time.monotonic() - started


def test_a_stalled_mail_relay_keeps_the_mo_stored_and_delivers_it_once_when_it_answers(tmp_path: Path) -> None:
    with rig(tmp_path, extra=INBOUND) as r:
        r.sink.hold.arm()  # the relay takes the connection, then stalls at DATA
        status, body, took = post_mo(r.serve.http_port, "mo-1")
        assert status == 200 and b'"duplicate": false' in body
        assert took < 2.0  # answered once stored, not once mailed
        wait_until(r.sink.hold.holding.is_set, timeout=15, what="mail-out stalled at the relay")
        again = post_mo(r.serve.http_port, "mo-1")  # the gateway retries its webhook meanwhile
        assert again[0] == 200 and b'"duplicate": true' in again[1] and again[2] < 2.0
        assert r.serve.query("SELECT COUNT(*) FROM inbound") == [(1,)]
        assert r.serve.query("SELECT COUNT(*) FROM mailout") == [(1,)]  # stored until the relay answers
        r.sink.hold.release()
        wait_until(lambda: r.serve.query("SELECT COUNT(*) FROM mailout") == [(0,)], timeout=15, what="mail-out done")
        mails = r.sink.mails()
        assert len(mails) == 1 and b"15551230000" in mails[0] and b"inbox@example.com" in mails[0]
