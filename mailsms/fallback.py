"""The fallback number (smstools' ``Alternate_to``): the text once more, to another phone.

A message whose number (or account) has a ``[[fallback]]`` entry carries the
alternate number and the wait (``after``).  Once all its parts are submitted
through a gateway that gives delivery reports, the store sets ``fallback_at``;
a delivery report of success clears it.  When that time comes with no report,
the text is queued once for the alternate number, in the same transaction that
marks the original as fallen back, so a crash never sends it twice or loses it.
The copy's notifications name the original recipient (``Original-Recipient``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailsms.config import FallbackConfig
from mailsms.log import event
from mailsms.store.queue import QueueStore

log = logging.getLogger("mailsms.fallback")

PAUSE_AFTER_ERROR = 60.0  # seconds without sweeps after one failed


def alternate_for(fallbacks: Sequence[FallbackConfig], number: str, account: str) -> FallbackConfig | None:
    """The ``[[fallback]]`` entry for ``number`` or, failing that, for ``account`` (pure)."""
    for entry in fallbacks:
        if entry.number and entry.number == number:
            return entry
    for entry in fallbacks:
        if entry.account and account and entry.account == account:
            return entry
    return None


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


@dataclass
class Fallbacks:
    store: QueueStore
    new_id: Callable[[], str]
    wake: Callable[[], None]
    _task: asyncio.Task[None] | None = None
    _pause_until: float = float("-inf")

    def __call__(self, now: float) -> None:
        """Queue the copies that are due by ``now`` unless a sweep is still at work (one indexed look)."""
        if (self._task is not None and not self._task.done()) or now < self._pause_until:
            return
        due = self.store.due_fallbacks(now)
        if due:
            self._task = asyncio.create_task(self._work(due, now), name="fallbacks")

    async def stop(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _work(self, due: Sequence[str], now: float) -> None:
        try:
            for message_id in due:
                await self._one(message_id, now)
        except Exception:
            self._pause_until = now + PAUSE_AFTER_ERROR
            log.exception("queueing fallback messages failed; tried again in %.0f s", PAUSE_AFTER_ERROR)

    async def _one(self, message_id: str, now: float) -> None:
        row = self.store.conn.execute(
            "SELECT number, alternate, fallback_after, recipient FROM message WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            return
        number, alternate, after, recipient = row
        copy_id = self.new_id()
        waited = minutes(float(after))
        reason = (
            f"no delivery report within {waited}; the text was sent once to the fallback number {alternate}"
            f" as {copy_id}"
        )
        note = f"fallback for {message_id} to {recipient}: no delivery report within {waited}"
        if await self.store.fall_back(message_id, copy_id, reason, note, now):
            log.info(event(message_id, to=number, status="fallback", reason=reason))
            self.wake()
