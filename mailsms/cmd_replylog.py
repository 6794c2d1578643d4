"""``mailsms replylog``: list and purge the reply log's links (sender mailbox <-> number).

Works on the queue file directly, so it works while the daemon is stopped.
``list --json`` prints one array of ``{"number", "sender", "gateway",
"message_id", "subject", "created", "expires", "live", "queue_id"}`` (a
contract), newest first.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mailsms.cli import positive_int
from mailsms.errors import EX_OK

if TYPE_CHECKING:
    from replylog.links import ReplyLink


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "replylog",
        parents=[parent],
        help="list and purge reply links (who wrote to which number)",
        description="Inspect the reply log that routes SMS replies to the mailbox that wrote first. "
        "Works while the daemon is stopped.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[parent], help="live links, newest first")
    listing.add_argument("--number", metavar="N", help="only the links of this number")
    listing.add_argument("--sender", metavar="S", help="only the links of this sender mailbox")
    listing.add_argument("--all", action="store_true", help="expired links too (until they are purged)")
    listing.add_argument("--limit", type=positive_int, metavar="N", default=None, help="only the newest N")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    actions.add_parser("purge", parents=[parent], help="delete expired links now")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time

    from mailsms import config
    from mailsms.store.engines import connect_existing

    loaded = config.load(config.config_path(getattr(args, "config", None)))
    keep = loaded.replylog.keep_minutes * 60.0
    now = time.time()
    links: list[ReplyLink] = []
    with connect_existing(loaded.store.url, loaded.state_dir) as conn:
        if args.action == "purge":
            gone = _purge(conn, now - keep) if conn is not None else 0
            print(f"mailsms: {gone} expired link{'s' * (gone != 1)} purged")
            return EX_OK
        if conn is not None:
            links = _list(conn, args, loaded, None if args.all else now - keep)
    print(render_json(links, keep, now) if args.json else render_table(links, keep, now))
    return EX_OK


def _list(conn: Any, args: argparse.Namespace, loaded: Any, since: float | None) -> list[ReplyLink]:
    from replylog.links import mailbox_key
    from replylog.route import reply_number
    from replylog.store import list_links

    number = None
    if args.number is not None:
        number = reply_number(args.number, loaded.address) or args.number.strip()
    mailbox = None
    if args.sender is not None:
        mailbox = mailbox_key(args.sender) or args.sender.strip()
    return list_links(conn, number=number, mailbox=mailbox, since=since, limit=args.limit)


def _purge(conn: Any, before: float) -> int:
    from replylog.store import has_replylog_table, purge

    if not has_replylog_table(conn):
        return 0
    total = 0
    while True:  # in batches: the daemon's writer never waits long for the lock
        conn.execute("BEGIN IMMEDIATE")
        try:
            gone = purge(conn, before)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        total += gone
        if gone < 10_000:
            return total


def link_json(link: ReplyLink, keep: float, now: float) -> dict[str, object]:
    """The contract of ``replylog list --json``."""
    from mailsms.queue_admin import stamp

    return {
        "number": link.number,
        "sender": link.mailbox,
        "gateway": link.gateway,
        "message_id": link.message_id,
        "subject": link.subject,
        "created": stamp(link.created),
        "expires": stamp(link.created + keep),
        "live": link.live(now, keep),
        "queue_id": link.queue_id,
    }


def render_json(links: list[ReplyLink], keep: float, now: float) -> str:
    import json

    return json.dumps([link_json(link, keep, now) for link in links], ensure_ascii=False)


def render_table(links: list[ReplyLink], keep: float, now: float) -> str:
    from mailsms.queue_admin import stamp

    if not links:
        return "mailsms: no reply links"
    lines = [f"{'NUMBER':<16} {'EXPIRES':<20} {'GATEWAY':<10} SENDER"]
    for link in links:
        expired = "" if link.live(now, keep) else " (expired)"
        lines.append(f"{link.number:<16} {stamp(link.created + keep):<20} {link.gateway:<10} {link.mailbox}{expired}")
    lines.append(f"-- {len(links)} link{'s' * (len(links) != 1)}")
    return "\n".join(lines)
