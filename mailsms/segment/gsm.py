"""The GSM 03.38 default alphabet and its extension table.

Text in the default alphabet is handled as a *septet string*: a ``str`` whose
code points are the septet values (all below 0x80), an extension character
being the two septets ``ESC code``.  C-level ``str`` methods (``translate``,
``count``, ``rfind``, slicing) then do the segmenter's work, and
``septets.encode("ascii")`` gives the unpacked user data an SMPP or PDU
encoder wants.
"""

from __future__ import annotations

import re

# Septet value -> character.  0x1B is the escape to the extension table and is
# not a character of its own; U+001B in a text is not GSM.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(GSM_BASIC) == 128

ESC = 0x1B
ESC_CHAR = "\x1b"

# Character -> septet after ESC.  Each costs two septets.
GSM_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

GSM_CHARACTERS = frozenset(c for c in GSM_BASIC if c != ESC_CHAR) | frozenset(GSM_EXTENSION)

# Marks a character that is not GSM after translation: it is not ASCII, so one
# ``isascii()`` on the septet string tells whether the whole text fits.
_NOT_GSM = "\uffff"


def _septet_table() -> dict[int, str]:
    # Every ASCII character has an entry, identity ones included: a miss costs
    # str.translate an exception, and its ASCII fast path needs no misses.
    table: dict[int, str] = dict.fromkeys(range(0x80), _NOT_GSM)
    for value, char in enumerate(GSM_BASIC):
        if char != ESC_CHAR:
            table[ord(char)] = chr(value)
    for char, value in GSM_EXTENSION.items():
        table[ord(char)] = ESC_CHAR + chr(value)
    return table


SEPTET_TABLE: dict[int, str] = _septet_table()

_DECODE_BASIC: dict[int, str] = {value: char for value, char in enumerate(GSM_BASIC) if char != ESC_CHAR}
_DECODE_EXTENSION: dict[int, str] = {value: char for char, value in GSM_EXTENSION.items()}

_NON_GSM_RE = re.compile("[^" + re.escape("".join(sorted(GSM_CHARACTERS))) + "]")


def to_septets(text: str) -> str | None:
    """The septet string of ``text``, or None when a character is not GSM."""
    # Outside ASCII, translate takes its slow path: rule out a Cyrillic or
    # emoji text by a regex, which stops at the first foreign character.
    if not text.isascii() and _NON_GSM_RE.search(text) is not None:
        return None
    septets = text.translate(SEPTET_TABLE)
    return septets if septets.isascii() else None


def is_gsm(text: str) -> bool:
    """True when every character of ``text`` is in the default alphabet or its extension."""
    return _NON_GSM_RE.search(text) is None


def septet_count(text: str) -> int:
    """Septets ``text`` needs (extension characters count two); the text must be GSM."""
    return len(text) + sum(text.count(c) for c in GSM_EXTENSION)


def replace_non_gsm(text: str, replacement: str = "?") -> str:
    """``text`` with every character outside GSM 03.38 replaced (an emoji by one replacement)."""
    return _NON_GSM_RE.sub(replacement, text)


def non_gsm_characters(text: str) -> list[str]:
    """The distinct characters of ``text`` that GSM 03.38 cannot carry, in order of appearance."""
    return list(dict.fromkeys(_NON_GSM_RE.findall(text)))


def decode_septets(septets: bytes) -> str:
    """Unpacked septet values back to text; an unknown extension code reads as a space (03.38)."""
    out: list[str] = []
    escaped = False
    for value in septets:
        if escaped:
            out.append(_DECODE_EXTENSION.get(value, " "))
            escaped = False
        elif value == ESC:
            escaped = True
        else:
            out.append(_DECODE_BASIC[value & 0x7F])
    if escaped:  # a dangling escape: 03.38 says display a space
        out.append(" ")
    return "".join(out)
