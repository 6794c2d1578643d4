"""A gateway for tests and trials, scripted from its ``[[gateway]]`` table.

Regexes searched in the number decide the fate of a submit: ``hang`` (the
submit never completes, until ``close``), ``permanent_fail``, then
``temporary_fail``; anything else is "sent", which means one JSON line per
part appended to ``<state_dir>/fake/sent.jsonl``.  ``delay`` waits before each
part; ``report`` makes the fake send a delivery report for each sent part
``report_delay`` later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mailsms.errors import ConfigError, TransportDown
from mailsms.schema import duration
from transports.base import DeliveryReport, Outcome, OutgoingSms, PartResult, TransportContext

log = logging.getLogger("mailsms.fake")

_REGEX_KEYS = ("permanent_fail", "temporary_fail", "hang")


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "fake"``; an empty regex never matches."""

    permanent_fail: str = ""
    temporary_fail: str = ""
    hang: str = ""
    delay: float = duration(0)  # before each part
    report: Literal["delivered", "failed", "none"] = "none"
    report_delay: float = duration(0)

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``: each regex must compile."""
        problems: list[tuple[str, str]] = []
        for key in _REGEX_KEYS:
            try:
                re.compile(getattr(self, key))
            except re.error as exc:
                problems.append((key, f"bad regular expression: {exc}"))
        return problems


def sent_path(state_dir: Path) -> Path:
    """Where the fake records what it sent."""
    return state_dir / "fake" / "sent.jsonl"


def read_sent(state_dir: Path) -> list[dict[str, Any]]:
    """Every part the fake gateways under ``state_dir`` have sent, oldest first."""
    try:
        text = sent_path(state_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    # A line without its newline is being written (or was cut by a crash): not sent yet.
    complete = text.split("\n")[:-1]
    return [json.loads(line) for line in complete if line.strip()]


def message_id(queue_id: str, seq: int) -> str:
    return f"fake-{queue_id}-{seq}"


def _compile(options: Options, key: str) -> re.Pattern[str] | None:
    pattern: str = getattr(options, key)
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"fake gateway: {key}: bad regular expression: {exc}") from None


class FakeTransport:
    """Pretends to send; records every part it takes."""

    def __init__(self, options: Options, context: TransportContext) -> None:
        self.gateway_id = context.gateway_id
        self.options = options
        self._context = context
        self._permanent = _compile(options, "permanent_fail")
        self._temporary = _compile(options, "temporary_fail")
        self._hang = _compile(options, "hang")
        self._path = sent_path(context.state_dir)
        self._append_lock = threading.Lock()  # submits record from worker threads
        self._closed = asyncio.Event()
        self._reports: set[asyncio.Task[None]] = set()

    @property
    def detects_duplicates(self) -> bool:
        return True

    @property
    def delivery_reports(self) -> bool:
        """True when ``report`` makes this fake send delivery reports (the scheduler's ``gives_reports``)."""
        return self.options.report != "none"

    async def start(self) -> None:
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportDown(f"fake gateway {self.gateway_id}: cannot create {self._path.parent}: {exc}") from None

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """Each part in order: wait ``delay``, then hang, fail or record it."""
        results: list[PartResult] = []
        for part in sms.parts:
            if self.options.delay:
                await asyncio.sleep(self.options.delay)
            result = await self._one(sms, part.seq)
            results.append(result)
            if result.outcome is not Outcome.SUBMITTED:
                break
        sent = [r.message_id for r in results if r.outcome is Outcome.SUBMITTED]
        if sent and self.options.report != "none":
            task = asyncio.create_task(self._send_reports(sent), name=f"fake-dlr-{sms.queue_id}")
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
        return results

    async def _one(self, sms: OutgoingSms, seq: int) -> PartResult:
        if self._hang and self._hang.search(sms.to):
            await self._closed.wait()  # "never", as far as the caller can tell
            return PartResult(seq, Outcome.TEMPORARY, "fake gateway: closed while hanging")
        if self._permanent and self._permanent.search(sms.to):
            reason = f"fake gateway: permanent failure for {sms.to}"
            return PartResult(seq, Outcome.PERMANENT, reason, dsn="5.0.0")
        if self._temporary and self._temporary.search(sms.to):
            reason = f"fake gateway: temporary failure for {sms.to}"
            return PartResult(seq, Outcome.TEMPORARY, reason, dsn="4.0.0")
        record = self._record(sms, seq)
        try:
            await asyncio.to_thread(self._append, record)
        except OSError as exc:
            return PartResult(seq, Outcome.TEMPORARY, f"fake gateway: cannot record {self._path}: {exc.strerror}")
        return PartResult(seq, Outcome.SUBMITTED, message_id=record["message_id"])

    def _record(self, sms: OutgoingSms, seq: int) -> dict[str, Any]:
        part = next(p for p in sms.parts if p.seq == seq)
        record: dict[str, Any] = {
            "queue_id": sms.queue_id,
            "to": sms.to,
            "seq": seq,
            "total": sms.total,
            "text": part.text,
            "udh": part.udh.hex(),
            "encoding": sms.encoding,
            "message_id": message_id(sms.queue_id, seq),
            "possible_duplicate": sms.possible_duplicate,
            "gateway": self.gateway_id,
        }
        if part.data is not None:
            record["data"] = part.data.hex()
        return record

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode("ascii")
        with self._append_lock, open(self._path, "ab") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    async def _send_reports(self, message_ids: list[str]) -> None:
        if self.options.report_delay:
            await asyncio.sleep(self.options.report_delay)
        delivered = self.options.report == "delivered"
        for mid in message_ids:
            report = DeliveryReport(
                gateway_id=self.gateway_id,
                message_id=mid,
                delivered=delivered,
                reason="fake gateway: delivered" if delivered else "fake gateway: not delivered",
                dsn="" if delivered else "5.0.0",
            )
            try:
                await self._context.report_sink(report)
            except Exception:
                log.exception("fake gateway %s: the report sink failed for %s", self.gateway_id, mid)

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        """The parts of this message for this number this gateway wrote to ``sent.jsonl``."""
        records = await asyncio.to_thread(read_sent, self._context.state_dir)
        return {
            r["seq"]: r["message_id"]
            for r in records
            if r.get("queue_id") == sms.queue_id and r.get("to") == sms.to and r.get("gateway") == self.gateway_id
        }

    async def close(self) -> None:
        """Release hanging submits and drop delivery reports not yet sent."""
        self._closed.set()
        tasks = list(self._reports)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def create(options: Options, context: TransportContext) -> FakeTransport:
    """The fake transport for one ``[[gateway]]``."""
    return FakeTransport(options, context)
