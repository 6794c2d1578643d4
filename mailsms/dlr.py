"""A delivery report (DLR) as a gateway's webhook delivers it, mapped to a part's state (pure).

Fields: the part's message id as the transport got it from the gateway
(``id``, or the aliases ``msgid``, ``messageId``, ``apiMessageId`` that
providers use), ``status`` and an optional ``reason`` (the SMSC's own text,
Kannel's ``%A``).  ``status`` is a word or Kannel's DLR type, a bit mask:
1 delivered, 2 failed, 4 buffered, 8 submitted to the SMSC, 16 rejected by
the SMSC.  Delivered and failed are final; the rest only say the part is on
its way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mailsms.errors import BadRequest
from mailsms.form import FormFields
from transports.base import DeliveryReport

ID_FIELDS = ("id", "msgid", "messageid", "apimessageid")  # field names are compared in lower case
State = Literal["delivered", "failed", "intermediate"]
DELIVERED: State = "delivered"
FAILED: State = "failed"
INTERMEDIATE: State = "intermediate"

_WORDS: dict[str, State] = {
    "delivered": DELIVERED,
    "failed": FAILED,
    "rejected": FAILED,
    "expired": FAILED,
    "buffered": INTERMEDIATE,
    "submitted": INTERMEDIATE,
    "accepted": INTERMEDIATE,
}
# RFC 3463 codes for failures that say more than "failed" (the scheduler's default is 5.0.0).
_DSN = {"expired": "4.4.7"}  # RFC 3463 "delivery time expired", as ndr/codes.py maps it
KANNEL_DELIVERED, KANNEL_FAILED, KANNEL_BUFFERED, KANNEL_SUBMIT, KANNEL_REJECT = 1, 2, 4, 8, 16
_KANNEL_ALL = 31
MAX_REASON = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True)
class DlrUpdate:
    """What a report says about one part."""

    message_id: str
    state: State
    status: str  # as the gateway wrote it, for the log
    reason: str = ""
    dsn: str = ""

    @property
    def final(self) -> bool:
        return self.state != INTERMEDIATE

    def report(self, gateway_id: str) -> DeliveryReport:
        """The scheduler's view of a final report."""
        delivered = self.state == DELIVERED
        reason = self.reason or f"delivery report: {describe(self.status)}"
        return DeliveryReport(gateway_id, self.message_id, delivered, reason, "" if delivered else self.dsn)


def parse_dlr(fields: FormFields) -> DlrUpdate:
    """The report in ``fields``; BadRequest naming what is missing or not understood."""
    found = fields.first_of(ID_FIELDS)
    if found is None or not found[1].strip():
        raise BadRequest("missing field 'id' (the message id the gateway gave for the part)")
    message_id = found[1].strip()
    status = (fields.text("status", required=True) or "").strip()
    state = status_state(status)
    # The SMSC's own words: kept however they are encoded, but one short line.
    raw_reason = (fields.raw("reason") or b"").decode("utf-8", errors="replace")
    reason = _CONTROL.sub(" ", raw_reason).strip()[:MAX_REASON]
    return DlrUpdate(message_id, state, status, reason, _DSN.get(status.lower(), ""))


def status_state(status: str) -> State:
    """``delivered``, ``failed`` or ``intermediate`` for a status word or a Kannel DLR type."""
    if status.isascii() and status.isdigit():
        mask = int(status) if len(status) <= 3 else 0
        if not 0 < mask <= _KANNEL_ALL:
            raise BadRequest(f"status {status} is not a Kannel DLR type (1, 2, 4, 8, 16 or their sum)")
        if mask & KANNEL_DELIVERED:
            return DELIVERED
        if mask & (KANNEL_FAILED | KANNEL_REJECT):
            return FAILED
        return INTERMEDIATE
    state = _WORDS.get(status.lower())
    if state is None:
        words = ", ".join(_WORDS)
        raise BadRequest(f"unknown status {status[:40]!r}: one of {words}, or a Kannel DLR type")
    return state


def describe(status: str) -> str:
    """A status for people: Kannel's numbers in words."""
    if not (status.isascii() and status.isdigit()):
        return status.lower()
    mask = int(status)
    words = [word for bit, word in _KANNEL_WORDS if mask & bit]
    return ", ".join(words) or status


_KANNEL_WORDS = (
    (KANNEL_DELIVERED, "delivered"),
    (KANNEL_FAILED, "failed"),
    (KANNEL_BUFFERED, "buffered"),
    (KANNEL_SUBMIT, "submitted to the SMSC"),
    (KANNEL_REJECT, "rejected by the SMSC"),
)
