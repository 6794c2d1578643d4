"""Properties of the milter packet reader on arbitrary streams: it never reads past a declared length.

The existing properties (test_milter_protocol.py) say the reader raises only
its own error and reads whole encoded streams back; these say how it cuts a
stream: at exactly the declared lengths, whatever the chunking, and a cut or
oversized packet is refused instead of being guessed at.
"""

from __future__ import annotations

import contextlib
import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milter import protocol as p

FEW = settings(max_examples=200, deadline=None)
MAX = 256
packets = st.lists(st.tuples(st.binary(min_size=1, max_size=1), st.binary(max_size=60)), max_size=8)


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    """``stream`` in chunks at ``points`` (sorted, de-duplicated)."""
    edges = [0, *sorted({min(x, len(stream)) for x in points}), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


def reference_split(stream: bytes) -> tuple[list[p.Packet], bool, bytes]:
    """The milter framing read the slow way: (packets, whether a bad length stops it, what is left)."""
    found: list[p.Packet] = []
    pos = 0
    while len(stream) - pos >= 4:
        (length,) = struct.unpack_from(">I", stream, pos)
        if length == 0 or length > MAX:
            return found, True, stream[pos:]
        if len(stream) - pos - 4 < length:
            break
        found.append(p.Packet(stream[pos + 4 : pos + 5], stream[pos + 5 : pos + 4 + length]))
        pos += 4 + length
    return found, False, stream[pos:]


@FEW
@given(packets, st.binary(max_size=30), st.lists(st.integers(0, 600), max_size=10))
def test_packets_come_out_at_their_declared_lengths_however_the_stream_is_cut(
    sent: list[tuple[bytes, bytes]], tail: bytes, points: list[int]
) -> None:
    stream = b"".join(p.encode(command, data) for command, data in sent) + tail
    expected, refused, rest = reference_split(stream)
    assert expected[: len(sent)] == [p.Packet(c, d) for c, d in sent]
    reader = p.PacketReader(max_packet=MAX)
    got: list[p.Packet] = []
    try:
        for chunk in cut(stream, points):
            got += reader.feed(chunk)
    except p.MilterProtocolError:
        assert refused, "a stream with only good lengths was refused"
        assert got == expected[: len(got)]
        return
    assert not refused, "a zero or oversized length was taken"
    assert got == expected
    if rest:
        with pytest.raises(p.MilterProtocolError):
            reader.close()
    else:
        reader.close()


@FEW
@given(st.integers(MAX + 1, 2**32 - 1), st.binary(max_size=40))
def test_an_oversized_length_is_refused_before_its_bytes_arrive(length: int, junk: bytes) -> None:
    reader = p.PacketReader(max_packet=MAX)
    with pytest.raises(p.MilterProtocolError, match="exceeds"):
        reader.feed(struct.pack(">I", length) + junk)


@FEW
@given(st.binary(max_size=80))
def test_decoders_take_any_payload_or_raise_their_own_error(data: bytes) -> None:
    for decode in (p.parse_optneg, p.parse_macros, p.parse_header, p.parse_address_args, p.split_strings):
        with contextlib.suppress(p.MilterProtocolError):
            decode(data)
