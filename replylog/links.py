"""A reply link and what a submitted message makes of it (pure).

A link says: ``mailbox`` wrote to ``number`` through ``gateway``, last at
``created``, and the latest of those mails had ``message_id`` (so that the
reply threads under it) and ``subject``.  There is one link per mailbox and
number: writing again refreshes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Record = Literal["all", "authenticated", "off"]

MAX_MAILBOX = 320  # RFC 5321: 64 + 1 + 255
MAX_SUBJECT = 200
_MESSAGE_ID = re.compile(r"<([!-;=?-~]{1,250}@[!-;=?-~]{1,250})>")  # printable ASCII without < > and space
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ReplyLink:
    number: str  # E.164 (or a short code), as the message was sent
    mailbox: str  # where replies go: the address's reply= parameter, else the envelope sender
    gateway: str
    message_id: str  # the original mail's Message-ID with its angle brackets, or ""
    subject: str  # the original mail's subject (decoded), or ""
    created: float  # when the last message from mailbox to number was submitted
    queue_id: str = ""  # the queue id of that message

    def live(self, now: float, keep_seconds: float) -> bool:
        """Not yet expired at ``now``."""
        return self.created > now - keep_seconds


def clean_message_id(value: str) -> str:
    """``<id@host>`` from a Message-ID header value (comments, spaces and junk dropped), or ""."""
    found = _MESSAGE_ID.search(value)
    return f"<{found.group(1)}>" if found else ""


def mailbox_key(address: str) -> str:
    """The address a link is kept under: no angle brackets, domain in lower case; "" when not a mailbox."""
    text = address.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or _CONTROL.search(text) or len(text) > MAX_MAILBOX:
        return ""
    return f"{local}@{domain.lower()}"


def link_for(
    *,
    number: str,
    gateway: str,
    sender: str,
    params: str,
    headers: str,
    authenticated: bool,
    record: Record,
    now: float,
    queue_id: str = "",
) -> ReplyLink | None:
    """The link a message row makes when it is submitted, or None (no mailbox, or not to be recorded).

    ``params`` and ``headers`` are the row's JSON columns: the ``reply``
    parameter of the ``sms:`` address wins over the envelope ``sender``.
    """
    if record == "off" or (record == "authenticated" and not authenticated):
        return None
    try:
        reply = json.loads(params or "{}").get("reply") or ""
    except (ValueError, AttributeError):
        reply = ""
    mailbox = mailbox_key(str(reply) or sender)
    if not mailbox or not number:
        return None
    found = _original_headers(headers)
    subject = _CONTROL.sub(" ", found.get("subject", ""))[:MAX_SUBJECT]
    return ReplyLink(number, mailbox, gateway, clean_message_id(found.get("message-id", "")), subject, now, queue_id)


def _original_headers(headers: str) -> dict[str, str]:
    try:
        pairs = json.loads(headers or "[]")
        return {str(name).lower(): str(value) for name, value in pairs}
    except (ValueError, TypeError):
        return {}
