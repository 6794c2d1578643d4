"""The contract between the scheduler and every way of reaching an SMSC.

A transport knows nothing about mail, the queue schema or the reply log: it
receives an ``OutgoingSms`` (the parts still to send, in order) and answers
one ``PartResult`` per part it attempted.  Like httpx's transports, there is
a fake beside the real ones (``transports.fake``) so that tests never patch.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class Outcome(enum.Enum):
    SUBMITTED = "submitted"  # the gateway took the part
    TEMPORARY = "temporary"  # try again later (back off)
    PERMANENT = "permanent"  # will never work: fail the message


@dataclass(frozen=True)
class OutgoingPart:
    """One SMS of a message: ``seq`` counts from 1; ``udh`` is empty for a single part."""

    seq: int
    text: str
    udh: bytes = b""
    data: bytes | None = None  # 8-bit payload for binary messages; text is "" then


@dataclass(frozen=True)
class OutgoingSms:
    """What the scheduler hands a transport: the parts of one message for one number."""

    queue_id: str
    to: str
    parts: tuple[OutgoingPart, ...]
    total: int  # parts in the whole message (parts may hold only the remaining ones)
    encoding: str  # "gsm7", "ucs2" or "binary"
    sender: str = ""
    pid: int | None = None
    dcs: int | None = None
    flash: bool = False
    report: bool = False  # ask the network for delivery reports
    values: tuple[str, ...] = ()  # extra template values (sms:...?value=...)
    possible_duplicate: bool = False  # resent after a crash with the part found in ``sending``


@dataclass(frozen=True)
class PartResult:
    seq: int
    outcome: Outcome
    reason: str = ""
    message_id: str = ""  # the gateway's id, to match delivery reports later
    dsn: str = ""  # RFC 3463 code for failures, e.g. "5.1.1"; the scheduler picks one when empty


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery report (DLR) from the network for one submitted part."""

    gateway_id: str
    message_id: str  # as returned in PartResult.message_id
    delivered: bool
    reason: str = ""
    dsn: str = ""  # RFC 3463 code for a failure; the receiver picks one when empty


ReportSink = Callable[[DeliveryReport], Awaitable[None]]


async def in_order(sms: OutgoingSms, send: Callable[[OutgoingPart], Awaitable[PartResult]]) -> list[PartResult]:
    """``send`` each part of ``sms`` in turn; stop at the first the gateway does not take (the
    ``Transport.submit`` contract for gateways that take one part at a time)."""
    results: list[PartResult] = []
    for part in sms.parts:
        result = await send(part)
        results.append(result)
        if result.outcome is not Outcome.SUBMITTED:
            break
    return results


async def _drop_report(report: DeliveryReport) -> None:
    """Default sink when nobody listens for delivery reports."""


@dataclass(frozen=True)
class IncomingSms:
    """An SMS (MO) a transport received itself (a modem), as the inbound store takes it."""

    gateway_id: str
    sender: str
    text: str
    to: str = ""  # the number it was sent to; "" when unknown
    udh: bytes = b""  # complete, with its length byte
    coding: int = 0  # 0 GSM 7-bit, 1 8-bit (payload in ``data``), 2 UCS-2
    data: bytes | None = None
    smsc_id: str = ""  # stable: the same SMS read twice has the same id, so it is stored once
    sent: float | None = None  # the service centre's time stamp


# Commits an incoming SMS durably and returns its inbound id; raises when it could not.
MoSink = Callable[[IncomingSms], Awaitable[str]]


@dataclass(frozen=True)
class TransportContext:
    """What a transport may use from its host: its gateway id, the state directory, report and MO sinks."""

    gateway_id: str
    state_dir: Path
    report_sink: ReportSink = _drop_report
    public_url: str = ""  # mailsms's own base URL as gateways reach it (web.public_url), no trailing /
    # The gateway's webhook_secret: add secret=<it> to the /dlr/ and /inbound/ URLs handed to the gateway.
    webhook_secret: str = field(default="", repr=False)
    # Where a transport that receives SMS itself commits them (None: it leaves them where they are).
    mo_sink: MoSink | None = None


class Transport(Protocol):
    """One configured gateway."""

    gateway_id: str

    @property
    def detects_duplicates(self) -> bool:
        """True when ``already_submitted`` can tell whether a part reached the gateway."""
        ...

    async def start(self) -> None:
        """Open connections, check directories; raise ``TransportDown`` when unusable."""
        ...

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """Send the parts in order; stop at the first non-SUBMITTED result and return what was tried."""
        ...

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        """After a crash: the parts known to have reached the gateway, ``seq`` -> the gateway's
        message id for them (as ``PartResult.message_id`` had it); empty when unknown."""
        ...

    async def close(self) -> None:
        """Finish or abandon in-flight work and release resources."""
        ...
