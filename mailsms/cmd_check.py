"""``mailsms check``: validate a configuration and list every problem."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailsms.errors import EX_CONFIG, EX_OK


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "check",
        parents=[parent],
        help="validate the configuration",
        description="Load the configuration and print every problem with its key; exit 0 or 78.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config

    path = config.config_path(getattr(args, "config", None))
    try:
        loaded = config.load(path)
    except config.ConfigInvalid as exc:
        for line in exc.details():
            print(line, file=sys.stderr)
        count = len(exc.problems)
        print(f"mailsms: {count} problem{'s' if count != 1 else ''} in {exc.source}", file=sys.stderr)
        return EX_CONFIG
    print(f"mailsms: configuration OK ({loaded.source})")
    return EX_OK
