"""What the spool transports (smstools, gammu) share: writing one file per part, finding
their own files again after a crash, listing folders, warning once.

A subclass sets ``kind`` (for reasons), ``out_folder`` (where new files go),
``seen_folders`` (where a file of ours may be found later) and ``parse_name``,
and fills the attributes listed below in its ``__init__``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from transports import spool_files
from transports.base import Outcome, OutgoingPart, OutgoingSms, PartResult, TransportContext
from transports.spool_journal import Journal

log = logging.getLogger("mailsms.spool")

SAFE_QUEUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,127}$")
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def message_id(queue_id: str, seq: int) -> str:
    """The id a part is known by (in reports and ``queue show``): ``<queue-id>.<seq>``."""
    return f"{queue_id}.{seq}"


class SpoolOptions(Protocol):
    """The ``[[gateway]]`` keys every spool transport has (frozen dataclasses: read-only)."""

    @property
    def spool(self) -> str: ...
    @property
    def temp_dir(self) -> str: ...
    @property
    def poll_interval(self) -> float: ...
    @property
    def file_mode(self) -> int: ...
    @property
    def archive(self) -> str: ...


def spool_problems(options: SpoolOptions, example: str) -> list[tuple[str, str]]:
    """The checks of the keys every spool transport has, as ``(key, message)``; ``example`` names
    the daemon's usual spool in the message."""
    problems: list[tuple[str, str]] = []
    if not os.path.isabs(options.spool):
        problems.append(("spool", f"must be an absolute path ({example})"))
    for key in ("temp_dir", "archive"):
        value = getattr(options, key)
        if value and not os.path.isabs(value):
            problems.append((key, "must be an absolute path"))
    if options.poll_interval <= 0:
        problems.append(("poll_interval", "must be more than 0"))
    return problems


class SpoolTransport:
    kind: str
    out_folder: str
    seen_folders: tuple[str, ...]

    def __init__(
        self, options: SpoolOptions, context: TransportContext, folders: tuple[str, ...], clock: Callable[[], float]
    ) -> None:
        self.gateway_id = context.gateway_id
        self._context = context
        self._clock = clock
        self.spool = Path(options.spool)
        self.dirs = {name: self.spool / name for name in folders}
        self.temp_dir = Path(options.temp_dir) if options.temp_dir else self.spool / ".mailsms"
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", context.gateway_id)
        self.state = context.state_dir / self.kind / safe
        self.journal = Journal(self.state / "journal.jsonl", clock=clock)
        self.name = f"{self.kind} {context.gateway_id}"
        self._poller = spool_files.Poller(self.poll, options.poll_interval, f"{self.kind}-{self.gateway_id}")
        self._warned: set[str] = set()
        self.file_mode = options.file_mode
        self._polling = asyncio.Lock()  # the poller and a caller (tests, a wake-up) never take one file twice

    async def poll(self) -> None:
        """Take every finished file the daemon left, once."""
        raise NotImplementedError

    @staticmethod
    def parse_name(name: str) -> tuple[str, int, int] | None:
        """(queue id, seq, attempt) of a file name of ours, or None."""
        raise NotImplementedError

    async def write_parts(
        self, sms: OutgoingSms, build: Callable[[OutgoingPart], tuple[str, bytes]]
    ) -> list[PartResult]:
        """One file per part (``build`` gives its name and content; ValueError: the part cannot be
        written at all); stops at the first part not taken."""
        if sms.parts and not SAFE_QUEUE_ID.match(sms.queue_id):
            return [PartResult(sms.parts[0].seq, Outcome.PERMANENT, f"{self.kind}: unusable queue id {sms.queue_id!r}")]
        results: list[PartResult] = []
        for part in sms.parts:
            try:
                file_name, content = build(part)
            except ValueError as exc:
                results.append(PartResult(part.seq, Outcome.PERMANENT, f"{self.kind}: {exc}", dsn="5.6.0"))
                break
            try:
                await asyncio.to_thread(self._publish, file_name, content)
            except OSError as exc:
                dsn = "4.3.1" if exc.errno in DISK_FULL else "4.4.1"
                reason = f"{self.kind}: cannot write into {self.dirs[self.out_folder]}: {exc.strerror}"
                results.append(PartResult(part.seq, Outcome.TEMPORARY, reason, dsn=dsn))
                break
            results.append(PartResult(part.seq, Outcome.SUBMITTED, message_id=message_id(sms.queue_id, part.seq)))
        return results

    def _publish(self, file_name: str, content: bytes) -> None:
        spool_files.publish(self.temp_dir, self.dirs[self.out_folder], file_name, content, self.file_mode)

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        """Parts with a file anywhere in the spool or in the journal."""
        if not SAFE_QUEUE_ID.match(sms.queue_id):
            return {}
        found = await asyncio.to_thread(self._parts_seen, sms.queue_id)
        return {p.seq: message_id(sms.queue_id, p.seq) for p in sms.parts if p.seq in found}

    def _parts_seen(self, queue_id: str) -> set[int]:
        seen = self.journal.parts(queue_id)
        for folder in self.seen_folders:
            for file_name in self._list(folder):
                parsed = self.parse_name(file_name)
                if parsed is not None and parsed[0] == queue_id:
                    seen.add(parsed[1])
        return seen

    def _list(self, folder: str) -> list[str]:
        try:
            names = sorted(os.listdir(self.dirs[folder]))
        except OSError as exc:
            self._warn_once(folder, f"cannot read {self.dirs[folder]}: {exc.strerror}")
            return []
        self._warned.discard(folder)
        return names

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s: %s", self.name, message)
