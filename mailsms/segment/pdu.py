"""SMS PDU helpers (3GPP TS 23.040): septet packing, user data, SMS-SUBMIT.

For the modem transport (``AT+CMGS`` in PDU mode) and for tests.  The GSM
7-bit user data of a part with a UDH starts with the header octets, then fill
bits up to the next septet boundary, then the packed septets; the user data
length (UDL) counts septets, header and fill included.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsms.segment import gsm, udh
from mailsms.segment.split import Encoding, Part

_FIRST_SUBMIT = 0x01
_RD = 0x04
_VPF_RELATIVE = 0x10
_SRR = 0x20
_UDHI = 0x40
_TOA_INTERNATIONAL = 0x91
_TOA_UNKNOWN = 0x81
_BCD = "0123456789*#abc"


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack 7-bit values, least significant bit first, after ``fill_bits`` zero bits."""
    value = 0
    for septet in reversed(septets):
        value = (value << 7) | (septet & 0x7F)
    bits = fill_bits + 7 * len(septets)
    return (value << fill_bits).to_bytes((bits + 7) // 8, "little")


def unpack_septets(packed: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The first ``count`` 7-bit values of ``packed``, skipping ``fill_bits`` bits."""
    if fill_bits + 7 * count > 8 * len(packed):
        raise ValueError(f"{len(packed)} octets cannot hold {count} septets")
    value = int.from_bytes(packed, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))


def dcs_encoding(dcs: int) -> Encoding:
    """The alphabet a data coding scheme names (23.038 section 4)."""
    group = dcs >> 4
    if group <= 0x07:  # general data coding (compressed or not)
        return ("gsm7", "binary", "ucs2", "gsm7")[(dcs >> 2) & 0x03]
    if group in (0x0C, 0x0D):
        return "gsm7"
    if group == 0x0E:
        return "ucs2"
    if group == 0x0F:
        return "binary" if dcs & 0x04 else "gsm7"
    return "binary"


def encode_user_data(part: Part, encoding: Encoding) -> tuple[int, bytes]:
    """(UDL, UD) of one part: the header, then the packed septets or the octets."""
    if encoding != "gsm7":
        data = part.udh + part.data
        return len(data), data
    if not part.udh:
        return len(part.data), pack_septets(part.data)
    length = len(part.udh)
    packed = pack_septets(part.data, udh.fill_bits(length))
    return udh.udh_septets(length) + len(part.data), part.udh + packed


def decode_user_data(udl: int, ud: bytes, encoding: Encoding, udhi: bool) -> tuple[bytes, bytes]:
    """(UDH, data) from user data; data is unpacked septets for gsm7, else the octets."""
    header = b""
    if udhi:
        if not ud or ud[0] + 1 > len(ud):
            raise ValueError("UDH longer than the user data")
        header = ud[: ud[0] + 1]
        udh.parse_udh(header)
    if encoding != "gsm7":
        if udl > len(ud) or udl < len(header):
            raise ValueError("UDL does not match the user data")
        return header, ud[len(header) : udl]
    skip = udh.udh_septets(len(header)) if header else 0
    septets = unpack_septets(ud, udl)
    return header, septets[skip:]


def relative_validity(seconds: float) -> int:
    """The TP-VP octet (relative format, 23.040 9.2.3.12.1) for at least ``seconds``, at most 63 weeks."""
    minutes = max(seconds, 300.0) / 60
    if minutes <= 12 * 60:
        return int(-(-minutes // 5)) - 1
    if minutes <= 24 * 60:
        return 143 + int(-(-(minutes - 12 * 60) // 30))
    days = minutes / (24 * 60)
    if days <= 30:
        return 166 + int(-(-days // 1))
    return min(192 + int(-(-days // 7)), 255)


def _encode_address(number: str) -> bytes:
    toa = _TOA_INTERNATIONAL if number.startswith("+") else _TOA_UNKNOWN
    digits = number.lstrip("+").lower()
    if not digits or any(d not in _BCD for d in digits):
        raise ValueError(f"cannot encode {number!r} as a semi-octet address")
    padded = digits + ("f" if len(digits) % 2 else "")
    octets = bytes((_nibble(padded[i + 1]) << 4) | _nibble(padded[i]) for i in range(0, len(padded), 2))
    return bytes((len(digits), toa)) + octets


def _nibble(digit: str) -> int:
    return 0x0F if digit == "f" else _BCD.index(digit)


def _decode_address(pdu: bytes, pos: int) -> tuple[str, int]:
    count, toa = pdu[pos], pdu[pos + 1]
    octets = pdu[pos + 2 : pos + 2 + (count + 1) // 2]
    digits = "".join(_BCD[o & 0x0F] + (_BCD[o >> 4] if o >> 4 != 0x0F else "") for o in octets)[:count]
    prefix = "+" if toa & 0x70 == 0x10 else ""
    return prefix + digits, pos + 2 + (count + 1) // 2


def encode_submit_pdu(
    destination: str,
    part: Part,
    encoding: Encoding,
    *,
    dcs: int | None = None,
    pid: int = 0,
    message_reference: int = 0,
    status_report: bool = False,
    reject_duplicates: bool = False,
    validity: int | None = None,
) -> bytes:
    """An SMS-SUBMIT for ``AT+CMGS``: SMSC length 0 (the modem's own), then the TPDU.

    ``AT+CMGS`` takes ``len(pdu) - 1``.  ``validity`` is a relative TP-VP octet.
    """
    if dcs is None:
        dcs = {"gsm7": 0x00, "binary": 0x04, "ucs2": 0x08}[encoding]
    first = _FIRST_SUBMIT
    if reject_duplicates:
        first |= _RD
    if validity is not None:
        first |= _VPF_RELATIVE
    if status_report:
        first |= _SRR
    if part.udh:
        first |= _UDHI
    udl, ud = encode_user_data(part, encoding)
    tpdu = bytearray((first, message_reference & 0xFF))
    tpdu += _encode_address(destination)
    tpdu += bytes((pid, dcs))
    if validity is not None:
        tpdu.append(validity & 0xFF)
    tpdu.append(udl)
    tpdu += ud
    return b"\x00" + bytes(tpdu)


@dataclass(frozen=True)
class SubmitPdu:
    """A decoded SMS-SUBMIT; ``text`` is None for 8-bit data."""

    destination: str
    message_reference: int
    pid: int
    dcs: int
    status_report: bool
    udh: bytes
    data: bytes
    text: str | None


def decode_submit_pdu(pdu: bytes) -> SubmitPdu:
    """Decode what ``encode_submit_pdu`` makes (with or without an SMSC address)."""
    pos = 1 + pdu[0]
    first = pdu[pos]
    if first & 0x03 != _FIRST_SUBMIT:
        raise ValueError("not an SMS-SUBMIT")
    reference = pdu[pos + 1]
    destination, pos = _decode_address(pdu, pos + 2)
    pid, dcs = pdu[pos], pdu[pos + 1]
    pos += 2
    vpf = (first >> 3) & 0x03
    pos += {0: 0, 1: 7, 2: 1, 3: 7}[vpf]
    udl = pdu[pos]
    encoding = dcs_encoding(dcs)
    header, data = decode_user_data(udl, pdu[pos + 1 :], encoding, bool(first & _UDHI))
    if encoding == "gsm7":
        text: str | None = gsm.decode_septets(data)
    elif encoding == "ucs2":
        text = data.decode("utf-16-be", "replace")
    else:
        text = None
    return SubmitPdu(destination, reference, pid, dcs, bool(first & _SRR), header, data, text)
