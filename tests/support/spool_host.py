"""What spool transport tests share: a message builder, a host that records, a transport factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from mailsms.segment.split import split_text
from transports.base import DeliveryReport, IncomingSms, OutgoingPart, OutgoingSms, TransportContext


def message(text: str, queue_id: str = "Q1", to: str = "+15551234567") -> OutgoingSms:
    split = split_text(text, reference=0x5F)
    parts = tuple(OutgoingPart(i, p.text, p.udh) for i, p in enumerate(split.parts, 1))
    return OutgoingSms(queue_id, to, parts, len(parts), split.encoding)


class Host:
    """What the daemon gives a transport: sinks that record (or refuse)."""

    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []
        self.mos: list[IncomingSms] = []
        self.refuse = False

    async def report(self, report: DeliveryReport) -> None:
        self.reports.append(report)

    async def mo(self, sms: IncomingSms) -> str:
        if self.refuse:
            raise RuntimeError("store is down")
        self.mos.append(sms)
        return f"in{len(self.mos)}"


Make = Callable[..., Awaitable[Any]]


async def transports_of(module: ModuleType, spool: Path, state_dir: Path, host: Host) -> AsyncIterator[Make]:
    """A factory of started transports of ``module`` on ``spool`` (polling only when asked); closes them after."""
    started: list[Any] = []

    async def build(**changes: object) -> Any:
        fields: dict[str, object] = {"spool": str(spool), "settle": 0.0, "poll_interval": 3600.0}
        fields.update(changes)
        context = TransportContext("sms1", state_dir, host.report, mo_sink=host.mo)
        transport = module.create(module.Options(**fields), context)
        await transport.start()
        started.append(transport)
        return transport

    yield build
    for transport in started:
        await transport.close()
