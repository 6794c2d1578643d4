"""PDU helpers: septet packing, user data with UDH fill bits, SMS-SUBMIT, checked by smspdudecoder."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from smspdudecoder.codecs import GSM as ReferenceGSM
from smspdudecoder.fields import SMSSubmit

from mailsms.segment import Part, split_binary, split_text
from mailsms.segment.pdu import (
    dcs_encoding,
    decode_submit_pdu,
    decode_user_data,
    encode_submit_pdu,
    encode_user_data,
    pack_septets,
    unpack_septets,
)
from tests.unit.test_segment_properties import without_spare_bits_artefact


def reference_decode(pdu: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = SMSSubmit.decode(StringIO(pdu.hex().upper()))
    return decoded


def test_pack_septets_matches_the_textbook_example() -> None:
    assert pack_septets(b"hellohello").hex().upper() == "E8329BFD4697D9EC37"


def test_pack_septets_matches_the_independent_packer() -> None:
    text = "How are you? 2 € par mois"
    septets = bytes(
        [ReferenceGSM.ALPHABET.index(c) if c in ReferenceGSM.ALPHABET else 0x1B for c in text.replace("€", "\x1b")]
    ).replace(b"\x1b", b"\x1b\x65")
    assert pack_septets(septets).hex().upper() == ReferenceGSM.encode(text)


def test_unpack_septets_inverts_pack_with_fill_bits() -> None:
    septets = bytes(range(0, 128, 3))
    for fill in range(7):
        assert unpack_septets(pack_septets(septets, fill), len(septets), fill) == septets


def test_unpack_septets_refuses_too_few_octets() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        unpack_septets(b"\x00", 2)


def test_153_septets_with_udh_fill_140_octets() -> None:
    part = split_text("x" * 306).parts[0]
    udl, ud = encode_user_data(part, "gsm7")
    assert (udl, len(ud)) == (160, 140)


def test_152_septets_with_16_bit_udh_fill_140_octets() -> None:
    part = split_text("x" * 306, reference_bits=16).parts[0]
    udl, ud = encode_user_data(part, "gsm7")
    assert (udl, len(ud)) == (160, 140)


def test_67_ucs2_units_with_udh_fill_140_octets() -> None:
    part = split_text("ж" * 134).parts[0]
    assert encode_user_data(part, "ucs2") == (140, part.udh + part.data)


@pytest.mark.parametrize(
    ("dcs", "encoding"),
    [(0x00, "gsm7"), (0x04, "binary"), (0x08, "ucs2"), (0xF0, "gsm7"), (0xF5, "binary"), (0x18, "ucs2")],
)
def test_dcs_names_the_alphabet(dcs: int, encoding: str) -> None:
    assert dcs_encoding(dcs) == encoding


def test_single_gsm_part_decodes_with_smspdudecoder() -> None:
    part = split_text("Hello {world} €5").parts[0]
    decoded = reference_decode(encode_submit_pdu("+15551234567", part, "gsm7"))
    assert decoded["recipient"]["number"] == "15551234567"
    assert decoded["recipient"]["toa"]["ton"] == "international"
    assert decoded["user_data"]["data"] == "Hello {world} €5"
    assert decoded["header"]["udhi"] is False


def test_concatenated_gsm_parts_decode_with_smspdudecoder() -> None:
    seg = split_text("a{b}c " * 60, reference=0x77)
    for seq, part in enumerate(seg.parts, start=1):
        decoded = reference_decode(encode_submit_pdu("+4917012345", part, "gsm7"))
        assert without_spare_bits_artefact(decoded["user_data"]["data"], part, "gsm7") == part.text
        element = decoded["user_data"]["header"]["elements"][0]["data"]
        assert element == {"reference": 0x77, "parts_count": seg.count, "part_number": seq}


def test_concatenated_ucs2_parts_with_16_bit_reference_decode_with_smspdudecoder() -> None:
    seg = split_text("Привет 😀 " * 20, reference=0xABCD, reference_bits=16)
    for part in seg.parts:
        decoded = reference_decode(encode_submit_pdu("12345", part, "ucs2"))
        assert decoded["user_data"]["data"] == part.text
        assert decoded["user_data"]["header"]["elements"][0]["data"]["reference"] == 0xABCD


def test_binary_part_decodes_with_smspdudecoder() -> None:
    part = split_binary(b"\x00\xff\x10", udh=bytes.fromhex("0605040b8423f0")).parts[0]
    decoded = reference_decode(encode_submit_pdu("+15551234567", part, "binary", dcs=0x04))
    assert decoded["user_data"]["data"] == b"\x00\xff\x10"
    assert decoded["user_data"]["header"]["elements"][0]["iei"] == 0x05


def test_submit_flags_and_validity() -> None:
    part = Part("hi", b"", 2, b"hi")
    pdu = encode_submit_pdu("+1555", part, "gsm7", status_report=True, reject_duplicates=True, validity=0xA7)
    decoded = reference_decode(pdu)
    assert decoded["header"]["srr"] is True
    assert decoded["header"]["rd"] is True
    assert decoded["vp"] == 0xA7
    assert decoded["user_data"]["data"] == "hi"


def test_own_decoder_reads_back_what_the_encoder_wrote() -> None:
    seg = split_text("x€" * 100, reference=5)
    for part in seg.parts:
        decoded = decode_submit_pdu(encode_submit_pdu("+15551234567", part, "gsm7", message_reference=9))
        assert (decoded.destination, decoded.message_reference, decoded.udh, decoded.text) == (
            "+15551234567",
            9,
            part.udh,
            part.text,
        )


def test_smspdudecoder_reads_spare_bits_as_at_sign_only_where_we_expect() -> None:
    part = split_text("00000{").parts[0]  # 7 septets: the last octet has 7 spare bits
    assert encode_user_data(part, "gsm7")[0] == 7
    decoded = reference_decode(encode_submit_pdu("+1555", part, "gsm7"))["user_data"]["data"]
    assert decoded == "00000{@"
    assert decode_submit_pdu(encode_submit_pdu("+1555", part, "gsm7")).text == "00000{"


def test_own_decoder_reads_ucs2_and_binary() -> None:
    text_part = split_text("ж😀").parts[0]
    assert decode_submit_pdu(encode_submit_pdu("123", text_part, "ucs2")).text == "ж😀"
    data_part = split_binary(b"\x01\x02").parts[0]
    decoded = decode_submit_pdu(encode_submit_pdu("123", data_part, "binary"))
    assert (decoded.text, decoded.data) == (None, b"\x01\x02")


def test_address_refuses_letters() -> None:
    with pytest.raises(ValueError, match="semi-octet"):
        encode_submit_pdu("+1555CALLME", Part("", b"", 0, b""), "gsm7")


def test_decode_user_data_refuses_a_udh_longer_than_the_data() -> None:
    with pytest.raises(ValueError, match="UDH longer"):
        decode_user_data(3, b"\x09\x00\x03", "binary", True)
