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
deleted from the SIM; status reports are matched to parts by reference,
number and time (``transports.modem_inbox``, ``transports.modem_journal``).
The keys and the PDU of a part are in ``transports.modem_options``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shlex
import time
from collections.abc import Callable

from mailsms.errors import TransportDown
from ndr import codes
from transports.base import Outcome, OutgoingPart, OutgoingSms, PartResult, TransportContext, in_order
from transports.modem_at import AtChannel, AtError, CommandFailed, ModemTimeout, PortLost
from transports.modem_dialogue import Dialogue, DialogueSettings, ModemInfo, SimProblem
from transports.modem_inbox import Inbox
from transports.modem_journal import Journal, Sent
from transports.modem_options import (
    MAX_SWEEP_INTERVAL,
    PIN_REFUSED,
    Options,
    build_pdu,
    modem_dir,
    pin_refused_before,
    remember_refused_pin,
)
from transports.modem_replies import error_verdict, parse_reference

__all__ = [
    "MAX_SWEEP_INTERVAL",
    "PIN_REFUSED",
    "ModemTransport",
    "Options",
    "build_pdu",
    "create",
    "modem_dir",
    "pin_refused_before",
    "remember_refused_pin",
]

log = logging.getLogger("mailsms.modem")

MAX_REOPEN_DELAY = 60.0
POWER_CYCLE_TIMEOUT = 60.0
SEND_ATTEMPTS = 2  # a part whose send timed out goes out again once the modem is back


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
        self.inbox = Inbox(self._channel, self._lock, options, context, self.journal, clock=clock)
        self._ready = asyncio.Event()
        self._gone = asyncio.Event()  # closed, or stopped for good
        self._wakeup = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._sweep_at = 0.0
        self._failures = 0
        self.down_reason = "not started"
        self.stopped = ""  # why the modem stopped for good
        self.info = ModemInfo()
        self.reopened = 0  # successful recoveries, for tests and logs

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
        """Open and initialise the modem; TransportDown only when the state directory is unusable.

        A modem that is missing or silent is not fatal: the runner keeps trying.
        A SIM that needs a person (a refused PIN, a PUK) stops this modem with an
        error, not the daemon: messages for it wait in the queue with the reason.
        """
        try:
            await asyncio.to_thread(self.journal.load, self._clock())
        except OSError as exc:
            raise TransportDown(f"{self.name}: cannot use {self.directory}: {exc.strerror}") from None
        if pin_refused_before(self.directory, self.gateway_id, self.options.pin):
            marker = self.directory / PIN_REFUSED
            self._stop_for_good(f"the SIM refused this PIN before; not trying it again (change pin or remove {marker})")
            return
        try:
            await self._bring_up()
        except SimProblem as exc:
            self._stop_for_good(str(exc), pin_refused=exc.pin_refused)
            return
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
        await self.inbox.close()

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
        self.inbox.own_number = info.own_number
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
            if not self.inbox.events and wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), min(wait, self.options.read_timeout))
            if self._gone.is_set() or not self._ready.is_set():
                continue
            try:
                await self.inbox.handle_events(self._ready.is_set)
                if loop.time() >= self._sweep_at:
                    await self.inbox.sweep()
                    self._sweep_at = loop.time() + self.options.sweep_interval
            except (ModemTimeout, PortLost) as exc:
                self._mark_down(str(exc))
            except CommandFailed as exc:
                log.warning("%s: %s", self.name, exc)
                self._count_failure(str(exc))
            except Exception:  # a bug must not leave the modem unattended: start it afresh
                log.exception("%s: unexpected error", self.name)
                self._mark_down("unexpected error")
            self.inbox.expire_orphans(loop.time())

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
        return await in_order(sms, functools.partial(self._submit_part, sms))

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
                if isinstance(exc, ModemTimeout) and exc.after_pdu:
                    log.warning("%s: %s part %d: no +CMGS after the PDU; it is sent again once the modem is "
                                "back and may arrive twice", self.name, sms.queue_id, part.seq)  # fmt: skip
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
        self.inbox.rematch_orphans()
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
        if self.inbox.on_urc(line, pdu):
            self._wakeup.set()


def create(options: Options, context: TransportContext) -> ModemTransport:
    """The modem transport for one ``[[gateway]]``."""
    return ModemTransport(options, context)
