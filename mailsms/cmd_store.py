"""``mailsms store migrate --from URL --to URL``: move the whole queue to another engine.

Typically from the embedded SQLite file to PostgreSQL when a second node is
added (``--from sqlite:///var/lib/mailsms/queue.sqlite --to
postgresql://...``), or back.  Stop the daemons first: the copy is one
snapshot of the source.  The target's schema is created; a target that
already holds a queue is refused (``EX_CANTCREAT``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailsms.errors import EX_CANTCREAT, EX_NOINPUT, EX_OK, EX_SOFTWARE, EX_UNAVAILABLE


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("store", parents=[parent], help="the queue's database: migrate it to another engine")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        parents=[parent],
        help="copy the whole queue from one store.url to another (stop the daemons first)",
        description="Copy every table (queue, parts, inbound, mail-out, reply log, accounts) from --from to "
        "--to in one transaction. URLs: sqlite:///path/queue.sqlite or postgresql://user:pass@host/db.",
    )
    migrate.add_argument("--from", dest="source", required=True, metavar="URL", help="the store to copy")
    migrate.add_argument("--to", dest="target", required=True, metavar="URL", help="the empty store to fill")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sqlite3
    from pathlib import Path

    from mailsms.store.engines import connect_existing, engine_of, open_store, redact_url, sqlite_path
    from mailsms.store.migrate import TargetNotEmpty, copy_all, counts

    for url in (args.source, args.target):
        engine_of(url)  # ConfigError (78) for anything else
    if args.source == args.target:
        print("mailsms: --from and --to name the same store", file=sys.stderr)
        return EX_CANTCREAT
    here = Path(".")
    if engine_of(args.source) == "sqlite" and not sqlite_path(args.source, here).is_file():
        print(f"mailsms: no queue at {args.source}", file=sys.stderr)
        return EX_NOINPUT
    try:
        if engine_of(args.target) == "sqlite":
            sqlite_path(args.target, here).parent.mkdir(parents=True, exist_ok=True)
        open_store(args.target, here, node="tool").close()  # the target's schema
        with connect_existing(args.source, here) as source, connect_existing(args.target, here) as target:
            assert source is not None
            assert target is not None
            copied = copy_all(source, target)
            before, after = counts(source), counts(target)
    except TargetNotEmpty as exc:
        print(f"mailsms: {redact_url(args.target)}: {exc}; nothing copied", file=sys.stderr)
        return EX_CANTCREAT
    except sqlite3.Error as exc:
        print(f"mailsms: migration failed, nothing copied: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    for item in copied:
        print(f"{item.table}: {item.rows} row{'s' * (item.rows != 1)}")
    wrong = {t: (n, after.get(t)) for t, n in before.items() if after.get(t) != n}
    if wrong:
        print(f"mailsms: counts differ after the copy: {wrong}", file=sys.stderr)
        return EX_SOFTWARE
    print(f"mailsms: copied {sum(c.rows for c in copied)} rows from {redact_url(args.source)} "
          f"to {redact_url(args.target)}")  # fmt: skip
    return EX_OK
