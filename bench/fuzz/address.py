"""Harness: the ``sms:`` address parser (``RCPT TO`` and the milter read it from anyone who sends mail)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

from bench.fuzz.common import fuzz, replay


def load() -> Callable[[bytes], None]:
    from mailsms.address import MAX_ADDRESS_LENGTH, parse_address, redact, render_address
    from mailsms.config import AddressConfig
    from mailsms.errors import MailsmsError

    configs = (AddressConfig(), AddressConfig(sms_domains=("sms.example.com",), default_region="DE", short_codes=True))

    def one_input(data: bytes) -> None:
        if not data:
            return
        config = configs[data[0] & 1]
        text = data[1:].decode("utf-8", "replace")
        trusted = bool(data[0] & 2)
        try:
            parsed = parse_address(text, config, trusted=trusted)
        except MailsmsError as error:
            reason = error.reason
            assert reason.isascii(), repr(reason)
            assert "\n" not in reason, repr(reason)
            assert "\r" not in reason, repr(reason)
            return
        rendered = render_address(parsed)
        if len(rendered) <= MAX_ADDRESS_LENGTH:  # percent-encoding may lengthen an input near the limit
            assert parse_address(rendered, config, trusted=trusted) == parsed  # render, parse: the same value
        number = parsed.number
        assert (number.startswith("+") and number[1:].isdigit()) or number.isdigit(), number
        password = parsed.params.password
        secret = password.reveal() if password is not None else ""
        if len(secret) >= 4:
            without = dataclasses.replace(parsed, params=dataclasses.replace(parsed.params, password=None))
            if secret not in repr(without) + without.redacted():  # else it is in another field too
                shown = (repr(parsed), str(parsed), parsed.redacted(), redact(render_address(parsed)))
                assert not any(secret in each for each in shown), "a pass= value shows"

    return one_input


if __name__ == "__main__":
    if sys.argv[1:2] == ["--replay"]:
        replay(load(), sys.argv[2:])
    else:
        fuzz(load)
