"""What every harness shares: instrumenting mailsms's packages and handing ``one_input`` to libFuzzer."""

from __future__ import annotations

import sys
from collections.abc import Callable

PACKAGES = ["mailsms", "transports", "replylog", "milter", "ndr"]


def fuzz(load: Callable[[], Callable[[bytes], None]]) -> None:
    """Import the target under coverage instrumentation (``load``), then fuzz it with libFuzzer's arguments."""
    import atheris  # type: ignore[import-untyped]

    with atheris.instrument_imports(include=PACKAGES):
        one_input = load()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


def replay(one_input: Callable[[bytes], None], paths: list[str]) -> None:
    """Run ``one_input`` on saved inputs (crash files, a corpus) without atheris."""
    for path in paths:
        with open(path, "rb") as handle:
            one_input(handle.read())
