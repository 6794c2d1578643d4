"""``mailsms serve`` with an SMPP gateway bound to a real SMSC: the server of the PyPI package ``smpp34``.

The simulator runs in its own process (``python -m tests.fakes.smsc_smpp``):
it accepts every bind, answers ``submit_sm`` with hex message ids, sends a
delivery receipt for each (the id in the TLV ``receipted_message_id``, and in
decimal in the receipt text), throttles on command and sends MOs on command.
Mail goes in over LMTP; the queue and the inbound store are read with the CLI.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mailsms.segment import split_text
from tests.integration.conftest import MailsmsProcess, MailsmsStarter
from tests.support.lmtp import LmtpClient
from tests.support.proc import free_port, run_cli
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

SENDER = "alice@client.example.test"
NUMBER = "+15551234567"
LONG_UCS2 = ("Привет! Встреча переносится на завтра, 10:00, зал 3. " * 3)[:180].rstrip() + " 👋"
Event = dict[str, Any]


@dataclass
class Simulator:
    """smpp34's SMSC server in a child process; its events as they come."""

    port: int
    proc: subprocess.Popen[str]
    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def command(self, **command: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def seen(self, kind: str) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(self, kind: str, count: int, timeout: float = 20.0) -> list[Event]:
        wait_until(lambda: len(self.seen(kind)) >= count, timeout=timeout, what=f"{count} {kind} event(s)")
        return self.seen(kind)


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.smsc_smpp", "--port", str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    sim = Simulator(port, proc)
    threading.Thread(target=sim._read, daemon=True).start()
    try:
        wait_until(lambda: sim.seen("listening") or proc.poll() is not None, timeout=20, what="the simulator")
        if proc.poll() is not None:  # smpp34 missing or broken: a failure, never a skip
            raise AssertionError(f"the smpp34 simulator exited: {proc.stderr.read() if proc.stderr else ''}")
        yield sim
    finally:
        if proc.poll() is None:
            sim.command(cmd="stop")
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Setup:
    sim: Simulator
    mailsms: MailsmsProcess

    def cli(self, *args: str) -> Any:
        config = self.mailsms.state.with_suffix(".cli.toml")
        config.write_text(f'[state]\ndir = "{self.mailsms.state}"\n[store]\nurl = "{self.mailsms.store_url}"\n')
        result = run_cli([*args, "--json", "--config", str(config)])
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def poll(self, fetch: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = 30.0) -> Any:
        seen: list[Any] = [None]

        def holds() -> bool:
            seen[0] = fetch()
            return done(seen[0])

        try:
            wait_until(holds, timeout=timeout, interval=0.2, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast: {seen[0]}\n--- mailsms ---\n{self.mailsms.stop()[-3000:]}") from None
        return seen[0]

    def parts_reach(self, queue_id: str, state: str) -> dict[str, Any]:
        def reached(message: dict[str, Any]) -> bool:
            return bool(message["parts"]) and all(p["state"] == state for p in message["parts"])

        return self.poll(lambda: self.cli("queue", "show", queue_id), reached, f"every part of {queue_id} {state}")


@pytest.fixture
def setup(simulator: Simulator, start_mailsms: MailsmsStarter) -> Setup:
    config = (
        '[queue]\nminimal_backoff_time = "1s"\nmaximal_backoff_time = "2s"\n\n'
        f'[[gateway]]\nid = "smpp"\ntype = "smpp"\nhost = "127.0.0.1"\nport = {simulator.port}\n'
        'system_id = "mailsms"\npassword = "s3cret"\nwindow = 10\nthrottle_delay = "1s"\n'
    )
    mailsms = start_mailsms(config=config)
    simulator.wait_for("bound", 1)
    return Setup(simulator, mailsms)


def mail(text: str, recipient: str) -> bytes:
    return (
        f"From: Alice <{SENDER}>\r\nTo: {recipient}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
    ).encode()


async def send_mail(setup: Setup, text: str, maxmsgs: int) -> str:
    recipient = f'"sms:{NUMBER}?maxmsgs={maxmsgs}"@sms.example.test'
    client = await LmtpClient.connect("127.0.0.1", setup.mailsms.lmtp_port)
    try:
        assert (await client.command("LHLO client.example.test")).code == 250
        _, rcpts, replies = await client.send(SENDER, [recipient], mail(text, recipient))
    finally:
        await client.close()
    assert [r.code for r in rcpts] == [250]
    match = re.search(r"(\S+) queued as SMS", replies[0].text)
    assert replies[0].code == 250 and match, replies
    return match.group(1)


async def test_a_long_ucs2_text_reaches_the_smsc_in_three_parts_and_receipts_mark_them_delivered(
    setup: Setup,
) -> None:
    queue_id = await send_mail(setup, LONG_UCS2, maxmsgs=3)

    submits = setup.sim.wait_for("submit", 3)

    fields = [(s["dest"], s["dest_ton"], s["esm_class"], s["data_coding"], s["registered_delivery"]) for s in submits]
    assert fields == [("15551234567", 1, 0x40, 8, 1)] * 3
    data = [bytes.fromhex(s["hex"]) for s in submits]
    udhs = [d[:6] for d in data]
    assert [u[:3] for u in udhs] == [b"\x05\x00\x03"] * 3 and len({u[3] for u in udhs}) == 1
    assert [(u[4], u[5]) for u in udhs] == [(3, 1), (3, 2), (3, 3)]
    texts = [d[6:].decode("utf-16-be") for d in data]
    assert "".join(texts) == LONG_UCS2
    assert texts == [part.text for part in split_text(LONG_UCS2, maxmsgs=3).parts]
    message = setup.parts_reach(queue_id, "delivered")
    assert [p["gateway_id"] for p in message["parts"]] == [s["id"] for s in submits]
    assert [r["status"] for r in setup.sim.wait_for("receipt", 3)] == [0, 0, 0]


async def test_mos_with_and_without_udh_are_stored_and_acknowledged(setup: Setup) -> None:
    udh = bytes.fromhex("0500037f0101")
    setup.sim.command(cmd="mo", source="15557654321", dest="12345", esm_class=0x40, data_coding=8,
                      hex=(udh + "Grüße 👋 bis gleich".encode("utf-16-be")).hex())  # fmt: skip
    setup.sim.command(cmd="mo", source="15557654321", dest="12345", hex=b"Running late".hex())

    entries = setup.poll(lambda: setup.cli("inbound", "list"), lambda found: len(found) >= 2, "two MOs stored")

    assert [m["status"] for m in setup.sim.wait_for("mo", 2)] == [0, 0]
    assert sorted(e["text"] for e in entries) == ["Grüße 👋 bis gleich", "Running late"]
    assert {(e["gateway"], e["from"]) for e in entries} == {("smpp", "+15557654321")}


async def test_a_throttling_period_delays_the_message_and_loses_nothing(setup: Setup) -> None:
    setup.sim.command(cmd="throttle", count=3)
    setup.sim.wait_for("throttling", 1)

    queue_id = await send_mail(setup, "Throttled, then through", maxmsgs=1)

    assert len(setup.sim.wait_for("rejected", 3)) == 3
    message = setup.parts_reach(queue_id, "delivered")
    assert message["state"] == "delivered"
    assert len(setup.sim.seen("submit")) == 1  # accepted once, after the throttling ended
