"""A GSM modem on a serial port, in PDU mode (``[[gateway]] type = "modem"``).

One runner task owns the modem's life: it opens the port, runs the
start-up dialogue (``transports.modem_dialogue``), reads what arrives
(``+CMTI`` / ``+CDSI`` indications, and an ``AT+CMGL=4`` sweep every
``sweep_interval`` because some modems drop indications) and brings the
modem back when it stops answering.  Submits build SMS-SUBMIT PDUs from our
own parts and send them with ``AT+CMGS``; one AT command is on the line at a
time (a lock), and the event loop never waits on the port
(``transports.modem_at``).

Recovery: a read timeout, a port that vanishes, or ``max_failures`` failed
sends in a row close the port, wait ``reopen_delay`` (doubling up to a
minute), reopen it and run the dialogue again; from the second attempt on,
``power_cycle`` (a command, run without a shell) is run first.  A part whose
send timed out is sent again once the modem is back, inside the same
submit; parts not sent stay in the queue.  A SIM that refuses the PIN stops
the modem for good and is never given the PIN again: a file in the state
directory remembers the refusal across restarts until ``pin`` changes.

Incoming SMS are committed through the host's ``mo_sink`` and only then
deleted from the SIM; one that cannot be decoded is saved under
``<state>/modem/<gateway>/undecodable/`` before it is deleted.  Status
reports are matched by reference, number and time (``modem_journal``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shlex
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailsms.errors import TransportDown
from mailsms.schema import bounded, duration
from mailsms.segment import gsm
from mailsms.segment.pdu import encode_submit_pdu, encode_user_data, relative_validity
from mailsms.segment.pdu_deliver import (
    MTI_DELIVER,
    MTI_STATUS_REPORT,
    StatusReportPdu,
    decode_deliver_pdu,
    decode_status_report_pdu,
    message_type,
)
from mailsms.segment.split import Encoding, Part
from ndr import codes
from transports.base import (
    DeliveryReport,
    IncomingSms,
    Outcome,
    OutgoingPart,
    OutgoingSms,
    PartResult,
    TransportContext,
)
from transports.modem_at import AtChannel, AtError, CommandFailed, ModemTimeout, PortLost
from transports.modem_dialogue import Dialogue, DialogueSettings, ModemInfo, SimProblem
from transports.modem_journal import Journal, Sent
from transports.modem_replies import (
    error_verdict,
    parse_index,
    parse_list,
    parse_memory,
    parse_read,
    parse_reference,
)

log = logging.getLogger("mailsms.modem")

MAX_REOPEN_DELAY = 60.0
POWER_CYCLE_TIMEOUT = 60.0
SEND_ATTEMPTS = 2  # a part whose send timed out goes out again once the modem is back
_CODING = {"gsm7": 0, "binary": 1, "ucs2": 2}
_DCS = {"gsm7": 0x00, "binary": 0x04, "ucs2": 0x08}
_STORAGES = ("SM", "ME", "MT", "SR", "BM")
PIN_REFUSED = "pin-refused"


@dataclass(frozen=True)
class Options:
    """``[[gateway]] type = "modem"``: the port, the SIM, timeouts and recovery."""

    device: str = ""  # /dev/ttyUSB0, /dev/serial/by-id/...
    baudrate: int = bounded(115200, 300, 4_000_000)
    pin: str = field(default="", repr=False)  # entered once when the SIM asks; never retried when refused
    smsc: str = ""  # service centre number set with AT+CSCA; "" keeps the SIM's
    init: tuple[str, ...] = ()  # extra AT commands after ATZ/ATE0/AT+CMEE=1
    read_timeout: float = duration("16s")  # for every answer, the "> " prompt and +CMGS
    send_delay: float = duration(0)  # pause after each part sent
    report: bool = False  # ask for status reports (TP-SRR) and turn them into delivered/failed
    validity: float = duration(0)  # TP-VP; 0 leaves it to the service centre
    sweep_interval: float = duration("10s")  # AT+CMGL=4 at least this often
    max_failures: int = bounded(3, 1, 100)  # failed sends in a row before the modem is reopened
    reopen_delay: float = duration("2s")  # before reopening; doubles up to a minute
    power_cycle: str = ""  # command run before the second and later reopen attempts
    cnmi: str = ""  # AT+CNMI setting; "" tries 2,1,0,2,0 then fallbacks
    storage: str = "SM"  # AT+CPMS memory for reading and receiving

    def validate(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``."""
        problems: list[tuple[str, str]] = []
        if not self.device:
            problems.append(("device", "required: the modem's serial port, e.g. /dev/ttyUSB0"))
        if self.pin and not re.fullmatch(r"[0-9]{4,8}", self.pin):
            problems.append(("pin", "must be 4 to 8 digits"))
        if self.smsc and not re.fullmatch(r"\+?[0-9]{3,20}", self.smsc):
            problems.append(("smsc", "must be a number such as +491722270333"))
        for index, command in enumerate(self.init):
            if not command.upper().startswith("AT") or not command.isprintable():
                problems.append((f"init[{index}]", "must be one AT command line, e.g. AT+CFUN=1"))
        for key in ("read_timeout", "sweep_interval", "reopen_delay"):
            if getattr(self, key) <= 0:
                problems.append((key, "must be more than 0"))
        if self.validity > 63 * 7 * 86400:
            problems.append(("validity", "at most 63 weeks"))
        if self.cnmi and not re.fullmatch(r"[0-9](,[0-9]){0,4}", self.cnmi):
            problems.append(("cnmi", "must be AT+CNMI values such as 2,1,0,2,0"))
        if self.storage not in _STORAGES:
            problems.append(("storage", f"must be one of {', '.join(_STORAGES)}"))
        if self.power_cycle:
            try:
                shlex.split(self.power_cycle)
            except ValueError as exc:
                problems.append(("power_cycle", f"cannot be split into words: {exc}"))
        return problems


