"""File handling shared by the spool gateways (smstools, gammu): publish, list, finish, set aside.

A file is written under a hidden temporary name on the spool's file system,
fsynced and renamed into the daemon's folder, so the daemon never reads half
a file; a handled file is removed (or moved to an archive) only after its
result is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from mailsms.errors import TransportDown

log = logging.getLogger("mailsms.spool")


def fsync_dir(path: Path) -> None:
    """Make a rename into ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temp_dir: Path, folder: Path, name: str, content: bytes, mode: int) -> None:
    """Write ``content`` as ``temp_dir/.name``, sync it, rename it to ``folder/name``."""
    temp = temp_dir / f".{name}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, mode)  # the daemon runs as its own user
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(folder)


def finish(path: Path, archive: str) -> str:
    """A file whose result is committed: removed, or moved into ``archive``; "" or why it failed."""
    try:
        if archive:
            shutil.move(path, Path(archive) / f"{path.parent.name}-{path.name}")
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def set_aside(path: Path, bad_dir: Path, reason: str, who: str) -> str:
    """Move an unreadable file into ``bad_dir`` (logged); "" or why it could not be moved."""
    target = bad_dir / f"{path.parent.name}-{path.name}"
    try:
        shutil.move(path, target)
    except OSError as exc:
        return exc.strerror or str(exc)
    log.warning("%s: unreadable %s (%s) moved to %s", who, path, reason, target)
    return ""


def prepare_temp_dir(temp_dir: Path, folder: Path, where: str, stale_glob: str) -> None:
    """Create ``temp_dir`` on ``folder``'s file system and drop what a crash left in it; TransportDown if unusable."""
    try:
        temp_dir.mkdir(mode=0o2770, exist_ok=True)
    except OSError as exc:
        raise TransportDown(f"{where}: cannot create {temp_dir} (temp_dir): {exc.strerror}") from None
    if not os.access(temp_dir, os.W_OK | os.X_OK):
        raise TransportDown(f"{where}: {temp_dir} (temp_dir) is not writable")
    if temp_dir.stat().st_dev != folder.stat().st_dev:
        raise TransportDown(f"{where}: {temp_dir} (temp_dir) is not on the file system of {folder.name}/")
    for stale in temp_dir.glob(stale_glob):
        with contextlib.suppress(OSError):
            stale.unlink()


def prepare_state(state: Path, load: Callable[[], object], where: str) -> None:
    """The transport's own state folder (0700, with ``bad/``), then ``load`` (its journal)."""
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        (state / "bad").mkdir(mode=0o700, exist_ok=True)
        load()
    except OSError as exc:
        raise TransportDown(f"{where}: cannot use {state}: {exc.strerror}") from None


class Poller:
    """Runs ``poll`` every ``interval`` seconds until closed; a poll that fails is logged and tried again."""

    def __init__(self, poll: Callable[[], Awaitable[None]], interval: float, name: str) -> None:
        self._poll = poll
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._poll()
            except Exception:  # a bug must not stop the poller: logged, tried again
                log.exception("%s: poll failed", self._name)
            await asyncio.sleep(self._interval)
