"""``mailsms stats``: messages stored, sent, delivered, failed and expired, by day and gateway.

Reads the queue file without changing it, so it works while the daemon runs
or is stopped.  Days are UTC; each message counts on the day it was stored
(``mailsms.store.stats``).  With no queue yet (the daemon never ran) every
counter is 0 and the exit code is 0: nothing happened, which is no error.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mailsms.cli import positive_int
from mailsms.errors import EX_OK

if TYPE_CHECKING:
    from mailsms.store.stats import Counts, DayRow

DEFAULT_DAYS = 7


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "stats",
        parents=[parent],
        help="counters by day and gateway: stored, sent, delivered, failed, expired",
        description="Count the messages of the last days (UTC), by the day they were stored and their gateway.",
    )
    parser.add_argument("--days", type=positive_int, default=DEFAULT_DAYS, metavar="N",
                        help=f"the last N days, today included (default {DEFAULT_DAYS})")  # fmt: skip
    parser.add_argument("--json", action="store_true", help='one JSON object: {"days": [...], "totals": {...}}')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from mailsms import config
    from mailsms.store.engines import connect_existing
    from mailsms.store.stats import day_rows, first_day

    loaded = config.load(config.config_path(getattr(args, "config", None)))
    since = first_day(time.time(), args.days)
    rows: list[DayRow] = []
    with connect_existing(loaded.store.url, loaded.state_dir, read_only=True) as conn:
        if conn is None:
            print(f"mailsms: no queue in {loaded.state_dir} (the daemon never ran there): nothing to count",
                  file=sys.stderr)  # fmt: skip
        else:
            rows = day_rows(conn, since)
    print(json.dumps(as_json(rows)) if args.json else render_table(rows, args.days))
    return EX_OK


def _counts_json(counts: Counts) -> dict[str, int]:
    from dataclasses import asdict

    return asdict(counts)


def as_json(rows: list[DayRow]) -> dict[str, object]:
    """The contract of ``stats --json``: ``days`` (only days and gateways with messages) and ``totals``."""
    from mailsms.store.stats import totals

    return {
        "days": [{"date": row.date, "gateway": row.gateway, **_counts_json(row.counts)} for row in rows],
        "totals": _counts_json(totals(rows)),
    }


def render_table(rows: list[DayRow], days: int) -> str:
    from mailsms.store.stats import COUNTERS, totals

    span = "today" if days == 1 else f"the last {days} days"
    if not rows:
        return f"mailsms: no messages stored {span} (UTC)"
    width = max(8, *(len(row.gateway) for row in rows))
    head = f"{'DATE':<10}  {'GATEWAY':<{width}}" + "".join(f"  {name.upper():>9}" for name in COUNTERS)
    lines = [head]
    for row in rows:
        numbers = "".join(f"  {getattr(row.counts, name):>9}" for name in COUNTERS)
        lines.append(f"{row.date:<10}  {row.gateway:<{width}}{numbers}")
    total = totals(rows)
    lines.append(f"{'total':<10}  {'':<{width}}" + "".join(f"  {getattr(total, name):>9}" for name in COUNTERS))
    lines.append(f"-- {span} (UTC), by the day each message was stored")
    return "\n".join(lines)
