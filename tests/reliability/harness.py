"""The crash test: kill ``mailsms serve`` with SIGKILL at chosen moments, restart it, count what survives.

Shared by the CI variant (``tests/reliability/test_crash_kill.py``) and the
long one (``python -m bench.crash``).  A client thread drives LMTP load
(several messages per connection, some multipart with ``maxmsgs=3``, some to
numbers the fake SMSC refuses, so that failure reports go out by mail-out);
the main thread picks a moment, arms it, waits until the daemon is exactly
there, kills it and starts it again.  At the end everything drains and
``check`` compares what the client was told (250) with what the SMSC and the
mail sink received and what the daemon logged.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.peers import FakeSmsc, MailSink
from tests.reliability.serve import SENDER, Lmtp, Serve, dot_stuffed, integrity, mail, queue_id, recipient
from tests.support.proc import port_open
from tests.support.wait import wait_until

MOMENTS = ("data", "after_250", "submit", "dsn")
REFUSED_PREFIX = "+1556"  # the fake SMSC refuses these numbers for good: the message fails, a DSN goes out
ARM_TIMEOUT = 15.0  # seconds to wait for an armed moment to come
_PARTS = re.compile(r"\((\d+) parts?\)")
_FLAGGED = re.compile(r"(\S+): to=<[^>]*>.*status=possible duplicate")
_NUMBER = re.compile(rb"\+155[56]\d{7}")


@dataclass(frozen=True)
class CrashParams:
    messages: int = 300
    kills: int = 8
    seed: int = 0
    per_connection: int = 5  # messages per LMTP connection
    multipart_share: float = 0.3
    refused_share: float = 0.1
    burst: tuple[int, int] = (5, 25)  # 250s to wait for between kills (at random in this range)
    drain_timeout: float = 60.0


@dataclass(frozen=True)
class Planned:
    number: str
    maxmsgs: int
    text: str

    @property
    def refused(self) -> bool:
        return self.number.startswith(REFUSED_PREFIX)


def make_plan(rng: random.Random, params: CrashParams) -> list[Planned]:
    """The messages to send: a number of their own each, so that a report names its message."""
    plan = []
    for index in range(params.messages):
        prefix = REFUSED_PREFIX if rng.random() < params.refused_share else "+1555"
        if rng.random() < params.multipart_share:
            words = rng.randint(30, 90)  # 2 or 3 parts, the longest truncated at maxmsgs=3
            plan.append(Planned(f"{prefix}{index:07d}", 3, " ".join(f"w{index}x{n}" for n in range(words))))
        else:
            plan.append(Planned(f"{prefix}{index:07d}", 1, f"message {index}"))
    return plan


class LoadClient(threading.Thread):
    """Sends the plan over LMTP, reconnecting across restarts, until every message got a 250 or a 5xx.

    Armed with ``arm("data")`` it stops in the middle of the next body; with
    ``arm("after_250")`` it stops right after the next 250; either way it
    sets ``there`` and waits for ``killed``.
    """

    def __init__(self, ports: list[int], plan: list[Planned], per_connection: int) -> None:
        super().__init__(name="lmtp-load", daemon=True)
        self.ports = ports  # one LMTP listener per node: each connection goes to the next, as Postfix spreads them
        self.port = ports[0]  # the listener of the current connection
        self._connections = 0
        self.per_connection = per_connection
        self.todo = deque(plan)
        self.acked: dict[str, tuple[Planned, int]] = {}  # queue id -> (message, parts) for every 250
        self.refused: Counter[str] = Counter()  # final answers other than 250, by code
        self.unsure = 0  # connections lost after the final dot, before the answer
        self.there = threading.Event()
        self.killed = threading.Event()
        self.finished = threading.Event()
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self._armed = ""
        self._lock = threading.Lock()

    def arm(self, moment: str) -> None:
        with self._lock:
            self.there.clear()
            self.killed.clear()
            self._armed = moment

    def disarm(self) -> None:
        with self._lock:
            self._armed = ""
        self.killed.set()

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _take_arm(self, moment: str) -> bool:
        with self._lock:
            if self._armed != moment:
                return False
            self._armed = ""
        self.there.set()
        return True

    def run(self) -> None:
        try:
            while self.todo and not self.halt.is_set():
                try:
                    self._connection()
                except OSError:
                    wait_until(lambda: self.halt.is_set() or any(port_open("127.0.0.1", p) for p in self.ports),
                               timeout=120, what="an LMTP listener back")  # fmt: skip
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.finished.set()

    def _connection(self) -> None:
        self.port = self.ports[self._connections % len(self.ports)]
        self._connections += 1
        client = Lmtp(self.port)
        try:
            if not client.greeting.startswith("220"):
                raise ConnectionError(client.greeting)
            client.command("LHLO load.example.test")
            for _ in range(self.per_connection):
                if not self.todo or self.halt.is_set():
                    break
                self._one(client, self.todo[0])
        finally:
            client.sock.close()

    def _one(self, client: Lmtp, message: Planned) -> None:
        client.command(f"MAIL FROM:<{SENDER}>")
        rcpt = client.command(f"RCPT TO:<{recipient(message.number, message.maxmsgs)}>")
        if not rcpt.startswith("250"):
            return self._answered(client, message, rcpt)
        if not client.command("DATA").startswith("354"):
            raise ConnectionError("DATA refused")
        body = dot_stuffed(mail(message.text, subject=f"load {message.number}"))
        half = len(body) // 2
        client.write(body[:half])
        if self._take_arm("data"):
            self.killed.wait(ARM_TIMEOUT)  # the daemon dies with half a body read
        client.write(body[half:] + b".\r\n")
        try:
            answer = client.reply()
        except OSError:
            self.unsure += 1
            raise
        self._answered(client, message, answer)
        if answer.startswith("250") and self._take_arm("after_250"):
            self.killed.wait(ARM_TIMEOUT)

    def _answered(self, client: Lmtp, message: Planned, answer: str) -> None:
        if answer.startswith("250"):
            found = _PARTS.search(answer)
            with self._lock:
                self.acked[queue_id(answer)] = (message, int(found.group(1)) if found else 1)
            self.todo.popleft()
        elif answer.startswith("5"):
            self.refused[answer[:3]] += 1
            self.todo.popleft()
            client.command("RSET")
        else:  # 4xx: try again later, as an MTA would
            self.refused[answer[:3]] += 1
            self.todo.rotate(-1)
            client.command("RSET")


@dataclass
class CrashSummary:
    seed: int
    params: CrashParams
    kills: Counter[str] = field(default_factory=Counter)  # moment -> kills that landed there ("missed:<m>" if not)
    acked: int = 0
    unsure: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    refused_by_design: int = 0
    parts_seen: int = 0
    duplicate_parts: int = 0
    flagged: int = 0  # messages logged as "possible duplicate"
    dsns: int = 0
    duplicate_dsns: int = 0
    integrity: str = ""
    takeovers: int = 0  # several nodes: kills after which the other nodes took over the dead node's messages
    taken_over_parts: int = 0  # several nodes: messages whose parts a node found left in sending by a dead one
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        kills = ", ".join(f"{moment} {count}" for moment, count in sorted(self.kills.items()))
        lines = [
            f"crash test: seed {self.seed}, {sum(self.kills.values())} kills ({kills}), {self.elapsed:.1f}s",
            f"  messages: {self.params.messages} planned, {self.acked} got 250 ({self.refused_by_design} refused"
            f" by the SMSC by design), {self.unsure} answers lost in a kill, other answers {dict(self.refused)}",
            f"  parts: {self.parts_seen} seen by the SMSC, {self.duplicate_parts} seen twice or more;"
            f" {self.flagged} messages logged as possible duplicate",
            f"  reports: {self.dsns} DSNs at the sink, {self.duplicate_dsns} more than once",
            f"  integrity_check: {self.integrity}; takeovers: {self.takeovers} ({self.taken_over_parts} messages"
            f" in sending taken over); problems: {len(self.problems)}",
            *(f"  PROBLEM {p}" for p in self.problems[:30]),
        ]
        return "\n".join(lines)


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class CrashRun:
    """One crash test in ``workdir``: peers, daemon, load, kills, drain, check."""

    def __init__(
        self, workdir: Path, params: CrashParams, say: Callable[[str], None] = print, *, store_url: str = "",
        nodes: int = 1, lease_seconds: int = 60,
    ) -> None:  # fmt: skip
        self.params = params
        self.rng = random.Random(params.seed)
        self.say = say
        self.smsc = FakeSmsc(refuse=lambda number: number.startswith(REFUSED_PREFIX))
        self.sink = MailSink()
        # One node: the daemon in workdir. Several: nodes "a", "b"... sharing the PostgreSQL queue.
        self.nodes = [Serve(workdir, store_url=store_url)] if nodes == 1 else [
            Serve(_made(workdir / name), store_url=store_url, name=name) for name in "abcdefgh"[:nodes]
        ]  # fmt: skip
        for node in self.nodes:
            node.write_config(self.smsc.url, self.sink.relay, lease_seconds=lease_seconds)
        self.serve = self.nodes[0]  # reads the queue (the one every node shares)
        ports = [node.lmtp_port for node in self.nodes]
        self.client = LoadClient(ports, make_plan(self.rng, params), params.per_connection)
        self.summary = CrashSummary(params.seed, params)

    def run(self) -> CrashSummary:
        started = time.monotonic()
        self.smsc.start()
        self.sink.start()
        try:
            for node in self.nodes:
                node.start()
            self.client.start()
            moments = [MOMENTS[i % len(MOMENTS)] for i in range(self.params.kills)]
            self.rng.shuffle(moments)
            for moment in moments:
                victim = self._kill_at(moment)
                if len(self.nodes) > 1:
                    self._taken_over(victim)
                victim.start()
            wait_until(self.client.finished.is_set, timeout=self.params.drain_timeout + 60, what="all mail sent")
            if self.client.error is not None:
                raise self.client.error
            wait_until(self._drained, timeout=self.params.drain_timeout, what="the queue drained")
            for node in self.nodes:
                node.stop()
        finally:
            self.client.halt.set()
            self.client.disarm()
            for node in self.nodes:
                node.kill()
            self.smsc.stop()
            self.sink.stop()
        self.summary.elapsed = time.monotonic() - started
        self.check()
        return self.summary

    def _kill_at(self, moment: str) -> Serve:
        """Kill the node that is at ``moment`` (the one the client talks to, or the one whose
        request the SMSC or the mail sink holds); that node."""
        low, high = self.params.burst
        target = self.client.acked_count() + self.rng.randint(low, high)
        wait_until(lambda: self.client.acked_count() >= target or self.client.finished.is_set(), timeout=60,
                   what=f"{target} messages accepted")  # fmt: skip
        if moment in ("data", "after_250"):
            self.client.arm(moment)
            there = self.client.there
        else:
            hold = self.smsc.hold if moment == "submit" else self.sink.hold
            hold.arm()
            there = hold.holding
        landed = there.wait(ARM_TIMEOUT)
        victim = self._node_at(moment)
        victim.kill()
        self.client.disarm()
        self.smsc.hold.release()
        self.sink.hold.release()
        self.summary.kills[moment if landed else f"missed:{moment}"] += 1
        return victim

    def _node_at(self, moment: str) -> Serve:
        if len(self.nodes) == 1:
            return self.nodes[0]
        if moment in ("data", "after_250"):
            return next(node for node in self.nodes if node.lmtp_port == self.client.port)
        held_by = (self.smsc.hold if moment == "submit" else self.sink.hold).held_by
        return next((node for node in self.nodes if node.name == held_by), self.nodes[0])

    def _taken_over(self, dead: Serve) -> None:
        """Several nodes: wait (the dead node stays dead) until the others took over every message it
        had claimed: their claims run out after ``lease_seconds``."""
        node_id = dead.node_id
        wait_until(
            lambda: (
                not self.serve.query(
                    "SELECT 1 FROM message WHERE lease_node = ? AND lease_until IS NOT NULL"
                    " AND state IN ('queued','deferred') LIMIT 1",
                    (node_id,),
                )
            ),
            timeout=60,
            what=f"the other nodes to take over what node {dead.name} had claimed",
        )
        self.summary.takeovers += 1

    def _drained(self) -> bool:
        (row,) = self.serve.query(
            "SELECT (SELECT COUNT(*) FROM message WHERE state IN ('queued','deferred') OR report_due != 0)"
            " + (SELECT COUNT(*) FROM part WHERE state = 'sending') + (SELECT COUNT(*) FROM mailout)"
        )
        return row[0] == 0

    def check(self) -> None:
        """Fill the summary; every broken promise goes to ``problems``."""
        summary, problems = self.summary, self.summary.problems
        rows = {
            str(r[0]): (str(r[1]), bool(r[2]))
            for r in self.serve.query("SELECT id, state, possible_duplicate FROM message")
        }
        logs = "".join(node.log_text() for node in self.nodes)
        flagged = set(_FLAGGED.findall(logs))
        summary.taken_over_parts = logs.count("left in sending by a node whose claim ran out")
        reports = Counter(n.decode() for m in self.sink.mails() for n in set(_NUMBER.findall(m)))
        summary.acked, summary.unsure, summary.refused = len(self.client.acked), self.client.unsure, self.client.refused
        summary.parts_seen, summary.flagged = self.smsc.parts(), len(flagged)
        summary.dsns, summary.duplicate_dsns = sum(reports.values()), sum(1 for c in reports.values() if c > 1)
        for qid, (message, parts) in sorted(self.client.acked.items()):
            state = rows.get(qid, ("(not in the queue)", False))[0]
            if message.refused:
                summary.refused_by_design += 1
                if state != "failed":
                    problems.append(f"{qid}: refused by the SMSC, but state {state}")
                if not reports[message.number]:
                    problems.append(f"{qid}: failed, but no report reached the sender")
                continue
            if state not in ("submitted", "delivered"):
                problems.append(f"lost: {qid} got 250 but is {state}")
            missing = [seq for seq in range(1, parts + 1) if not self.smsc.seen[(qid, seq)]]
            if missing:
                problems.append(f"lost: {qid} got 250 but the SMSC never saw parts {missing}")
        duplicates = self.smsc.duplicates()
        summary.duplicate_parts = len(duplicates)
        for (qid, seq), count in sorted(duplicates.items()):
            if qid not in flagged:
                problems.append(f"duplicate not logged: {qid} part {seq} seen {count} times")
            elif not rows.get(qid, ("", False))[1]:
                problems.append(f"duplicate logged but the queue does not flag {qid} possible_duplicate")
        strangers = {qid for qid, _ in self.smsc.seen} - rows.keys()
        if strangers:
            problems.append(f"the SMSC saw parts of messages not in the queue: {sorted(strangers)[:5]}")
        summary.integrity = integrity(self.serve)
        if summary.integrity != "ok":
            problems.append(f"integrity_check: {summary.integrity}")
