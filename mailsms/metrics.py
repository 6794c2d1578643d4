"""Prometheus metrics of one daemon (``/metrics``), in a registry of its own.

Counters move where the events happen, through one-line calls on a
``Metrics`` object that the daemon shares with the server, the scheduler and
the inbound pipeline.  What the queue holds (messages per state, the age of
the oldest waiting one), each gateway's circuit breaker and a modem's signal
are read when Prometheus scrapes, by a collector with one cheap query each:
they are never counters that could drift from the store.

No global default registry: tests run several daemons in one process.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailsms.store import ACTIVE_STATES, PART_QUEUED, PART_SENDING, StoredMessage
from mailsms.store.queue import QueueStore
from mailsms.store.status import oldest_waiting, state_counts
from transports.base import Transport

# mailsms_gateway_breaker_state: the scheduler's word -> the gauge's value.
BREAKER_VALUES: Mapping[str, int] = {"closed": 0, "half-open": 1, "open": 2}
# replylog.route's kinds -> mailsms_replylog_lookups_total{result}.
LOOKUP_RESULTS: Mapping[str, str] = {"reply": "hit", "conflict": "conflict", "unmatched": "unmatched",
                                     "drop": "unmatched", "tag": "tag"}  # fmt: skip
# Seconds from submission to the delivery report: gateways answer in seconds, phones that are off in hours.
DLR_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
# Submissions remembered for the latency of their delivery report; the oldest are forgotten first.
LATENCY_MEMORY = 50_000
THROUGHPUT_WINDOW = 3600.0  # seconds of submissions kept for the status page's throughput

_REPLY = re.compile(r"^([2-5]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3})\b)?")
_DBM = re.compile(r"^\s*(-?\d+)\s*dBm")


class Running(Protocol):
    """What the live collector reads of the running daemon (``mailsms.daemon.Daemon``)."""

    @property
    def store(self) -> QueueStore | None: ...

    @property
    def scheduler(self) -> object | None: ...

    @property
    def transports(self) -> Mapping[str, Transport]: ...


def reply_codes(reply: str) -> tuple[str, str]:
    """The reply code and enhanced code of an SMTP reply line: ``("550", "5.1.1")``; ``"-"`` when missing."""
    found = _REPLY.match(reply)
    if found is None:
        return "-", "-"
    return found.group(1), found.group(2) or "-"


def signal_dbm(transport: object) -> float | None:
    """A modem's signal in dBm from its ``info.signal`` (``-73 dBm (CSQ 20)``), or None when not known."""
    text = getattr(getattr(transport, "info", None), "signal", "")
    found = _DBM.match(text) if isinstance(text, str) else None
    return float(found.group(1)) if found else None


def breaker_states(scheduler: object | None) -> dict[str, str]:
    """The scheduler's circuit breakers, ``{gateway: "closed" | "half-open" | "open"}``; {} before it has any."""
    states = getattr(scheduler, "breaker_states", None)
    found = states() if callable(states) else {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}


def gateway_problem(transport: Transport | None, breaker: str) -> str | None:
    """Why a gateway cannot take messages now, or None when it can."""
    if transport is None:
        return "not started"
    if breaker == "open":
        return "circuit breaker open"
    down = getattr(transport, "down_reason", "")
    if isinstance(down, str) and down:
        return f"down: {down}"
    return None