def _part(sms: OutgoingSms, part: OutgoingPart) -> Part:
    if sms.encoding == "binary":
        data = part.data or b""
    elif sms.encoding == "ucs2":
        data = part.text.encode("utf-16-be")
    else:
        septets = gsm.to_septets(part.text)
        if septets is None:
            raise ValueError("the part's text is not GSM 03.38")
        data = septets.encode("ascii")
    return Part(part.text, part.udh, len(data), data)


def build_pdu(sms: OutgoingSms, part: OutgoingPart, options: Options) -> bytes:
    """The SMS-SUBMIT for one part (SMSC length 0: the modem's own); ValueError when it cannot be made."""
    if sms.encoding not in _DCS:
        raise ValueError(f"unknown encoding {sms.encoding!r}")
    encoding: Encoding = "ucs2" if sms.encoding == "ucs2" else "binary" if sms.encoding == "binary" else "gsm7"
    segment = _part(sms, part)
    if len(encode_user_data(segment, encoding)[1]) > 140:
        raise ValueError(f"part {part.seq} is longer than the 140 octets of an SMS")
    dcs = sms.dcs if sms.dcs is not None else _DCS[encoding] | (0x10 if sms.flash else 0)
    validity = relative_validity(options.validity) if options.validity else None
    report = options.report or sms.report
    return encode_submit_pdu(
        sms.to, segment, encoding, dcs=dcs, pid=sms.pid or 0, status_report=report, validity=validity
    )


