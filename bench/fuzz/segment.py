"""Harness: the segmenter and the GSM 03.38 / PDU codec (a mail's text in; a modem's PDUs in)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from bench.fuzz.common import fuzz, replay

WHEN = 1_700_000_000.0


def load() -> Callable[[bytes], None]:
    from mailsms.errors import MessageTooLong
    from mailsms.segment import EncodingChoice, split_text
    from mailsms.segment.pdu_deliver import decode_deliver_pdu, decode_status_report_pdu, encode_deliver_pdu

    def one_input(data: bytes) -> None:
        if len(data) < 2:
            return
        mode, window = data[0], data[1] % 61
        if mode & 0x80:  # the bytes are a PDU a modem sent
            for decode in (decode_deliver_pdu, decode_status_report_pdu):
                with contextlib.suppress(ValueError):
                    decode(data[2:])
            return
        text = data[2:].decode("utf-8", "replace")
        bits = 16 if mode & 1 else 8
        encoding: EncodingChoice = "ucs2" if mode & 2 else "auto"
        try:
            seg = split_text(text, encoding=encoding, reference=7, reference_bits=bits, split_window=window)
        except MessageTooLong:
            return  # over 255 parts without maxmsgs: the documented refusal
        assert "".join(part.text for part in seg.parts) == text, "parts do not re-join to the text"
        assert not seg.truncated
        header = 6 if bits == 8 else 7
        single, concat = (160, 160 - (header * 8 + 6) // 7) if seg.encoding == "gsm7" else (70, (140 - header) // 2)
        limit = single if seg.count == 1 else concat
        for part in seg.parts:
            assert part.units <= limit, f"a part of {part.units} units over {limit}"
            decoded = decode_deliver_pdu(encode_deliver_pdu("+15551234567", part, seg.encoding, timestamp=WHEN))
            assert (decoded.udh, decoded.data) == (part.udh, part.data), "the PDU does not decode back"

    return one_input


if __name__ == "__main__":
    if sys.argv[1:2] == ["--replay"]:
        replay(load(), sys.argv[2:])
    else:
        fuzz(load)
