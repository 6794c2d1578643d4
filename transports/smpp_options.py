"""An SMPP gateway's keys, the ``submit_sm`` of a part, and what a ``submit_sm_resp`` means (pure).

``[[gateway]] type = "smpp"`` reads into ``Options``.  ``build_submit``
turns one part of mailsms's own segmentation into a ``submit_sm`` body:
GSM 7-bit text as unpacked septets, one per octet (data_coding 0), UCS-2 as
UTF-16-BE (8), binary as the part's data (4), the UDH in front of the user
data with ``esm_class`` 0x40.  ``judge`` maps a command_status to the part's
outcome with ``ndr.codes``: throttling and a full queue are temporary, never
permanent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from mailsms.schema import bounded, duration
from mailsms.segment import gsm
from ndr import codes
from transports.base import Outcome, OutgoingPart, OutgoingSms, PartResult
from transports.smpp_pdu import (
    ESM_UDHI,
    ESME_RMSGQFUL,
    ESME_RTHROTTLED,
    Bind,
    PduError,
    ShortMessage,
    encode_bind,
    encode_sm,
)

BindMode = Literal["transceiver", "pair"]
_DATA_CODING = {"gsm7": 0x00, "ucs2": 0x08, "binary": 0x04}
_FLASH = {"gsm7": 0x10, "ucs2": 0x18, "binary": 0x14}  # message class 0 in the general coding group
THROTTLED = (ESME_RTHROTTLED, ESME_RMSGQFUL)
AUTO = -1
_ALPHANUMERIC = re.compile(r".*[^0-9+].*")


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "smpp"``: the SMSC, the bind, the window, addresses and timers."""

    host: str = ""
    port: int = bounded(2775, 1, 65535)
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    # "transceiver": one bind_transceiver; "pair": a bind_transmitter and a bind_receiver.
    bind: BindMode = "transceiver"
    window: int = bounded(10, 1, 1000)  # submit_sm sent and not yet answered, at most
    source_addr: str = ""  # when the message names no sender
    # -1: from the address (1/1 for +international, 5/0 for alphanumeric, else 0/1).
    source_addr_ton: int = bounded(AUTO, AUTO, 255)
    source_addr_npi: int = bounded(AUTO, AUTO, 255)
    dest_addr_ton: int = bounded(AUTO, AUTO, 255)
    dest_addr_npi: int = bounded(AUTO, AUTO, 255)
    service_type: str = ""
    registered_delivery: bool = True  # ask for a receipt of every part
    address_range: str = ""  # of the receiver bind: which MO the SMSC routes to us
    enquire_link_interval: float = duration("30s")
    response_timeout: float = duration("30s")  # for every response; a silent SMSC is dropped
    connect_timeout: float = duration("10s")  # TCP connect and bind
    reconnect_delay: float = duration("1s")  # after a drop; doubles up to reconnect_max
    reconnect_max: float = duration("60s")
    throttle_delay: float = duration("1s")  # pause of submits after a throttling answer; doubles
    throttle_max: float = duration("30s")

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``."""
        problems: list[tuple[str, str]] = []
        if not self.host:
            problems.append(("host", "required: the SMSC's host name or address"))
        limits = {"system_id": 16, "password": 9, "system_type": 13, "service_type": 6, "address_range": 41}
        for key, limit in limits.items():
            value: str = getattr(self, key)
            if not value.isascii() or len(value) >= limit:
                problems.append((key, f"at most {limit - 1} ASCII characters"))
        if not self.system_id:
            problems.append(("system_id", "required: the ESME's system_id the SMSC knows"))
        if len(self.source_addr) > 20:
            problems.append(("source_addr", "at most 20 characters"))
        for key in ("enquire_link_interval", "response_timeout", "connect_timeout", "reconnect_delay"):
            if getattr(self, key) <= 0:
                problems.append((key, "must be more than 0"))
        if self.throttle_delay <= 0:
            problems.append(("throttle_delay", "must be more than 0"))
        return problems

    def bind_body(self) -> bytes:
        """The body of every bind PDU (the password is in it: never log it)."""
        bind = Bind(self.system_id, self.password, self.system_type, address_range=self.address_range)
        return encode_bind(bind)


def _ton_npi(addr: str, ton: int, npi: int) -> tuple[str, int, int]:
    """The address without ``+`` and its TON/NPI, the configured ones unless they are -1."""
    if addr.startswith("+"):
        auto = (1, 1)
        addr = addr[1:]
    elif addr and _ALPHANUMERIC.fullmatch(addr):
        auto = (5, 0)
    else:
        auto = (0, 1)
    return addr, auto[0] if ton == AUTO else ton, auto[1] if npi == AUTO else npi


def user_data(sms: OutgoingSms, part: OutgoingPart) -> bytes:
    """The part's user data after its UDH: septets as octets, UTF-16-BE or the binary payload."""
    if sms.encoding == "binary":
        return part.data or b""
    if sms.encoding == "ucs2":
        return part.text.encode("utf-16-be")
    septets = gsm.to_septets(part.text)
    if septets is None:
        raise ValueError("the text is not in the GSM 03.38 alphabet")
    return septets.encode("ascii")


def data_coding(sms: OutgoingSms) -> int:
    if sms.dcs is not None:
        return sms.dcs
    return (_FLASH if sms.flash else _DATA_CODING).get(sms.encoding, 0)


def build_submit(sms: OutgoingSms, part: OutgoingPart, options: Options) -> bytes:
    """The submit_sm body of one part; ValueError when the part cannot be sent this way."""
    source, source_ton, source_npi = _ton_npi(
        sms.sender or options.source_addr, options.source_addr_ton, options.source_addr_npi
    )
    dest, dest_ton, dest_npi = _ton_npi(sms.to, options.dest_addr_ton, options.dest_addr_npi)
    sm = ShortMessage(
        source_addr=source,
        destination_addr=dest,
        short_message=part.udh + user_data(sms, part),
        service_type=options.service_type,
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        dest_addr_ton=dest_ton,
        dest_addr_npi=dest_npi,
        esm_class=ESM_UDHI if part.udh else 0,
        protocol_id=sms.pid or 0,
        registered_delivery=1 if options.registered_delivery or sms.report else 0,
        data_coding=data_coding(sms),
    )
    try:
        return encode_sm(sm)
    except PduError as exc:
        raise ValueError(str(exc)) from None


def judge(status: int, seq: int, message_id: str) -> PartResult:
    """A submit_sm_resp for part ``seq``: SUBMITTED with the SMSC's id, or why not."""
    if status == 0:
        return PartResult(seq, Outcome.SUBMITTED, message_id=message_id)
    verdict = codes.smpp_command_status(status)
    reason = f"smpp: 0x{status:08X} {verdict.text}"
    if status in THROTTLED or verdict.outcome != codes.FAILED:
        dsn = verdict.status if verdict.status.startswith("4") else "4.0.0"
        return PartResult(seq, Outcome.TEMPORARY, reason, dsn=dsn)
    return PartResult(seq, Outcome.PERMANENT, reason, dsn=verdict.status)
