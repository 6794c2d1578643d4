"""From an accepted recipient and a composed text to the rows the queue commits (pure)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailsms.address import SmsAddress
from mailsms.address import redact as redact_address
from mailsms.config import SegmentConfig
from mailsms.errors import BadContent
from mailsms.log import redact as redact_pass
from mailsms.notify import wanted_events, warn_time
from mailsms.segment import Segmentation, split_binary, split_with_config
from mailsms.store import NewMessage, NewPart
from mailsms.store.conn import node_tag


@dataclass(frozen=True)
class Recipient:
    """One recipient accepted at RCPT time."""

    address: SmsAddress
    shown: str  # the address as given, pass= redacted: for logs and queue listings
    dsn: dict[str, str] = field(default_factory=dict)  # NOTIFY, ORCPT
    account: str = ""  # the account the message counts against (mailsms.policy), "" for none
    gateway: str = ""  # the account's gateway, "" for the default routing
    authenticated: bool = False  # credentials, SMTP AUTH or a trusted client vouched for the sender


class QueueIds:
    """Unique, time-ordered queue ids: 16 upper-case hex digits.

    The milliseconds since the epoch, then a counter within the millisecond
    (20 bits): ids sort by arrival, never repeat within a process even if
    the clock steps back, and cost no system call for randomness.
    """

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._last_ms = 0
        self._seq = 0
        self._tag = 0
        self._bits = 20

    def on_node(self, number: int) -> None:
        """Several nodes share the queue: this one's number (1..127) goes in bits 12..18 of every id,
        and the count within a millisecond into the 12 bits below (ids of ``mailsms send`` set bit 19)."""
        self._tag, self._bits = node_tag(number) << 12, 12

    def __call__(self) -> str:
        ms = self._clock() // 1_000_000
        if ms > self._last_ms:
            self._last_ms, self._seq = ms, 0
        else:
            self._seq += 1
            if self._seq >> self._bits:  # every id of this millisecond is used: borrow the next one
                self._last_ms, self._seq = self._last_ms + 1, 0
        return f"{(self._last_ms << 20) | self._tag | self._seq:016X}"


new_queue_id = QueueIds()


def segment_for(address: SmsAddress, text: str, config: SegmentConfig, reference: int) -> Segmentation:
    """Split ``text`` for one recipient, honouring its maxmsgs, binary and udh parameters."""
    params = address.params
    if params.binary:
        try:
            data = bytes.fromhex("".join(text.split()))
        except ValueError:
            raise BadContent("binary=1 needs the message body as hex digits") from None
        udh = bytes.fromhex(params.udh) if params.udh else b""
        return split_binary(data, udh=udh, maxmsgs=address.maxmsgs, reference=reference)
    return split_with_config(text, config, maxmsgs=address.maxmsgs, reference=reference)


def transport_params(address: SmsAddress) -> str:
    """The parameters a transport needs, as JSON; ``pass`` is never stored."""
    params = address.params
    kept: dict[str, object] = {}
    if params.sender:
        kept["sender"] = params.sender
    if params.pid is not None:
        kept["pid"] = params.pid
    if params.dcs is not None:
        kept["dcs"] = params.dcs
    if params.flash:
        kept["flash"] = True
    if params.values:
        kept["value"] = list(params.values)
    if params.reply:
        kept["reply"] = params.reply
    if params.user:
        kept["user"] = params.user
    return json.dumps(kept, separators=(",", ":"))


def build_message(
    *,
    queue_id: str,
    now: float,
    sender: str,
    recipient: Recipient,
    text: str,
    segmentation: Segmentation,
    gateway: str,
    envelope_dsn: dict[str, str],
    headers: tuple[tuple[str, str], ...],
    auto_submitted: bool = False,
    delay_warning_time: float = 0.0,
    authenticated: bool = False,
    not_before: float | None = None,
) -> NewMessage:
    # Which reports the sender gets is fixed now, from the envelope (mailsms.notify).
    notify = wanted_events(sender, recipient.dsn.get("NOTIFY"), auto_submitted=auto_submitted)
    return NewMessage(
        id=queue_id,
        created=now,
        sender=sender,
        recipient=recipient.shown,
        number=recipient.address.number,
        gateway=gateway,
        encoding=segmentation.encoding,
        text=text,
        parts=tuple(
            NewPart(
                seq=index,
                text=part.text,
                udh=part.udh,
                data=part.data if segmentation.encoding == "binary" else None,
            )
            for index, part in enumerate(segmentation.parts, start=1)
        ),
        params=transport_params(recipient.address),
        dsn=json.dumps(
            {k: _redact_xtext(v) for k, v in {**envelope_dsn, **recipient.dsn}.items()}, separators=(",", ":")
        ),
        headers=json.dumps(headers, separators=(",", ":")),
        truncated=segmentation.truncated,
        notify=notify,
        warn_at=warn_time(max(now, not_before or 0.0), delay_warning_time, notify),
        authenticated=authenticated,
        not_before=not_before if not_before is not None and not_before > now else None,
    )


_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")


def _redact_xtext(value: str) -> str:
    """A DSN parameter (ORCPT, ENVID: RFC 3461 xtext, ``pass+3Dx``) with every ``pass=`` value hidden.

    Stored as received otherwise; the reports decode it again.  Without this the
    queue kept ORCPT's password, which ``pass=`` redaction cannot see in xtext.
    """
    decoded = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
    shown = redact_pass(redact_address(decoded))
    if shown == decoded:
        return value
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
                   for c in shown)  # fmt: skip
