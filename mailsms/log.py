"""Logging in Postfix style, with redaction that cannot be forgotten.

One line per event: ``QID: to=<...>, relay=..., delay=..., dsn=..., status=... (reason)``.
Two guards keep secrets out of the log:

* ``RedactingFilter`` sits on every handler and rewrites ``pass=`` values
  (in messages, arguments and tracebacks) to ``pass=(set)``.
* Message text travels as ``SmsText``, whose ``str``/``repr`` show only its
  length, so formatting it into a log line by accident reveals nothing.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import TextIO

# pass=secret in a query string, a quoted address, a URL or key=value prose.  The value
# ends only where an address parameter can end: over-redacting is safe, leaking is not.
_PASS = re.compile(r"(?i)(\b(?:pass|password|passwd)=)(?!\(set\))(?:\"[^\"]*\"|[^&\s\"'<>]*)")


def redact(text: str) -> str:
    """Replace every ``pass=value`` in ``text`` with ``pass=(set)``."""
    return _PASS.sub(r"\1(set)", text)


class SmsText(str):
    """Message text: behaves as ``str`` but prints as its length only."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<text: {len(self)} chars>"

    def __str__(self) -> str:
        return repr(self)

    def __format__(self, spec: str) -> str:
        return repr(self)

    @property
    def value(self) -> str:
        """The text itself, for code that really needs it (never for logs)."""
        return str.__str__(self)


class RedactingFilter(logging.Filter):
    """Rewrite a record so that no ``pass=`` value survives formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class PostfixFormatter(logging.Formatter):
    """``mailsms/server[123]: warning: text``, the prefix Postfix uses for severities."""

    _PREFIX: Mapping[int, str] = {
        logging.WARNING: "warning: ",
        logging.ERROR: "error: ",
        logging.CRITICAL: "fatal: ",
        logging.DEBUG: "debug: ",
    }

    def __init__(self, timestamps: bool) -> None:
        stamp = "%(asctime)s " if timestamps else ""
        super().__init__(f"{stamp}%(component)s[%(process)d]: %(severity)s%(message)s", "%b %d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        record.component = "mailsms/" + name.split(".", 1)[1] if name.startswith("mailsms.") else name
        record.severity = self._PREFIX.get(record.levelno, "")
        return super().format(record)


def setup(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Log to stderr (journald adds its own timestamps when stderr is not a terminal).

    The lines are written by the thread that logs: measured, a writer thread
    costs the event loop more (it waits for the interpreter lock after every
    socket write) than the write itself.
    """
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(PostfixFormatter(timestamps=out.isatty()))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("mailsms")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # Other libraries' records (aiohttp logs a refused request line, pass= and all) would otherwise reach
    # logging.lastResort, which neither redacts nor formats: they go through the same handler.
    top = logging.getLogger()
    for old in [h for h in top.handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]:
        top.removeHandler(old)
    top.addHandler(handler)
    return handler


def event(
    qid: str,
    *,
    sender: str | None = None,
    to: str | None = None,
    relay: str | None = None,
    delay: float | None = None,
    dsn: str | None = None,
    status: str | None = None,
    reason: str | None = None,
    **extra: object,
) -> str:
    """One Postfix-style event line: ``QID: to=<...>, relay=..., delay=..., dsn=..., status=... (reason)``."""
    fields: list[str] = []
    if sender is not None:
        fields.append(f"from=<{sender}>")
    if to is not None:
        fields.append(f"to=<{redact(to)}>")
    if relay is not None:
        fields.append(f"relay={relay}")
    fields.extend(f"{key}={value}" for key, value in extra.items())
    if delay is not None:
        fields.append(f"delay={delay:.2f}")
    if dsn is not None:
        fields.append(f"dsn={dsn}")
    if status is not None:
        fields.append(f"status={status}")
    line = f"{qid}: " + ", ".join(fields)
    if reason:
        line += f" ({redact(reason)})"
    return line
