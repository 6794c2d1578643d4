"""Which delivery status notifications a message may get (pure).

Each queued message carries two bit sets: the events its sender wants a
report about (``notify``, decided once at ingest from the envelope) and the
events already reported (``reported``), so that every message gets at most
one report per event, across restarts too.  Reports go to real senders
only: never to the null sender, never about a report or an automatic reply.
"""

from __future__ import annotations

DELAYED = 1
FAILED = 2
DELIVERED = 4
RELAYED = 8
ALL_EVENTS = DELAYED | FAILED | DELIVERED | RELAYED

# RFC 3464 Action of each event.
ACTIONS = {DELAYED: "delayed", FAILED: "failed", DELIVERED: "delivered", RELAYED: "relayed"}
# Without NOTIFY the sender gets what Postfix sends by default (RFC 3461 4.1).
DEFAULT_NOTIFY = FAILED | DELAYED

_NO_REPLY_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})


def wanted_events(sender: str, notify: str | None, *, auto_submitted: bool = False) -> int:
    """The events ``sender`` gets reports about, given the RCPT's NOTIFY parameter (None: not given).

    0 for the null sender, for a bounce or auto-reply (``auto_submitted``),
    for the mail system's own addresses, and for ``NOTIFY=NEVER``.
    """
    address = sender.strip().strip("<>")
    if not address or auto_submitted:
        return 0
    local = address.rpartition("@")[0] if "@" in address else address
    if local.strip('"').lower() in _NO_REPLY_LOCAL_PARTS:
        return 0
    if notify is None or not notify.strip():
        return DEFAULT_NOTIFY
    words = {word.strip().upper() for word in notify.split(",")}
    if "NEVER" in words:
        return 0
    bits = 0
    if "SUCCESS" in words:
        bits |= DELIVERED | RELAYED
    if "FAILURE" in words:
        bits |= FAILED
    if "DELAY" in words:
        bits |= DELAYED
    return bits


def warn_time(created: float, delay_warning_time: float, events: int) -> float | None:
    """When a delay warning is due (``queue.delay_warning_time`` after arrival), or None: never."""
    if delay_warning_time <= 0 or not events & DELAYED:
        return None
    return created + delay_warning_time


def event_names(events: int) -> list[str]:
    """The Actions of the events in ``events``, for logs and the queue tools."""
    return [name for bit, name in ACTIONS.items() if events & bit]
