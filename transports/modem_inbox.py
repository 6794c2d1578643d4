"""What a modem receives: SMS to commit and then delete, status reports to match to parts.

Indications (``+CMTI``, ``+CDSI``, ``+CDS``, ``+CMT``) become events the
runner acts on between submits; ``sweep`` reads everything stored.  An
SMS-DELIVER is committed through the host's ``mo_sink`` and deleted from
the SIM only after that; one that cannot be decoded is saved under
``undecodable/`` first.  A status report finds its part in the journal; one
that comes before its ``+CMGS`` waits (an orphan) until the part is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from mailsms.segment.pdu_deliver import (
    MTI_DELIVER,
    MTI_STATUS_REPORT,
    StatusReportPdu,
    decode_deliver_pdu,
    decode_status_report_pdu,
    message_type,
)
from ndr import codes
from transports.base import DeliveryReport, IncomingSms, TransportContext
from transports.modem_at import AtChannel, CommandFailed
from transports.modem_journal import Journal, Sent
from transports.modem_options import Options
from transports.modem_replies import parse_index, parse_list, parse_memory, parse_read

log = logging.getLogger("mailsms.modem")

_CODING = {"gsm7": 0, "binary": 1, "ucs2": 2}


class Inbox:
    """The receiving half of one modem; AT commands go through the transport's channel and lock."""

    def __init__(
        self,
        channel: AtChannel,
        lock: asyncio.Lock,
        options: Options,
        context: TransportContext,
        journal: Journal,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._channel = channel
        self._lock = lock
        self.options = options
        self._context = context
        self.journal = journal
        self.directory = journal.path.parent
        self._clock = clock
        self.name = f"modem {context.gateway_id}"
        self.own_number = ""  # AT+CNUM's answer: the "to" of incoming SMS
        self.events: deque[tuple[str, str]] = deque()
        self._orphans: list[tuple[float, StatusReportPdu]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned_no_sink = False

    def on_urc(self, line: str, pdu: str) -> bool:
        """Note an unsolicited result; True when there is something to do."""
        if line.startswith(("+CMTI:", "+CDSI:")):
            index = parse_index(line)
            if index is None:
                return False
            memory = parse_memory(line) or self.options.storage
            self.events.append(("read", f"{memory},{index}"))
        elif line.startswith("+CDS:"):
            self.events.append(("report", pdu))
        elif line.startswith("+CMT:"):
            self.events.append(("deliver", pdu))
        else:
            log.debug("%s: unsolicited %s", self.name, line)
            return False
        return True

    async def handle_events(self, ready: Callable[[], bool]) -> None:
        """Act on the indications received, while the modem is ``ready``."""
        while self.events and ready():
            kind, value = self.events.popleft()
            if kind == "read":
                memory, _, index = value.partition(",")
                await self._read_indicated(memory, int(index))
            elif kind == "report":
                self._report_pdu(value)
            else:
                await self._deliver(value)  # shown directly, never stored: nothing to delete

    async def _read_indicated(self, memory: str, index: int) -> None:
        """Read, commit and delete the message an indication named (in another memory: switch there and back)."""
        other = memory != self.options.storage
        try:
            if other:
                async with self._lock:
                    await self._channel.command(f'AT+CPMS="{memory}"', self.options.read_timeout)
            async with self._lock:
                reply = await self._channel.command(f"AT+CMGR={index}", self.options.read_timeout)
            await self._stored(index, parse_read(reply.lines))
        except CommandFailed as exc:  # already read and deleted (the sweep was first), or no such memory
            log.info("%s: nothing read at %s %d: %s", self.name, memory, index, exc.line)
        finally:
            if other and self._channel.is_open:
                async with self._lock:
                    own = self.options.storage
                    await self._channel.command(f'AT+CPMS="{own}","{own}","{own}"', self.options.read_timeout)

    async def sweep(self) -> None:
        """Read everything stored (``AT+CMGL=4``): a fallback for dropped indications, and the start."""
        async with self._lock:
            reply = await self._channel.command("AT+CMGL=4", self.options.read_timeout)
        entries = parse_list(reply.lines)
        log.debug("%s: %d message(s) stored on the SIM", self.name, len(entries))
        for index, listed in entries:
            pdu = listed
            if pdu is None:  # the listing was garbled: read this one alone
                async with self._lock:
                    again = await self._channel.command(f"AT+CMGR={index}", self.options.read_timeout)
                pdu = parse_read(again.lines)
            await self._stored(index, pdu)

    async def _stored(self, index: int, pdu_hex: str | None) -> None:
        """One message read from storage: commit or apply it, then delete it."""
        if pdu_hex is None:
            return  # nothing at that index (already deleted)
        try:
            kind = message_type(bytes.fromhex(pdu_hex))
        except ValueError:
            kind = -1
        if kind == MTI_STATUS_REPORT:
            self._report_pdu(pdu_hex)
        elif kind in (MTI_DELIVER, -1):
            if not await self._deliver(pdu_hex):
                return  # kept on the SIM; the next sweep tries again
        else:
            return  # an outgoing message someone stored: not ours to delete
        async with self._lock:
            try:
                await self._channel.command(f"AT+CMGD={index}", self.options.read_timeout)
            except CommandFailed as exc:
                log.warning("%s: cannot delete message %d: %s", self.name, index, exc.line)

    async def _deliver(self, pdu_hex: str) -> bool:
        """Commit one SMS-DELIVER through ``mo_sink``; True once it is safe to delete."""
        sink = self._context.mo_sink
        if sink is None:
            if not self._warned_no_sink:
                log.warning("%s: nobody takes incoming SMS here: they stay on the SIM", self.name)
                self._warned_no_sink = True
            return False
        try:
            pdu = bytes.fromhex(pdu_hex)
            deliver = decode_deliver_pdu(pdu)
        except ValueError as exc:
            return await asyncio.to_thread(self._quarantine, pdu_hex, str(exc))
        data = deliver.data if deliver.encoding == "binary" else None
        text = deliver.text
        if data is not None:
            with contextlib.suppress(UnicodeDecodeError):
                text = data.decode("utf-8")
        incoming = IncomingSms(
            gateway_id=self._context.gateway_id, sender=deliver.sender, text=text.replace("\x00", ""),
            to=self.own_number, udh=deliver.udh, coding=_CODING[deliver.encoding], data=data,
            smsc_id="pdu-" + hashlib.sha256(pdu).hexdigest()[:32], sent=deliver.timestamp,
        )  # fmt: skip
        try:
            await sink(incoming)
        except Exception as exc:
            log.warning("%s: incoming SMS from %s not committed (%s); it stays on the SIM", self.name,
                        deliver.sender, exc)  # fmt: skip
            return False
        return True

    def _quarantine(self, pdu_hex: str, reason: str) -> bool:
        folder = self.directory / "undecodable"
        digest = hashlib.sha256(pdu_hex.encode("ascii", "replace")).hexdigest()[:16]
        path = folder / f"{int(self._clock() * 1000)}-{digest}.pdu"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(path, "w", encoding="ascii", errors="replace") as file:
                file.write(f"{pdu_hex}\n# {reason}\n")
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            log.error("%s: undecodable SMS (%s) kept on the SIM: cannot save it: %s", self.name, reason, exc.strerror)
            return False
        log.warning("%s: undecodable SMS saved to %s (%s)", self.name, path, reason)
        return True

    # -- status reports -------------------------------------------------------------------

    def _report_pdu(self, pdu_hex: str) -> None:
        try:
            report = decode_status_report_pdu(bytes.fromhex(pdu_hex))
        except ValueError as exc:
            log.warning("%s: undecodable status report ignored: %s", self.name, exc)
            return
        if not self._apply_report(report):
            self._orphans.append((asyncio.get_running_loop().time(), report))

    def _apply_report(self, report: StatusReportPdu) -> bool:
        sent = self.journal.match(report.reference, report.recipient, report.submitted)
        if sent is None:
            return False
        if sent.final:
            log.info("%s: repeated status report for %s ignored", self.name, sent.message_id)
            return True
        verdict = codes.tp_status(report.status)
        if not verdict.final:
            log.info("%s: %s: status report: %s", self.name, sent.message_id, verdict.text)
            return True
        sent.final = True
        delivered = verdict.outcome == codes.DELIVERED
        dlr = DeliveryReport(
            gateway_id=self._context.gateway_id, message_id=sent.message_id, delivered=delivered,
            reason=f"status report: {verdict.text} (TP-ST 0x{report.status:02X})",
            dsn="" if delivered else verdict.status,
        )  # fmt: skip
        self._spawn(self._deliver_report(sent, dlr))
        return True

    async def _deliver_report(self, sent: Sent, dlr: DeliveryReport) -> None:
        try:
            await asyncio.to_thread(self.journal.mark_final, sent)
        except OSError as exc:
            log.error("%s: cannot write the journal %s: %s", self.name, self.journal.path, exc.strerror)
        try:
            await self._context.report_sink(dlr)
        except Exception:
            log.exception("%s: the report sink failed for %s", self.name, dlr.message_id)

    def rematch_orphans(self) -> None:
        """After a submit: reports that came before its ``+CMGS`` find their part now."""
        self._orphans = [(t, r) for t, r in self._orphans if not self._apply_report(r)]

    def expire_orphans(self, now: float) -> None:
        """Reports no part claimed for two read timeouts: logged and dropped."""
        keep: list[tuple[float, StatusReportPdu]] = []
        for arrived, report in self._orphans:
            if now - arrived < 2 * self.options.read_timeout:
                keep.append((arrived, report))
            else:
                log.info("%s: status report for unknown reference %d (recipient %s) ignored", self.name,
                         report.reference, report.recipient or "?")  # fmt: skip
        self._orphans = keep

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Drop delivery reports still on their way to the sink."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
