"""Concatenated incoming SMS: which parts belong together, and the text they make (pure).

Parts belong together when they came through the same gateway, from the
same sender, to the same number, with the same concatenation element
(reference, total, and its size: an 8-bit reference 7 and a 16-bit
reference 7 are different messages).  Parts may come in any order; a part
whose number is already there is a duplicate and is ignored.  When parts
are still missing after ``inbound.reassembly_timeout`` the ones received
are joined with a marker where the others belong: an SMS is never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailsms.segment.udh import Concatenation, concatenation


@dataclass(frozen=True)
class GroupKey:
    """What the parts of one concatenated SMS share."""

    gateway: str
    sender: str
    to: str
    reference: int
    total: int
    bits: int


@dataclass(frozen=True)
class Part:
    id: str
    seq: int
    text: str
    received: float
    data: bytes | None = None


@dataclass(frozen=True)
class Assembled:
    text: str
    data: bytes | None  # the 8-bit payloads joined, when every part is there and had one
    missing: tuple[int, ...]  # part numbers never received (empty when complete)
    received: float  # when the first part arrived


def concat_of(udh: bytes) -> Concatenation | None:
    """The concatenation element of a part that needs joining; None for a whole SMS (or a UDH that cannot be read)."""
    if not udh:
        return None
    try:
        found = concatenation(udh)
    except ValueError:
        return None
    if found is None or found.total < 2 or not 1 <= found.seq <= found.total:
        return None
    return found


def group_key(gateway: str, sender: str, to: str, concat: Concatenation) -> GroupKey:
    return GroupKey(gateway, sender, to, concat.reference, concat.total, concat.bits)


def complete(parts: Sequence[Part], total: int) -> bool:
    """Every part from 1 to ``total`` is there."""
    return {p.seq for p in parts} >= set(range(1, total + 1))


def assemble(parts: Sequence[Part], total: int, marker: str) -> Assembled:
    """The text of ``parts`` in order, the first of each number winning; ``marker`` stands for each run of
    missing parts."""
    by_seq: dict[int, Part] = {}
    for each in sorted(parts, key=lambda p: p.received):
        by_seq.setdefault(each.seq, each)
    pieces: list[str] = []
    missing: list[int] = []
    gap = False
    for seq in range(1, total + 1):
        part = by_seq.get(seq)
        if part is None:
            missing.append(seq)
            if not gap and marker:
                pieces.append(_spaced(marker, pieces))
            gap = True
            continue
        if gap and marker and part.text and not part.text[:1].isspace():
            pieces.append(" ")
        pieces.append(part.text)
        gap = False
    datas = [by_seq[seq].data for seq in sorted(by_seq)]
    whole = not missing and bool(datas) and all(d is not None for d in datas)
    data = b"".join(d for d in datas if d is not None) if whole else None
    first = min((p.received for p in parts), default=0.0)
    return Assembled("".join(pieces), data, tuple(missing), first)


def _spaced(marker: str, before: list[str]) -> str:
    """The marker, set off by a space from the text before it."""
    if before and before[-1] and not before[-1][-1:].isspace():
        return " " + marker
    return marker
