"""Harness: the milter packet reader and its payload decoders, as an MTA's bytes arrive."""

from __future__ import annotations

import contextlib
import struct
import sys
from collections.abc import Callable

from bench.fuzz.common import fuzz, replay

MAX = 4096


def load() -> Callable[[bytes], None]:
    from milter import protocol as p

    decoders = (p.parse_optneg, p.parse_macros, p.parse_header, p.parse_address_args)

    def one_input(data: bytes) -> None:
        if not data:
            return
        chunk = data[0] % 64 + 1
        stream = data[1:]
        reader = p.PacketReader(max_packet=MAX)
        consumed = 0
        try:
            for start in range(0, len(stream), chunk):
                for packet in reader.feed(stream[start : start + chunk]):
                    # exactly the declared length, at exactly the next position: nothing read past it
                    (length,) = struct.unpack_from(">I", stream, consumed)
                    assert length == 1 + len(packet.data), "a packet of another length than declared"
                    declared = stream[consumed + 4 : consumed + 4 + length]
                    assert declared == packet.command + packet.data, "a packet other than the declared one"
                    consumed += 4 + length
                    for decode in decoders:
                        with contextlib.suppress(p.MilterProtocolError):
                            decode(packet.data)
            reader.close()
        except p.MilterProtocolError:
            return
        assert consumed == len(stream), "close() accepted a stream with bytes left over"

    return one_input


if __name__ == "__main__":
    if sys.argv[1:2] == ["--replay"]:
        replay(load(), sys.argv[2:])
    else:
        fuzz(load)
