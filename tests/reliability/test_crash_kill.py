"""SIGKILL at the worst moments loses nothing and sends nothing twice unless it says so.

The CI variant of the crash test (``tests/reliability/harness.py``): a few
hundred messages, eight kills, two at each moment (in the middle of DATA,
right after a 250, while a part is with the SMSC, while a DSN is with the
relay).  The seed is printed; ``MAILSMS_CRASH_SEED`` repeats a run.  The
long variant is ``python -m bench.crash``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.reliability.harness import MOMENTS, CrashParams, CrashRun


def test_sigkill_at_random_moments_loses_nothing_and_flags_every_duplicate(tmp_path: Path) -> None:
    seed = int(os.environ.get("MAILSMS_CRASH_SEED") or random.randrange(1 << 32))
    print(f"crash test seed {seed} (MAILSMS_CRASH_SEED={seed} repeats it)")
    params = CrashParams(messages=300, kills=8, seed=seed)
    summary = CrashRun(tmp_path, params).run()
    print(summary.report())
    assert summary.problems == [], summary.report()
    assert summary.integrity == "ok"
    assert sum(summary.kills.values()) == params.kills
    # Every moment was really hit, not just a kill somewhere.
    assert {m: summary.kills[m] for m in MOMENTS} == dict.fromkeys(MOMENTS, 2), summary.report()
    assert summary.acked >= params.messages * 0.9  # the load went on across the restarts
