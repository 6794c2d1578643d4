"""SMS-DELIVER and SMS-STATUS-REPORT (3GPP TS 23.040 9.2.2.1 and 9.2.2.3): what a modem reads.

Decoders take a PDU as ``AT+CMGR``, ``AT+CMGL`` and ``+CDS`` give it: the
SMSC address (its length octet first), then the TPDU.  Every length in the
PDU is checked against the octets really there: a PDU that lies about a
length raises ``ValueError``, never ``IndexError``.  The encoders are the
network's side, for fake modems and tests.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

from mailsms.segment import gsm
from mailsms.segment.pdu import dcs_encoding, decode_user_data, encode_user_data, pack_septets, unpack_septets
from mailsms.segment.split import Encoding, Part

MTI_DELIVER = 0x00
MTI_SUBMIT = 0x01
MTI_STATUS_REPORT = 0x02
_UDHI = 0x40
_SRI = 0x20
_TON_INTERNATIONAL = 1
_TON_ALPHANUMERIC = 5
_BCD = (*"0123456789*#abc", "")  # 0xF is the filler of an odd digit count


class _Reader:
    """Octets of one PDU, read in order; running out is a ``ValueError`` naming the field."""

    def __init__(self, pdu: bytes) -> None:
        self.pdu = pdu
        self.pos = 0

    def octet(self, what: str) -> int:
        if self.pos >= len(self.pdu):
            raise ValueError(f"PDU ends before its {what}")
        self.pos += 1
        return self.pdu[self.pos - 1]

    def take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self.pdu):
            raise ValueError(f"PDU ends inside its {what}")
        self.pos += count
        return self.pdu[self.pos - count : self.pos]

    def rest(self) -> bytes:
        return self.pdu[self.pos :]


def message_type(pdu: bytes) -> int:
    """The TP-MTI of a PDU with its SMSC prefix: 0 deliver, 1 submit, 2 status report."""
    reader = _Reader(pdu)
    reader.take(reader.octet("SMSC length"), "SMSC address")
    return reader.octet("first octet") & 0x03


def _read_smsc(reader: _Reader) -> str:
    length = reader.octet("SMSC length")
    if length == 0:
        return ""
    toa = reader.octet("SMSC type of address")
    return _semi_octets(reader.take(length - 1, "SMSC address"), 2 * (length - 1), toa)


def _read_address(reader: _Reader, what: str) -> str:
    count = reader.octet(f"{what} length")
    toa = reader.octet(f"{what} type of address")
    return _semi_octets(reader.take((count + 1) // 2, what), count, toa)


def _semi_octets(octets: bytes, count: int, toa: int) -> str:
    """An address from its octets; ``count`` counts useful semi-octets."""
    if (toa >> 4) & 0x07 == _TON_ALPHANUMERIC:
        return gsm.decode_septets(unpack_septets(octets, count * 4 // 7))
    digits = "".join(_BCD[o & 0x0F] + _BCD[o >> 4] for o in octets)[:count]
    return ("+" if (toa >> 4) & 0x07 == _TON_INTERNATIONAL and digits else "") + digits


def decode_timestamp(octets: bytes) -> float | None:
    """A TP-SCTS / TP-DT (7 swapped BCD octets, zone in quarter hours) as POSIX time; None if invalid."""
    if len(octets) != 7:
        return None
    values: list[int] = []
    for octet in octets[:6]:
        low, high = octet & 0x0F, octet >> 4
        if low > 9 or high > 9:
            return None
        values.append(low * 10 + high)
    zone_octet = octets[6]
    tens, units = zone_octet & 0x07, zone_octet >> 4
    if units > 9:
        return None
    quarters = -(tens * 10 + units) if zone_octet & 0x08 else tens * 10 + units
    year, month, day, hour, minute, second = values
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(2000 + year, month)[1]):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    year += 2000 if year < 90 else 1900
    utc = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return float(utc - quarters * 15 * 60)


def encode_timestamp(when: float, zone_quarters: int = 0) -> bytes:
    """``when`` as a TP-SCTS in the zone ``zone_quarters`` quarter hours east of UTC."""
    local = time.gmtime(int(when) + zone_quarters * 15 * 60)
    fields = (local.tm_year % 100, local.tm_mon, local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec)
    octets = bytes(((v % 10) << 4) | (v // 10) for v in fields)
    quarters = abs(zone_quarters)
    zone = ((quarters % 10) << 4) | (quarters // 10) | (0x08 if zone_quarters < 0 else 0)
    return octets + bytes((zone,))


@dataclass(frozen=True)
class DeliverPdu:
    """A decoded SMS-DELIVER: ``data`` is unpacked septets for gsm7, else the octets after the UDH."""

    smsc: str
    sender: str
    pid: int
    dcs: int
    encoding: Encoding
    timestamp: float | None
    udh: bytes
    data: bytes
    text: str  # "" for 8-bit data
    report_indication: bool


def decode_deliver_pdu(pdu: bytes) -> DeliverPdu:
    """Decode an SMS-DELIVER; ValueError when it is another type or does not hold together."""
    reader = _Reader(pdu)
    smsc = _read_smsc(reader)
    first = reader.octet("first octet")
    if first & 0x03 != MTI_DELIVER:
        raise ValueError(f"not an SMS-DELIVER (message type {first & 0x03})")
    sender = _read_address(reader, "originating address")
    pid = reader.octet("protocol identifier")
    dcs = reader.octet("data coding scheme")
    timestamp = decode_timestamp(reader.take(7, "service centre time stamp"))
    udl = reader.octet("user data length")
    encoding = dcs_encoding(dcs)
    ud = reader.rest()
    if encoding == "gsm7" and (udl * 7 + 7) // 8 > len(ud):
        raise ValueError(f"user data length {udl} septets is more than the {len(ud)} octets there")
    udh, data = decode_user_data(udl, ud, encoding, bool(first & _UDHI))
    if encoding == "gsm7":
        text = gsm.decode_septets(data)
    elif encoding == "ucs2":
        text = data.decode("utf-16-be", "replace")
    else:
        text = ""
    return DeliverPdu(smsc, sender, pid, dcs, encoding, timestamp, udh, data, text, bool(first & _SRI))


@dataclass(frozen=True)
class StatusReportPdu:
    """A decoded SMS-STATUS-REPORT: which submit (reference, recipient, when the SMSC took it) and TP-ST."""

    smsc: str
    reference: int
    recipient: str
    submitted: float | None  # TP-SCTS: when the SMSC received the SMS-SUBMIT
    discharged: float | None  # TP-DT
    status: int


def decode_status_report_pdu(pdu: bytes) -> StatusReportPdu:
    """Decode an SMS-STATUS-REPORT; ValueError when it is another type or too short."""
    reader = _Reader(pdu)
    smsc = _read_smsc(reader)
    first = reader.octet("first octet")
    if first & 0x03 != MTI_STATUS_REPORT:
        raise ValueError(f"not an SMS-STATUS-REPORT (message type {first & 0x03})")
    reference = reader.octet("message reference")
    recipient = _read_address(reader, "recipient address")
    submitted = decode_timestamp(reader.take(7, "service centre time stamp"))
    discharged = decode_timestamp(reader.take(7, "discharge time"))
    status = reader.octet("status")
    return StatusReportPdu(smsc, reference, recipient, submitted, discharged, status)


def _encode_address(number: str) -> bytes:
    if number and not number.lstrip("+").isdigit():
        septets = gsm.to_septets(number)
        if septets is None:
            raise ValueError(f"cannot encode {number!r} as an alphanumeric address")
        packed = pack_septets(septets.encode("ascii"))
        return bytes((len(packed) * 2, 0xD0)) + packed
    toa = 0x91 if number.startswith("+") else 0x81
    digits = number.lstrip("+")
    padded = digits + ("F" if len(digits) % 2 else "")
    octets = bytes(int(padded[i + 1], 16) << 4 | int(padded[i], 16) for i in range(0, len(padded), 2))
    return bytes((len(digits), toa)) + octets


def _encode_smsc(smsc: str) -> bytes:
    if not smsc:
        return b"\x00"
    address = _encode_address(smsc)[1:]  # type of address and digits, without the digit count
    return bytes((len(address),)) + address


def encode_deliver_pdu(
    sender: str,
    part: Part,
    encoding: Encoding,
    *,
    timestamp: float,
    smsc: str = "",
    dcs: int | None = None,
    pid: int = 0,
    zone_quarters: int = 0,
) -> bytes:
    """An SMS-DELIVER as a network hands it to a modem (for fakes and tests)."""
    if dcs is None:
        dcs = {"gsm7": 0x00, "binary": 0x04, "ucs2": 0x08}[encoding]
    first = MTI_DELIVER | 0x04  # TP-MMS: no more messages waiting
    if part.udh:
        first |= _UDHI
    udl, ud = encode_user_data(part, encoding)
    tpdu = bytes((first,)) + _encode_address(sender) + bytes((pid, dcs))
    tpdu += encode_timestamp(timestamp, zone_quarters) + bytes((udl,)) + ud
    return _encode_smsc(smsc) + tpdu


def encode_status_report_pdu(
    reference: int,
    recipient: str,
    *,
    submitted: float,
    discharged: float,
    status: int,
    smsc: str = "",
) -> bytes:
    """An SMS-STATUS-REPORT for the submit numbered ``reference`` (for fakes and tests)."""
    tpdu = bytes((MTI_STATUS_REPORT, reference & 0xFF)) + _encode_address(recipient)
    tpdu += encode_timestamp(submitted) + encode_timestamp(discharged) + bytes((status & 0xFF,))
    return _encode_smsc(smsc) + tpdu
