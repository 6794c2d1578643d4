"""The durable queue: value types shared by every store implementation.

The embedded store is SQLite (``mailsms.store.sqlite``); the interface is
kept small so that a PostgreSQL store can implement it later.
"""

from __future__ import annotations

from dataclasses import dataclass

# Message states as ``mailsms queue list`` shows them (a contract).
QUEUED = "queued"
DEFERRED = "deferred"
HOLD = "hold"
SUBMITTED = "submitted"
DELIVERED = "delivered"
FAILED = "failed"
EXPIRED = "expired"
ACTIVE_STATES = (QUEUED, DEFERRED, HOLD, SUBMITTED)
FINAL_STATES = (DELIVERED, FAILED, EXPIRED)

# Part states: queued -> sending -> submitted -> delivered | failed.
PART_QUEUED = "queued"
PART_SENDING = "sending"
PART_SUBMITTED = "submitted"
PART_DELIVERED = "delivered"
PART_FAILED = "failed"


@dataclass(frozen=True)
class NewPart:
    seq: int
    text: str
    udh: bytes = b""
    data: bytes | None = None


@dataclass(frozen=True)
class NewMessage:
    """One recipient number of one accepted mail, ready to be committed."""

    id: str
    created: float
    sender: str  # envelope sender; "" for the null reverse-path
    recipient: str  # the address as shown to people: pass= already redacted
    number: str
    gateway: str
    encoding: str
    text: str
    parts: tuple[NewPart, ...]
    params: str = "{}"  # JSON: sms: parameters the transport needs (never pass)
    dsn: str = "{}"  # JSON: ENVID, RET, NOTIFY, ORCPT for the NDR issue
    headers: str = "[]"  # JSON: original headers for NDRs
    truncated: bool = False
    mail_id: str = ""  # the first queue id of a mail with several recipients ("" for one): one report for all
    notify: int = 0  # the events the sender wants reports about (mailsms.notify bits)
    warn_at: float | None = None  # when a delay warning is due; None: never
    authenticated: bool = False  # the MTA vouched for the sender (replylog.origin): for replylog.record
    alternate: str = ""  # the fallback number: gets the text once if no delivery report came in time
    fallback_after: float = 0.0  # seconds from submission to the fallback
    not_before: float | None = None  # a scheduled send: not before this time


@dataclass(frozen=True)
class StoredPart:
    seq: int
    text: str
    udh: bytes
    data: bytes | None
    state: str
    gateway_msgid: str


@dataclass(frozen=True)
class StoredMessage:
    id: str
    created: float
    sender: str
    recipient: str
    number: str
    gateway: str
    encoding: str
    text: str
    params: str
    dsn: str
    headers: str
    state: str
    attempts: int
    next_attempt: float
    reason: str
    dsn_code: str
    possible_duplicate: bool
    parts: tuple[StoredPart, ...]
    via: str = ""  # the gateway that took (or is taking) the message; its target ``gateway`` may be a group
    not_before: float | None = None  # a scheduled send: its queue lifetime counts from then

    @property
    def start(self) -> float:
        """Where its time in the queue counts from: accepted, or scheduled for later."""
        return max(self.created, self.not_before or 0.0)


@dataclass(frozen=True)
class Summary:
    """One row of ``mailsms queue list``."""

    id: str
    sender: str
    to: str
    state: str
    parts: int
    sent_parts: int
    attempts: int
    created: float
    next_attempt: float
    reason: str
