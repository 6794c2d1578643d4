"""Harness: the ``/inbound`` and ``/dlr`` webhook parsers (query string or form, JSON), as a gateway calls them."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

from bench.fuzz.common import fuzz, replay

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def load() -> Callable[[bytes], None]:
    from mailsms.dlr import parse_dlr
    from mailsms.errors import BadContent, BadRequest
    from mailsms.form import FormFields, json_pairs, parse_urlencoded
    from mailsms.mo import MAX_ADDRESS, MAX_TEXT, parse_mo
    from mailsms.segment.udh import concatenation, parse_udh

    def fields_of(data: bytes) -> FormFields | None:
        try:
            if data[:1] == b"{":  # a JSON body (the daemon maps a JSON error to 400 itself)
                try:
                    document = json.loads(data)
                except (ValueError, RecursionError):
                    return None
                return FormFields(json_pairs(document))
            # a query string (ASCII only: aiohttp refuses others) or a form body (strict UTF-8)
            return FormFields(parse_urlencoded(data.decode("utf-8")))
        except (BadRequest, UnicodeDecodeError):
            return None

    def one_input(data: bytes) -> None:
        fields = fields_of(data)
        if fields is None:
            return
        try:
            mo = parse_mo(fields, "gw", id="ID", received=0.0)
        except (BadRequest, BadContent):
            pass
        else:
            for address in (mo.sender, mo.to):
                assert not CONTROL.search(address), repr(address)
                assert len(address) <= MAX_ADDRESS, repr(address)
            assert mo.sender
            assert len(mo.text) <= MAX_TEXT
            assert mo.coding == 1 or "\x00" not in mo.text
            if mo.udh:
                parse_udh(mo.udh)
                concat = concatenation(mo.udh)
                assert concat is None or 1 <= concat.seq <= concat.total
        try:
            update = parse_dlr(fields)
        except BadRequest:
            return
        assert update.message_id
        assert not CONTROL.search(update.message_id), repr(update.message_id)
        assert not CONTROL.search(update.reason), repr(update.reason)
        assert len(update.reason) <= 200
        assert update.state in ("delivered", "failed", "intermediate")

    return one_input


if __name__ == "__main__":
    if sys.argv[1:2] == ["--replay"]:
        replay(load(), sys.argv[2:])
    else:
        fuzz(load)
