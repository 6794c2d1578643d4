"""8-bit data parts (``binary=1``): the caller's UDH and data, concatenated when too long."""

from __future__ import annotations

from mailsms.segment import udh as udhs
from mailsms.segment.split import (
    DCS_BINARY,
    Overlength,
    Part,
    Reference,
    Segmentation,
    check_options,
    resolve_reference,
    too_long_error,
)


def split_binary(
    data: bytes,
    *,
    udh: bytes = b"",
    maxmsgs: int | None = None,
    overlength: Overlength = "truncate",
    reference: Reference = 0,
    reference_bits: int = 8,
    dcs: int = DCS_BINARY,
    pid: int = 0,
) -> Segmentation:
    """Split 8-bit ``data`` that goes out with the complete UDH ``udh`` (UDHL included).

    Data that fits beside the given UDH is one part with that UDH unchanged;
    longer data gets a concatenation element in front of the given elements
    (a concatenation element given by the caller is replaced).  ``dcs`` and
    ``pid`` are carried to the transport as given.
    """
    check_options(maxmsgs, overlength, reference_bits, 0)
    if not 0 <= dcs <= 0xFF or not 0 <= pid <= 0xFF:
        raise ValueError("dcs and pid must be octets")
    if udh:
        udhs.parse_udh(udh)
    if len(udh) + len(data) <= udhs.USER_DATA_OCTETS:
        part = Part("", udh, len(data), data)
        return Segmentation("binary", (part,), False, 1, dcs, pid)
    extra = udhs.without_concatenation(udh)
    room = udhs.USER_DATA_OCTETS - udhs.concat_udh_length(reference_bits) - len(extra)
    if room <= 0:
        raise ValueError("the UDH leaves no room for data")
    needed = -(-len(data) // room)
    cap = maxmsgs if maxmsgs is not None else udhs.MAX_PARTS
    if needed > cap and (maxmsgs is None or overlength == "reject"):
        raise too_long_error("data", needed, maxmsgs)
    count = min(needed, cap)
    ref = resolve_reference(reference, reference_bits)
    parts = tuple(
        Part("", udhs.concat_udh(ref, count, seq, reference_bits, extra), len(chunk), chunk)
        for seq, chunk in enumerate((data[i : i + room] for i in range(0, count * room, room)), start=1)
    )
    return Segmentation("binary", parts, needed > cap, needed, dcs, pid, ref)
