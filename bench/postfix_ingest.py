"""Ingest behind a real Postfix: mailsms against pipe-and-script and against an LMTP null sink, in one run.

    .venv/bin/python -m bench.postfix_ingest [--messages 3000] [--pipe-messages 1000] [--rounds 2]
                                             [--sessions 8] [--tmp-dir DIR] [--json PATH]

Three configurations of one private Postfix (``tests.support.postfix``: its
own configuration, queue and ports on loopback), each fed by Postfix's own
load generator ``smtp-source`` (``--sessions`` SMTP sessions, ``-d``, one
recipient a message, all to ``"sms:+15551230000"@sms.example.test``;
``--messages`` for the LMTP cases, ``--pipe-messages`` for the pipe case,
about 30 s of it at the ~30 msg/s it reaches here):

* **pipe**: the transport map sends sms mail to a ``pipe(8)`` service that
  runs ``bench/pipe_to_smstools.py`` once per message (the system Python,
  as user ``nobody``), which writes an smstools outgoing file: the way many
  sites do it today;
* **sink**: Postfix's LMTP client to an aiosmtpd LMTP null sink in its own
  process (the ceiling: nothing is stored);
* **mailsms**: Postfix's LMTP client to ``mailsms serve`` (no configuration:
  the built-in outbox gateway, whose scheduler writes and fsyncs one outbox
  file per message in the same process while mail comes in).

Each configuration gets a fresh Postfix instance; rounds alternate the three.
The clock runs from the start of ``smtp-source`` until Postfix has logged
``status=sent`` for every message, i.e. until the final hop accepted the
last one (the script exited 0, or the LMTP server answered 250).  After
each case the final hop is counted: spool files for pipe, queue rows for
mailsms.  Rates are messages per second; a round's ratio compares mailsms
with the other two in the same round; the summary is the median.

Targets (issue 15): mailsms >= 10x pipe-and-script, and >= 0.81 of the
LMTP null sink's rate behind the same Postfix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.ingest import SINK_SCRIPT, Server, free_port, machine_line, queue_rows
from bench.table import emit, row
from tests.support.postfix import PostfixInstance

REPO = Path(__file__).resolve().parent.parent
SMTP_SOURCE = "/usr/sbin/smtp-source"
SCRIPT = REPO / "bench" / "pipe_to_smstools.py"
SYSTEM_PYTHON = "/usr/bin/python3"
PIPE_USER = "nobody"  # pipe(8) refuses root and the mail owner
RECIPIENT = '"sms:+15551230000"@sms.example.test'
CONFIGS = ("pipe", "sink", "mailsms")
TARGET_VS_PIPE = 10.0
TARGET_VS_SINK = 0.81
PAYLOAD = 150  # bytes of body smtp-source sends

PIPE_SERVICE = """\
smstools   unix  -       n       n       -       -       pipe
  flags=R user={user} argv={python} {script} {spool} ${{recipient}}
"""


class BenchPostfix(PostfixInstance):
    """The tests' private Postfix; with ``spool`` set, sms mail goes to the pipe(8) script instead of LMTP."""

    def __init__(self, lmtp_port: int, spool: Path | None = None) -> None:
        extra = "smstools_destination_recipient_limit = 1\n" if spool else ""
        super().__init__(lmtp_port, extra_config=extra)
        self.spool = spool

    def _write(self) -> None:
        super()._write()
        if self.spool is None:
            return
        with open(self.config_dir / "master.cf", "a") as master:
            master.write(PIPE_SERVICE.format(user=PIPE_USER, python=SYSTEM_PYTHON, script=SCRIPT, spool=self.spool))
        (self.config_dir / "transport_sms").write_text('/^"?sms:/ smstools:\n/@sms\\.example\\.test$/ smstools:\n')


@dataclass
class Case:
    round: int
    config: str
    messages: int
    seconds: float  # smtp-source start to the last status=sent
    accepted_s: float  # smtp-source start to its exit (Postfix has queued every message)
    final_hop: int | None  # spool files or queue rows counted afterwards
    problems: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "msg_per_s": round(self.rate, 1)}


