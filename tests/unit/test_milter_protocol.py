"""The milter wire format: recorded byte sequences, and a reader that fails only with its own error."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milter import protocol as p

# OPTNEG as Postfix 3 sends it with milter_protocol = 6: version 6, all actions, all protocol steps.
POSTFIX_OPTNEG = b"\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff"


def test_reader_splits_recorded_optneg():
    [packet] = p.PacketReader().feed(POSTFIX_OPTNEG)
    assert packet.command == p.SMFIC_OPTNEG
    assert p.parse_optneg(packet.data) == p.Options(6, 0x1FF, 0x1FFFFF)


def test_reader_waits_for_the_rest_of_a_packet_fed_byte_by_byte():
    reader = p.PacketReader()
    stream = POSTFIX_OPTNEG + p.encode(p.SMFIC_QUIT)
    packets = [packet for byte in stream for packet in reader.feed(bytes([byte]))]
    assert [packet.command for packet in packets] == [p.SMFIC_OPTNEG, p.SMFIC_QUIT]
    reader.close()


def test_reader_rejects_oversized_length_before_reading_it():
    with pytest.raises(p.MilterProtocolError, match="exceeds"):
        p.PacketReader().feed(b"\x7f\xff\xff\xffO")


def test_reader_rejects_zero_length():
    with pytest.raises(p.MilterProtocolError, match="length 0"):
        p.PacketReader().feed(b"\x00\x00\x00\x00")


def test_truncated_packet_at_end_of_stream_is_an_error():
    reader = p.PacketReader()
    assert reader.feed(POSTFIX_OPTNEG[:7]) == []
    with pytest.raises(p.MilterProtocolError, match="inside a packet"):
        reader.close()


def test_negotiate_answers_version_6_with_only_offered_bits():
    answer = p.negotiate(p.Options(6, p.SMFIF_ADDHDRS, 0x1FFFFF), p.SMFIF_CHGHDRS | p.SMFIF_ADDHDRS, p.SMFIP_NOBODY)
    assert answer == p.Options(6, p.SMFIF_ADDHDRS, p.SMFIP_NOBODY)
    assert p.encode_optneg(answer) == b"\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\x10"


def test_simple_replies_are_one_byte_packets():
    assert p.continue_() == b"\x00\x00\x00\x01c"
    assert p.accept() == b"\x00\x00\x00\x01a"
    assert p.reject() == b"\x00\x00\x00\x01r"
    assert p.tempfail() == b"\x00\x00\x00\x01t"


def test_replycode_carries_the_enhanced_code_nul_terminated():
    assert p.replycode("553 5.1.3 bad maxmsgs") == b"\x00\x00\x00\x17y553 5.1.3 bad maxmsgs\x00"


def test_replycode_doubles_percent_signs():
    assert p.replycode("550 5.7.1 100% premium").endswith(b"100%% premium\x00")


@pytest.mark.parametrize("reply", ["250 2.1.5 ok", "553 bad", "", "553 5.1.3"])
def test_replycode_refuses_what_the_mta_would_not_take(reply):
    with pytest.raises(ValueError):
        p.replycode(reply)


def test_chgheader_names_the_header_and_its_index():
    assert p.chgheader("To", 1, "x") == b"\x00\x00\x00\x0am\x00\x00\x00\x01To\x00x\x00"


def test_macros_recorded_from_postfix():
    data = b"R{rcpt_addr}\x00sms:+1555@x\x00i\x004Q1\x00"
    assert p.parse_macros(data) == (b"R", {"{rcpt_addr}": "sms:+1555@x", "i": "4Q1"})


def test_rcpt_arguments_keep_brackets_and_take_parameters():
    assert p.parse_address_args(b"<a@b>\x00NOTIFY=NEVER\x00") == ("<a@b>", {"NOTIFY": "NEVER"})


@pytest.mark.parametrize("data", [b"", b"no nul", b"To\x00"])
def test_malformed_header_is_a_protocol_error(data):
    with pytest.raises(p.MilterProtocolError):
        p.parse_header(data)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("inet:127.0.0.1:8891", ("inet", "127.0.0.1", 8891)), ("unix:/run/m.sock", ("unix", "/run/m.sock", 0)),
     ("inet:[::1]:8891", ("inet", "::1", 8891))],
)  # fmt: skip
def test_socket_spec_in_postfix_notation(spec, parsed):
    assert p.parse_socket(spec) == parsed


@pytest.mark.parametrize("spec", ["", "127.0.0.1:8891", "inet:host", "tcp:h:1", "unix:"])
def test_bad_socket_spec(spec):
    with pytest.raises(ValueError):
        p.parse_socket(spec)


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_reader_and_decoders_raise_only_their_own_error(chunks):
    reader = p.PacketReader(max_packet=256)
    try:
        for chunk in chunks:
            for packet in reader.feed(chunk):
                for decode in (p.parse_optneg, p.parse_macros, p.parse_header, p.parse_address_args):
                    with contextlib.suppress(p.MilterProtocolError):
                        decode(packet.data)
        reader.close()
    except p.MilterProtocolError:
        pass


@given(st.lists(st.tuples(st.sampled_from(b"ABCDHKLMNOQRTU"), st.binary(max_size=40)), max_size=10))
def test_encoded_packets_read_back(packets):
    stream = b"".join(p.encode(bytes([command]), data) for command, data in packets)
    assert p.PacketReader().feed(stream) == [p.Packet(bytes([c]), d) for c, d in packets]
