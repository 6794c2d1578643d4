"""``mailsms route test NUMBER``: show what the ``[[route]]`` rules do with a message, without sending.

Prints the rules that match by name, the number after rewrites, the sender
when a rule sets one, and the target: a gateway, or a group (or ``*``, every
gateway of weight > 0) with its members that take the number, in order, and
the one tried first while every breaker is closed.  A reject is an answer
too (exit 0).  ``--json`` prints one object ``{"number", "original",
"matched", "sender", "target", "pinned", "kind", "balance", "members",
"first", "reject"}``.  A NUMBER that is not a number, or a rewrite that makes
it one no longer, exits 65 with the enhanced status and the reason on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import TYPE_CHECKING, Any

from mailsms.errors import EX_OK, EX_USAGE

if TYPE_CHECKING:
    from mailsms.config import Config
    from mailsms.routing import RouteDecision, Router


def _time_of_day(value: str) -> datetime.time:
    try:
        return datetime.time.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM, got {value!r}") from None


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "route",
        parents=[parent],
        help="try the routing rules on a number",
        description="Routing rules ([[route]], [[group]]): see what they decide; nothing is sent.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    test = actions.add_parser(
        "test",
        parents=[parent],
        help="show the rules that match, the rewritten number and the gateway chosen",
        description=(
            "Evaluate the [[route]] rules for NUMBER as the scheduler would and print the rules that match, "
            "the rewritten number, the sender, and the gateway or group chosen; nothing is sent."
        ),
    )
    test.add_argument("number", metavar="NUMBER", help="the destination, as in sms:NUMBER")
    test.add_argument("--sender", default="", metavar="S", help="envelope sender (a mail address)")
    test.add_argument("--account", default="", metavar="A", help="the account the message counts against")
    test.add_argument("--text", default="", metavar="T", help="the text of the message")
    test.add_argument("--gateway", default="", metavar="ID", help="as if pinned by id=ID (default: the account's)")
    test.add_argument("--at", type=_time_of_day, default=None, metavar="HH:MM", help="local time (default: now)")
    test.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config
    from mailsms.address import number_address
    from mailsms.errors import MailsmsError
    from mailsms.routing import Router, RouteRequest

    loaded = config.load(config.config_path(getattr(args, "config", None)))  # problems: exit 78 via the CLI frame
    router = Router(loaded.routes, loaded.gateways, loaded.groups)
    if args.gateway and not router.is_target(args.gateway):
        print(f"mailsms: unknown gateway or group {args.gateway!r}", file=sys.stderr)
        return EX_USAGE
    try:
        number = number_address(args.number, "", loaded.address).number
        request = RouteRequest(
            number=number,
            sender=args.sender,
            account=args.account,
            text=args.text,
            pinned=args.gateway or _account_gateway(loaded, args.account),
            local_time=args.at if args.at is not None else datetime.datetime.now().time(),
        )
        decision = router.route(request)
    except MailsmsError as exc:
        print(f"mailsms: {exc.enhanced} {exc.reason}", file=sys.stderr)
        return exc.exit_code
    answer = _answer(router, number, decision, pinned=bool(request.pinned))
    if args.json:
        print(json.dumps(answer))
    else:
        _print(answer)
    return EX_OK


def _account_gateway(loaded: Config, user: str) -> str:
    """The account's gateway from the state database, read only; "" when there is none."""
    if not user:
        return ""
    from mailsms.store.accounts import get_account, has_accounts_table
    from mailsms.store.engines import connect_existing

    with connect_existing(loaded.store.url, loaded.state_dir, read_only=True) as conn:
        account = get_account(conn, user) if conn is not None and has_accounts_table(conn) else None
    return account.gateway if account is not None else ""


def _answer(router: Router, original: str, decision: RouteDecision, *, pinned: bool) -> dict[str, Any]:
    from mailsms.dispatch import GatewayPool
    from mailsms.routing import DEFAULT_TARGET

    target = decision.target
    kind = "default" if target == DEFAULT_TARGET else "gateway" if router.gateway(target) else "group"
    if not router.is_target(target):
        kind = "unknown"
    members = [g.id for g in router.eligible(target, decision.number)]
    first = None
    if decision.reject is None:
        first = next(iter(GatewayPool(router).candidates(target, decision.number)), None)
    reject = decision.reject
    return {
        "number": decision.number,
        "original": original,
        "matched": list(decision.matched),
        "sender": decision.sender,
        "target": target,
        "pinned": pinned,
        "kind": kind,
        "balance": router.balance(target),
        "members": members,
        "first": first,
        "reject": None
        if reject is None
        else {"code": reject.code, "enhanced": reject.enhanced, "text": reject.text, "rule": reject.rule},
    }


def _print(answer: dict[str, Any]) -> None:
    print("matched: " + (", ".join(answer["matched"]) or "(no rule)"))
    rewritten = f" (rewritten from {answer['original']})" if answer["number"] != answer["original"] else ""
    print(f"number: {answer['number']}{rewritten}")
    if answer["sender"] is not None:
        print(f"sender: {answer['sender']}")
    reject = answer["reject"]
    if reject is not None:
        print(f"reject: {reject['code']} {reject['enhanced']} {reject['text']} (route {reject['rule']})")
        return
    target, kind = answer["target"], answer["kind"]
    if answer["pinned"]:
        target += " (pinned: id= or the account's gateway)"
    if kind == "unknown":
        print(f"gateway: {target} (unknown: the message would wait)")
        return
    if kind == "gateway":
        print(f"gateway: {target}")
    else:
        label = "* (every gateway of weight > 0)" if kind == "default" else f"{target} (group)"
        print(f"target: {label}, {answer['balance']}")
        print("members: " + (", ".join(answer["members"]) or "(none takes this number)"))
    if answer["first"] is None:
        print("first: none takes this number; the message would wait")
    elif kind != "gateway":
        print(f"first: {answer['first']} (with every breaker closed)")
