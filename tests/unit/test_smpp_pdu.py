"""The SMPP PDU codec: round trips, the exact bytes of known PDUs, and nothing but PduError from bad input."""

from __future__ import annotations

import contextlib

import pytest
import smpp34
from hypothesis import given
from hypothesis import strategies as st

from transports import smpp_pdu as p

c_strings = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=20)
octets = st.integers(0, 255)


ascii_strings = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=20)


def short_messages(addresses: st.SearchStrategy[str] = c_strings) -> st.SearchStrategy[p.ShortMessage]:
    return st.builds(
        p.ShortMessage,
        source_addr=addresses,
        destination_addr=addresses,
        short_message=st.binary(max_size=254),
        service_type=st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=5),
        source_addr_ton=octets,
        source_addr_npi=octets,
        dest_addr_ton=octets,
        dest_addr_npi=octets,
        esm_class=octets,
        protocol_id=octets,
        priority_flag=octets,
        schedule_delivery_time=st.text(st.characters(min_codepoint=48, max_codepoint=57), max_size=16),
        validity_period=st.text(st.characters(min_codepoint=48, max_codepoint=57), max_size=16),
        registered_delivery=octets,
        replace_if_present_flag=octets,
        data_coding=octets,
        sm_default_msg_id=octets,
        tlvs=st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=4).map(tuple),
    )


@given(short_messages())
def test_submit_and_deliver_bodies_round_trip(sm: p.ShortMessage) -> None:
    assert p.decode_sm(p.encode_sm(sm)) == sm


@given(st.builds(p.Bind, system_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=15),
                 password=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=8),
                 system_type=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
                 interface_version=octets, addr_ton=octets, addr_npi=octets))  # fmt: skip
def test_bind_bodies_round_trip(bind: p.Bind) -> None:
    assert p.decode_bind(p.encode_bind(bind)) == bind


@given(st.lists(st.builds(p.Pdu, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                          st.integers(0, 2**32 - 1), st.binary(max_size=300)), max_size=5),
       st.integers(1, 64))  # fmt: skip
def test_frames_come_out_whole_however_the_stream_is_cut(pdus: list[p.Pdu], chunk: int) -> None:
    wire = b"".join(p.encode(pdu) for pdu in pdus)
    buffer = bytearray()
    frames: list[bytes] = []
    for start in range(0, len(wire), chunk):
        buffer += wire[start : start + chunk]
        frames += p.split_frames(buffer)
    assert [p.decode(frame) for frame in frames] == pdus
    assert not buffer


def test_a_known_submit_sm_is_encoded_byte_for_byte() -> None:
    sm = p.ShortMessage("mailsms", "15551234567", b"hi", source_addr_ton=5, dest_addr_ton=1, dest_addr_npi=1,
                        registered_delivery=1)  # fmt: skip
    wire = p.encode(p.Pdu(p.SUBMIT_SM, 0, 7, p.encode_sm(sm)))
    expected = (
        "00000035" "00000004" "00000000" "00000007"  # header: length 53
        "00" "0500" "6d61696c736d7300" "0101" "313535353132333435363700"
        "000000" "00" "00" "01000000" "02" "6869"
    )  # fmt: skip
    assert wire.hex() == expected


@given(short_messages(ascii_strings))  # smpp34 reads C-strings as UTF-8
def test_smpp34s_independent_codec_reads_our_submit_sm_alike(sm: p.ShortMessage) -> None:
    wire = p.encode(p.Pdu(p.SUBMIT_SM, 0, 9, p.encode_sm(sm)))
    theirs = smpp34.decode(wire)
    assert isinstance(theirs, smpp34.SubmitSm)
    seen = (theirs.source_addr, theirs.destination_addr, theirs.short_message, theirs.esm_class,
            theirs.data_coding, theirs.registered_delivery, [(t.tag, t.value) for t in theirs.tlvs])  # fmt: skip
    assert seen == (sm.source_addr, sm.destination_addr, sm.short_message, sm.esm_class, sm.data_coding,
                    sm.registered_delivery, list(sm.tlvs))  # fmt: skip


