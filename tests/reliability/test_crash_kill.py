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


def test_two_nodes_on_postgresql_one_killed_mid_load_lose_nothing(tmp_path: Path, pg_url: str) -> None:
    """Two ``mailsms serve`` share one PostgreSQL queue; the load goes to both (as Postfix with two LMTP
    destinations). Each kill takes down the node at that moment; it stays down until the other node has
    taken over every message it had claimed (its claims run out after ``lease_seconds``), then it comes back."""
    seed = int(os.environ.get("MAILSMS_CRASH_SEED") or random.randrange(1 << 32))
    print(f"two-node crash test seed {seed} (MAILSMS_CRASH_SEED={seed} repeats it)")
    # More load than one node gets: while a node is down the other takes all of it.
    params = CrashParams(messages=600, kills=8, seed=seed)
    summary = CrashRun(tmp_path, params, store_url=pg_url, nodes=2, lease_seconds=3).run()
    print(summary.report())
    assert summary.problems == [], summary.report()
    assert summary.integrity == "ok"
    assert {m: summary.kills[m] for m in MOMENTS} == dict.fromkeys(MOMENTS, 2), summary.report()
    assert summary.takeovers == params.kills
    # A kill while a part was with the SMSC left it in sending: the other node took it over.
    assert summary.taken_over_parts >= 1, summary.report()
    assert summary.acked >= params.messages * 0.9
