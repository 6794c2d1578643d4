"""``mailsms inject-sms``: hand the running daemon an incoming SMS, as a gateway would.

Posts ``from``, ``to``, ``text`` (and ``smsc_id``) to the daemon's
``/inbound/<gateway-id>`` webhook at ``server.http_listen``, with the
gateway's ``webhook_secret`` from the same configuration.  A tool for
administrators and tests; the SMS goes through exactly the checks a
gateway's call goes through.

Exit codes: 0 stored (or already stored), 64 usage (unknown gateway), 65 the
daemon refused the SMS as malformed, 69 the daemon cannot be reached, 75 it
asked to try later, 77 it refused access, 78 no HTTP listener configured.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mailsms.errors import EX_CONFIG, EX_DATAERR, EX_NOPERM, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE

if TYPE_CHECKING:
    from mailsms.config import Config

TIMEOUT = 30.0


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "inject-sms",
        parents=[parent],
        help="give the running daemon an incoming SMS, as a gateway would",
        description="Post an incoming SMS (MO) to the running daemon's /inbound/<gateway> webhook. "
        "TEXT may be - for standard input.",
    )
    parser.add_argument("--from", dest="sender", required=True, metavar="NUMBER", help="who sent the SMS")
    parser.add_argument("--to", default="", metavar="NUMBER", help="the number it was sent to")
    parser.add_argument("--gateway", metavar="ID", help="the gateway it came through (default: the first one)")
    parser.add_argument("--smsc-id", default="", metavar="ID", help="the SMSC's id: a repeat is stored once")
    parser.add_argument("text", metavar="TEXT")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config

    loaded = config.load(config.config_path(getattr(args, "config", None)))
    gateway_id = args.gateway or loaded.gateways[0].id
    gateway = next((g for g in loaded.gateways if g.id == gateway_id), None)
    if gateway is None:
        known = ", ".join(g.id for g in loaded.gateways)
        print(f"mailsms: no gateway {gateway_id!r} in {loaded.source} (gateways: {known})", file=sys.stderr)
        return EX_USAGE
    url = inbound_url(loaded, gateway_id)
    if url is None:
        print("mailsms: the daemon has no HTTP listener (server.http_listen is off)", file=sys.stderr)
        return EX_CONFIG
    text = sys.stdin.read() if args.text == "-" else args.text
    fields = {"from": args.sender, "to": args.to, "text": text}
    if args.smsc_id:
        fields["smsc_id"] = args.smsc_id
    if gateway.webhook_secret:
        fields["secret"] = gateway.webhook_secret
    return _post(url, fields)


def inbound_url(loaded: Config, gateway_id: str) -> str | None:
    """The daemon's webhook for ``gateway_id`` as reached from this machine; None when HTTP is off."""
    from urllib.parse import quote

    listen = loaded.server.http_listen
    if listen is None:
        return None
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}.get(listen.host, listen.host)  # noqa: S104
    where = f"[{host}]" if ":" in host else host
    return f"http://{where}:{listen.port}/inbound/{quote(gateway_id, safe='')}"


def _post(url: str, fields: dict[str, str]) -> int:
    import json
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    body = urlencode(fields).encode("ascii")
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 (an http URL we built)
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    shown = url.rsplit("/inbound/", 1)[0]
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return _refused(exc.code, exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"mailsms: cannot reach the daemon at {shown}: {reason}", file=sys.stderr)
        return EX_UNAVAILABLE
    except ValueError:
        print(f"mailsms: the daemon at {shown} answered something that is not JSON", file=sys.stderr)
        return EX_UNAVAILABLE
    repeat = " (delivered before: stored once)" if answer.get("duplicate") else ""
    print(f"mailsms: stored as {answer.get('id')}{repeat}")
    return EX_OK


def _refused(status: int, body: bytes) -> int:
    import json

    try:
        answer = json.loads(body)
        reason = f"{answer['status']} {answer['error']}"
    except (ValueError, KeyError, TypeError):
        reason = f"HTTP {status}"
    print(f"mailsms: refused: {reason}", file=sys.stderr)
    if status in (401, 403):
        return EX_NOPERM
    if status in (429, 503):
        return EX_TEMPFAIL
    if 400 <= status < 500:
        return EX_DATAERR
    return EX_UNAVAILABLE
