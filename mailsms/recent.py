"""The last log events in memory, for the status page.

A ``logging.Handler`` on the ``mailsms`` logger keeps the newest lines in a
ring.  Event lines never hold message text or ``pass=`` values by design;
each is passed through ``mailsms.log.redact`` anyway before it is kept.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from mailsms.log import redact

RECENT_EVENTS = 200


@dataclass(frozen=True)
class RecentEvent:
    at: float  # Unix time
    level: str  # "info", "warning", ...
    component: str  # "scheduler", "server", ...
    line: str  # the event line, redacted, without traceback


class RecentEvents(logging.Handler):
    """Keeps the last ``size`` events logged at ``level`` or above."""

    def __init__(self, size: int = RECENT_EVENTS, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._ring: deque[RecentEvent] = deque(maxlen=size)
        self._ring_lock = threading.Lock()  # the store writer's thread logs too

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = redact(record.getMessage())
        except Exception:  # a bad format string must not break logging
            self.handleError(record)
            return
        name = record.name
        component = name.split(".", 1)[1] if name.startswith("mailsms.") else name
        event = RecentEvent(record.created, record.levelname.lower(), component, line)
        with self._ring_lock:
            self._ring.append(event)

    def newest(self, limit: int = RECENT_EVENTS) -> list[RecentEvent]:
        """Up to ``limit`` events, the newest first."""
        with self._ring_lock:
            events = list(self._ring)
        return events[::-1][:limit]

    def attach(self, logger: str = "mailsms") -> None:
        logging.getLogger(logger).addHandler(self)

    def detach(self, logger: str = "mailsms") -> None:
        logging.getLogger(logger).removeHandler(self)
