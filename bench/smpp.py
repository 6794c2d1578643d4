"""SMPP benchmark: parts/s through mailsms's SMPP transport against a bare SMPP client, to the same SMSC.

    .venv/bin/python -m bench.smpp [--messages 3000] [--window 10] [--rounds 5] [--peers smpp34,fake]
                                   [--json PATH]

Two SMSCs, each in its own process (``python -m tests.fakes.smsc_smpp``),
accepting every ``submit_sm`` at once, no receipts:

* ``smpp34``: the server of the PyPI package ``smpp34`` (a Rust core, but one
  Python event per submit).  It is the peer the issue names, and it is the
  bottleneck here: about 3,000-4,000 parts/s and ~95% of a CPU for either
  client, so its ratio says little more than "mailsms keeps up";
* ``fake``: ``tests.fakes.smsc_smpp.FakeSmsc`` on our codec, about five
  times faster: the yardstick for mailsms's own cost.

Its CPU share is printed beside each case, so a run where the SMSC, not the
client, is the limit can be told apart.

Both clients send the same parts: ``--messages`` messages cut by mailsms's
own segmenter from a mix of texts (one GSM part, two GSM parts, two UCS-2
parts), each ``submit_sm`` body built by ``transports.smpp_options`` inside
the timed loop.

* **bare** (the baseline): one bound connection in this process, our PDU
  codec used directly, every part pipelined with at most ``--window``
  ``submit_sm`` unanswered, responses matched by sequence number; nothing
  else.
* **mailsms**: ``SmppTransport.submit`` per message, as the scheduler calls
  it, ``--window`` messages at once (the transport's ``concurrency``), with
  the same window: the parts of one message go one after another.  Binding
  is not timed.

Rounds alternate; the ratio is the median of mailsms / bare per round.
Target >= 0.8.  The machine is shared: compare ratios, not rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.ingest import cpu_seconds, free_port
from bench.table import emit, row
from mailsms.segment import split_text
from transports import smpp
from transports import smpp_pdu as p
from transports.base import Outcome, OutgoingPart, OutgoingSms, TransportContext
from transports.smpp_options import Options, build_submit

REPO = Path(__file__).resolve().parent.parent
TEXTS = (
    "Your code is 482913.",
    "Reminder: the meeting moved to Thursday 10:00 in room 3; bring the quarterly figures and the contract draft. "
    "Reply YES to confirm or NO to cancel; we will send the agenda later today. Thanks, the office",
    "Встреча переносится на четверг, 10:00, зал 3. Пожалуйста, возьмите с собой отчёт. 👋",
)


def messages(count: int) -> list[OutgoingSms]:
    out: list[OutgoingSms] = []
    for index in range(count):
        text = TEXTS[index % len(TEXTS)]
        seg = split_text(text, maxmsgs=3, reference=index % 256)
        parts = tuple(OutgoingPart(i + 1, part.text, part.udh) for i, part in enumerate(seg.parts))
        out.append(OutgoingSms(f"B{index}", f"+1555{index:07d}", parts, len(parts), seg.encoding))
    return out


def start_smsc(port: int, engine: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.smsc_smpp", "--port", str(port), "--quiet", "--no-receipts",
         "--engine", engine],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if '"listening"' not in line:
        raise SystemExit(f"the smpp34 simulator did not start: {line!r}")
    return proc


async def bare(port: int, batch: list[OutgoingSms], window: int, options: Options) -> float:
    """Seconds for the bare client to have every part answered (building each submit_sm included)."""
    parts = [(sms, part) for sms in batch for part in sms.parts]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sequence = itertools.count(1)
    free = asyncio.Semaphore(window)
    done = asyncio.Event()
    answered = 0

    async def read() -> None:
        nonlocal answered
        buffer = bytearray()
        while answered < len(parts) + 1:
            chunk = await reader.read(65536)
            if not chunk:
                raise SystemExit("the SMSC closed the bare client's connection")
            buffer += chunk
            for frame in p.split_frames(buffer):
                pdu = p.decode(frame)
                if pdu.command_id == p.SUBMIT_SM | p.RESPONSE:
                    if pdu.status:
                        raise SystemExit(f"bare client: submit refused with 0x{pdu.status:08X}")
                    answered += 1
                    free.release()
                elif pdu.command_id in p.BIND_COMMANDS or pdu.command_id & p.RESPONSE:
                    answered += pdu.command_id == p.BIND_TRANSCEIVER | p.RESPONSE
                    done.set()
                elif pdu.command_id == p.ENQUIRE_LINK:
                    writer.write(p.encode(p.response(pdu)))
        done.set()

    reading = asyncio.create_task(read())
    writer.write(p.encode(p.Pdu(p.BIND_TRANSCEIVER, 0, next(sequence), options.bind_body())))
    await done.wait()
    done.clear()
    started = time.perf_counter()
    for sms, part in parts:
        await free.acquire()
        body = build_submit(sms, part, options)
        writer.write(p.encode(p.Pdu(p.SUBMIT_SM, 0, next(sequence), body)))
        await writer.drain()
    await reading
    elapsed = time.perf_counter() - started
    writer.write(p.encode(p.Pdu(p.UNBIND, 0, next(sequence))))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return elapsed


async def through_mailsms(options: Options, batch: list[OutgoingSms], window: int, tmp: Path) -> float:
    transport = smpp.create(options, TransportContext("bench", tmp))
    await transport.start()
    if not transport.ready:
        raise SystemExit(f"mailsms could not bind: {transport.down_reason}")
    work = iter(batch)
    failed: list[str] = []

    async def worker() -> None:
        for message in work:
            for result in await transport.submit(message):
                if result.outcome is not Outcome.SUBMITTED:
                    failed.append(result.reason)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(window)))
    elapsed = time.perf_counter() - started
    await transport.close()
    if failed:
        raise SystemExit(f"mailsms: {len(failed)} part(s) not submitted, e.g. {failed[0]}")
    return elapsed


async def run_peer(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    smsc = start_smsc(port, engine)
    options = Options(host="127.0.0.1", port=port, system_id="bench", password="bench", window=args.window,
                      registered_delivery=False)  # fmt: skip
    batch = messages(args.messages)
    bodies = [part for sms in batch for part in sms.parts]
    rounds: list[dict[str, float]] = []
    try:
        for number in range(args.rounds):
            row: dict[str, float] = {}
            for case in ("bare", "mailsms") if number % 2 == 0 else ("mailsms", "bare"):
                smsc_cpu = cpu_seconds(smsc.pid)
                cpu = time.process_time()
                if case == "bare":
                    elapsed = await bare(port, batch, args.window, options)
                else:
                    elapsed = await through_mailsms(options, batch, args.window, Path(args.tmp_dir))
                row[f"{case}_parts_s"] = len(bodies) / elapsed
                row[f"{case}_cpu_us"] = (time.process_time() - cpu) / len(bodies) * 1e6
                row[f"{case}_smsc_share"] = (cpu_seconds(smsc.pid) - smsc_cpu) / elapsed
            row["ratio"] = row["mailsms_parts_s"] / row["bare_parts_s"]
            rounds.append(row)
            print(f"{engine} round {number + 1}: bare {row['bare_parts_s']:,.0f} parts/s, mailsms "
                  f"{row['mailsms_parts_s']:,.0f} parts/s, ratio {row['ratio']:.2f}", file=sys.stderr)  # fmt: skip
    finally:
        if smsc.stdin is not None:
            with contextlib.suppress(OSError):
                smsc.stdin.write('{"cmd": "stop"}\n')
                smsc.stdin.flush()
        try:
            smsc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            smsc.kill()
            smsc.wait()
    summary = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    return {"peer": engine, "parts": len(bodies), "messages": len(batch), "rounds": rounds, "median": summary}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    peers = [await run_peer(engine, args) for engine in args.peers.split(",")]
    return {"window": args.window, "peers": peers,
            "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))}}  # fmt: skip


PEER_NAMES = {"smpp34": "smpp34's SMSC server (Rust core, Python event loop)", "fake": "tests.fakes FakeSmsc"}


def render(result: dict[str, Any]) -> str:
    lines: list[str] = []
    for peer in result["peers"]:
        m = peer["median"]
        lines += [
            f"SMPP to {PEER_NAMES.get(peer['peer'], peer['peer'])}: {peer['parts']} parts ({peer['messages']} "
            f"messages), window {result['window']}, {len(peer['rounds'])} rounds, medians",
            f"  bare client  {m['bare_parts_s']:>9,.0f} parts/s  {m['bare_cpu_us']:6.0f} µs CPU/part  "
            f"SMSC busy {m['bare_smsc_share']:.0%}",
            f"  mailsms      {m['mailsms_parts_s']:>9,.0f} parts/s  {m['mailsms_cpu_us']:6.0f} µs CPU/part  "
            f"SMSC busy {m['mailsms_smsc_share']:.0%}",
            f"  ratio mailsms/bare {m['ratio']:.2f} (target >= 0.8)",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tmp-dir", default="/tmp")
    parser.add_argument("--peers", default="smpp34,fake", help="SMSCs to measure against, in order")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    emit("smpp", [row(
        f"parts/s to {peer['peer']} SMSC", "parts/s", peer["median"]["mailsms_parts_s"],
        peer["median"]["bare_parts_s"], baseline_name="bare pipelined SMPP client", ratio=peer["median"]["ratio"],
        target=("ratio", ">=", 0.8),
        path=f"SmppTransport.submit per message, window {result['window']} -> {PEER_NAMES.get(peer['peer'])}; "
             "baseline: our PDU codec on one connection, nothing else",
        notes=f"median of {len(peer['rounds'])} rounds; SMSC busy {peer['median']['bare_smsc_share']:.0%} with "
              "the bare client" + (" (the SMSC is the bottleneck)" if peer["peer"] == "smpp34" else ""),
    ) for peer in result["peers"]])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
