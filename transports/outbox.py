"""The embedded default transport: each SMS becomes a JSON file in a directory.

One file per message and number, ``<queue-id>.json``, written atomically: the
content goes to a temporary name that does not end in ``.json`` (so a reader
globbing ``*.json`` never sees half a file), is fsynced, then linked to its
final name, which fails instead of replacing a file that is already there.
A file is never rewritten: finding ``<queue-id>.json`` for the same number
means an earlier attempt got through (typically before a crash), so the parts
it holds count as submitted.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
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


class OutboxTransport:
    """Writes ``<queue-id>.json`` files into one directory."""

    def __init__(self, directory: Path, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.directory = directory

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
        return await asyncio.to_thread(self._submit, sms)

    def _submit(self, sms: OutgoingSms) -> list[PartResult]:
        path = self.directory / f"{sms.queue_id}.json"
        first = sms.parts[0].seq
        try:
            existing = _read_document(path)
        except (OSError, ValueError) as exc:
            return [PartResult(first, Outcome.TEMPORARY, f"outbox: cannot read existing {path}: {exc}")]
        if existing is None:
            try:
                created = self._write(path, encode_sms(sms, self.gateway_id))
            except OSError as exc:
                dsn = "4.3.1" if exc.errno in _DISK_FULL else ""
                return [PartResult(first, Outcome.TEMPORARY, f"outbox: cannot write {path}: {exc.strerror}", dsn=dsn)]
            if created:
                return [
                    PartResult(p.seq, Outcome.SUBMITTED, message_id=message_id(sms.queue_id, p.seq)) for p in sms.parts
                ]
            try:  # another writer got there first: judge its file
                existing = _read_document(path)
            except (OSError, ValueError) as exc:
                return [PartResult(first, Outcome.TEMPORARY, f"outbox: cannot read existing {path}: {exc}")]
        return self._judge_existing(sms, path, existing)

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

    def _write(self, path: Path, content: bytes) -> bool:
        """Write ``content`` to ``path`` atomically; False if ``path`` already existed."""
        temp = self.directory / f"{TEMP_PREFIX}{path.stem}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            created = _publish(temp, path)
            _fsync_dir(self.directory)
        finally:
            _unlink_quietly(temp)
        return created

    async def already_submitted(self, sms: OutgoingSms) -> set[int]:
        """The parts held by ``<queue-id>.json`` for this number, if the file is still there."""
        if not _SAFE_QUEUE_ID.match(sms.queue_id):
            return set()
        path = self.directory / f"{sms.queue_id}.json"
        try:
            existing = await asyncio.to_thread(_read_document, path)
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read outbox file %s: %s", sms.queue_id, path, exc)
            return set()
        if existing is None or existing.get("to") != sms.to:
            return set()
        return _seqs(existing)

    async def close(self) -> None:
        """Nothing to release: every write finishes inside its own ``submit``."""


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
