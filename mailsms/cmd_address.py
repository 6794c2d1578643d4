"""``mailsms address [--json] ADDRESS``: show how a recipient is understood, or why it is refused.

The output is a contract for scripts: with ``--json`` one object
``{"number": ..., "domain": ..., "params": {...}}`` where ``params`` holds only
the parameters that were given, with their parsed types and ``pass`` as
``"(set)"``.  A refused address exits 65 with one line on stderr:
``mailsms: 5.1.3 bad parameter 'maxmsgs': must be an integer 1..128``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mailsms.errors import EX_OK


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "address",
        parents=[parent],
        help="parse an sms: recipient as the server would",
        description=(
            "Parse ADDRESS (e.g. '\"sms:+15551234567?maxmsgs=3\"@sms.example.com') with the configured "
            "[address] rules; print number, domain and parameters, or the SMTP status and reason (exit 65)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("address", metavar="ADDRESS", help="the recipient, quoted or not, with or without <...>")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config
    from mailsms.address import parse_address
    from mailsms.errors import MailsmsError

    loaded = config.load(config.config_path(getattr(args, "config", None)))  # problems: exit 78 via the CLI frame
    try:
        parsed = parse_address(args.address, loaded.address, default_maxmsgs=loaded.segment.maxmsgs)
    except MailsmsError as exc:
        print(f"mailsms: {exc.enhanced} {exc.reason}", file=sys.stderr)
        return exc.exit_code
    params = parsed.params.given()
    if args.json:
        print(json.dumps({"number": parsed.number, "domain": parsed.domain, "params": params}))
        return EX_OK
    print(f"number: {parsed.number}")
    print(f"domain: {parsed.domain}")
    if "maxmsgs" not in params:
        print(f"maxmsgs: {parsed.maxmsgs} (default)")
    for name, value in params.items():
        for each in value if isinstance(value, list) else [value]:
            print(f"{name}: {_plain(each)}")
    return EX_OK


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        # one line per parameter even for a body with line breaks
        return value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value
    return str(value)
