"""GSM 03.38 / UCS-2 segmentation: a text becomes SMS parts with their UDH.

``split_text`` is a pure function; ``ReferenceCounter`` hands out the
concatenation references per destination; ``pdu`` packs parts into
SMS-SUBMIT PDUs for a modem.
"""

from mailsms.segment.binary import split_binary
from mailsms.segment.gsm import is_gsm, non_gsm_characters, septet_count
from mailsms.segment.reference import ReferenceCounter
from mailsms.segment.split import (
    Encoding,
    Part,
    Segmentation,
    count_parts,
    marker_problems,
    split_text,
    split_with_config,
)
from mailsms.segment.transliterate import transliterate
from mailsms.segment.udh import MAX_PARTS, Concatenation, concat_udh, concatenation, parse_hex, parse_udh
from mailsms.segment.units import EncodingChoice

__all__ = [
    "MAX_PARTS",
    "Concatenation",
    "Encoding",
    "EncodingChoice",
    "Part",
    "ReferenceCounter",
    "Segmentation",
    "concat_udh",
    "concatenation",
    "count_parts",
    "is_gsm",
    "marker_problems",
    "non_gsm_characters",
    "parse_hex",
    "parse_udh",
    "septet_count",
    "split_binary",
    "split_text",
    "split_with_config",
    "transliterate",
]
