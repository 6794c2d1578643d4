"""``mailsms check``: validate a configuration and list every problem."""

from __future__ import annotations

import argparse
from typing import Any

from mailsms.errors import EX_OK


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

    loaded = config.load(config.config_path(getattr(args, "config", None)))  # problems: exit 78 via the CLI frame
    print(f"mailsms: configuration OK ({loaded.source})")
    return EX_OK
