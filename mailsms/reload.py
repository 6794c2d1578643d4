"""SIGHUP: which parts of a new configuration apply to the running daemon (pure).

A new file is validated first (a bad one keeps the old configuration and the
log says why).  What the running components read at each use applies at once:
address and segmentation rules, the queue's retry settings and caps, the
composer, policy, interception scripts, routes, groups, fallbacks and the
gateways' routing keys (weight, rate, breaker, prefixes).  What is wired into
open sockets, files or tasks needs a restart and is kept as it was: the
listeners and TLS, the state directory and the store, the HTTP API, the milter, mail-out,
inbound handling and the reply log, and the gateways themselves (ids, types,
their options and the nodes that talk to them).
"""

from __future__ import annotations

import dataclasses

from mailsms.config import Config, GatewayConfig

# Sections that need a restart to change, by their Config field names.
RESTART_SECTIONS = ("server", "state", "store", "web", "milter", "mailout", "inbound", "replylog")
# A gateway's keys that apply without a restart.
ROUTING_KEYS = ("weight", "concurrency", "rate", "breaker_threshold", "breaker_reset", "prefixes")
# server keys the handler reads at each use: these reload; the rest needs a restart.
SERVER_LIVE_KEYS = ("message_size_limit", "max_recipients", "trusted_mta", "shutdown_timeout")


def merge(running: Config, new: Config) -> tuple[Config, list[str]]:
    """The configuration to run with after a reload, and the keys that changed but need a restart."""
    kept: list[str] = []
    changes: dict[str, object] = {}
    for section in RESTART_SECTIONS:
        old_value, new_value = getattr(running, section), getattr(new, section)
        if section == "server":
            live = {k: getattr(new_value, k) for k in SERVER_LIVE_KEYS}
            new_value = dataclasses.replace(new_value, **{k: getattr(old_value, k) for k in SERVER_LIVE_KEYS})
            if new_value != old_value:
                kept.append("server")
            changes["server"] = dataclasses.replace(old_value, **live)
            continue
        if new_value != old_value:
            kept.append(section)
        changes[section] = old_value
    gateways, same = _gateways(running.gateways, new.gateways)
    if not same:
        kept.append("gateway")
    changes["gateways"] = gateways
    merged = dataclasses.replace(new, **changes)  # type: ignore[arg-type]
    return merged, kept


def _gateways(
    running: tuple[GatewayConfig, ...], new: tuple[GatewayConfig, ...]
) -> tuple[tuple[GatewayConfig, ...], bool]:
    """The running gateways with the new routing keys when the set of gateways is otherwise the same;
    else the running ones unchanged (False: a restart is needed)."""

    def fixed(gateway: GatewayConfig) -> GatewayConfig:
        return dataclasses.replace(gateway, **{k: getattr(running[0], k) for k in ROUTING_KEYS})

    if len(running) != len(new) or any(fixed(a) != fixed(b) for a, b in zip(running, new, strict=True)):
        return running, False
    updated = tuple(
        dataclasses.replace(old, **{k: getattr(fresh, k) for k in ROUTING_KEYS})
        for old, fresh in zip(running, new, strict=True)
    )
    return updated, True