def test_we_read_smpp34s_deliver_sm_alike() -> None:
    theirs = smpp34.DeliverSm("447700900123", "mailsms", bytes.fromhex("0500030a0201") + "hé".encode("utf-16-be"),
                              source_addr_ton=1, esm_class=0x40, data_coding=8,
                              tlvs=[smpp34.Tlv(0x001E, b"abc\x00")], sequence_number=5)  # fmt: skip
    pdu = p.decode(theirs.encode())
    sm = p.decode_sm(pdu.body)
    assert (pdu.command_id, pdu.sequence) == (p.DELIVER_SM, 5)
    assert (sm.source_addr, sm.source_addr_ton, sm.esm_class, sm.data_coding) == ("447700900123", 1, 0x40, 8)
    assert sm.short_message == theirs.short_message and sm.tlvs == ((0x001E, b"abc\x00"),)


def test_bind_transceiver_carries_version_3_4() -> None:
    body = p.encode_bind(p.Bind("esme", "secret", "VMA"))
    assert body == b"esme\x00secret\x00VMA\x00\x34\x00\x00\x00"


def test_tlvs_are_found_by_tag() -> None:
    body = p.encode_sm(p.ShortMessage("1", "2", tlvs=((p.TLV_RECEIPTED_MESSAGE_ID, b"ab\x00"), (0x0427, b"\x02"))))
    sm = p.decode_sm(body)
    assert p.tlv(sm.tlvs, p.TLV_MESSAGE_STATE) == b"\x02"
    assert p.tlv(sm.tlvs, 0x1234) is None


def test_message_payload_stands_in_for_an_empty_short_message() -> None:
    sm = p.ShortMessage("1", "2", b"", tlvs=((p.TLV_MESSAGE_PAYLOAD, b"long text"),))
    assert p.payload(sm) == b"long text"


@pytest.mark.parametrize("length", [0, 15, p.MAX_PDU + 1])
def test_a_length_that_cannot_be_right_is_refused(length: int) -> None:
    with pytest.raises(p.PduError):
        p.frame_length(length.to_bytes(4, "big") + bytes(12))


def test_a_response_answers_with_the_same_sequence() -> None:
    answer = p.response(p.Pdu(p.DELIVER_SM, 0, 42, b"x"), p.ESME_RX_T_APPN)
    assert (answer.command_id, answer.status, answer.sequence) == (0x80000005, 0x64, 42)


def test_a_short_message_over_254_octets_is_refused() -> None:
    with pytest.raises(p.PduError) as caught:
        p.encode_sm(p.ShortMessage("1", "2", bytes(255)))
    assert caught.value.status == p.ESME_RINVMSGLEN


@given(st.binary(max_size=400))
def test_any_bytes_as_a_body_raise_only_pdu_error(data: bytes) -> None:
    for decoder in (p.decode_sm, p.decode_bind, p.decode_message_id):
        with contextlib.suppress(p.PduError):
            decoder(data)


@given(st.binary(max_size=400), st.integers(1, 50))
def test_any_byte_stream_raises_only_pdu_error(data: bytes, chunk: int) -> None:
    buffer = bytearray()
    try:
        for start in range(0, len(data), chunk):
            buffer += data[start : start + chunk]
            for frame in p.split_frames(buffer):
                p.decode(frame)
    except p.PduError:
        pass


@given(short_messages(), st.integers(0, 200), st.binary(min_size=1, max_size=3))
def test_a_mangled_body_raises_only_pdu_error(sm: p.ShortMessage, cut: int, junk: bytes) -> None:
    body = p.encode_sm(sm)
    for mangled in (body[:cut], body[:cut] + junk + body[cut:]):
        with contextlib.suppress(p.PduError):
            p.decode_sm(mangled)
