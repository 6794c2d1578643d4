"""smstools3 (smsd) as a gateway: message files in its spool (``[[gateway]] type = "smstools"``).

One file per SMS part.  mailsms splits the text itself and writes each part
with its ``UDH-DATA`` and ``Autosplit: 0`` rather than leaving the split to
smsd: our segmenter keeps GSM escapes and UTF-16 surrogate pairs whole, and
one file per part gives each part its own ``Message_id`` and so its own
delivery report (smsd records only one id for a file it splits).  A file is
written under a temporary name in ``temp_dir`` (``<spool>/.mailsms``, same
file system), fsynced and renamed into ``outgoing/``: smsd never reads half
a file, and a unique name (``mailsms_<queue-id>_<seq>_<attempt>_<random>``)
never meets the ``.LOCK`` conflict smsd's alarm handler exists for.

A poller takes back what smsd leaves: ``sent/`` (the ``Message_id`` goes into
the journal), ``failed/`` (``Fail_reason``: a network cause fails the part, a
modem that did not answer is tried again ``retries`` times), ``report/``
(status reports, matched by ``Message_id`` and number) and ``incoming/``
(MOs, committed through the host's ``mo_sink``).  Each file is removed (or
moved to ``archive``) only after its result is committed; the journal makes
a file found again after a crash harmless.  Files that cannot be read go to
``<state>/smstools/<gateway>/bad/``.  Only files named ``mailsms_*`` are
taken from ``sent/`` and ``failed/``: other programs may share the spool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailsms.errors import TransportDown
from mailsms.schema import bounded, duration
from ndr import codes
from transports import smstools_format as fmt
from transports import spool_files
from transports.base import DeliveryReport, OutgoingPart, OutgoingSms, PartResult, TransportContext
from transports.spool_base import SpoolTransport, message_id, spool_problems
from transports.spool_journal import Entry

log = logging.getLogger("mailsms.smstools")

FOLDERS = ("outgoing", "checked", "incoming", "sent", "failed", "report")
PREFIX = "mailsms_"
STALE_LOCK = 600.0  # a .LOCK older than this is left over from a crash of smsd
ORPHAN_AGE = 3600.0  # a status report matching nothing for this long goes to bad/


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "smstools"``: smsd's spool and how mailsms uses it."""

    spool: str = "/var/spool/sms"
    report: bool = True  # Report: yes on every part (delivery reports)
    queue: str = ""  # Queue: header, one of smsd's [queues]; "" lets smsd choose
    receive: bool = True  # take MOs from incoming/ (false when something else reads them)
    poll_interval: float = duration("1s")
    settle: float = duration("2s")  # an incoming file unchanged this long is complete (smsd writes in place)
    retries: int = bounded(3, 0, 100)  # resubmits after a temporary failure (smsd's own tries come first)
    retry_delay: float = duration("5m")
    temp_dir: str = ""  # "" = <spool>/.mailsms; must be on the spool's file system
    archive: str = ""  # move handled files here instead of removing them
    file_mode: int = bounded(0o660, 0, 0o777)

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``."""
        problems = spool_problems(self, "smsd's spool, e.g. /var/spool/sms")
        if self.queue and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.queue):
            problems.append(("queue", "must be the name of one of smsd's [queues]"))
        return problems


def file_name(queue_id: str, seq: int, attempt: int) -> str:
    return f"{PREFIX}{queue_id}_{seq}_{attempt}_{secrets.token_hex(4)}"


def parse_name(name: str) -> tuple[str, int, int] | None:
    """``(queue_id, seq, attempt)`` of one of our file names, or None."""
    if not name.startswith(PREFIX):
        return None
    pieces = name[len(PREFIX) :].rsplit("_", 3)
    if len(pieces) != 4 or not pieces[1].isdigit() or not pieces[2].isdigit():
        return None
    return pieces[0], int(pieces[1]), int(pieces[2])


def _ignored(name: str) -> bool:
    """Names smsd uses for itself: locks, unfinished multipart, its script, hidden files."""
    return name.startswith((".", "smsd_script")) or name.endswith(".LOCK") or "-concatenated" in name


class SmstoolsTransport(SpoolTransport):
    """See the module docstring."""

    kind = "smstools"
    out_folder = "outgoing"
    seen_folders = ("outgoing", "checked", "sent", "failed")
    parse_name = staticmethod(parse_name)

    def __init__(self, options: Options, context: TransportContext, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(options, context, FOLDERS, clock)
        self.options = options

    @property
    def detects_duplicates(self) -> bool:
        return True

    @property
    def delivery_reports(self) -> bool:
        return self.options.report

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the spool as smsd does at its start; TransportDown names what is wrong."""
        await asyncio.to_thread(self._check)
        self._poller.start()

    def _check(self) -> None:
        where = f"smstools gateway {self.gateway_id}"
        if not self.spool.is_dir():
            raise TransportDown(f"{where}: spool directory {self.spool} does not exist (spool)")
        needed = {"outgoing": os.W_OK | os.X_OK, "sent": os.R_OK | os.W_OK | os.X_OK}
        needed["failed"] = needed["sent"]
        if self.options.receive:
            needed["incoming"] = needed["sent"]
        for folder, mode in needed.items():
            path = self.dirs[folder]
            if not path.is_dir():
                raise TransportDown(f"{where}: {path} does not exist (smsd's {folder} folder under spool)")
            if not os.access(path, mode):
                raise TransportDown(f"{where}: no permission to use {path}: mailsms must read and write it")
        if not self.dirs["report"].is_dir() and self.options.report:
            log.warning("%s: no %s: status reports are read from incoming/", self.name, self.dirs["report"])
        spool_files.prepare_temp_dir(self.temp_dir, self.dirs["outgoing"], where, f".{PREFIX}*")
        spool_files.prepare_state(self.state, self.journal.load, where)

    async def close(self) -> None:
        await self._poller.close()

    # -- sending ----------------------------------------------------------------------

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """One file per part into ``outgoing/``; stops at the first part that could not be written."""

        def build(part: OutgoingPart) -> tuple[str, bytes]:
            content = fmt.outgoing_file(sms, part, report=self.options.report or sms.report, queue=self.options.queue)
            return file_name(sms.queue_id, part.seq, 0), content

        return await self.write_parts(sms, build)

    # -- what smsd leaves --------------------------------------------------------------

    async def poll(self) -> None:
        """Take every finished file from ``sent/``, ``failed/``, ``report/`` and ``incoming/`` once."""
        async with self._polling:
            await self._poll_once()

    async def _poll_once(self) -> None:
        for name in await asyncio.to_thread(self._ready, "sent"):
            await asyncio.to_thread(self._take_sent, name)
        for name in await asyncio.to_thread(self._ready, "failed"):
            await self._take_failed(name)
        if self.dirs["report"].is_dir():
            for name in await asyncio.to_thread(self._ready, "report"):
                await self._take_file("report", name)
        if self.options.receive:
            for name in await asyncio.to_thread(self._ready, "incoming", self.options.settle):
                await self._take_file("incoming", name)

    def _ready(self, folder: str, settle: float = 0.0) -> list[str]:
        """Names in ``folder`` smsd is done with: no fresh ``.LOCK`` beside them, unchanged for ``settle``."""
        names = self._list(folder)
        present = set(names)
        now = self._clock()
        ready: list[str] = []
        for name in names:
            if _ignored(name):
                continue
            if folder in ("sent", "failed") and parse_name(name) is None:
                continue  # another program's message
            try:
                if f"{name}.LOCK" in present:
                    lock_age = now - (self.dirs[folder] / f"{name}.LOCK").stat().st_mtime
                    if lock_age < STALE_LOCK:
                        continue
                    self._warn_once(f"lock {name}", f"ignoring stale lock {name}.LOCK in {folder}/")
                if settle and now - (self.dirs[folder] / name).stat().st_mtime < settle:
                    continue
            except FileNotFoundError:
                continue
            ready.append(name)
        self._warned.discard(folder)
        return ready

    def _read(self, folder: str, name: str) -> fmt.SmsFile | None:
        """The parsed file; None when it vanished or was unreadable (moved to bad/)."""
        path = self.dirs[folder] / name
        try:
            return fmt.parse_file(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, fmt.BadFile) as exc:
            self._set_aside(path, str(exc))
            return None

    def _set_aside(self, path: Path, reason: str) -> None:
        problem = spool_files.set_aside(path, self.state / "bad", reason, self.name)
        if problem:
            self._warn_once(f"bad {path}", f"cannot move unreadable {path} ({reason}) aside: {problem}")

    def _done(self, path: Path) -> None:
        """A file whose result is committed: removed, or moved to ``archive``."""
        problem = spool_files.finish(path, self.options.archive)
        if problem:
            self._warn_once(f"done {path}", f"cannot remove {path}: {problem}")

    def _take_sent(self, name: str) -> None:
        parsed_name = parse_name(name)
        assert parsed_name is not None  # _ready only lists our names here
        queue_id, seq, _ = parsed_name
        if self.journal.get(name) is None:
            parsed = self._read("sent", name)
            if parsed is None:
                return
            reference = parsed.get("Message_id")
            sent = fmt.parse_timestamp(parsed.get("Sent")) or self._clock()
            entry = Entry(name, queue_id, seq, "+" + parsed.get("To").lstrip("+"), reference, parsed.get("Modem"),
                          sent, final=not reference)  # fmt: skip
            self.journal.record(entry)
            log.info("%s: %s: part %d sent by %s (message id %s)", self.name, queue_id, seq,
                     entry.modem or "smsd", reference or "-")  # fmt: skip
        self._done(self.dirs["sent"] / name)

    async def _take_failed(self, name: str) -> None:
        parsed_name = parse_name(name)
        assert parsed_name is not None
        queue_id, seq, attempt = parsed_name
        path = self.dirs["failed"] / name
        known = self.journal.get(name)
        if known is not None and known.final:
            await asyncio.to_thread(self._done, path)
            return
        parsed = await asyncio.to_thread(self._read, "failed", name)
        if parsed is None:
            return
        reason = parsed.get("Fail_reason") or "no reason given"
        verdict = fmt.judge_failure(reason)
        if verdict.temporary and attempt < self.options.retries:
            try:
                age = self._clock() - path.stat().st_mtime
            except FileNotFoundError:
                return
            if age < self.options.retry_delay:
                return
            again = file_name(queue_id, seq, attempt + 1)
            try:
                await asyncio.to_thread(self._publish, again, fmt.without_smsd_headers(path.read_bytes()))
            except OSError as exc:
                self._warn_once(f"retry {name}", f"cannot resubmit {name}: {exc.strerror}")
                return
            log.info("%s: %s: part %d failed in smsd (%s); submitted again (%d of %d)", self.name, queue_id, seq,
                     reason, attempt + 1, self.options.retries)  # fmt: skip
            await asyncio.to_thread(self._done, path)
            return
        report = DeliveryReport(self.gateway_id, message_id(queue_id, seq), delivered=False,
                                reason=f"smsd: {reason} ({verdict.text})", dsn=verdict.dsn)  # fmt: skip
        if not await self._report(report):
            return
        entry = Entry(name, queue_id, seq, "+" + parsed.get("To").lstrip("+"), final=True)
        await asyncio.to_thread(self.journal.record, entry)
        await asyncio.to_thread(self._done, path)

    async def _report(self, report: DeliveryReport) -> bool:
        try:
            await self._context.report_sink(report)
        except Exception as exc:
            log.warning("%s: delivery report for %s not committed (%s); tried again later", self.name,
                        report.message_id, exc)  # fmt: skip
            return False
        return True

    async def _take_file(self, folder: str, name: str) -> None:
        """A file of ``report/`` or ``incoming/``: a status report or an MO."""
        parsed = await asyncio.to_thread(self._read, folder, name)
        if parsed is None:
            return
        path = self.dirs[folder] / name
        if fmt.is_status_report(parsed):
            await self._take_report(path, parsed)
            return
        if folder == "report":
            await asyncio.to_thread(self._set_aside, path, "not a status report")
            return
        await self._take_mo(path, parsed)

    async def _take_report(self, path: Path, parsed: fmt.SmsFile) -> None:
        try:
            status = fmt.parse_status_report(parsed)
        except fmt.BadFile as exc:
            await asyncio.to_thread(self._set_aside, path, str(exc))
            return
        entry = self.journal.match(status.modem, str(status.message_id), status.recipient)
        if entry is None and self.journal.match(status.modem, str(status.message_id), status.recipient, settled=True):
            await asyncio.to_thread(self._done, path)  # applied before a crash: the file was left behind
            return
        if entry is None:
            try:
                age = self._clock() - path.stat().st_mtime
            except FileNotFoundError:
                return
            if age >= ORPHAN_AGE:  # its sent/ file never came: kept for a person to look at
                await asyncio.to_thread(self._set_aside, path, f"no part sent with message id {status.message_id}")
            return
        verdict = codes.tp_status(status.status)
        if verdict.final:
            delivered = verdict.outcome == codes.DELIVERED
            report = DeliveryReport(self.gateway_id, message_id(entry.queue_id, entry.seq), delivered,
                                    reason=f"status report: {status.text or verdict.text} (TP-ST {status.status})",
                                    dsn="" if delivered else verdict.status)  # fmt: skip
            if not await self._report(report):
                return
            entry.final = True
            await asyncio.to_thread(self.journal.record, entry)
        else:
            log.info("%s: %s.%d: status report: %s", self.name, entry.queue_id, entry.seq, verdict.text)
        await asyncio.to_thread(self._done, path)

    async def _take_mo(self, path: Path, parsed: fmt.SmsFile) -> None:
        sink = self._context.mo_sink
        if sink is None:
            self._warn_once("no sink", "nobody takes incoming SMS here: they stay in incoming/")
            return
        try:
            incoming = fmt.incoming_sms(parsed, self.gateway_id)
        except fmt.BadFile as exc:
            await asyncio.to_thread(self._set_aside, path, str(exc))
            return
        try:
            await sink(incoming)
        except Exception as exc:
            log.warning("%s: incoming SMS %s not committed (%s); it stays in incoming/", self.name, path.name, exc)
            return
        await asyncio.to_thread(self._done, path)


def create(options: Options, context: TransportContext) -> SmstoolsTransport:
    """The smstools transport for one ``[[gateway]]``."""
    return SmstoolsTransport(options, context)
