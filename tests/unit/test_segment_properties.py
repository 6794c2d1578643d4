"""Properties of the segmenter, checked against an independent character table and PDU decoder."""

from __future__ import annotations

from io import StringIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smspdudecoder.codecs import GSM as ReferenceGSM
from smspdudecoder.fields import SMSSubmit

from mailsms.errors import MessageTooLong
from mailsms.segment import Part, Segmentation, split_text
from mailsms.segment.pdu import encode_submit_pdu, encode_user_data

GSM_PLAIN = ReferenceGSM.ALPHABET.replace("\x1b", "")
GSM_EXTENSION = "".join(ReferenceGSM.ALPHABET_EXT.values())
EMOJI = "😀🎉👍🏽❤️🇩🇪"
CYRILLIC = "абвгджзийклмнопрстуфхцчшщъыьэюяЖЯ"
TYPOGRAPHIC = "“”‘’–—…\u00a0"

mixed_alphabet = GSM_PLAIN + GSM_EXTENSION * 3 + " " * 12 + "\n" + EMOJI + CYRILLIC + TYPOGRAPHIC
mixed = st.text(alphabet=mixed_alphabet, max_size=1200)
gsm_only = st.text(alphabet=GSM_PLAIN + GSM_EXTENSION * 5 + " " * 10, max_size=1200)
anything = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=600)
texts = st.one_of(mixed, gsm_only, anything)
windows = st.integers(min_value=0, max_value=60)
bits = st.sampled_from([8, 16])


def reference_cost(char: str, encoding: str) -> int:
    """Units of one character, from the independent tables."""
    if encoding == "gsm7":
        return 2 if char in ReferenceGSM.ALPHABET_EXT_INV else 1
    return 2 if ord(char) > 0xFFFF else 1


def limits(encoding: str, reference_bits: int) -> tuple[int, int]:
    header = 6 if reference_bits == 8 else 7
    if encoding == "gsm7":
        return 160, 160 - (header * 8 + 6) // 7
    return 70, (140 - header) // 2


def greedy_count(text: str, encoding: str, limit: int) -> int:
    """The fewest parts, counted character by character."""
    count, used = 1, 0
    for char in text:
        cost = reference_cost(char, encoding)
        if used + cost > limit:
            count, used = count + 1, 0
        used += cost
    return count


def check_fits(seg: Segmentation, reference_bits: int) -> None:
    single, concat = limits(seg.encoding, reference_bits)
    limit = single if seg.count == 1 else concat
    for part in seg.parts:
        expected = sum(reference_cost(c, seg.encoding) for c in part.text)
        assert part.units == expected <= limit


@settings(max_examples=300, deadline=None)
@given(texts, windows, bits)
def test_parts_join_back_to_the_input(text: str, window: int, reference_bits: int) -> None:
    seg = split_text(text, split_window=window, reference_bits=reference_bits)
    assert "".join(p.text for p in seg.parts) == text
    assert not seg.truncated


@settings(max_examples=300, deadline=None)
@given(texts, windows, bits)
def test_every_part_fits_its_limit(text: str, window: int, reference_bits: int) -> None:
    check_fits(split_text(text, split_window=window, reference_bits=reference_bits), reference_bits)


@settings(max_examples=300, deadline=None)
@given(texts, windows)
def test_word_splits_never_add_parts(text: str, window: int) -> None:
    seg = split_text(text, split_window=window)
    single, concat = limits(seg.encoding, 8)
    total = sum(reference_cost(c, seg.encoding) for c in text)
    assert seg.count == (1 if total <= single else greedy_count(text, seg.encoding, concat))


def without_spare_bits_artefact(decoded: str, part: Part, encoding: str) -> str:
    """smspdudecoder's text minus the one character its slicing bug adds.

    It decodes every septet the octets hold and slices the *characters* by the
    septet count (UDL).  When the last octet has 7 spare bits (UDL = 8n + 7)
    and escapes make the text shorter than UDL, the spare zero bits come out
    as a trailing '@'.  The UDL we send is right; a phone reads UDL septets.
    """
    if encoding != "gsm7" or b"\x1b" not in part.data:
        return decoded
    udl = encode_user_data(part, "gsm7")[0]
    if udl % 8 == 7 and decoded == part.text + "@":
        return part.text
    return decoded


def reference_septets_to_text(septets: bytes) -> str:
    """Unpacked septets to text with the independent table; a dangling escape is an error."""
    out, escaped = [], False
    for value in septets:
        if escaped:
            out.append(ReferenceGSM.ALPHABET_EXT[value])
            escaped = False
        elif value == 0x1B:
            escaped = True
        else:
            out.append(ReferenceGSM.ALPHABET[value])
    assert not escaped, "part ends inside an escape pair"
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(texts, windows)
def test_no_part_starts_with_the_second_half_of_a_pair(text: str, window: int) -> None:
    seg = split_text(text, split_window=window)
    for part in seg.parts:
        if seg.encoding == "gsm7":
            assert reference_septets_to_text(part.data) == part.text
        else:  # strict UTF-16 decoding fails on half a surrogate pair
            assert part.data.decode("utf-16-be") == part.text


@settings(max_examples=300, deadline=None)
@given(texts, st.integers(min_value=1, max_value=4), st.sampled_from(["truncate", "reject"]))
def test_maxmsgs_caps_the_parts_and_keeps_the_encoding(text: str, maxmsgs: int, overlength: str) -> None:
    full = split_text(text)
    if overlength == "reject" and full.count > maxmsgs:
        with pytest.raises(MessageTooLong):
            split_text(text, maxmsgs=maxmsgs, overlength="reject")
        return
    seg = split_text(text, maxmsgs=maxmsgs, overlength=overlength)  # type: ignore[arg-type]
    assert seg.encoding == full.encoding
    assert seg.count == min(maxmsgs, full.count)
    assert seg.needed == full.count
    check_fits(seg, 8)
    if seg.truncated:
        marker = "..." if seg.encoding == "gsm7" else "…"
        assert seg.parts[-1].text.endswith(marker)
        kept = "".join(p.text for p in seg.parts)[: -len(marker)]
        assert text.startswith(kept)
    else:
        assert "".join(p.text for p in seg.parts) == text


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(min_value=0, max_value=255), bits)
def test_smspdudecoder_reads_our_pdus_back(text: str, reference: int, reference_bits: int) -> None:
    seg = split_text(text, reference=reference, reference_bits=reference_bits)
    for seq, part in enumerate(seg.parts, start=1):
        pdu = encode_submit_pdu("+15551234567", part, seg.encoding).hex().upper()
        decoded = SMSSubmit.decode(StringIO(pdu))
        assert without_spare_bits_artefact(decoded["user_data"]["data"], part, seg.encoding) == part.text
        if seg.count > 1:
            element = decoded["user_data"]["header"]["elements"][0]["data"]
            assert element == {"reference": reference, "parts_count": seg.count, "part_number": seq}
