"""``mailsms check``: validate a configuration and list every problem.

``--startup`` also runs the start-up checks of ``mailsms serve`` (state
directory, queue file, gateway files, listeners bindable); ``--postfix``
reads the Postfix configuration (``postconf``) and says what is missing
for mail to reach mailsms, with the line to add.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mailsms.errors import EX_OK

if TYPE_CHECKING:
    from mailsms.config import Config


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "check",
        parents=[parent],
        help="validate the configuration",
        description="Load the configuration and print every problem with its key; exit 0 or 78.",
    )
    parser.add_argument("--startup", action="store_true", help="also run the start-up checks of mailsms serve")
    parser.add_argument("--postfix", action="store_true", help="check that Postfix routes SMS mail to mailsms")
    parser.add_argument("--postconf-dir", metavar="DIR", help="the Postfix configuration directory (postconf -c)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config

    loaded = config.load(config.config_path(getattr(args, "config", None)))  # problems: exit 78 via the CLI frame
    print(f"mailsms: configuration OK ({loaded.source})")
    codes = []
    if args.startup:
        codes.append(_startup(loaded))
    if args.postfix or args.postconf_dir:
        from mailsms.postfix_check import run_postfix_check

        codes.append(run_postfix_check(loaded, args.postconf_dir))
    return next((code for code in codes if code), EX_OK)


def _startup(loaded: Config) -> int:
    from mailsms.startup import startup_problems

    problems = startup_problems(loaded, listeners=True)
    for problem in problems:
        print(f"mailsms: {'warning' if problem.warning else 'error'}: {problem.message}", file=sys.stderr)
    errors = [p for p in problems if not p.warning]
    if errors:
        return errors[0].exit_code
    print("mailsms: start-up checks passed")
    return EX_OK