def _safe_name(gateway_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", gateway_id) or "_"


def modem_dir(state_dir: Path, gateway_id: str) -> Path:
    """Where a modem gateway keeps its journal, its refused PIN and what it could not decode."""
    return state_dir / "modem" / _safe_name(gateway_id)


def _pin_digest(gateway_id: str, pin: str) -> str:
    return hashlib.sha256(f"{gateway_id}\0{pin}".encode()).hexdigest()


def pin_refused_before(directory: Path, gateway_id: str, pin: str) -> bool:
    """Whether the SIM refused exactly this PIN before (a file in ``directory`` remembers it)."""
    try:
        digest = (directory / PIN_REFUSED).read_text(encoding="ascii").strip()
    except OSError:
        return False
    return digest == _pin_digest(gateway_id, pin)


def remember_refused_pin(directory: Path, gateway_id: str, pin: str) -> None:
    """Remember that the SIM refused ``pin``, so that no restart enters it again; raises OSError."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / PIN_REFUSED).write_text(_pin_digest(gateway_id, pin) + "\n", encoding="ascii")


class ModemTransport:
    """One modem; see the module docstring."""

    concurrency = 1  # one AT+CMGS at a time anyway

    def __init__(self, options: Options, context: TransportContext, *, clock: Callable[[], float] = time.time) -> None:
        self.gateway_id = context.gateway_id
        self.options = options
        self._context = context
        self._clock = clock
        self.name = f"modem {context.gateway_id}"
        self.directory = modem_dir(context.state_dir, context.gateway_id)
        self.journal = Journal(self.directory / "sent.jsonl")
        self._channel = AtChannel(options.device, options.baudrate, self._on_urc, self.name)
        self._channel.on_lost = self._mark_down
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._gone = asyncio.Event()  # closed, or stopped for good
        self._wakeup = asyncio.Event()
        self._events: deque[tuple[str, str]] = deque()
        self._orphans: list[tuple[float, StatusReportPdu]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._sweep_at = 0.0
        self._failures = 0
        self.down_reason = "not started"
        self.stopped = ""  # why the modem stopped for good
        self.info = ModemInfo()
        self.reopened = 0  # successful recoveries, for tests and logs
        self._warned_no_sink = False

    @property
    def detects_duplicates(self) -> bool:
        return True

    @property
    def delivery_reports(self) -> bool:
        return self.options.report

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open and initialise the modem; TransportDown only for a SIM that needs a person.

        A modem that is missing or silent is not fatal: the runner keeps trying.
        """
        try:
            await asyncio.to_thread(self.journal.load, self._clock())
        except OSError as exc:
            raise TransportDown(f"{self.name}: cannot use {self.directory}: {exc.strerror}") from None
        if pin_refused_before(self.directory, self.gateway_id, self.options.pin):
            marker = self.directory / PIN_REFUSED
            self._stop_for_good(f"the SIM refused this PIN before; not trying it again (change pin or remove {marker})")
            raise TransportDown(f"{self.name}: {self.stopped}")
        try:
            await self._bring_up()
        except SimProblem as exc:
            self._stop_for_good(str(exc), pin_refused=exc.pin_refused)
            raise TransportDown(f"{self.name}: {exc}") from None
        except (AtError, OSError, ValueError) as exc:
            self._mark_down(str(exc))
            log.warning("%s: not ready (%s); trying again in the background", self.name, exc)
        self._runner = asyncio.create_task(self._run(), name=f"modem-{self.gateway_id}")

    async def close(self) -> None:
        """Stop the runner, fail what waits, close the port."""
        self._ready.clear()
        self._gone.set()
        self._wakeup.set()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self._channel.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _bring_up(self) -> None:
        await self._channel.close()
        await self._channel.open()
        settings = DialogueSettings(
            pin=self.options.pin, smsc=self.options.smsc, init=self.options.init, cnmi=self.options.cnmi,
            storage=self.options.storage, timeout=self.options.read_timeout,
        )  # fmt: skip
        try:
            async with self._lock:
                self.info = await Dialogue(self._channel, settings, self.name).run()
        except BaseException:
            await self._channel.close()
            raise
        info = self.info
        log.info("%s: ready on %s: %s %s, IMEI %s, signal %s, %s, SMSC %s, storage %s", self.name,
                 self.options.device, info.manufacturer or "?", info.model or "?", info.imei or "?", info.signal,
                 info.registration, info.smsc or "?", info.storage or "?")  # fmt: skip
        self._failures = 0
        self.down_reason = ""
        self._sweep_at = 0.0  # read the SIM now: messages may have come while we were away
        self._ready.set()
        self._wakeup.set()

    def _mark_down(self, reason: str) -> None:
        if self._ready.is_set():
            log.warning("%s: %s; closing and reopening the port", self.name, reason)
        self._ready.clear()
        self.down_reason = reason
        self._wakeup.set()

    def _stop_for_good(self, reason: str, *, pin_refused: bool = False) -> None:
        self.stopped = reason
        self.down_reason = reason
        self._ready.clear()
        self._gone.set()
        log.error("%s: stopped: %s", self.name, reason)
        if pin_refused:
            try:
                remember_refused_pin(self.directory, self.gateway_id, self.options.pin)
            except OSError as exc:
                log.error("%s: cannot remember the refused PIN in %s: %s", self.name, self.directory, exc.strerror)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._gone.is_set():
            if not self._ready.is_set():
                if not await self._recover():
                    return
                continue
            self._wakeup.clear()
            wait = self._sweep_at - loop.time()
            if not self._events and wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), min(wait, self.options.read_timeout))
            if self._gone.is_set() or not self._ready.is_set():
                continue
            try:
                await self._handle_events()
                if loop.time() >= self._sweep_at:
                    await self._sweep()
                    self._sweep_at = loop.time() + self.options.sweep_interval
            except (ModemTimeout, PortLost) as exc:
                self._mark_down(str(exc))
            except CommandFailed as exc:
                log.warning("%s: %s", self.name, exc)
                self._count_failure(str(exc))
            except Exception:  # a bug must not leave the modem unattended: start it afresh
                log.exception("%s: unexpected error", self.name)
                self._mark_down("unexpected error")
            self._expire_orphans(loop.time())

    async def _recover(self) -> bool:
        """Close, wait, (power-cycle,) reopen and re-initialise until it works; False when closing or stopped."""
        delay = self.options.reopen_delay
        attempt = 0
        while not self._gone.is_set():
            await self._channel.close()
            if attempt and self.options.power_cycle:
                await self._power_cycle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), delay)
                return False
            try:
                await self._bring_up()
            except SimProblem as exc:
                self._stop_for_good(str(exc), pin_refused=exc.pin_refused)
                return False
            except (AtError, OSError, ValueError) as exc:  # pyserial: ValueError for a speed it cannot set
                attempt += 1
                self.down_reason = str(exc)
                delay = min(delay * 2, MAX_REOPEN_DELAY)
                log.warning("%s: reopen attempt %d failed: %s; next in %gs", self.name, attempt, exc, delay)
                continue
            self.reopened += 1
            log.info("%s: recovered after %d failed attempt(s)", self.name, attempt)
            return True
        return False

    async def _power_cycle(self) -> None:
        argv = shlex.split(self.options.power_cycle)
        log.warning("%s: running power_cycle: %s", self.name, argv[0])
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        except OSError as exc:
            log.error("%s: power_cycle cannot run %s: %s", self.name, argv[0], exc.strerror)
            return
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), POWER_CYCLE_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.error("%s: power_cycle still running after %gs: killed", self.name, POWER_CYCLE_TIMEOUT)
            return
        if process.returncode:
            detail = stderr.decode("utf-8", "replace").strip()[:200]
            log.error("%s: power_cycle exited with %d: %s", self.name, process.returncode, detail)

    def _count_failure(self, reason: str) -> None:
        self._failures += 1
        if self._failures >= self.options.max_failures:
            self._mark_down(f"{self._failures} failures in a row, the last: {reason}")

    # -- sending ----------------------------------------------------------------------

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """Send the parts in order; stop at the first that does not go out."""
        results: list[PartResult] = []
        for part in sms.parts:
            result = await self._submit_part(sms, part)
            results.append(result)
            if result.outcome is not Outcome.SUBMITTED:
                break
        return results

    async def _submit_part(self, sms: OutgoingSms, part: OutgoingPart) -> PartResult:
        try:
            pdu = build_pdu(sms, part, self.options)
        except ValueError as exc:
            return PartResult(part.seq, Outcome.PERMANENT, f"{self.name}: {exc}", dsn="5.6.0")
        reason = ""
        for _ in range(SEND_ATTEMPTS):
            if not await self._wait_ready():
                break
            try:
                async with self._lock:
                    if not self._ready.is_set():
                        continue
                    reply = await self._channel.send_pdu(len(pdu) - 1, pdu.hex().upper(), self.options.read_timeout)
            except CommandFailed as exc:
                return self._send_failed(part.seq, exc)
            except (ModemTimeout, PortLost) as exc:
                reason = str(exc)
                self._mark_down(reason)
                continue
            return await self._sent(sms, part.seq, parse_reference(reply.lines))
        if self.stopped:
            return PartResult(part.seq, Outcome.TEMPORARY, f"{self.name} stopped: {self.stopped}", dsn="4.3.5")
        reason = reason or f"not ready: {self.down_reason}"
        return PartResult(part.seq, Outcome.TEMPORARY, f"{self.name}: {reason}", dsn="4.4.1")

    async def _wait_ready(self) -> bool:
        """Up now, or back up within a few read timeouts; False when not (or closing)."""
        if self._ready.is_set():
            return True
        if self._gone.is_set():
            return False
        waiters = [asyncio.ensure_future(self._ready.wait()), asyncio.ensure_future(self._gone.wait())]
        try:
            limit = 4 * self.options.read_timeout + self.options.reopen_delay
            await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._ready.is_set() and not self._gone.is_set()

    async def _sent(self, sms: OutgoingSms, seq: int, reference: int | None) -> PartResult:
        self._failures = 0
        if reference is None:
            log.warning("%s: %s part %d: the modem gave no message reference", self.name, sms.queue_id, seq)
        message_id = f"{sms.queue_id}.{seq}.mr{reference if reference is not None else '-'}"
        sent = Sent(sms.queue_id, sms.to, seq, message_id, reference if reference is not None else -1, self._clock())
        try:
            await asyncio.to_thread(self.journal.record, sent)
        except OSError as exc:  # the part is out: say so, even if a crash now could send it again
            log.error("%s: cannot write the journal %s: %s", self.name, self.journal.path, exc.strerror)
        self._rematch_orphans()
        if self.options.send_delay:
            await asyncio.sleep(self.options.send_delay)
        return PartResult(seq, Outcome.SUBMITTED, message_id=message_id)

    def _send_failed(self, seq: int, exc: CommandFailed) -> PartResult:
        verdict = error_verdict(exc)
        reason = f"{self.name}: {exc.line}: {verdict.text}"
        if verdict.outcome == codes.FAILED and verdict.status.startswith("5"):
            self._failures = 0  # the modem works; the message is what is wrong
            return PartResult(seq, Outcome.PERMANENT, reason, dsn=verdict.status)
        self._count_failure(exc.line)
        return PartResult(seq, Outcome.TEMPORARY, reason, dsn=verdict.status)

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        """Parts of this message the modem took (from the journal)."""
        wanted = {p.seq for p in sms.parts}
        return {s: m for s, m in self.journal.submitted(sms.queue_id, sms.to).items() if s in wanted}

    # -- receiving ----------------------------------------------------------------------

    def _on_urc(self, line: str, pdu: str) -> None:
        if line.startswith(("+CMTI:", "+CDSI:")):
            index = parse_index(line)
            if index is not None:
                memory = parse_memory(line) or self.options.storage
                self._events.append(("read", f"{memory},{index}"))
        elif line.startswith("+CDS:"):
            self._events.append(("report", pdu))
        elif line.startswith("+CMT:"):
            self._events.append(("deliver", pdu))
        else:
            log.debug("%s: unsolicited %s", self.name, line)
            return
        self._wakeup.set()

    async def _handle_events(self) -> None:
        while self._events and self._ready.is_set():
            kind, value = self._events.popleft()
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

    async def _sweep(self) -> None:
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
            gateway_id=self.gateway_id, sender=deliver.sender, text=text.replace("\x00", ""),
            to=self.info.own_number, udh=deliver.udh, coding=_CODING[deliver.encoding], data=data,
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
            gateway_id=self.gateway_id, message_id=sent.message_id, delivered=delivered,
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

    def _rematch_orphans(self) -> None:
        self._orphans = [(t, r) for t, r in self._orphans if not self._apply_report(r)]

    def _expire_orphans(self, now: float) -> None:
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


def create(options: Options, context: TransportContext) -> ModemTransport:
    """The modem transport for one ``[[gateway]]``."""
    return ModemTransport(options, context)
