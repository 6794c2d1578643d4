"""The embedded default transport: each SMS becomes a JSON file in a directory.

One file per message and number, ``<queue-id>.json``, written atomically: the
content goes to a temporary name that does not end in ``.json`` (so a reader
globbing ``*.json`` never sees half a file), is fsynced, then linked to its
final name, which fails instead of replacing a file that is already there.
A file is never rewritten: finding ``<queue-id>.json`` for the same number
means an earlier attempt got through (typically before a crash), so the parts
it holds count as submitted.

Submits that arrive while a write is on the disk are written together: all
their temporary files, one sync for their data (``syncfs`` where Linux has
it, else one fsync per file), their final names, one fsync of the
directory.  Each message still gets its own file and its own result.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailsms.errors import TransportDown
from transports.base import Outcome, OutgoingSms, PartResult, TransportContext

log = logging.getLogger("mailsms.outbox")

# Temporary files: hidden, never ``*.json``, recognisable after a crash.
TEMP_PREFIX = ".mailsms-"
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.mailsms-.*\.tmp$")
# Queue ids become file names: nothing that could leave the directory or hide the file.
_SAFE_QUEUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
# Hard links are the no-clobber rename; these say the file system has none.
_NO_LINK = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "outbox"``: ``dir`` defaults to ``<state.dir>/outbox``."""

    dir: str = ""


def outbox_dir(options: Options, state_dir: Path) -> Path:
    """The directory a gateway writes to: ``dir``, or ``<state_dir>/outbox`` when empty."""
    return Path(options.dir) if options.dir else state_dir / "outbox"


def message_id(queue_id: str, seq: int) -> str:
    """The id reported for a part written to the outbox: ``<queue-id>.<seq>``."""
    return f"{queue_id}.{seq}"


def encode_sms(sms: OutgoingSms, gateway_id: str) -> bytes:
    """The file content for ``sms``: keys in a fixed order, hex for udh and binary data."""
    parts: list[dict[str, object]] = []
    for part in sms.parts:
        entry: dict[str, object] = {"seq": part.seq, "text": part.text, "udh": part.udh.hex()}
        if part.data is not None:
            entry["data"] = part.data.hex()
        parts.append(entry)
    document = {
        "queue_id": sms.queue_id,
        "to": sms.to,
        "sender": sms.sender,
        "encoding": sms.encoding,
        "parts": parts,
        "gateway": gateway_id,
    }
    return (json.dumps(document, indent=1) + "\n").encode("ascii")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _find_syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(2)``, or None where the C library has no such call."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SYNCFS = _find_syncfs()


