"""Split a text into SMS parts: GSM 03.38 or UCS-2, concatenated with a UDH.

``split_text`` is pure: the same text and options give the same parts.  The
cutting itself lives in ``mailsms.segment.units``; this module decides the
encoding, the part count, the cap (``maxmsgs``, 255) and builds the parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mailsms.errors import MessageTooLong
from mailsms.segment import gsm, udh
from mailsms.segment.units import (
    SURROGATE_RE,
    EncodingChoice,
    Units,
    backward_bounds,
    choose,
    cuts,
    fit,
    greedy_cuts,
    ucs2_units,
    word_cut,
)

if TYPE_CHECKING:
    from mailsms.config import SegmentConfig

Encoding = Literal["gsm7", "ucs2", "binary"]
Overlength = Literal["truncate", "reject"]
Reference = int | Callable[[], int]

DCS_GSM7 = 0x00
DCS_BINARY = 0x04
DCS_UCS2 = 0x08


@dataclass(frozen=True, slots=True)
class Part:
    """One SMS: its text, its UDH (b"" for a single part), its size and its encoded user data.

    ``units`` is septets for gsm7, UTF-16 code units for ucs2, octets for
    binary.  ``data`` is the user data without the UDH: unpacked septets (one
    octet each, escapes included) for gsm7, UTF-16-BE for ucs2, the payload for
    binary.
    """

    text: str
    udh: bytes
    units: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Segmentation:
    """The parts of one message and how they were made."""

    encoding: Encoding
    parts: tuple[Part, ...]
    truncated: bool
    needed: int  # parts the whole text needs; more than len(parts) when truncated
    dcs: int
    pid: int = 0
    reference: int | None = None  # the concatenation reference, None for a single part
    transliterated: bool = False

    @property
    def count(self) -> int:
        return len(self.parts)


def split_text(
    text: str,
    *,
    encoding: EncodingChoice = "auto",
    maxmsgs: int | None = None,
    overlength: Overlength = "truncate",
    reference: Reference = 0,
    reference_bits: int = 8,
    split_window: int = 10,
    marker_gsm: str = "...",
    marker_ucs2: str = "\u2026",
    transliterate: bool = False,
) -> Segmentation:
    """Split ``text`` into SMS parts.

    ``encoding="auto"`` picks GSM 7-bit when every character fits, else UCS-2;
    a forced ``gsm7`` replaces what does not fit by ``?``.  Without
    ``maxmsgs`` the cap is 255 parts and a longer text raises
    MessageTooLong; with it, a longer text is truncated (the last part ends
    with the marker of its encoding) or, with ``overlength="reject"``,
    raises MessageTooLong.  ``reference`` may be a function, called only
    when the text needs concatenation.
    """
    check_options(maxmsgs, overlength, reference_bits, split_window)
    prepared, changed = choose(text, encoding, transliterate, reference_bits)
    units, first = prepared.units, prepared.first
    single, concat = prepared.limits(reference_bits)
    dcs = DCS_GSM7 if prepared.encoding == "gsm7" else DCS_UCS2
    total = len(units)
    if total <= single:  # the common case: one part, no header
        data = units.encode("ascii") if prepared.encoding == "gsm7" else prepared.text.encode("utf-16-be")
        part = Part(prepared.text, b"", total, data)
        return Segmentation(prepared.encoding, (part,), False, 1, dcs, 0, None, changed)

    cap = maxmsgs if maxmsgs is not None else udh.MAX_PARTS
    # With a window, the backward bounds give the count and guard the word cuts.
    bounds = backward_bounds(units, first, concat) if split_window > 0 else None
    greedy = greedy_cuts(units, first, concat) if bounds is None else []
    needed = len(bounds) - 1 if bounds is not None else len(greedy) + 1
    truncated = needed > cap
    if truncated and (maxmsgs is None or overlength == "reject"):
        raise too_long_error("text", needed, maxmsgs)
    count = cap if truncated else needed
    limit = concat if count > 1 else single
    if truncated:  # the text is cut anyway: word cuts need no guard
        ends = cuts(units, first, limit, count, window=split_window, bounds=None)
    else:
        ends = cuts(units, first, limit, count, window=split_window, bounds=bounds) if bounds is not None else greedy
    ref = resolve_reference(reference, reference_bits) if count > 1 else None
    header = udh.concat_udh(ref, count, 1, reference_bits)[:-1] if ref is not None else b""
    if not truncated:
        ends.append(total)
        return Segmentation(prepared.encoding, _parts(prepared, ends, header), False, needed, dcs, 0, ref, changed)

    marker = marker_gsm if prepared.encoding == "gsm7" else marker_ucs2
    room = limit - _marker_units(prepared, marker_gsm, marker_ucs2)
    if room < 0:
        raise ValueError("the truncation marker is longer than a part")
    start = ends[-1] if ends else 0
    ends.append(word_cut(units, start, fit(units, first, start, room), split_window, 0))
    parts = _parts(prepared, ends, header)
    last = parts[-1]
    kept = last.text.rstrip(" ") + marker
    data = prepared.encode(kept)
    parts = (*parts[:-1], Part(kept, last.udh, len(data) if prepared.encoding == "gsm7" else len(data) // 2, data))
    return Segmentation(prepared.encoding, parts, True, needed, dcs, 0, ref, changed)


_SEQ = tuple(bytes((i,)) for i in range(256))


def _parts(prepared: Units, ends: list[int], header: bytes) -> tuple[Part, ...]:
    """The parts that end at ``ends``; ``header`` is the UDH without its sequence octet."""
    text, units, first = prepared.text, prepared.units, prepared.first
    pairs = len(units) != len(text)
    septets = prepared.encoding == "gsm7"
    parts: list[Part] = []
    start = index = 0
    for seq, end in enumerate(ends, start=1):
        stop = index + (end - start) - (units.count(first, start, end) if pairs else 0)
        piece = text[index:stop]
        data = units[start:end].encode("ascii") if septets else piece.encode("utf-16-be")
        parts.append(Part(piece, header + _SEQ[seq] if header else b"", end - start, data))
        start, index = end, stop
    return tuple(parts)


def resolve_reference(reference: Reference, bits: int) -> int:
    """The reference to use: the value, or what the function returns."""
    value = reference() if callable(reference) else reference
    if not 0 <= value < (1 << bits):
        raise ValueError(f"reference {value} does not fit in {bits} bits")
    return value


def check_options(maxmsgs: int | None, overlength: str, reference_bits: int, split_window: int) -> None:
    """ValueError for an option out of range (configuration is validated before; this guards callers)."""
    if maxmsgs is not None and not 1 <= maxmsgs <= udh.MAX_PARTS:
        raise ValueError(f"maxmsgs must be between 1 and {udh.MAX_PARTS}, not {maxmsgs}")
    if overlength not in ("truncate", "reject"):
        raise ValueError(f"overlength must be 'truncate' or 'reject', not {overlength!r}")
    if reference_bits not in (8, 16):
        raise ValueError(f"reference_bits must be 8 or 16, not {reference_bits}")
    if not 0 <= split_window <= 60:
        raise ValueError(f"split_window must be between 0 and 60, not {split_window}")


def too_long_error(what: str, needed: int, maxmsgs: int | None) -> MessageTooLong:
    """MessageTooLong (552 5.3.4) naming the parts needed and the cap."""
    if maxmsgs is None:
        return MessageTooLong(f"{what} needs {needed} parts, more than {udh.MAX_PARTS}")
    return MessageTooLong(f"{what} needs {needed} parts, more than the {maxmsgs} allowed")


def _marker_units(prepared: Units, marker_gsm: str, marker_ucs2: str) -> int:
    if prepared.encoding == "gsm7":
        septets = gsm.to_septets(marker_gsm)
        if septets is None:
            raise ValueError(f"truncation marker {marker_gsm!r} is not GSM 03.38")
        return len(septets)
    if SURROGATE_RE.search(marker_ucs2):
        raise ValueError("truncation marker holds a lone surrogate")
    return len(ucs2_units(marker_ucs2).units)


def marker_problems(marker_gsm: str, marker_ucs2: str) -> list[str]:
    """Why the truncation markers are unusable (empty when they are fine), for configuration checks."""
    problems: list[str] = []
    if gsm.to_septets(marker_gsm) is None:
        problems.append(f"truncate_marker_gsm {marker_gsm!r} must use only GSM 03.38 characters")
    if len(marker_gsm) > 20 or len(marker_ucs2) > 20:
        problems.append("truncation markers must be at most 20 characters")
    if SURROGATE_RE.search(marker_ucs2):
        problems.append("truncate_marker_ucs2 must not hold lone surrogates")
    return problems


def count_parts(
    text: str, *, encoding: EncodingChoice = "auto", transliterate: bool = False, reference_bits: int = 8
) -> tuple[Encoding, int]:
    """The encoding ``split_text`` would choose and the parts the whole text needs, with no cap."""
    check_options(None, "truncate", reference_bits, 0)
    prepared, _ = choose(text, encoding, transliterate, reference_bits)
    return prepared.encoding, prepared.needed(reference_bits)


def split_with_config(
    text: str,
    config: SegmentConfig,
    *,
    maxmsgs: int | None = None,
    reference: Reference = 0,
    encoding: EncodingChoice | None = None,
) -> Segmentation:
    """``split_text`` with the ``[segment]`` settings; ``maxmsgs`` and ``encoding`` override them."""
    return split_text(
        text,
        encoding=encoding or config.encoding,
        maxmsgs=maxmsgs if maxmsgs is not None else config.maxmsgs,
        overlength=config.overlength,
        reference=reference,
        reference_bits=config.reference_bits,
        split_window=config.split_window,
        marker_gsm=config.truncate_marker_gsm,
        marker_ucs2=config.truncate_marker_ucs2,
        transliterate=config.transliterate == "smart",
    )
