"""``mailsms send``: queue an SMS, or one per number of a list, from the command line.

The messages go through the checks of the HTTP send API (``/sms/``, the
shared ``mailsms.web_send.prepare_text``): number syntax, ``id=``/``sender``
parameters, destination rules, the account's state and monthly limit,
``intercept.mt`` and segmentation, then into the same queue.  The running
daemon picks them up at its next queue run (``queue.queue_run_delay``).
Whoever can run this can write the queue file, so the command counts as a
trusted client: ``--account`` needs no password, and the per-hour rate
limits of ``[policy]`` (meant for remote clients) do not apply.

For ``--file`` the numbers are the first column of a CSV file (a first line
without digits is taken as a header), or the column ``--column NAME`` of a
CSV file with a header.  Each row gets its own message; a number that comes
again is refused as a duplicate.  Rejected rows are listed with their line
number and reason, never the text.

Exit codes: 0 every message queued; 65 some rows (or the one number) were
refused, the others are queued; 66 no queue (the daemon never ran with this
``state.dir``) or no such file; 75 the queue could not take more (the
summary says from which line nothing was queued).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from mailsms.cli import positive_int
from mailsms.errors import EX_DATAERR, EX_NOINPUT, EX_OK, EX_TEMPFAIL, EX_USAGE

if TYPE_CHECKING:
    from mailsms.accounts import Account
    from mailsms.config import Config
    from mailsms.ingest import Recipient
    from mailsms.policy import Request
    from mailsms.server import Handler
    from mailsms.store import NewMessage

BATCH = 200  # rows per group commit: one fsync for many messages
_CSV_DELIMITERS = ",;\t"


@dataclass(frozen=True)
class Row:
    """One number of the list and the line it was on (1-based)."""

    line: int
    number: str


@dataclass(frozen=True)
class Rejected:
    line: int
    number: str
    reason: str


class ListError(Exception):
    """The list as a whole cannot be used (no such column, not UTF-8)."""


def read_numbers(content: str, column: str | None = None) -> list[Row]:
    """The numbers of a CSV list: ``column`` of a file with a header, else the first column.

    Blank lines, blank cells and lines starting with ``#`` are skipped.
    """
    lines = content.splitlines()
    sample = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    delimiter = next((d for d in _CSV_DELIMITERS if d in sample), ",")
    reader = csv.reader(io.StringIO(content, newline=None), delimiter=delimiter)  # any line ending
    try:
        return _rows(reader, column)
    except csv.Error as exc:
        raise ListError(f"line {reader.line_num}: {exc}") from None


def _rows(reader: Any, column: str | None) -> list[Row]:
    index: int | None = None if column else 0
    rows: list[Row] = []
    for cells in reader:
        line = reader.line_num
        if not cells or cells[0].startswith("#") or not any(c.strip() for c in cells):
            continue
        if index is None:  # the header names the column
            names = [c.strip().lower() for c in cells]
            if column is None or column.strip().lower() not in names:
                raise ListError(f"line {line}: no column {column!r} in the header ({', '.join(names)[:200]})")
            index = names.index(column.strip().lower())
            continue
        cell = cells[index].strip() if index < len(cells) else ""
        if not rows and column is None and not any(ch.isdigit() for ch in cell):
            continue  # a header line such as "number,name"
        if cell:
            rows.append(Row(line, cell))
    return rows


def progress_line(done: int, total: int, width: int = 30) -> str:
    """``  120/1000 [###-------]  12%``: what the progress bar shows."""
    filled = width * done // total if total else width
    percent = 100 * done // total if total else 100
    digits = len(str(total))
    return f"{done:>{digits}}/{total} [{'#' * filled}{'-' * (width - filled)}] {percent:>3}%"


def cli_queue_ids() -> Callable[[], str]:
    """Queue ids for this process: time-ordered like the daemon's, and never equal to one of its.

    The daemon numbers the ids of one millisecond from 0 up; ours set bit 19 of that counter and
    a random 7-bit tag of this process above the count, so two ``mailsms send`` at once very rarely meet.
    """
    import secrets

    from mailsms.ingest import QueueIds

    ids = QueueIds()
    tag = 1 << 19 | secrets.randbits(7) << 12

    def next_id() -> str:
        return f"{int(ids(), 16) | tag:016X}"

    return next_id


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "send",
        parents=[parent],
        help="queue an SMS to a number, or to every number of a CSV list",
        description="Queue SMS through the checks of the HTTP send API; the running daemon sends them. "
        "mailsms send NUMBER TEXT, or mailsms send --file LIST.csv TEXT. TEXT may be - for standard input.",
    )
    parser.add_argument("words", nargs="+", metavar="NUMBER TEXT", help="the number (not with --file) and the text")
    parser.add_argument("--file", metavar="LIST.csv", help="numbers from this CSV file, one message each")
    parser.add_argument("--column", metavar="NAME", help="the header's column holding the numbers (default: the first)")
    parser.add_argument("--sender", metavar="SENDER", help="the sender shown on the phone (the sender= parameter)")
    parser.add_argument("--account", "--user", dest="account", metavar="NAME",
                        help="the account the messages count against (its gateway, state, monthly limit)")  # fmt: skip
    parser.add_argument("--gateway", metavar="ID", help="send through this gateway or group (the id= parameter)")
    parser.add_argument("--maxmsgs", type=positive_int, metavar="N", help="at most N parts per message (default 128)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config

    wanted = 1 if args.file else 2
    if len(args.words) != wanted:
        usage = "TEXT with --file" if args.file else "NUMBER TEXT"
        print(f"mailsms send: expected {usage}, got {len(args.words)} argument(s)", file=sys.stderr)
        return EX_USAGE
    if args.column and not args.file:
        print("mailsms send: --column needs --file", file=sys.stderr)
        return EX_USAGE
    text = sys.stdin.read() if args.words[-1] == "-" else args.words[-1]
    loaded = config.load(config.config_path(getattr(args, "config", None)))
    if args.file:
        try:
            rows = read_numbers(_read_list(args.file), args.column)
        except OSError as exc:
            print(f"mailsms: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return EX_NOINPUT
        except ListError as exc:
            print(f"mailsms: {args.file}: {exc}", file=sys.stderr)
            return EX_DATAERR
        if not rows:
            print(f"mailsms: {args.file}: no numbers in it", file=sys.stderr)
            return EX_DATAERR
    else:
        rows = [Row(0, args.words[0])]
    return _send(loaded, args, rows, text)


def _read_list(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise ListError("not UTF-8 text") from None


def _send(loaded: Config, args: argparse.Namespace, rows: list[Row], text: str) -> int:
    import asyncio

    from mailsms.store.engines import engine_of, open_store, sqlite_path

    url = loaded.store.url
    if engine_of(url) == "sqlite" and not sqlite_path(url, loaded.state_dir).is_file():
        print(f"mailsms: no queue in {loaded.state_dir} (state.dir): start the daemon there once, "
              "or give the configuration it runs with", file=sys.stderr)  # fmt: skip
        return EX_NOINPUT
    from mailsms.server import Handler

    store = open_store(url, loaded.state_dir, node="tool")
    try:
        handler = Handler(loaded, store, _no_wake, new_id=cli_queue_ids())
        sender = Sender(handler, args, progress=sys.stderr if sys.stderr.isatty() and args.file else None)
        return asyncio.run(sender.run(rows, text, single=not args.file))
    finally:
        store.close()


def _no_wake() -> None:
    """The daemon's scheduler finds the messages at its next queue run."""


class Sender:
    """Prepares, checks and commits the messages of one ``mailsms send``, and reports."""

    def __init__(self, handler: Handler, args: argparse.Namespace, progress: TextIO | None = None) -> None:
        from mailsms.policy import Verdict

        self.handler = handler
        self.account: str = args.account or ""
        self.query = _query(args.sender, args.gateway, args.maxmsgs)
        self.progress = progress
        self.queued: list[tuple[int, NewMessage]] = []
        self.rejected: list[Rejected] = []
        self.stopped: str = ""  # why the queue took no more, "" when it took everything
        self.verdict = Verdict()
        self.found: Account | None = None  # the account, as read before the first row

    async def run(self, rows: Sequence[Row], text: str, *, single: bool) -> int:
        from mailsms.errors import MailsmsError
        from mailsms.policy import Request
        from mailsms.web_send import check_text

        pre = Request("http", None, "", "", session_user=self.account, trusted=True)
        try:
            check_text(text)
            self.verdict, self.found = await self.handler.policy.identify(pre)
        except MailsmsError as exc:
            print(f"mailsms: {exc.reason}", file=sys.stderr)
            return exc.exit_code
        await self._all(rows, text, pre)
        if self.progress is not None:
            self.progress.write("\r" + " " * len(progress_line(len(rows), len(rows))) + "\r")
        return self._report(len(rows), single=single)

    async def _all(self, rows: Sequence[Row], text: str, pre: Request) -> None:
        from mailsms.errors import MailsmsError

        seen: dict[str, int] = {}
        batch: list[tuple[int, Recipient, NewMessage]] = []
        for done, row in enumerate(rows, start=1):
            try:
                recipient, message = await self._prepare(row, text, pre, len(batch))
            except MailsmsError as exc:
                self.rejected.append(Rejected(row.line, row.number, exc.reply()))
            else:
                first = seen.setdefault(message.number, row.line)
                if first != row.line:
                    self.rejected.append(Rejected(row.line, row.number, f"duplicate of line {first}"))
                else:
                    batch.append((row.line, recipient, message))
            if len(batch) >= BATCH or done == len(rows):
                if not await self._commit(batch):
                    return
                batch = []
            self._show(done, len(rows))

    async def _prepare(self, row: Row, text: str, pre: Request, pending: int) -> tuple[Recipient, NewMessage]:
        from mailsms.address import number_address
        from mailsms.address_params import MAXMSGS_CAP
        from mailsms.web_send import prepare_text

        handler = self.handler
        address = number_address(row.number, self.query, handler.config.address, default_maxmsgs=MAXMSGS_CAP,
                                 trusted=True)  # fmt: skip
        # The account was read once, before the first row: what this run queued counts as already sent.
        already = len(self.queued) + pending if self.account else 0
        return await prepare_text(handler, pre, self.verdict, self.found, address, text=text, vouched=True,
                                  already=already, rate_limits=False)  # fmt: skip

    async def _commit(self, batch: list[tuple[int, Recipient, NewMessage]]) -> bool:
        from mailsms.errors import MailsmsError

        if not batch:
            return True
        try:
            await self.handler.commit(
                [message for _, _, message in batch], recipients=[recipient for _, recipient, _ in batch]
            )
        except MailsmsError as exc:
            self.stopped = f"{exc.reply()}; nothing was queued from line {batch[0][0]} on"
            return False
        self.queued += [(line, message) for line, _, message in batch]
        return True

    def _show(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress.write("\r" + progress_line(done, total))
            self.progress.flush()

    def _report(self, total: int, *, single: bool) -> int:
        if single:
            if self.queued:
                message = self.queued[0][1]
                count = len(message.parts)
                print(f"mailsms: queued as {message.id} ({count} part{'s' * (count != 1)})")
            for rejected in self.rejected:
                print(f"mailsms: refused: {rejected.reason}", file=sys.stderr)
        else:
            print(f"mailsms: {len(self.queued)} queued, {len(self.rejected)} rejected, of {total} number(s)")
            for rejected in sorted(self.rejected, key=lambda r: r.line):
                print(f"line {rejected.line}: {_shown(rejected.number)}: {rejected.reason}", file=sys.stderr)
        if self.stopped:
            print(f"mailsms: the queue took no more: {self.stopped}", file=sys.stderr)
            return EX_TEMPFAIL
        return EX_DATAERR if self.rejected else EX_OK


def _query(sender: str | None, gateway: str | None, maxmsgs: int | None) -> str:
    """The address parameters the options stand for, as after ``sms:NUMBER?``."""
    from mailsms.address_params import encode

    pairs = (("sender", sender), ("id", gateway), ("maxmsgs", str(maxmsgs) if maxmsgs else None))
    return "&".join(f"{name}={encode(value)}" for name, value in pairs if value)


def _shown(number: str) -> str:
    """A number from the file as it may be printed: no control characters, at most 40 characters."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in number)
    return cleaned[:40] + ("..." if len(cleaned) > 40 else "")