def sync_files(fds: Sequence[int]) -> None:
    """Make the content of every open file in ``fds`` durable; raises OSError.

    One file: its own fsync.  Several: one ``syncfs`` of their file system
    (a single journal commit and cache flush instead of one per file),
    falling back to an fsync per file where ``syncfs`` is missing.
    """
    if len(fds) > 1 and _SYNCFS is not None:
        if _SYNCFS(fds[0]) == 0:
            return
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    for fd in fds:
        os.fsync(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("outbox: cannot remove temporary file %s: %s", path, exc.strerror)


def _read_document(path: Path) -> dict[str, Any] | None:
    """An outbox file's content, or None if absent; ValueError if it is not one of ours."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    document = json.loads(raw)
    if not isinstance(document, dict) or not isinstance(document.get("parts"), list):
        raise ValueError("not an outbox file")
    return document


def _seqs(document: dict[str, Any]) -> set[int]:
    return {p["seq"] for p in document["parts"] if isinstance(p, dict) and isinstance(p.get("seq"), int)}


@dataclass
class _Write:
    """One message of a batch on its way to the disk."""

    sms: OutgoingSms
    path: Path
    temp: Path | None = None
    fd: int | None = None
    results: list[PartResult] | None = None  # decided early (an error, or a file already there)
    existing: dict[str, Any] | None = field(default=None, repr=False)
    needs_judging: bool = False


class OutboxTransport:
    """Writes ``<queue-id>.json`` files into one directory."""

    def __init__(self, directory: Path, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.directory = directory
        self._pending: list[tuple[OutgoingSms, asyncio.Future[list[PartResult]]]] = []
        self._draining: asyncio.Task[None] | None = None

    @property
    def detects_duplicates(self) -> bool:
        return True

    async def start(self) -> None:
        """Create the directory (0700) and remove temporary files a crash left behind."""
        await asyncio.to_thread(self._prepare)

    def _prepare(self) -> None:
        where = f"outbox directory {self.directory} (gateway {self.gateway_id})"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except FileExistsError:
            raise TransportDown(f"cannot create {where}: a file is in the way") from None
        except OSError as exc:
            raise TransportDown(f"cannot create {where}: {exc.strerror}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise TransportDown(f"{where} is not writable")
        try:
            stale = [e.name for e in os.scandir(self.directory) if _TEMP_NAME.match(e.name)]
        except OSError as exc:
            raise TransportDown(f"cannot read {where}: {exc.strerror}") from None
        for name in stale:
            log.info("outbox: removing %s left by an interrupted write", self.directory / name)
            _unlink_quietly(self.directory / name)

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """Write one file holding every part given; all parts succeed or the first fails."""
        if not sms.parts:
            return []
        if not _SAFE_QUEUE_ID.match(sms.queue_id):
            # A bug upstream, not a passing condition: retrying cannot help.
            return [PartResult(sms.parts[0].seq, Outcome.PERMANENT, f"outbox: unusable queue id {sms.queue_id!r}")]
        future: asyncio.Future[list[PartResult]] = asyncio.get_running_loop().create_future()
        self._pending.append((sms, future))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name=f"outbox-{self.gateway_id}")
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        """Write batches until nothing is pending: whatever queued up meanwhile is the next batch."""
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes = await asyncio.to_thread(self.write_batch, [sms for sms, _ in batch])
                except Exception as exc:  # a bug: let each submit raise it (the scheduler holds the message)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), results in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(results)
        finally:
            self._draining = None

    def write_batch(self, messages: Sequence[OutgoingSms]) -> list[list[PartResult]]:
        """Write a file for each message, sharing the syncs; one result list per message."""
        writes = [_Write(sms, self.directory / f"{sms.queue_id}.json") for sms in messages]
        try:
            for write in writes:
                self._open_temp(write)
            self._sync([w for w in writes if w.fd is not None])
            created = self._publish_all(writes)
            if created:
                self._sync_dir(created)
        finally:
            for write in writes:
                if write.fd is not None:
                    os.close(write.fd)
                if write.temp is not None:
                    _unlink_quietly(write.temp)
        return [self._results(write) for write in writes]

    def _open_temp(self, write: _Write) -> None:
        """Read what is already there, or put the content under a temporary name (not yet synced)."""
        sms, path = write.sms, write.path
        try:
            write.existing = _read_document(path)
        except (OSError, ValueError) as exc:
            write.results = [_temporary(sms, f"outbox: cannot read existing {path}: {exc}")]
            return
        if write.existing is not None:
            write.needs_judging = True
            return
        write.temp = self.directory / f"{TEMP_PREFIX}{path.stem}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            write.fd = os.open(write.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            view = memoryview(encode_sms(sms, self.gateway_id))
            while view:
                view = view[os.write(write.fd, view) :]
        except OSError as exc:
            self._failed(write, exc)

    def _sync(self, writes: list[_Write]) -> None:
        try:
            sync_files([w.fd for w in writes if w.fd is not None])
        except OSError as exc:
            for write in writes:
                self._failed(write, exc)

    def _publish_all(self, writes: list[_Write]) -> list[_Write]:
        """Give each synced temporary file its final name; returns those that got it."""
        created: list[_Write] = []
        for write in writes:
            if write.fd is None or write.temp is None or write.results is not None:
                continue
            try:
                if _publish(write.temp, write.path):
                    created.append(write)
                else:  # another writer got there first: judge its file
                    self._reread(write)
            except OSError as exc:
                self._failed(write, exc)
        return created

    def _sync_dir(self, created: list[_Write]) -> None:
        try:
            _fsync_dir(self.directory)
        except OSError as exc:
            # The names may not survive a crash: retry later; a file that did survive counts then.
            for write in created:
                self._failed(write, exc)

    def _reread(self, write: _Write) -> None:
        try:
            write.existing = _read_document(write.path)
        except (OSError, ValueError) as exc:
            write.results = [_temporary(write.sms, f"outbox: cannot read existing {write.path}: {exc}")]
            return
        write.needs_judging = True

    def _failed(self, write: _Write, exc: OSError) -> None:
        dsn = "4.3.1" if exc.errno in _DISK_FULL else ""
        write.results = [_temporary(write.sms, f"outbox: cannot write {write.path}: {exc.strerror}", dsn)]

    def _results(self, write: _Write) -> list[PartResult]:
        if write.results is not None:
            return write.results
        if write.needs_judging:
            return self._judge_existing(write.sms, write.path, write.existing)
        return [
            PartResult(p.seq, Outcome.SUBMITTED, message_id=message_id(write.sms.queue_id, p.seq))
            for p in write.sms.parts
        ]

    def _judge_existing(self, sms: OutgoingSms, path: Path, existing: dict[str, Any] | None) -> list[PartResult]:
        """Parts found in a file already there count as submitted; the file stays as it is."""
        first = sms.parts[0].seq
        if existing is None:
            return [PartResult(first, Outcome.TEMPORARY, f"outbox: {path} vanished while writing")]
        if existing.get("to") != sms.to:
            # Not this number's file: wait until the reader has taken it away.
            log.warning("%s: outbox file %s holds another number; not overwriting it", sms.queue_id, path)
            return [PartResult(first, Outcome.TEMPORARY, f"outbox: {path} already holds another number")]
        present = _seqs(existing)
        results: list[PartResult] = []
        for part in sms.parts:
            if part.seq not in present:
                reason = f"outbox: {path} already exists without part {part.seq}"
                results.append(PartResult(part.seq, Outcome.TEMPORARY, reason))
                break
            results.append(PartResult(part.seq, Outcome.SUBMITTED, message_id=message_id(sms.queue_id, part.seq)))
        return results

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        """The parts held by ``<queue-id>.json`` for this number, if the file is still there."""
        if not _SAFE_QUEUE_ID.match(sms.queue_id):
            return {}
        path = self.directory / f"{sms.queue_id}.json"
        try:
            existing = await asyncio.to_thread(_read_document, path)
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read outbox file %s: %s", sms.queue_id, path, exc)
            return {}
        if existing is None or existing.get("to") != sms.to:
            return {}
        return {seq: message_id(sms.queue_id, seq) for seq in sorted(_seqs(existing))}

    async def close(self) -> None:
        """Let a batch on its way to the disk finish."""
        if self._draining is not None:
            await asyncio.gather(self._draining, return_exceptions=True)


def _temporary(sms: OutgoingSms, reason: str, dsn: str = "") -> PartResult:
    return PartResult(sms.parts[0].seq, Outcome.TEMPORARY, reason, dsn=dsn)


def _publish(temp: Path, path: Path) -> bool:
    """Give ``temp`` the name ``path`` without replacing an existing file; False if one was there."""
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        # No hard links here (some FUSE or FAT mounts): rename, after checking by hand.
        if path.exists():
            return False
        os.replace(temp, path)
    return True


def create(options: Options, context: TransportContext) -> OutboxTransport:
    """The outbox transport for one ``[[gateway]]``."""
    return OutboxTransport(outbox_dir(options, context.state_dir), context.gateway_id)
