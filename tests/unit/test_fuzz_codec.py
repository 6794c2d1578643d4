"""Properties of the GSM 03.38 septet codec, septet packing and UDH parsing on arbitrary input.

The segmenter's own properties (parts re-join, fit their limit, decode with
smspdudecoder) are in test_segment_properties.py; these are the codec
pieces under them, which also read what a modem or an SMSC sends.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsms.segment import gsm
from mailsms.segment.pdu import decode_user_data, pack_septets, unpack_septets
from mailsms.segment.udh import concatenation, parse_hex, parse_udh, without_concatenation

FEW = settings(max_examples=200, deadline=None)
gsm_texts = st.text(st.sampled_from(sorted(gsm.GSM_CHARACTERS)), max_size=200)


@FEW
@given(gsm_texts)
def test_every_gsm_text_encodes_and_decodes_back(text: str) -> None:
    septets = gsm.to_septets(text)
    assert septets is not None
    assert len(septets) == gsm.septet_count(text)
    assert all(ord(c) < 128 for c in septets)
    assert gsm.decode_septets(septets.encode("ascii")) == text


@FEW
@given(st.text(max_size=100))
def test_is_gsm_and_the_encoder_agree_on_any_text(text: str) -> None:
    assert gsm.is_gsm(text) == (gsm.to_septets(text) is not None)
    assert gsm.is_gsm(gsm.replace_non_gsm(text))
    assert all(not gsm.is_gsm(c) for c in gsm.non_gsm_characters(text))


@FEW
@given(st.lists(st.integers(0, 127), max_size=200).map(bytes))
def test_any_septets_decode_to_gsm_text(septets: bytes) -> None:
    """What a modem or an SMSC sends decodes to text the encoder can carry again.

    Septet values only (0..127): every caller unpacks or masks first (values with the high bit set are
    outside the function's contract; 0x9B, ESC with the high bit, would raise KeyError).
    """
    text = gsm.decode_septets(septets)
    assert gsm.is_gsm(text)
    assert len(text) <= len(septets) + 1


@FEW
@given(st.lists(st.integers(0, 127), max_size=200).map(bytes), st.integers(0, 6))
def test_septets_pack_and_unpack_back_with_any_fill(septets: bytes, fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill) == septets


@FEW
@given(st.binary(max_size=160), st.integers(0, 255), st.integers(0, 6))
def test_unpacking_more_than_is_there_raises_value_error_only(packed: bytes, count: int, fill: int) -> None:
    if fill + 7 * count > 8 * len(packed):
        with pytest.raises(ValueError):
            unpack_septets(packed, count, fill)
    else:
        assert len(unpack_septets(packed, count, fill)) == count


@FEW
@given(st.binary(max_size=160))
def test_any_udh_parses_exactly_or_raises_value_error(udh: bytes) -> None:
    try:
        elements = parse_udh(udh)
    except ValueError:
        return
    # Nothing read past the declared length, nothing skipped: the elements rebuild the header.
    assert bytes([udh[0]]) + b"".join(bytes([iei, len(data)]) + data for iei, data in elements) == udh
    concat = concatenation(udh)
    if concat is not None:
        assert 0 <= concat.reference < (1 << concat.bits)
    rest = without_concatenation(udh)
    assert len(rest) <= len(udh) - 1


@FEW
@given(st.binary(max_size=40), st.integers(0, 255), st.sampled_from(["gsm7", "ucs2", "binary"]), st.booleans())
def test_any_user_data_decodes_within_its_bounds_or_raises_value_error(
    ud: bytes, udl: int, encoding: str, udhi: bool
) -> None:
    try:
        header, data = decode_user_data(udl, ud, encoding, udhi)  # type: ignore[arg-type]
    except ValueError:
        return
    assert ud.startswith(header)
    if header:
        parse_udh(header)
    if encoding == "gsm7":
        assert all(s < 128 for s in data) and len(data) <= udl
    else:
        assert len(header) + len(data) == udl <= len(ud)


@FEW
@given(st.text(alphabet=st.sampled_from(list("0123456789abcdefABCDEF \tgz\n")), max_size=60))
def test_hex_parses_to_its_bytes_or_raises_value_error(value: str) -> None:
    try:
        parsed = parse_hex(value)
    except ValueError:
        return
    assert parsed.hex() == "".join(value.split()).lower()
