"""Typographic characters that force UCS-2, and their GSM 03.38 stand-ins.

Mail clients turn quotes curly, hyphens into dashes and spaces into
non-breaking ones; one such character makes a whole text UCS-2, which costs
up to three times the parts.  Only punctuation and spacing are replaced:
letters keep their diacritics (``ç`` stays ``ç``), so a word never changes.
"""

from __future__ import annotations

_REPLACEMENTS: dict[str, str] = {
    # single quotes, apostrophes, primes, accents used as apostrophes
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",  # ‚
    "\u201b": "'",  # ‛
    "\u2032": "'",  # ′
    "\u2035": "'",  # ‵
    "\u2039": "'",  # ‹
    "\u203a": "'",  # ›
    "\u00b4": "'",  # ´
    "\u02bc": "'",  # ʼ
    "\u02b9": "'",  # ʹ
    "`": "'",  # backtick: not in the default alphabet
    # double quotes
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    "\u2033": '"',  # ″
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    # hyphens, dashes, minus
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",  # –
    "\u2014": "-",  # —
    "\u2015": "-",
    "\u2043": "-",
    "\u2212": "-",  # −
    "\ufe58": "-",
    "\ufe63": "-",
    "\uff0d": "-",
    # spaces
    "\t": " ",
    "\u00a0": " ",  # no-break space
    "\u2000": " ",
    "\u2001": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2007": " ",
    "\u2008": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",
    "\u3000": " ",
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    # invisible characters: dropped
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark
    # other punctuation
    "\u2026": "...",  # …
    "\u2022": "*",  # •
    "\u2027": "-",  # ‧
    "\u2044": "/",  # ⁄
    "\u2215": "/",  # ∕
    "\u02c6": "^",  # ˆ
    "\u02dc": "~",  # ˜
    "\u2122": "TM",
    "\u00a9": "(c)",
    "\u00ae": "(R)",
}

TRANSLITERATION_TABLE: dict[int, str | None] = {ord(k): (v or None) for k, v in _REPLACEMENTS.items()}


def transliterate(text: str) -> str:
    """``text`` with typographic characters replaced by GSM 03.38 equivalents."""
    return text.translate(TRANSLITERATION_TABLE)
