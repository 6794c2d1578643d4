"""Crash test, long variant: 10,000 messages through a ``mailsms serve`` killed with SIGKILL again and again.

    .venv/bin/python -m bench.crash [--messages 10000] [--kills 50] [--seed N] [--per-connection 5]
                                    [--workdir DIR] [--json PATH]

The same harness as the CI variant (``tests/reliability/harness.py``): LMTP
load from a client thread, a fake HTTP SMSC and an SMTP sink for the
delivery reports in this process, kills spread evenly over the four moments
(in the middle of DATA, right after a 250, while a part is with the SMSC,
while a DSN is with the relay), each after a random number of accepted
messages.  At the end the queue drains and the summary says what was lost
(must be nothing), what was sent twice and whether the daemon logged it as
a possible duplicate, and what ``PRAGMA integrity_check`` says.  Exit status
1 when any promise was broken.  Not part of the default test command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
from pathlib import Path

from tests.reliability.harness import CrashParams, CrashRun


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (default: random, printed)")
    parser.add_argument("--per-connection", type=int, default=5, help="messages per LMTP connection")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the state and log here")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    spacing = max(1, args.messages // max(1, args.kills))
    params = CrashParams(
        messages=args.messages,
        kills=args.kills,
        seed=seed,
        per_connection=args.per_connection,
        burst=(max(1, spacing // 2), max(1, spacing * 3 // 2)),
        drain_timeout=max(60.0, args.messages / 20),
    )
    print(f"crash test seed {seed}: {args.messages} messages, {args.kills} kills", flush=True)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        summary = CrashRun(args.workdir, params).run()
    else:
        with tempfile.TemporaryDirectory(prefix="mailsms-crash-") as tmp:
            summary = CrashRun(Path(tmp), params).run()
    print(summary.report())
    if args.json is not None:
        fields = {f.name: getattr(summary, f.name) for f in dataclasses.fields(summary)}
        fields.update(params=dataclasses.asdict(params), kills=dict(summary.kills), refused=dict(summary.refused))
        args.json.write_text(json.dumps(fields, indent=2, default=str) + "\n")
    return 1 if summary.problems else 0


if __name__ == "__main__":
    sys.exit(main())
