"""Modem benchmark: the gateway's own cost per part against a fake modem that answers at once.

    .venv/bin/python -m bench.modem [--parts 300] [--rounds 5] [--json PATH] [--tmp-dir DIR]

A real modem takes seconds per ``AT+CMGS``; the fake one (``tests.fakes.modem``,
in its own process on a pty pair, no delays) answers in microseconds, so what
is left is the gateway.  Two cases, alternating, each sending ``--parts``
single-part messages one after another:

* the baseline: the least a client can do, in this process: blocking
  ``os.write`` / ``os.read`` on the port, ``AT+CMGS=<len>``, wait for ``> ``,
  a prepared PDU and Ctrl-Z, wait for ``OK``;
* mailsms: ``ModemTransport.submit`` for each message, as the scheduler calls
  it (an ``OutgoingSms`` in, the PDU built from the part, the AT dialogue on
  the event loop, the journal line fsynced, a ``PartResult`` out).  The
  start-up dialogue is not timed.

The ratio is mailsms / baseline per part (the median over the rounds); the
overhead is the difference in µs per part.  CPU is this process's user +
system time per part.  Nothing is asserted: the number to watch is the
overhead as a share of a real modem's send time (about 3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.table import emit, row

REPO = Path(__file__).resolve().parent.parent
REAL_MODEM_SEND_S = 3.0
TEXT = "Your parcel 4711 is ready for collection at the post office until Friday."


def start_fake(link: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.modem", str(link)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("the fake modem did not start")
    return process


def _read_until(fd: int, marker: bytes) -> None:
    seen = b""
    while marker not in seen:
        seen = seen[-64:] + os.read(fd, 4096)


def baseline(link: Path, pdu_hex: str, parts: int) -> tuple[float, float]:
    """Seconds and CPU seconds for ``parts`` sends with the least possible code."""
    import serial

    port = serial.Serial(str(link), 115200, timeout=None, exclusive=True)
    fd = port.fileno()
    os.set_blocking(fd, True)
    try:
        os.write(fd, b"ATE0\r")
        _read_until(fd, b"OK\r\n")
        command = f"AT+CMGS={len(pdu_hex) // 2 - 1}\r".encode()
        body = pdu_hex.encode() + b"\x1a"
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(parts):
            os.write(fd, command)
            _read_until(fd, b"> ")
            os.write(fd, body)
            _read_until(fd, b"OK\r\n")
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        port.close()


async def through_mailsms(link: Path, state: Path, parts: int, round_no: int) -> tuple[float, float, str]:
    """Seconds and CPU seconds for ``parts`` submits through the transport; and one PDU it sent."""
    from mailsms.segment import split_text
    from transports.base import Outcome, OutgoingPart, OutgoingSms, TransportContext
    from transports.modem import ModemTransport, Options, build_pdu

    options = Options(device=str(link), read_timeout=5.0, reopen_delay=0.1)
    transport = ModemTransport(options, TransportContext("bench", state))
    await transport.start()
    seg = split_text(TEXT)
    messages = [
        OutgoingSms(f"R{round_no}M{n:05d}", "+15551234567", (OutgoingPart(1, seg.parts[0].text),), 1, seg.encoding)
        for n in range(parts)
    ]
    try:
        cpu, start = time.process_time(), time.perf_counter()
        for sms in messages:
            result = (await transport.submit(sms))[0]
            if result.outcome is not Outcome.SUBMITTED:
                raise RuntimeError(f"send failed: {result.reason}")
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await transport.close()
    return elapsed, used, build_pdu(messages[0], messages[0].parts[0], options).hex().upper()


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    link = tmp / "ttyFAKE"
    fake = start_fake(link)
    rounds: list[dict[str, float]] = []
    try:
        _, _, pdu_hex = asyncio.run(through_mailsms(link, tmp / "warmup", 20, 0))  # warm-up, and the PDU
        baseline(link, pdu_hex, 20)
        for round_no in range(1, args.rounds + 1):
            base_s, base_cpu = baseline(link, pdu_hex, args.parts)
            ours_s, ours_cpu, _ = asyncio.run(through_mailsms(link, tmp / f"state{round_no}", args.parts, round_no))
            rounds.append({
                "baseline_us": base_s / args.parts * 1e6,
                "baseline_cpu_us": base_cpu / args.parts * 1e6,
                "mailsms_us": ours_s / args.parts * 1e6,
                "mailsms_cpu_us": ours_cpu / args.parts * 1e6,
            })  # fmt: skip
    finally:
        fake.terminate()
        fake.wait(10)
    return {"rounds": rounds, "pdu_octets": len(pdu_hex) // 2}


def summarise(rounds: list[dict[str, float]]) -> dict[str, float]:
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratios = [r["mailsms_us"] / r["baseline_us"] for r in rounds]
    median["ratio"] = statistics.median(ratios)
    median["overhead_us"] = statistics.median(r["mailsms_us"] - r["baseline_us"] for r in rounds)
    median["share_of_real_modem"] = median["mailsms_us"] / 1e6 / REAL_MODEM_SEND_S
    return median


def render(result: dict[str, Any], summary: dict[str, float], args: argparse.Namespace) -> str:
    lines = [
        f"Modem benchmark: {args.parts} single-part messages a case, {args.rounds} rounds, "
        f"fake modem in its own process with no delays, {result['pdu_octets']}-octet PDUs.",
        f"{'round':>5}  {'baseline µs/part':>17}  {'mailsms µs/part':>16}  {'ratio':>6}  {'mailsms CPU µs/part':>20}",
    ]
    for n, r in enumerate(result["rounds"], start=1):
        ratio = r["mailsms_us"] / r["baseline_us"]
        lines.append(
            f"{n:>5}  {r['baseline_us']:>17.0f}  {r['mailsms_us']:>16.0f}  {ratio:>6.2f}  {r['mailsms_cpu_us']:>20.0f}"
        )
    lines += [
        f"median: baseline {summary['baseline_us']:.0f} µs/part, mailsms {summary['mailsms_us']:.0f} µs/part, "
        f"ratio {summary['ratio']:.2f}, overhead {summary['overhead_us']:.0f} µs/part "
        f"(CPU {summary['mailsms_cpu_us']:.0f} µs/part).",
        f"With a real modem (about {REAL_MODEM_SEND_S:g} s a send) the gateway's whole time per part is "
        f"{summary['share_of_real_modem'] * 100:.3f}% of it: the modem is the bottleneck.",
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.modem", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=300, help="messages (one part each) per case")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--tmp-dir", type=Path, help="where the journal goes (default: the system's temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-modem-", dir=args.tmp_dir) as name:
        started = time.monotonic()
        try:
            result = run(args, Path(name))
        except RuntimeError as exc:
            print(f"bench.modem: {exc}", file=sys.stderr)
            return 2
        elapsed = time.monotonic() - started
    summary = summarise(result["rounds"])
    print(render(result, summary, args))
    print(f"Whole benchmark: {elapsed:.1f} s.")
    emit("modem", [row(
        "time per part to a fake modem", "µs/part", summary["mailsms_us"], summary["baseline_us"],
        baseline_name="bare AT+CMGS loop", ratio=summary["ratio"],
        path="ModemTransport.submit (PDU built, AT dialogue on the event loop, journal fsynced) vs blocking "
             "writes of a prepared PDU; fake modem on a pty with no delays",
        notes=f"no target: overhead {summary['overhead_us']:.0f} µs/part is "
              f"{summary['share_of_real_modem'] * 100:.3f}% of a real modem's ~{REAL_MODEM_SEND_S:g} s send",
    )])  # fmt: skip
    if args.json:
        document = {"machine": machine(), "settings": vars(args) | {"json": str(args.json)}, **result}
        document["summary"] = summary
        with contextlib.suppress(TypeError):
            args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
