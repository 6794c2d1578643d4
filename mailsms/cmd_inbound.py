"""``mailsms inbound list``: the incoming SMS the gateways delivered, from the inbound store.

Reads the queue file directly, so it works while the daemon is stopped.
``--json`` prints one array of ``{"id", "gateway", "from", "to", "text",
"received", "state", "routed_to"}`` (a contract), oldest first.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mailsms.cli import positive_int
from mailsms.errors import EX_OK

if TYPE_CHECKING:
    from mailsms.store.inbound import InboundEntry


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "inbound",
        parents=[parent],
        help="list incoming SMS (MO) received from the gateways",
        description="Inspect the inbound store. Works while the daemon is stopped.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[parent], help="every stored incoming SMS, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.add_argument("--limit", type=positive_int, metavar="N", default=None, help="only the newest N")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config
    from mailsms.store.engines import connect_existing
    from mailsms.store.inbound import list_inbound

    loaded = config.load(config.config_path(getattr(args, "config", None)))
    entries: list[InboundEntry] = []
    with connect_existing(loaded.store.url, loaded.state_dir) as conn:
        if conn is not None:
            entries = list_inbound(conn, args.limit)
    print(render_json(entries) if args.json else render_table(entries))
    return EX_OK


def entry_json(entry: InboundEntry) -> dict[str, object]:
    """The contract of ``inbound list --json``."""
    from mailsms.queue_admin import stamp

    return {
        "id": entry.id,
        "gateway": entry.gateway,
        "from": entry.sender,
        "to": entry.to,
        "text": entry.text,
        "received": stamp(entry.received),
        "state": entry.state,
        "routed_to": entry.routed_to,
    }


def render_json(entries: list[InboundEntry]) -> str:
    import json

    return json.dumps([entry_json(e) for e in entries], ensure_ascii=False)


def render_table(entries: list[InboundEntry]) -> str:
    from mailsms.queue_admin import stamp

    if not entries:
        return "mailsms: no incoming SMS"
    lines = [f"{'ID':<17} {'STATE':<9} {'RECEIVED':<20} {'GATEWAY':<10} FROM -> TO: TEXT"]
    for e in entries:
        text = e.text if len(e.text) <= 60 else e.text[:57] + "..."
        lines.append(
            f"{e.id:<17} {e.state:<9} {stamp(e.received):<20} {e.gateway:<10} {e.sender} -> {e.to or '-'}: {text!r}"
        )
        if e.routed_to:
            lines.append(f"{'':<17} (routed to {e.routed_to})")
    lines.append(f"-- {len(entries)} message{'s' * (len(entries) != 1)}")
    return "\n".join(lines)
