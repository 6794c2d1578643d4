"""Which gateway takes a message now: targets, circuit breakers, weights, rates (no I/O).

A message's ``gateway`` column holds its *target*: a gateway id (pinned by
``id=``, the account or a route), a group id, or ``*`` (every gateway with a
weight, first available first).  The scheduler asks the pool, at the moment
of sending, for the target's members in the order to try them: members whose
circuit breaker is open are left out, a weighted group starts with the member
its smooth weighted round-robin picks, a priority group (and ``*``) keeps the
configured order.  A half-open breaker lets one message through as a probe.
Parts a gateway already took stay with it: the scheduler tries only
``message.via`` for a message that has one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mailsms.balance import Breaker, TokenBucket, WeightedPicker
from mailsms.config import GatewayConfig
from mailsms.routing import Router


@dataclass
class GatewayPool:
    router: Router
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic  # for rates: real time, whatever ``clock`` is
    _breakers: dict[str, Breaker] = field(default_factory=dict)
    _pickers: dict[str, WeightedPicker] = field(default_factory=dict)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for gateway in self._configured():
            if gateway.id not in self._breakers:
                self._breakers[gateway.id] = Breaker(gateway.breaker_threshold, gateway.breaker_reset, self.clock)
                self._buckets[gateway.id] = TokenBucket(gateway.rate, self.monotonic)

    def _configured(self) -> list[GatewayConfig]:
        found: list[GatewayConfig] = []
        for target in self.router.targets():
            found.extend(self.router.members(target))
        return found

    def concurrency(self, gateway: str) -> int:
        """The gateway's configured ``concurrency`` (0: not set)."""
        config = self.router.gateway(gateway)
        return config.concurrency if config is not None else 0

    def targets(self) -> tuple[str, ...]:
        return self.router.targets()

    def knows(self, gateway: str) -> bool:
        """True for a configured gateway, even one that another node talks to (its ``nodes`` key)."""
        return self.router.gateway(gateway) is not None

    def members(self, target: str) -> tuple[str, ...]:
        return tuple(g.id for g in self.router.members(target))

    def ready(self, gateway: str) -> bool:
        """True when ``gateway`` may take a message now (closed, or half-open with no probe out)."""
        breaker = self._breakers.get(gateway)
        return breaker is None or breaker.ready()

    def claimable(self, target: str) -> list[str]:
        """The members of ``target`` that may take a message now."""
        return [g for g in self.members(target) if self.ready(g)]

    def candidates(self, target: str, number: str) -> list[str]:
        """The members of ``target`` that take ``number``, ready now, in the order to try them."""
        eligible = [g.id for g in self.router.eligible(target, number)]
        ready = [g for g in eligible if self.ready(g)]
        if len(ready) < 2 or self.router.balance(target) == "priority":
            return ready
        picker = self._pickers.get(target)
        if picker is None:
            weights = {g.id: g.weight for g in self.router.members(target)}
            picker = self._pickers[target] = WeightedPicker(weights)
        first = picker.pick(ready)
        return [first, *(g for g in ready if g != first)] if first is not None else ready

    def takes(self, target: str, number: str) -> bool:
        """False when no member of ``target`` takes ``number`` at all (its prefixes): a configuration matter."""
        return bool(self.router.eligible(target, number))

    def reopens_at(self, gateways: Sequence[str]) -> float | None:
        """When the first of these open breakers lets a probe through (None: none is open)."""
        times = [t for g in gateways if (b := self._breakers.get(g)) is not None and (t := b.reopens_at()) is not None]
        return min(times) if times else None

    def start(self, gateway: str) -> None:
        """A message goes to ``gateway`` now: a half-open breaker's probe is out."""
        breaker = self._breakers.get(gateway)
        if breaker is not None:
            breaker.allow()

    def finished(self, gateway: str, *, healthy: bool | None) -> None:
        """The gateway answered (``healthy``: took the parts or refused them for good) or failed
        for now (a temporary failure, a timeout): the breaker learns which.  None: the try never
        reached the gateway (stopping, the queue locked); the probe is given back."""
        breaker = self._breakers.get(gateway)
        if breaker is None:
            return
        if healthy is None:
            breaker.release()
        elif healthy:
            breaker.success()
        else:
            breaker.failure()

    def rate_wait(self, gateway: str, parts: int) -> float:
        """Seconds to wait before ``parts`` parts may go to ``gateway`` (its ``rate``), taken now."""
        bucket = self._buckets.get(gateway)
        if bucket is None:
            return 0.0
        wait = bucket.wait_time(parts)
        bucket.take(parts)
        return wait

    def rebuilt(self, router: Router) -> GatewayPool:
        """A pool for a reloaded configuration: a gateway whose breaker and rate settings are unchanged
        keeps its breaker (open stays open) and its bucket."""
        fresh = GatewayPool(router, clock=self.clock, monotonic=self.monotonic)
        for gateway_id in fresh._breakers:
            old, new = self.router.gateway(gateway_id), router.gateway(gateway_id)
            if old is None or new is None or gateway_id not in self._breakers:
                continue
            if (old.breaker_threshold, old.breaker_reset) == (new.breaker_threshold, new.breaker_reset):
                fresh._breakers[gateway_id] = self._breakers[gateway_id]
            if old.rate == new.rate:
                fresh._buckets[gateway_id] = self._buckets[gateway_id]
        return fresh

    def states(self) -> Mapping[str, str]:
        """Every gateway's breaker: "closed", "open" or "half-open"."""
        return {gateway: breaker.state for gateway, breaker in self._breakers.items()}


def plain_pool(gateway_ids: Sequence[str], clock: Callable[[], float] = time.time) -> GatewayPool:
    """A pool of bare gateways without breakers or rates, each its own target (tests, tools)."""
    gateways = [GatewayConfig(id=g, type="", options=None, breaker_threshold=0) for g in gateway_ids]
    return GatewayPool(Router((), gateways, ()), clock=clock)
