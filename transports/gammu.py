"""Gammu SMSD's ``files`` backend as a gateway (``[[gateway]] type = "gammu"``).

One file per SMS part.  mailsms splits the text itself and writes each part
as a one-section gammu backup file (``.smsbackup``) carrying its own UDH and
coding: gammu sends such a file as it stands, so our segmenter (GSM escapes
and surrogate pairs kept whole) decides, and each part has its own file and
so its own outcome in ``sent/`` or ``error/``.  A ``.txt`` file would be
split by gammu itself (``transmitformat``) with its own reference and could
only succeed or fail as a whole.  Files are written in ``temp_dir``
(``<spool>/.mailsms``), fsynced and renamed into ``outbox/`` under gammu's
naming scheme, ``OUT<priority><date>_<time>_<seq>_<number>_mailsms.<queue
id>.<seq>.<attempt>.<random>.smsbackup``, so gammu's alphabetical scan sends
the parts in order.

A poller takes back what gammu-smsd leaves: ``sent/`` (the part left the
phone: journal, file removed), ``error/`` (written again ``retries`` times,
``retry_delay`` apart, then the part fails with ``4.4.1``: gammu records no
reason) and ``inbox/`` (``IN...`` files, the parts of one MO joined by name,
committed through the host's ``mo_sink``).  The files backend hands no
delivery reports to other programs, so parts end as submitted.  Each file is
removed (or moved to ``archive``) only after its result is committed; the
journal (``<state>/gammu/<gateway>/journal.jsonl``) makes a file found again
after a crash harmless.  Unreadable inbox files go to ``<state>/gammu/<gateway>/bad/``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailsms.errors import TransportDown
from mailsms.schema import bounded, duration
from transports import gammu_format as fmt
from transports import spool_files
from transports.base import DeliveryReport, OutgoingPart, OutgoingSms, PartResult, TransportContext
from transports.spool_base import SpoolTransport, message_id, spool_problems
from transports.spool_journal import Entry

log = logging.getLogger("mailsms.gammu")

FOLDERS = ("inbox", "outbox", "sent", "error")


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "gammu"``: gammu-smsd's files-backend spool and how mailsms uses it."""

    spool: str = "/var/spool/gammu"
    priority: str = "C"  # the letter after OUT: A is sent first
    receive: bool = True  # take MOs from inbox/ (false when something else reads them)
    poll_interval: float = duration("1s")
    settle: float = duration("2s")  # inbox files unchanged this long are complete (gammu writes in place)
    retries: int = bounded(1, 0, 100)  # a part in error/ is written again this often
    retry_delay: float = duration("5m")
    temp_dir: str = ""  # "" = <spool>/.mailsms; must be on the spool's file system
    archive: str = ""  # move handled files here instead of removing them
    file_mode: int = bounded(0o660, 0, 0o777)

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``."""
        problems = spool_problems(self, "gammu-smsd's spool, e.g. /var/spool/gammu")
        if not re.fullmatch(r"[A-Z]", self.priority):
            problems.append(("priority", "must be one capital letter, A (first) to Z"))
        return problems


class GammuTransport(SpoolTransport):
    """See the module docstring."""

    kind = "gammu"
    out_folder = "outbox"
    seen_folders = ("outbox", "sent", "error")
    parse_name = staticmethod(fmt.parse_name)

    def __init__(self, options: Options, context: TransportContext, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(options, context, FOLDERS, clock)
        self.options = options

    @property
    def detects_duplicates(self) -> bool:
        return True

    @property
    def delivery_reports(self) -> bool:
        return False  # the files backend keeps delivery reports to itself

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the spool folders; TransportDown names what is wrong."""
        await asyncio.to_thread(self._check)
        self._poller.start()

    def _check(self) -> None:
        where = f"gammu gateway {self.gateway_id}"
        if not self.spool.is_dir():
            raise TransportDown(f"{where}: spool directory {self.spool} does not exist (spool)")
        full = os.R_OK | os.W_OK | os.X_OK
        needed = {"outbox": os.W_OK | os.X_OK, "sent": full, "error": full}
        if self.options.receive:
            needed["inbox"] = full
        for folder, mode in needed.items():
            path = self.dirs[folder]
            if not path.is_dir():
                raise TransportDown(
                    f"{where}: {path} does not exist (gammu-smsd's {folder} folder under spool: "
                    f"{folder}path in gammu-smsdrc)"
                )
            if not os.access(path, mode):
                raise TransportDown(f"{where}: no permission to use {path}: mailsms must read and write it")
        spool_files.prepare_temp_dir(self.temp_dir, self.dirs["outbox"], where, f".OUT*{fmt.EXTENSION}")
        spool_files.prepare_state(self.state, self.journal.load, where)

    async def close(self) -> None:
        await self._poller.close()

    # -- sending ----------------------------------------------------------------------

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """One backup file per part into ``outbox/``; stops at the first part that could not be written."""
        when = self._clock()

        def build(part: OutgoingPart) -> tuple[str, bytes]:
            name = fmt.outbox_name(sms, part.seq, 0, when, self.options.priority)
            return name, fmt.outgoing_file(sms, part)

        return await self.write_parts(sms, build)

    # -- what gammu-smsd leaves ----------------------------------------------------------

    async def poll(self) -> None:
        """Take every finished file from ``sent/``, ``error/`` and ``inbox/`` once."""
        async with self._polling:
            for name in await asyncio.to_thread(self._ours, "sent"):
                await asyncio.to_thread(self._take_sent, name)
            for name in await asyncio.to_thread(self._ours, "error"):
                await self._take_error(name)
            if self.options.receive:
                for group in await asyncio.to_thread(self._inbox_groups):
                    await self._take_mo(group)

    def _ours(self, folder: str) -> list[str]:
        """Our files in ``folder``: other programs may share the spool."""
        return [name for name in self._list(folder) if fmt.parse_name(name) is not None]

    def _done(self, path: Path) -> None:
        problem = spool_files.finish(path, self.options.archive)
        if problem:
            self._warn_once(f"done {path}", f"cannot remove {path}: {problem}")

    def _set_aside(self, path: Path, reason: str) -> None:
        problem = spool_files.set_aside(path, self.state / "bad", reason, self.name)
        if problem:
            self._warn_once(f"bad {path}", f"cannot move unreadable {path} ({reason}) aside: {problem}")

    def _take_sent(self, name: str) -> None:
        parsed = fmt.parse_name(name)
        assert parsed is not None  # _ours lists only our names
        queue_id, seq, _ = parsed
        if self.journal.get(name) is None:
            self.journal.record(Entry(name, queue_id, seq, "", final=True))
            log.info("%s: %s: part %d sent by gammu-smsd", self.name, queue_id, seq)
        self._done(self.dirs["sent"] / name)

    async def _take_error(self, name: str) -> None:
        parsed = fmt.parse_name(name)
        assert parsed is not None
        queue_id, seq, attempt = parsed
        path = self.dirs["error"] / name
        known = self.journal.get(name)
        if known is not None and known.final:
            await asyncio.to_thread(self._done, path)
            return
        if attempt < self.options.retries:
            try:
                age = self._clock() - path.stat().st_mtime
                if age < self.options.retry_delay:
                    return
                again = name.replace(f".{queue_id}.{seq}.{attempt}.", f".{queue_id}.{seq}.{attempt + 1}.", 1)
                await asyncio.to_thread(self._publish, again, path.read_bytes())
            except OSError as exc:
                self._warn_once(f"retry {name}", f"cannot resubmit {name}: {exc.strerror}")
                return
            log.info("%s: %s: part %d failed in gammu-smsd; submitted again (%d of %d)", self.name, queue_id, seq,
                     attempt + 1, self.options.retries)  # fmt: skip
            await asyncio.to_thread(self._done, path)
            return
        report = DeliveryReport(self.gateway_id, message_id(queue_id, seq), delivered=False,
                                reason="gammu-smsd could not send the part (error folder)", dsn="4.4.1")  # fmt: skip
        try:
            await self._context.report_sink(report)
        except Exception as exc:
            log.warning("%s: failure of %s not committed (%s); tried again later", self.name, report.message_id, exc)
            return
        await asyncio.to_thread(self.journal.record, Entry(name, queue_id, seq, "", final=True))
        await asyncio.to_thread(self._done, path)

    def _inbox_groups(self) -> list[list[tuple[fmt.InboxName, Path]]]:
        """The MOs in ``inbox/`` whose files all stopped changing ``settle`` ago, parts in order."""
        groups: dict[str, list[tuple[fmt.InboxName, Path]]] = {}
        for name in self._list("inbox"):
            parsed = fmt.parse_inbox_name(name)
            if parsed is not None:
                groups.setdefault(parsed.group, []).append((parsed, self.dirs["inbox"] / name))
        now = self._clock()
        ready = []
        for files in groups.values():
            try:
                newest = max(path.stat().st_mtime for _, path in files)
            except FileNotFoundError:
                continue
            if now - newest >= self.options.settle:
                ready.append(sorted(files, key=lambda f: f[0].seq))
        return ready

    async def _take_mo(self, files: list[tuple[fmt.InboxName, Path]]) -> None:
        sink = self._context.mo_sink
        if sink is None:
            self._warn_once("no sink", "nobody takes incoming SMS here: they stay in inbox/")
            return
        try:
            raw = await asyncio.to_thread(lambda: [(name, path.read_bytes()) for name, path in files])
            incoming = fmt.incoming_sms(raw, self.gateway_id)
        except FileNotFoundError:
            return
        except (OSError, fmt.BadFile) as exc:
            for _, path in files:
                await asyncio.to_thread(self._set_aside, path, str(exc))
            return
        try:
            await sink(incoming)
        except Exception as exc:
            log.warning("%s: incoming SMS %s not committed (%s); it stays in inbox/", self.name, files[0][1].name, exc)
            return
        for _, path in files:
            await asyncio.to_thread(self._done, path)


def create(options: Options, context: TransportContext) -> GammuTransport:
    """The gammu transport for one ``[[gateway]]``."""
    return GammuTransport(options, context)
