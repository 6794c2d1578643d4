"""Harness: composing the SMS text from a whole mail (MIME, charsets, HTML), as any sender can shape it."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.fuzz.common import fuzz, replay

CONTROL = "\x00\r\n\t\x1b\u200b\ufeff"


def load() -> Callable[[bytes], None]:
    from mailsms import compose as compose_module
    from mailsms.config import ComposeConfig

    configs = (
        ComposeConfig(),
        ComposeConfig(template="{from}: {subject|body|'(no text)'}", strip_quotes=False, strip_signature=False),
    )

    def one_input(data: bytes) -> None:
        if not data:
            return
        # _compose, not compose: the public function turns any exception into an empty text, hiding findings
        result = compose_module._compose(data[1:], configs[data[0] & 1], fast=bool(data[0] & 2))
        text = result.text
        assert text == text.strip(), repr(text[:80])
        assert "  " not in text, repr(text[:80])
        assert not any(char in text for char in CONTROL), repr(text[:80])
        assert len(text) <= 64 * 1024
        assert all(len(value) <= 998 for _, value in result.original_headers)

    return one_input


if __name__ == "__main__":
    if sys.argv[1:2] == ["--replay"]:
        replay(load(), sys.argv[2:])
    else:
        fuzz(load)