class LogCounter:
    """Counts delivery results in a Postfix log file as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.counts = {"sent": 0, "deferred": 0, "bounced": 0}

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return 0
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            for status in self.counts:
                if b" status=" + status.encode() + b" " in line:
                    self.counts[status] += 1
        return self.counts["sent"]


def make_spool() -> Path:
    """An smsd spool the pipe user can write to."""
    spool = Path(tempfile.mkdtemp(prefix="mailsms-bench-spool-", dir="/var/tmp"))
    for sub in ("outgoing", "tmp"):
        (spool / sub).mkdir()
    for directory in (spool, spool / "outgoing", spool / "tmp"):
        shutil.chown(directory, PIPE_USER)
        directory.chmod(0o755)
    return spool


def smtp_source(port: int, messages: int, sessions: int) -> subprocess.Popen[bytes]:
    argv = [SMTP_SOURCE, "-d", "-s", str(sessions), "-m", str(messages), "-r", "1", "-l", str(PAYLOAD),
            "-S", "bench", "-f", "bench@example.test", "-t", RECIPIENT, "-M", "client.example.test",
            f"127.0.0.1:{port}"]  # fmt: skip
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def drive(
    postfix: PostfixInstance, messages: int, args: argparse.Namespace
) -> tuple[float, float, dict[str, int]]:
    """smtp-source into Postfix; seconds until every message is sent on, until smtp-source is done; problems."""
    counter = LogCounter(postfix.maillog)
    counter.poll()
    timeout = max(60.0, messages / 5.0)
    started = time.monotonic()
    source = smtp_source(postfix.smtpd_port, messages, args.sessions)
    accepted = 0.0
    while counter.poll() < messages:
        now = time.monotonic()
        if not accepted and source.poll() is not None:
            accepted = now - started
            if source.returncode != 0:
                err = source.stderr.read().decode(errors="replace") if source.stderr else ""
                raise RuntimeError(f"smtp-source exited {source.returncode}: {err[-500:]}")
        if now - started > timeout:
            source.kill()
            raise RuntimeError(f"only {counter.counts} of {messages} after {timeout:.0f} s")
        await asyncio.sleep(0.01)
    seconds = time.monotonic() - started
    if not accepted:
        source.wait(30)
        accepted = time.monotonic() - started
    problems = {k: v for k, v in counter.counts.items() if k != "sent" and v}
    return seconds, accepted, problems


async def run_case(config: str, rnd: int, args: argparse.Namespace, tmp: Path) -> Case:
    env = {k: v for k, v in os.environ.items() if k != "MAILSMS_CONFIG"}
    port = free_port()
    server: Server | None = None
    spool: Path | None = None
    state = tmp / f"state-{rnd}"
    if config == "sink":
        server = Server("sink", [sys.executable, "-c", SINK_SCRIPT, "127.0.0.1", str(port)], port,
                        tmp / f"sink-{rnd}.log", env)  # fmt: skip
    elif config == "mailsms":
        argv = [sys.executable, "-m", "mailsms", "serve", "--log-level", "info", "--lmtp-listen",
                f"127.0.0.1:{port}", "--http-listen", "", "--state-dir", str(state)]  # fmt: skip
        server = Server("mailsms", argv, port, tmp / f"mailsms-{rnd}.log", env)
    else:
        spool = make_spool()
    postfix = BenchPostfix(port, spool)
    messages = args.pipe_messages if config == "pipe" else args.messages
    final_hop: int | None = None
    try:
        if server is not None:
            server.start()
            await server.wait_ready()
        await asyncio.to_thread(postfix.start)
        try:
            seconds, accepted, problems = await drive(postfix, messages, args)
        except RuntimeError as exc:
            tail = "\n".join(postfix.log_text().splitlines()[-8:])
            raise RuntimeError(f"{config}: {exc}\n--- Postfix log tail ---\n{tail}") from None
        if spool is not None:
            final_hop = sum(1 for _ in (spool / "outgoing").iterdir())
    finally:
        await asyncio.to_thread(postfix.stop)
        if server is not None:
            server.stop()
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)
    if config == "mailsms":
        rows = queue_rows(state)
        final_hop = rows[0] if rows else None
    case = Case(rnd, config, messages, seconds, accepted, final_hop, problems)
    hop = f", final hop holds {final_hop}" if final_hop is not None else ""
    print(f"  round {rnd} {config:8} {case.rate:7,.1f} msg/s ({seconds:.1f} s; Postfix had them all queued "
          f"after {accepted:.1f} s{hop}){' PROBLEMS ' + str(problems) if problems else ''}",
          file=sys.stderr, flush=True)  # fmt: skip
    return case


async def bench(args: argparse.Namespace, tmp: Path) -> list[Case]:
    cases: list[Case] = []
    for rnd in range(1, args.rounds + 1):
        for config in CONFIGS:
            cases.append(await run_case(config, rnd, args, tmp))
    return cases


def summarise(cases: list[Case]) -> dict[str, Any]:
    by = {(c.round, c.config): c for c in cases}
    rounds = sorted({c.round for c in cases})
    vs_pipe = [by[(r, "mailsms")].rate / by[(r, "pipe")].rate for r in rounds]
    vs_sink = [by[(r, "mailsms")].rate / by[(r, "sink")].rate for r in rounds]
    return {
        **{f"{cfg}_msg_per_s": round(statistics.median(by[(r, cfg)].rate for r in rounds), 1) for cfg in CONFIGS},
        "vs_pipe": round(statistics.median(vs_pipe), 3),
        "vs_sink": round(statistics.median(vs_sink), 3),
        "vs_pipe_rounds": [round(x, 3) for x in vs_pipe],
        "vs_sink_rounds": [round(x, 3) for x in vs_sink],
    }


def render(cases: list[Case], summary: dict[str, Any], args: argparse.Namespace) -> str:
    lines = ["| round | pipe + script msg/s | LMTP null sink msg/s | mailsms msg/s | mailsms / pipe | mailsms / sink |",
             "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    by = {(c.round, c.config): c for c in cases}
    for rnd in range(1, args.rounds + 1):
        pipe, sink, mail = (by[(rnd, cfg)] for cfg in CONFIGS)
        lines.append(f"| {rnd} | {pipe.rate:,.1f} | {sink.rate:,.1f} | {mail.rate:,.1f} | "
                     f"{mail.rate / pipe.rate:.2f} | {mail.rate / sink.rate:.2f} |")  # fmt: skip
    lines.append(
        f"| **median** | {summary['pipe_msg_per_s']:,.1f} | {summary['sink_msg_per_s']:,.1f} | "
        f"{summary['mailsms_msg_per_s']:,.1f} | **{summary['vs_pipe']:.2f}** | **{summary['vs_sink']:.2f}** |"
    )
    lines.append("")
    lines.append(
        f"{args.messages} messages a case ({args.pipe_messages} for pipe) from smtp-source ({args.sessions} "
        f"sessions, 1 recipient, {PAYLOAD}-byte body) into a fresh private Postfix; timed until Postfix logged "
        "status=sent for the last one."
    )
    for name, value, target in (("pipe", summary["vs_pipe"], TARGET_VS_PIPE),
                                ("sink", summary["vs_sink"], TARGET_VS_SINK)):  # fmt: skip
        lines.append(f"Target mailsms / {name} >= {target:g}: {'met' if value >= target else 'NOT met'} ({value:.2f}).")
    return "\n".join(lines)


def result_rows(summary: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    notes = (
        f"{args.messages} messages a case ({args.pipe_messages} for pipe), {args.sessions} smtp-source sessions, "
        f"median of {args.rounds} alternating rounds; timed from smtp-source start to Postfix's last status=sent"
    )
    mailsms_path = "smtp-source -> Postfix smtpd -> queue -> LMTP client -> mailsms serve (250 after the commit)"
    return [
        row("behind Postfix vs pipe(8) + script", "msg/s", summary["mailsms_msg_per_s"], summary["pipe_msg_per_s"],
            baseline_name="pipe(8) + Python script writing an smstools file", ratio=summary["vs_pipe"],
            target=("ratio", ">=", TARGET_VS_PIPE),
            path=f"{mailsms_path}; baseline: the same Postfix -> pipe(8) -> bench/pipe_to_smstools.py per "
                 "message -> file renamed into outgoing/", notes=notes),
        row("behind Postfix vs LMTP null sink", "msg/s", summary["mailsms_msg_per_s"], summary["sink_msg_per_s"],
            baseline_name="Postfix -> aiosmtpd LMTP null sink", ratio=summary["vs_sink"],
            target=("ratio", ">=", TARGET_VS_SINK),
            path=f"{mailsms_path}; baseline: the same Postfix -> LMTP -> a sink that stores nothing (the ceiling)",
            notes=notes),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=3000, help="messages a case over LMTP (default 3000)")
    parser.add_argument("--pipe-messages", type=int, default=1000, help="messages of the pipe case (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three cases (default 2)")
    parser.add_argument("--sessions", type=int, default=8, help="parallel smtp-source sessions (default 8)")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where mailsms's state goes (a real disk)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    for tool in (SMTP_SOURCE, SYSTEM_PYTHON):
        if not os.access(tool, os.X_OK):
            print(f"bench.postfix_ingest: {tool} is missing (apt-get install postfix python3)", file=sys.stderr)
            return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mailsms-bench-postfix-", dir=args.tmp_dir) as name:
        tmp = Path(name)
        machine = machine_line(tmp)
        try:
            cases = asyncio.run(bench(args, tmp))
        except (RuntimeError, AssertionError) as exc:  # a server or Postfix did not start, or mail was stuck
            print(f"bench.postfix_ingest: {exc}", file=sys.stderr)
            return 2
    elapsed = time.monotonic() - started
    summary = summarise(cases)
    print(render(cases, summary, args))
    short = [c for c in cases if c.final_hop is not None and c.final_hop != c.messages]
    for case in short:
        print(f"PROBLEM round {case.round} {case.config}: final hop holds {case.final_hop} of {case.messages}")
    print(f"Whole benchmark: {elapsed:.0f} s.")
    emit("postfix_ingest", result_rows(summary, args))
    if args.json:
        document = {
            "machine": machine,
            "settings": {k: str(v) for k, v in vars(args).items()},
            "cases": [c.as_dict() for c in cases],
            "summary": summary,
            "elapsed_s": round(elapsed, 1),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if short else 0


if __name__ == "__main__":
    raise SystemExit(main())
