"""``mailsms serve``: run the gateway."""

from __future__ import annotations

import argparse
from typing import Any


def _listen_flag(value: str) -> object:
    from mailsms.values import parse_listen

    try:
        return parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "serve",
        parents=[parent],
        help="run the gateway (LMTP/SMTP in, SMS out)",
        description="Run mailsms. With no configuration: LMTP on 127.0.0.1:2424, HTTP on 127.0.0.1:8025, "
        "state in ./var. SIGTERM or SIGINT stop it cleanly.",
    )
    parser.add_argument("--state-dir", metavar="DIR", help="state directory (overrides state.dir)")
    for name in ("lmtp", "smtp", "http"):
        parser.add_argument(
            f"--{name}-listen",
            metavar="HOST:PORT",
            type=_listen_flag,
            default=False,
            help=f'{name.upper()} listener (overrides server.{name}_listen; "" turns it off)',
        )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config, daemon, log

    log.setup(getattr(args, "log_level", "info"))
    loaded = config.load(config.config_path(getattr(args, "config", None)))
    loaded = config.with_overrides(
        loaded,
        state_dir=args.state_dir,
        lmtp_listen=args.lmtp_listen,
        smtp_listen=args.smtp_listen,
        http_listen=args.http_listen,
    )
    return daemon.serve(loaded)
