"""User data headers (3GPP TS 23.040 9.2.3.24): concatenation and parsing.

A UDH here is always the complete header *including* its length byte (UDHL),
as it goes on the air and as Kannel's ``udh=`` takes it: ``05 00 03 ref total
seq`` for an 8-bit concatenation reference, ``06 08 04 ref ref total seq`` for
a 16-bit one.
"""

from __future__ import annotations

from dataclasses import dataclass

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08
MAX_PARTS = 255
USER_DATA_OCTETS = 140


@dataclass(frozen=True)
class Concatenation:
    """The concatenation element of one part: which message, how many parts, which one."""

    reference: int
    total: int
    seq: int
    bits: int = 8


def concat_element(reference: int, total: int, seq: int, bits: int = 8) -> bytes:
    """The information element (IEI, length, data) for part ``seq`` of ``total``."""
    if not 1 <= seq <= total <= MAX_PARTS:
        raise ValueError(f"part {seq} of {total} is not between 1 and {MAX_PARTS}")
    if bits == 8:
        if not 0 <= reference <= 0xFF:
            raise ValueError(f"8-bit reference {reference} out of range")
        return bytes((IEI_CONCAT_8, 3, reference, total, seq))
    if bits == 16:
        if not 0 <= reference <= 0xFFFF:
            raise ValueError(f"16-bit reference {reference} out of range")
        return bytes((IEI_CONCAT_16, 4, reference >> 8, reference & 0xFF, total, seq))
    raise ValueError(f"reference_bits must be 8 or 16, not {bits}")


def concat_udh(reference: int, total: int, seq: int, bits: int = 8, extra: bytes = b"") -> bytes:
    """A complete UDH for one part; ``extra`` holds further elements (without a UDHL)."""
    elements = concat_element(reference, total, seq, bits) + extra
    return bytes((len(elements),)) + elements


def concat_udh_length(bits: int) -> int:
    """Octets of a concatenation-only UDH, length byte included: 6 or 7."""
    return 6 if bits == 8 else 7


def fill_bits(udh_length: int) -> int:
    """Bits that pad a UDH of ``udh_length`` octets to a septet boundary (GSM 7-bit)."""
    return (7 - (udh_length * 8) % 7) % 7


def udh_septets(udh_length: int) -> int:
    """Septets a UDH of ``udh_length`` octets (fill bits included) takes from the 160."""
    return (udh_length * 8 + 6) // 7


def parse_udh(udh: bytes) -> list[tuple[int, bytes]]:
    """The (IEI, data) elements of a complete UDH; ValueError when it is malformed."""
    if not udh or udh[0] != len(udh) - 1:
        raise ValueError("UDH length byte does not match its length")
    elements: list[tuple[int, bytes]] = []
    pos = 1
    while pos < len(udh):
        if pos + 2 > len(udh):
            raise ValueError("UDH ends inside an element header")
        iei, length = udh[pos], udh[pos + 1]
        data = udh[pos + 2 : pos + 2 + length]
        if len(data) != length:
            raise ValueError(f"UDH element {iei:#04x} is truncated")
        elements.append((iei, data))
        pos += 2 + length
    return elements


def concatenation(udh: bytes) -> Concatenation | None:
    """The concatenation element of a UDH, or None when it has none."""
    for iei, data in parse_udh(udh):
        if iei == IEI_CONCAT_8 and len(data) == 3:
            return Concatenation(data[0], data[1], data[2], 8)
        if iei == IEI_CONCAT_16 and len(data) == 4:
            return Concatenation((data[0] << 8) | data[1], data[2], data[3], 16)
    return None


def without_concatenation(udh: bytes) -> bytes:
    """The elements of ``udh`` other than concatenation, without a UDHL (b"" for none)."""
    if not udh:
        return b""
    return b"".join(
        bytes((iei, len(data))) + data for iei, data in parse_udh(udh) if iei not in (IEI_CONCAT_8, IEI_CONCAT_16)
    )


def parse_hex(value: str) -> bytes:
    """Hex digits (spaces allowed, any case) to bytes; ValueError when not hex."""
    digits = "".join(value.split())
    if len(digits) % 2:
        raise ValueError("odd number of hex digits")
    return bytes.fromhex(digits)
