"""The segmenter's engine: a text as a *unit string*, and where to cut it.

A unit string has one ``str`` character per unit a part is measured in (a
septet, or a UTF-16 code unit).  A character that costs two units appears as
two characters, the first of which is a marker (``ESC`` for GSM, ``U+D800``
for UCS-2), so every rule is a C-level ``str`` operation: a cut never falls
right after a marker, a part's character count is its unit count minus the
markers in it, and a word boundary is an ``rfind``.

Cuts are greedy (as far as a part holds), which gives the fewest parts.  A
cut moves back to a space or newline in the last ``window`` units only when
the rest still fits in the parts that remain: ``backward_bounds`` gives, for
``j`` remaining parts, the earliest index the rest may start at.
"""

from __future__ import annotations

import re
from typing import Literal

from mailsms.segment import gsm, udh
from mailsms.segment.transliterate import transliterate as _transliterate

TextEncoding = Literal["gsm7", "ucs2"]
EncodingChoice = Literal["auto", "gsm7", "ucs2"]

GSM7_SINGLE = 160
UCS2_SINGLE = 70

_UCS2_FIRST = "\ud800"
_UCS2_PAIR = "\ud800\udc00"
SURROGATE_RE = re.compile("[\ud800-\udfff]")
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
_BREAKS = " \n"


class Units:
    """A text prepared for one encoding (internal: a plain class, built on every call)."""

    __slots__ = ("encoding", "first", "text", "units")

    def __init__(self, encoding: TextEncoding, text: str, units: str, first: str) -> None:
        self.encoding: TextEncoding = encoding
        self.text = text
        self.units = units
        self.first = first  # marks the first unit of a two-unit character

    def limits(self, reference_bits: int) -> tuple[int, int]:
        """Units in a single part and in a concatenated part."""
        header = udh.concat_udh_length(reference_bits)
        if self.encoding == "gsm7":
            return GSM7_SINGLE, GSM7_SINGLE - udh.udh_septets(header)
        return UCS2_SINGLE, (udh.USER_DATA_OCTETS - header) // 2

    def needed(self, reference_bits: int) -> int:
        """Parts the whole text needs."""
        single, concat = self.limits(reference_bits)
        if len(self.units) <= single:
            return 1
        return len(backward_bounds(self.units, self.first, concat)) - 1

    def encode(self, text: str) -> bytes:
        """User data of any text in this encoding (a GSM text must be GSM)."""
        if self.encoding == "gsm7":
            septets = gsm.to_septets(text)
            if septets is None:
                raise ValueError(f"{text!r} is not GSM 03.38")
            return septets.encode("ascii")
        return text.encode("utf-16-be")


def gsm_units(text: str) -> Units | None:
    """``text`` as septets, or None when a character is not GSM."""
    septets = gsm.to_septets(text)
    return None if septets is None else Units("gsm7", text, septets, gsm.ESC_CHAR)


def ucs2_units(text: str) -> Units:
    """``text`` as UTF-16 code units; a lone surrogate becomes U+FFFD (it cannot be sent)."""
    if SURROGATE_RE.search(text) is not None:
        text = SURROGATE_RE.sub("\ufffd", text)
    units = _ASTRAL_RE.sub(_UCS2_PAIR, text) if _ASTRAL_RE.search(text) is not None else text
    return Units("ucs2", text, units, _UCS2_FIRST)


def choose(text: str, encoding: EncodingChoice, transliterate: bool, reference_bits: int) -> tuple[Units, bool]:
    """The prepared text to split and whether transliteration changed it."""
    if encoding == "ucs2":
        return ucs2_units(text), False
    prepared = gsm_units(text)
    if prepared is not None:
        return prepared, False
    if encoding == "gsm7":
        changed = _transliterate(text) if transliterate else text
        forced = gsm_units(gsm.replace_non_gsm(changed))
        assert forced is not None
        return forced, changed != text
    ucs2 = ucs2_units(text)
    if transliterate:
        plain = gsm_units(_transliterate(text))
        # Only when the whole text becomes GSM, and never at the cost of a part.
        if plain is not None and plain.needed(reference_bits) <= ucs2.needed(reference_bits):
            return plain, True
    return ucs2, False


def fit(units: str, first: str, start: int, limit: int) -> int:
    """The furthest cut after ``start`` that keeps ``limit`` units and splits no pair."""
    end = start + limit
    if end >= len(units):
        return len(units)
    if units[end - 1] == first:
        end -= 1
    return end


def backward_bounds(units: str, first: str, limit: int) -> list[int]:
    """``bounds[j]``: the smallest index from which the rest fits in ``j`` parts."""
    bounds = [len(units)]
    pos = len(units)
    while pos > 0:
        pos -= limit
        if pos <= 0:
            pos = 0
        elif units[pos - 1] == first:
            pos += 1
        bounds.append(pos)
    return bounds


def greedy_cuts(units: str, first: str, limit: int) -> list[int]:
    """End index of every part but the last, each part as full as it can be."""
    cuts: list[int] = []
    start = 0
    total = len(units)
    while True:
        end = fit(units, first, start, limit)
        if end >= total:
            return cuts
        cuts.append(end)
        start = end


def word_cut(units: str, start: int, end: int, window: int, earliest: int) -> int:
    """``end`` moved back to just after a space or newline in its last ``window`` units, not before ``earliest``."""
    if window <= 0 or end >= len(units) or units[end - 1] in _BREAKS or units[end] in _BREAKS:
        return end
    low = max(start + 1, end - window, earliest - 1)
    brk = max(units.rfind(" ", low, end), units.rfind("\n", low, end))
    return brk + 1 if brk >= 0 else end


def cuts(units: str, first: str, limit: int, count: int, *, window: int, bounds: list[int] | None) -> list[int]:
    """End index of each of the first ``count - 1`` parts, preferring word boundaries.

    With ``bounds`` a word cut is taken only when the rest still fits in the
    parts left; without, any word cut in the window is taken (truncation).
    """
    ends: list[int] = []
    start = 0
    total = len(units)
    rfind = units.rfind
    for k in range(1, count):
        end = start + limit
        if end >= total:
            end = total
        elif units[end - 1] == first:
            end -= 1
        # Inlined word_cut: this loop is the hot path of a long text.
        if window and end < total and units[end - 1] not in _BREAKS and units[end] not in _BREAKS:
            low = end - window
            if bounds is not None and bounds[count - k] - 1 > low:
                low = bounds[count - k] - 1
            brk = max(rfind(" ", low, end), rfind("\n", low, end))
            if brk > start:
                end = brk + 1
        ends.append(end)
        start = end
    return ends
