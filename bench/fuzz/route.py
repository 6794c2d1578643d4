"""Harness: routing an incoming SMS by its ``#email#`` tag: never a mailbox outside ``inbound.local_domains``."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.fuzz.common import fuzz, replay

LOCAL = "mail.example.test"


def load() -> Callable[[bytes], None]:
    from replylog.route import decide, local_domain_set

    local = local_domain_set([LOCAL, "xn--mail-5qa.example"])

    def one_input(data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        route = decide(text, [], now=0.0, keep_seconds=60.0, local_domains=local, unmatched=f"pm@{LOCAL}")
        assert route.kind in ("tag", "unmatched"), route.kind
        local_part, _, domain = route.recipient.rpartition("@")
        assert domain in local, route.recipient
        assert not set(local_part) & set('%!@"\r\n\x00 '), route.recipient  # no sender-specified routing
        assert all(line.isascii() and line.isprintable() for line in route.ignored_tags), route.ignored_tags

    return one_input


if __name__ == "__main__":
    if sys.argv[1:2] == ["--replay"]:
        replay(load(), sys.argv[2:])
    else:
        fuzz(load)