class Metrics:
    """The daemon's counters and histogram, and the collector of what is read at scrape time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.messages_accepted = Counter(
            "mailsms_messages_accepted", "Messages (one per recipient number) committed to the queue", registry=reg
        )
        self.messages_rejected = Counter(
            "mailsms_messages_rejected", "Recipients refused, by reply code and enhanced code",
            ["code", "enhanced"], registry=reg,
        )  # fmt: skip
        self.parts_submitted = Counter("mailsms_parts_submitted", "SMS parts a gateway took", ["gateway"], registry=reg)
        self.parts_delivered = Counter(
            "mailsms_parts_delivered", "SMS parts a delivery report said were delivered", ["gateway"], registry=reg
        )
        self.parts_failed = Counter(
            "mailsms_parts_failed", "SMS parts that failed: refused, expired or reported undeliverable",
            ["gateway"], registry=reg,
        )  # fmt: skip
        self.dlr_latency = Histogram(
            "mailsms_dlr_latency_seconds", "Seconds from a part's submission to its delivery report",
            buckets=DLR_BUCKETS, registry=reg,
        )  # fmt: skip
        self.replylog_lookups = Counter(
            "mailsms_replylog_lookups", "Incoming SMS routed: reply-log hit, conflict, unmatched or #email# tag",
            ["result"], registry=reg,
        )  # fmt: skip
        self.inbound_sms = Counter("mailsms_inbound", "Incoming SMS (whole, after reassembly)", ["gateway"],
                                   registry=reg)  # fmt: skip
        for result in sorted(set(LOOKUP_RESULTS.values())):
            self.replylog_lookups.labels(result)
        self._submitted_at: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._recent: dict[str, deque[tuple[float, int]]] = {}
        self._live = _LiveCollector(self)
        self.registry.register(self._live)

    # -- wiring -------------------------------------------------------------------

    def watch(self, running: Running) -> None:
        """Read the queue, breakers and modems of ``running`` at every scrape."""
        self._live.running = running

    def gateways(self, ids: Iterable[str]) -> None:
        """Show zero for the configured gateways before their first part."""
        for gateway in ids:
            for counter in (self.parts_submitted, self.parts_delivered, self.parts_failed, self.inbound_sms):
                counter.labels(gateway)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything."""
        return generate_latest(self.registry)

    # -- events (one-line calls where they happen) -------------------------------------

    def accepted(self, count: int = 1) -> None:
        """``count`` messages were committed to the queue."""
        self.messages_accepted.inc(count)

    def rejected(self, reply: str, count: int = 1) -> None:
        """``count`` recipients were refused with ``reply`` (``550 5.1.1 ...``)."""
        code, enhanced = reply_codes(reply)
        self.messages_rejected.labels(code, enhanced).inc(count)

    def submitted(self, gateway: str, parts: Iterable[tuple[int, str]], now: float) -> None:
        """The gateway took these ``(seq, gateway message id)`` parts at ``now``."""
        taken = 0
        for _, gateway_msgid in parts:
            taken += 1
            if gateway_msgid:
                self._submitted_at[(gateway, gateway_msgid)] = now
        if len(self._submitted_at) > LATENCY_MEMORY:
            for _ in range(len(self._submitted_at) - LATENCY_MEMORY):
                self._submitted_at.popitem(last=False)
        if taken:
            self.parts_submitted.labels(gateway).inc(taken)
            recent = self._recent.setdefault(gateway, deque())
            recent.append((now, taken))
            while recent and recent[0][0] < now - THROUGHPUT_WINDOW:
                recent.popleft()

    def ended(self, gateway: str, message: StoredMessage, submitted: int) -> None:
        """``message`` failed or expired after an attempt through ``gateway`` that took ``submitted``
        parts: its other parts still to send failed."""
        pending = sum(1 for part in message.parts if part.state in (PART_QUEUED, PART_SENDING))
        if pending > submitted:
            self.parts_failed.labels(gateway).inc(pending - submitted)

    def reported(self, gateway: str, gateway_msgid: str, delivered: bool, now: float) -> None:
        """A final delivery report for one part; its latency when this process saw the submission."""
        (self.parts_delivered if delivered else self.parts_failed).labels(gateway).inc()
        since = self._submitted_at.pop((gateway, gateway_msgid), None)
        if since is not None:
            self.dlr_latency.observe(max(now - since, 0.0))

    def inbound(self, gateway: str) -> None:
        """A whole incoming SMS from ``gateway`` is being routed."""
        self.inbound_sms.labels(gateway).inc()

    def routed(self, kind: str) -> None:
        """The reply log decided an incoming SMS's route (``replylog.route.Route.kind``)."""
        self.replylog_lookups.labels(LOOKUP_RESULTS.get(kind, kind)).inc()

    # -- for the status page ------------------------------------------------------------

    def throughput(self, gateway: str, seconds: float) -> int:
        """Parts ``gateway`` took in the last ``seconds`` (at most THROUGHPUT_WINDOW) in this process."""
        since = self.clock() - seconds
        return sum(n for at, n in self._recent.get(gateway, ()) if at >= since)

    @staticmethod
    def count(counter: Counter, gateway: str) -> int:
        """The value of a per-gateway counter (0 before its first event)."""
        for family in counter.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("gateway") == gateway:
                    return int(sample.value)
        return 0


class _LiveCollector(Collector):
    """Gauges computed from the running daemon at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.running: Running | None = None

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        running = self.running
        if running is None:
            return families.values()
        depth, oldest, signal, breaker = (families[n] for n in ("depth", "oldest", "signal", "breaker"))
        store = running.store
        if store is not None:
            counts = state_counts(store.conn)
            for state in ACTIVE_STATES:
                depth.add_metric([state], counts.get(state, 0))
            since = oldest_waiting(store.conn)
            oldest.add_metric([], max(self.metrics.clock() - since, 0.0) if since is not None else 0.0)
        states = breaker_states(running.scheduler)
        for gateway, transport in running.transports.items():
            value = BREAKER_VALUES.get(states.get(gateway, "closed"))
            if value is not None:
                breaker.add_metric([gateway], value)
            dbm = signal_dbm(transport)
            if dbm is not None:
                signal.add_metric([gateway], dbm)
        return families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {
            "depth": GaugeMetricFamily("mailsms_queue_messages", "Messages in the queue by state", labels=["state"]),
            "oldest": GaugeMetricFamily(
                "mailsms_queue_oldest_age_seconds", "Age of the oldest message not yet taken by a gateway"
            ),
            "signal": GaugeMetricFamily("mailsms_modem_signal_dbm", "A modem's signal strength", labels=["gateway"]),
            "breaker": GaugeMetricFamily(
                "mailsms_gateway_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", labels=["gateway"]
            ),
        }


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """Parse the Prometheus text format into ``(name, labels, value)`` (for tests and ``mailsms`` tools)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, dict(sample.labels), float(sample.value)
