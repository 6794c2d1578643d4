"""An SMSC over SMPP 3.4 (``[[gateway]] type = "smpp"``): our own client, PDU layer included.

Why not a library: the asyncio SMPP clients on PyPI split texts wrongly
(INTEROP.md), and the one that gets framing and windows right (smpp34, a
Rust core) answers ``deliver_sm`` itself, before mailsms has committed the
incoming SMS; a crash between the two would lose it.  Here the codec is
``transports.smpp_pdu``, one connection is ``transports.smpp_session``, the
keys and the ``submit_sm`` of a part are ``transports.smpp_options`` and the
meaning of a ``deliver_sm`` is ``transports.smpp_inbound``.

A runner task keeps the binds up: one ``bind_transceiver``, or (``bind =
"pair"``) a ``bind_transmitter`` for submits and a ``bind_receiver`` for
what comes back.  After a drop or a refused bind it waits
``reconnect_delay``, doubling up to ``reconnect_max``, and tries again; the
reason is logged once per change and given to the parts that wait.

Submits: the parts of one message go in order, each waiting for its
``submit_sm_resp``; messages submitted at once share the connection, at
most ``window`` requests unanswered (``concurrency`` is the window).  A
throttling answer (``ESME_RTHROTTLED``, ``ESME_RMSGQFUL``) pauses every
submit for ``throttle_delay`` (doubling while it lasts) and makes the part
temporary; a part whose response never came (the connection dropped) is
temporary too, and may reach the phone twice when the SMSC had it.

Receipts are matched to the ``message_id`` of the ``submit_sm_resp``
(also when the receipt writes it in the other base, for ids this process
handed out); incoming SMS are committed through the host's ``mo_sink``
before the ``deliver_sm_resp``, and answered ``ESME_RX_T_APPN`` (try again
later) when that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from ndr import codes
from transports import smpp_inbound as inbound
from transports import smpp_pdu as p
from transports.base import DeliveryReport, Outcome, OutgoingPart, OutgoingSms, PartResult, TransportContext, in_order
from transports.smpp_options import THROTTLED, Options, build_submit, judge
from transports.smpp_session import BindRefused, Session, SessionClosed

__all__ = ["Options", "SmppTransport", "create"]

log = logging.getLogger("mailsms.smpp")

RECENT_IDS = 200_000  # submit ids remembered for receipts that spell them in another base


class SmppTransport:
    """One SMSC account; see the module docstring."""

    def __init__(self, options: Options, context: TransportContext) -> None:
        self.gateway_id = context.gateway_id
        self.options = options
        self._context = context
        self.name = f"smpp {context.gateway_id}"
        self._tx: Session | None = None  # submits go here
        self._rx: Session | None = None  # the receiver of a pair (the transceiver otherwise)
        self._ready = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._gone = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._window = asyncio.Semaphore(options.window)
        self._paused_until = 0.0
        self._throttle_delay = options.throttle_delay
        self._recent: dict[str, str] = {}
        self.down_reason = "not started"
        self.binds = 0  # successful binds (tests and logs)
        self.throttled = 0  # throttling answers seen

    @property
    def detects_duplicates(self) -> bool:
        return False  # SMPP cannot ask whether the SMSC has a part (query_sm needs its id)

    @property
    def delivery_reports(self) -> bool:
        return self.options.registered_delivery

    @property
    def concurrency(self) -> int:
        return self.options.window

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    # -- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Make the first bind attempt; an SMSC that is down or refuses the bind is retried in the background."""
        self._runner = asyncio.create_task(self._run(), name=f"smpp-{self.gateway_id}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self.options.connect_timeout)

    async def close(self) -> None:
        self._gone.set()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        await self._drop("closing", unbind=True)

    async def _run(self) -> None:
        delay = self.options.reconnect_delay
        while not self._gone.is_set():
            try:
                await self._bind()
            except Exception as exc:
                await self._drop(_describe(exc))
                expected = isinstance(exc, OSError | TimeoutError | BindRefused | SessionClosed)
                log.log(logging.WARNING if expected else logging.ERROR,
                        "%s: cannot bind to %s:%d: %s; next attempt in %gs", self.name, self.options.host,
                        self.options.port, self.down_reason, delay, exc_info=not expected)  # fmt: skip
                self._first_attempt.set()
            else:
                self._first_attempt.set()
                delay = self.options.reconnect_delay
                await self._wait_for_drop()
                if self._gone.is_set():
                    return
                log.warning("%s: connection lost: %s; reconnecting in %gs", self.name, self.down_reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), delay)
            delay = min(delay * 2, self.options.reconnect_max)

    async def _bind(self) -> None:
        o = self.options
        modes = [(p.BIND_TRANSCEIVER, "trx")] if o.bind == "transceiver" else [
            (p.BIND_TRANSMITTER, "tx"), (p.BIND_RECEIVER, "rx")]  # fmt: skip
        sessions: list[Session] = []
        try:
            for command, label in modes:
                session = await Session.connect(
                    o.host, o.port, f"{self.name} {label}", self._on_deliver, connect_timeout=o.connect_timeout,
                    enquire_link_interval=o.enquire_link_interval, response_timeout=o.response_timeout,
                )  # fmt: skip
                sessions.append(session)
                smsc = await session.bind(command, o.bind_body(), o.connect_timeout)
        except BaseException:
            for session in sessions:
                await session.close("bind failed")
            raise
        self._tx, self._rx = sessions[0], sessions[-1]
        self.binds += 1
        self.down_reason = ""
        self._ready.set()
        log.info("%s: bound to %s:%d (%s) as %s", self.name, o.host, o.port, smsc or "?", o.bind)

    async def _wait_for_drop(self) -> None:
        waits = [asyncio.ensure_future(s.closed.wait()) for s in {self._tx, self._rx} if s is not None]
        waits.append(asyncio.ensure_future(self._gone.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        reason = next((s.close_reason for s in (self._tx, self._rx) if s is not None and s.closed.is_set()), "")
        await self._drop(reason or "closing")

    async def _drop(self, reason: str, *, unbind: bool = False) -> None:
        """Close both binds (a pair lives and dies together)."""
        self._ready.clear()
        self.down_reason = reason
        sessions = [s for s in dict.fromkeys((self._tx, self._rx)) if s is not None]
        self._tx = self._rx = None
        for session in sessions:
            if unbind and not session.closed.is_set():
                await session.unbind(min(self.options.response_timeout, 2.0))
            await session.close(reason)

    # -- sending ----------------------------------------------------------------------------

    async def submit(self, sms: OutgoingSms) -> list[PartResult]:
        """Send the parts in order; stop at the first that the SMSC does not take."""
        return await in_order(sms, functools.partial(self._submit_part, sms))

    async def _submit_part(self, sms: OutgoingSms, part: OutgoingPart) -> PartResult:
        try:
            body = build_submit(sms, part, self.options)
        except ValueError as exc:
            return PartResult(part.seq, Outcome.PERMANENT, f"{self.name}: {exc}", dsn="5.6.0")
        async with self._window:
            session = self._tx
            if self._paused_until or not self._ready.is_set():  # the common case skips the waiting
                waited = await self._wait_ready()
                session = self._tx
            else:
                waited = True
            if not waited or session is None:
                reason = f"{self.name}: not bound: {self.down_reason}"
                return PartResult(part.seq, Outcome.TEMPORARY, reason, dsn="4.4.1")
            try:
                answer = await session.request(p.SUBMIT_SM, body)
            except (SessionClosed, TimeoutError) as exc:
                reason = f"{self.name}: no submit_sm_resp ({_describe(exc)}); the SMSC may have the part"
                return PartResult(part.seq, Outcome.TEMPORARY, reason, dsn="4.4.2")
        return self._answered(sms, part, answer)

    async def _wait_ready(self) -> bool:
        """Bound and not paused by throttling, within ``connect_timeout`` (and any pause); False if not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.connect_timeout + self.options.throttle_max
        while True:
            pause = self._paused_until - loop.time()
            if pause <= 0:
                self._paused_until = 0.0
            else:
                if loop.time() + pause > deadline:
                    return False
                await asyncio.sleep(pause)  # the SMSC asked us to slow down: this is the back-off
                continue
            if self._ready.is_set():
                return True
            left = min(deadline - loop.time(), self.options.connect_timeout)
            if self._gone.is_set() or left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), left)
            if not self._ready.is_set():
                return False

    def _answered(self, sms: OutgoingSms, part: OutgoingPart, answer: p.Pdu) -> PartResult:
        if answer.command_id == p.GENERIC_NACK:
            status = answer.status or p.ESME_RSYSERR
            return judge(status, part.seq, "")
        if answer.status in THROTTLED:
            self._throttle(answer.status)
            return judge(answer.status, part.seq, "")
        self._throttle_delay = self.options.throttle_delay
        try:
            message_id = p.decode_message_id(answer.body)
        except p.PduError as exc:
            log.warning("%s: %s part %d: unreadable submit_sm_resp (%s)", self.name, sms.queue_id, part.seq, exc)
            message_id = ""
        if answer.status == p.ESME_ROK and (self.options.registered_delivery or sms.report):
            self._remember(message_id)  # a receipt will come
        return judge(answer.status, part.seq, message_id)

    def _throttle(self, status: int) -> None:
        loop = asyncio.get_running_loop()
        self.throttled += 1
        if self._paused_until <= loop.time():
            log.warning("%s: throttled by the SMSC (0x%08X): pausing submits for %gs", self.name, status,
                        self._throttle_delay)  # fmt: skip
            self._paused_until = loop.time() + self._throttle_delay
            self._throttle_delay = min(self._throttle_delay * 2, self.options.throttle_max)

    def _remember(self, message_id: str) -> None:
        if not message_id:
            return
        for key in inbound.submit_keys(message_id):
            self._recent[key] = message_id
        while len(self._recent) > RECENT_IDS:  # the oldest first: dicts keep insertion order
            del self._recent[next(iter(self._recent))]

    def submit_id(self, receipt_id: str) -> str:
        """The submit_sm_resp id a receipt's id stands for (itself when not known)."""
        for key in inbound.id_keys(receipt_id):
            found = self._recent.get(key)
            if found is not None:
                return found
        return receipt_id

    async def already_submitted(self, sms: OutgoingSms) -> dict[int, str]:
        return {}

    # -- receiving ---------------------------------------------------------------------------

    async def _on_deliver(self, pdu: p.Pdu) -> int:
        """Handle a deliver_sm; the command_status of its response."""
        try:
            sm = p.decode_sm(pdu.body)
        except p.PduError as exc:
            log.warning("%s: malformed deliver_sm %d (%s): refused", self.name, pdu.sequence, exc)
            return exc.status
        if inbound.is_receipt(sm):
            return await self._receipt(sm)
        return await self._mo(sm)

    async def _receipt(self, sm: p.ShortMessage) -> int:
        receipt = inbound.parse_receipt(sm)
        if not receipt.message_id:
            log.warning("%s: delivery receipt without a message id: dropped", self.name)
            return p.ESME_ROK
        report: DeliveryReport | None = inbound.report(receipt, self.gateway_id, self.submit_id(receipt.message_id))
        if report is None:
            log.info("%s: receipt for %s: stat:%s (not final)", self.name, receipt.message_id, receipt.state or "?")
            return p.ESME_ROK
        try:
            await self._context.report_sink(report)
        except Exception:
            log.exception("%s: cannot record the receipt for %s: the SMSC will send it again", self.name,
                          receipt.message_id)  # fmt: skip
            return p.ESME_RX_T_APPN
        return p.ESME_ROK

    async def _mo(self, sm: p.ShortMessage) -> int:
        sink = self._context.mo_sink
        if sink is None:
            log.warning("%s: an incoming SMS from %s, but nothing takes incoming SMS: left at the SMSC",
                        self.name, sm.source_addr)  # fmt: skip
            return p.ESME_RX_T_APPN
        try:
            sms = inbound.incoming(sm, self.gateway_id)
        except ValueError as exc:
            log.warning("%s: unreadable incoming SMS from %s (%s): refused", self.name, sm.source_addr, exc)
            return p.ESME_RSYSERR
        try:
            inbound_id = await sink(sms)
        except Exception as exc:
            log.error("%s: cannot commit the SMS from %s (%s): the SMSC will send it again", self.name,
                      sms.sender, _describe(exc))  # fmt: skip
            return p.ESME_RX_T_APPN
        log.info("%s: incoming SMS from %s stored as %s", self.name, sms.sender, inbound_id)
        return p.ESME_ROK


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, BindRefused):
        return f"{exc}: {codes.smpp_command_status(exc.status).text}"
    return str(exc) or type(exc).__name__


def create(options: Options, context: TransportContext) -> SmppTransport:
    """The SMPP transport for one ``[[gateway]]``."""
    return SmppTransport(options, context)
