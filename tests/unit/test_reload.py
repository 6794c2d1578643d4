"""What a SIGHUP applies from a new configuration, and what needs a restart (mailsms.reload)."""

from __future__ import annotations

import dataclasses

from mailsms.config import parse
from mailsms.reload import merge

BASE = """
[server]
lmtp_listen = "127.0.0.1:2424"
max_recipients = 100

[queue]
minimal_backoff_time = "300s"

[[gateway]]
id = "a"
type = "fake"
weight = 1

[[gateway]]
id = "b"
type = "fake"
"""


def test_rules_policy_queue_and_routing_keys_apply_at_once() -> None:
    running = parse(BASE)
    new = parse(
        BASE.replace('minimal_backoff_time = "300s"', 'minimal_backoff_time = "60s"')
        .replace("max_recipients = 100", "max_recipients = 5")
        .replace("weight = 1", "weight = 7\nbreaker_threshold = 2")
        + '\n[[route]]\nname = "uk"\nnumber = "\\\\+44.*"\ngateway = "b"\n'
    )
    merged, kept = merge(running, new)
    assert kept == []
    assert merged.queue.minimal_backoff_time == 60
    assert merged.server.max_recipients == 5
    assert (merged.gateways[0].weight, merged.gateways[0].breaker_threshold) == (7, 2)
    assert [r.name for r in merged.routes] == ["uk"]


def test_listeners_state_and_gateway_changes_wait_for_a_restart() -> None:
    running = parse(BASE)
    new = parse(
        BASE.replace('lmtp_listen = "127.0.0.1:2424"', 'lmtp_listen = "127.0.0.1:2525"')
        .replace('id = "b"', 'id = "c"')
        .replace("max_recipients = 100", "max_recipients = 5")
        + '\n[state]\ndir = "/elsewhere"\n'
    )
    merged, kept = merge(running, new)
    assert kept == ["server", "state", "gateway"]
    assert merged.server.lmtp_listen == running.server.lmtp_listen
    assert merged.server.max_recipients == 5  # read at each RCPT: it still applies
    assert merged.state == running.state
    assert merged.gateways == running.gateways


def test_an_unchanged_file_changes_nothing() -> None:
    running = parse(BASE)
    merged, kept = merge(running, parse(BASE))
    assert kept == []
    assert merged == dataclasses.replace(running)
