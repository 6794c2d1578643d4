"""Harness: the SMPP PDU reader (framing, then every body decoder), as an SMSC's bytes arrive."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from bench.fuzz.common import fuzz, replay


def load() -> Callable[[bytes], None]:
    from transports import smpp_inbound
    from transports import smpp_pdu as p

    def one_input(data: bytes) -> None:
        if not data:
            return
        chunk = data[0] % 50 + 1
        buffer = bytearray()
        stream = data[1:]
        try:
            for start in range(0, len(stream), chunk):
                buffer += stream[start : start + chunk]
                for frame in p.split_frames(buffer):
                    assert p.frame_length(frame[:16]) == len(frame), "a frame of another length than declared"
                    pdu = p.decode(frame)
                    for decoder in (p.decode_sm, p.decode_bind, p.decode_message_id):
                        try:
                            decoded = decoder(pdu.body)
                        except p.PduError:
                            continue
                        if isinstance(decoded, p.ShortMessage):
                            with contextlib.suppress(ValueError):
                                smpp_inbound.incoming(decoded, "smsc")
        except p.PduError:
            pass

    return one_input


if __name__ == "__main__":
    if sys.argv[1:2] == ["--replay"]:
        replay(load(), sys.argv[2:])
    else:
        fuzz(load)
