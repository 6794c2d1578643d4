"""``mailsms queue``: list and manage the queue, like mailq and postsuper.

Works on the queue file directly, so it works while the daemon is stopped;
a running daemon sees changes at its next queue run (``queue.queue_run_delay``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailsms.errors import EX_DATAERR, EX_NOINPUT, EX_OK


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "queue",
        parents=[parent],
        help="list and manage queued SMS (like mailq and postsuper)",
        description="Inspect and manage the queue. Works while the daemon is stopped.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[parent], help="messages not yet final (--all: every message)")
    listing.add_argument("--all", action="store_true", help="include delivered, failed and expired messages")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    show = actions.add_parser("show", parents=[parent], help="one message with its parts")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    retry = actions.add_parser("retry", parents=[parent], help="try a deferred message now")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?")
    target.add_argument("--all", action="store_true", help="every deferred message")
    for name, text in (("hold", "stop sending a message"), ("release", "send a held message again"),
                       ("delete", "remove a message from the queue")):  # fmt: skip
        action = actions.add_parser(name, parents=[parent], help=text)
        action.add_argument("id")
    actions.add_parser("flush", parents=[parent], help="try every deferred message now")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config
    from mailsms.queue_admin import QueueAdmin

    loaded = config.load(config.config_path(getattr(args, "config", None)))
    admin = QueueAdmin.open(loaded.state_dir, loaded.store.url)
    if admin is None:
        if args.action == "list":
            print("[]" if getattr(args, "json", False) else "mailsms: queue is empty")
            return EX_OK
        print(f"mailsms: no queue in {loaded.state_dir}", file=sys.stderr)
        return EX_NOINPUT
    try:
        return _dispatch(admin, args)
    finally:
        admin.close()


def _dispatch(admin: Any, args: argparse.Namespace) -> int:
    action = args.action
    if action == "list":
        print(admin.render_list(include_final=args.all, as_json=args.json))
        return EX_OK
    if action == "show":
        text = admin.render_show(args.id, as_json=args.json)
        if text is None:
            return _not_found(args.id)
        print(text)
        return EX_OK
    if action == "flush" or (action == "retry" and args.all):
        print(f"mailsms: {admin.flush()} message(s) scheduled for immediate delivery")
        return EX_OK
    changed = {"retry": admin.retry, "hold": admin.hold, "release": admin.release, "delete": admin.delete}[action]
    if not changed(args.id):
        return _not_found(args.id, action)
    print(f"mailsms: {args.id}: {action} done")
    return EX_OK


def _not_found(message_id: str, action: str = "") -> int:
    extra = f" or not in a state that allows {action}" if action else ""
    print(f"mailsms: {message_id}: no such message{extra}", file=sys.stderr)
    return EX_DATAERR
