"""``mailsms serve`` as a process: SIGHUP reloads (a bad file keeps the old one), SIGTERM finishes
the multipart message in flight and leaves what has not started queued."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailsms.queue_admin import QueueAdmin
from tests.support.proc import MAILSMS, free_port, port_open
from tests.support.wait import wait_until
from transports import fake

NUMBER = "+15551234567"
LONG_TEXT = " ".join(f"word{n}" for n in range(70))  # 3 GSM parts


def config_text(port: int, store_url: str, extra: str = "") -> str:
    return f"""
[store]
url = "{store_url}"

[server]
lmtp_listen = "127.0.0.1:{port}"
http_listen = ""
shutdown_timeout = "20s"

[state]
dir = "var"

[queue]
queue_run_delay = "0.1s"

[[gateway]]
id = "slow"
type = "fake"
delay = "0.3s"
concurrency = 1
{extra}"""


@contextmanager
def serving(tmp_path: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*MAILSMS, "serve", "--config", "mailsms.toml"], cwd=tmp_path, stderr=err)
    try:
        wait_until(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, timeout=15, what="listening")
        assert proc.poll() is None, log.read_text()
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def lmtp(port: int, text: str, number: str = NUMBER) -> str:
    """One mail to one sms: recipient; the final reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        stream = sock.makefile("rwb")

        def reply() -> str:
            while True:
                line = stream.readline().decode()
                if line[3:4] != "-":
                    return line.strip()

        def command(line: str) -> str:
            stream.write(line.encode() + b"\r\n")
            stream.flush()
            return reply()

        reply()
        command("LHLO test")
        command("MAIL FROM:<alice@example.com>")
        answer = command(f'RCPT TO:<"sms:{number}?maxmsgs=3"@sms.example.test>')
        if not answer.startswith("250"):
            return answer
        command("DATA")
        stream.write(f"Subject: \r\n\r\n{text}\r\n.\r\n".encode())
        stream.flush()
        final = reply()
        command("QUIT")
        return final


def test_sighup_applies_a_good_file_and_keeps_the_old_one_for_a_bad_file(tmp_path: Path, store_url: str) -> None:
    port = free_port()
    conf = tmp_path / "mailsms.toml"
    conf.write_text(config_text(port, store_url))
    with serving(tmp_path, port) as (proc, log):
        assert lmtp(port, "hello").startswith("250")
        conf.write_text(
            config_text(
                port, store_url, '\n[[route]]\nname = "no-us"\nnumber = "\\\\+1555.*"\nreject = "550 5.7.1 not today"\n'
            )
        )
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload: configuration mailsms.toml applied" in log.read_text(), what="reloaded")
        assert lmtp(port, "hello") == "550 5.7.1 not today"

        conf.write_text(
            config_text(port, store_url).replace('queue_run_delay = "0.1s"', 'queue_run_delay = "0.1s"\nbogus = 1')
        )
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "the running configuration is kept" in log.read_text(), what="bad file refused")
        assert "queue.bogus: unknown" in log.read_text()
        assert lmtp(port, "hello") == "550 5.7.1 not today"  # still serving, with the rules it had
        assert lmtp(port, "hello", "+447700900123").startswith("250")

        conf.write_text(config_text(free_port(), store_url))  # a new listener needs a restart: said, and kept
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "changes to server need a restart" in log.read_text(), what="restart named")
        assert lmtp(port, "hello").startswith("250")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_sigterm_finishes_the_multipart_message_in_flight_and_keeps_the_rest_queued(
    tmp_path: Path, store_url: str
) -> None:
    port = free_port()
    (tmp_path / "mailsms.toml").write_text(config_text(port, store_url))
    with serving(tmp_path, port) as (proc, log):
        first = lmtp(port, LONG_TEXT).split()[2]
        second = lmtp(port, "short one").split()[2]
        sent = tmp_path / "var"
        wait_until(lambda: len(fake.read_sent(sent)) >= 1, what="the first part sent")
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 20
    records = fake.read_sent(sent)
    assert [(r["queue_id"], r["seq"]) for r in records] == [(first, 1), (first, 2), (first, 3)]
    admin = QueueAdmin.open(sent, store_url)
    assert admin is not None
    try:
        states = {m.id: m.state for m in map(admin.store.load, (first, second)) if m is not None}
    finally:
        admin.close()
    assert states == {first: "submitted", second: "queued"}
    assert "daemon stopped" in log.read_text()
