"""The ``mailsms`` command: a frame whose subcommands are registered by module.

Each module in ``COMMAND_MODULES`` has ``register(subparsers)`` that adds one
subcommand and sets ``handler`` to a function ``(args) -> int``.  Those
modules import only the standard library at the top, so that quick commands
(``split``, ``address``) start fast; heavy imports happen inside handlers.

Exit codes follow sysexits.  No traceback reaches the user: an unexpected
error prints one line, and the traceback goes to a crash file it names.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from mailsms import __version__
from mailsms.errors import EX_SOFTWARE, EX_USAGE, MailsmsError


def positive_int(value: str) -> int:
    """An argparse type for counts such as ``--limit``: a whole number of at least 1."""
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


COMMAND_MODULES: tuple[str, ...] = (
    "mailsms.cmd_address",
    "mailsms.cmd_serve",
    "mailsms.cmd_check",
    "mailsms.cmd_queue",
    "mailsms.cmd_inbound",
    "mailsms.cmd_inject",
    "mailsms.cmd_split",
    "mailsms.cmd_modem",
    "mailsms.cmd_replylog",
    "mailsms.cmd_dkim",
    "mailsms.cmd_accounts",
    "mailsms.cmd_milter",
    "mailsms.cmd_route",
    "mailsms.cmd_stats",
    "mailsms.cmd_send",
    "mailsms.cmd_store",
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 64 (EX_USAGE) instead of 2 on a usage error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts, also after the subcommand name."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="configuration file (default: $MAILSMS_CONFIG, else built-in defaults)",
    )
    parent.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=argparse.SUPPRESS,
        help="log level (default: info)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parent = common_options()
    parser = _Parser(
        prog="mailsms",
        description="SMS gateway for mail systems.",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"mailsms {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EX_USAGE
    try:
        code: int = args.handler(args)
        return code
    except MailsmsError as exc:
        for line in exc.details():
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line for the user
        where = _write_crash_report()
        print(f"mailsms: internal error ({type(exc).__name__}); details in {where}", file=sys.stderr)
        return EX_SOFTWARE


def _write_crash_report() -> str:
    import logging
    import tempfile
    import traceback

    from mailsms.log import redact

    text = redact(traceback.format_exc())
    logging.getLogger("mailsms").debug("internal error\n%s", text)
    try:
        with tempfile.NamedTemporaryFile("w", prefix="mailsms-crash-", suffix=".log", delete=False) as handle:
            handle.write(text)
            return handle.name
    except OSError:
        return "(could not write a crash report)"


def run() -> NoReturn:
    sys.exit(main())
