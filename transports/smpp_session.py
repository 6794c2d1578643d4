"""One bound SMPP connection: requests matched to responses by sequence number, keepalive, requests from the SMSC.

``Session.request`` sends a PDU and waits for the response with the same
sequence number; many may be outstanding at once (the transport's window
limits them).  A reader task answers what the SMSC asks: ``enquire_link``,
``unbind``, ``deliver_sm`` (through ``on_deliver``, which returns the
command_status to answer with, after committing what came), and anything
unknown with ``generic_nack``.  A PDU whose length cannot be right leaves the
stream out of step: the connection is closed and the transport reconnects.
When the connection ends every waiting request fails with ``SessionClosed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable

from transports import smpp_pdu as p

log = logging.getLogger("mailsms.smpp")

DeliverHandler = Callable[[p.Pdu], Awaitable[int]]


READ_SIZE = 65536
WRITE_BUFFER = 256 * 1024  # wait for the socket only when this much is queued


class SessionClosed(ConnectionError):
    """The connection ended before the response came."""


class BindRefused(ConnectionError):
    def __init__(self, command: str, status: int) -> None:
        super().__init__(f"{command} refused with 0x{status:08X}")
        self.status = status


_BIND_NAMES = {p.BIND_TRANSCEIVER: "bind_transceiver", p.BIND_TRANSMITTER: "bind_transmitter",
               p.BIND_RECEIVER: "bind_receiver"}  # fmt: skip


class Session:
    """A connected SMPP stream; ``bind`` it, then ``request`` away."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        name: str,
        on_deliver: DeliverHandler,
        *,
        enquire_link_interval: float,
        response_timeout: float,
    ) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._on_deliver = on_deliver
        self._interval = enquire_link_interval
        self._timeout = response_timeout
        self._sequence = itertools.count(1)
        # sequence -> (the request's future, when it times out); in the order sent.
        self._pending: dict[int, tuple[asyncio.Future[p.Pdu], float]] = {}
        self._outgoing: list[bytes] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._reading = asyncio.create_task(self._read_loop(), name=f"{name}-reader")
        self._watchdog = asyncio.create_task(self._watch(), name=f"{name}-watchdog")
        self._keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, name: str, on_deliver: DeliverHandler, *, connect_timeout: float,
        enquire_link_interval: float, response_timeout: float,
    ) -> Session:  # fmt: skip
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout)
        return cls(reader, writer, name, on_deliver, enquire_link_interval=enquire_link_interval,
                   response_timeout=response_timeout)  # fmt: skip

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    async def bind(self, command_id: int, body: bytes, timeout: float) -> str:
        """Bind; the SMSC's system_id.  BindRefused when it says no; keepalive starts on success."""
        answer = await self.request(command_id, body, timeout)
        if answer.command_id != command_id | p.RESPONSE or answer.status != p.ESME_ROK:
            await self.close(f"{_BIND_NAMES.get(command_id, 'bind')} refused")
            raise BindRefused(_BIND_NAMES.get(command_id, "bind"), answer.status or p.ESME_RBINDFAIL)
        self._keepalive = asyncio.create_task(self._keep_alive(), name=f"{self.name}-keepalive")
        try:
            return p.decode_message_id(answer.body)
        except p.PduError:
            return ""

    async def request(self, command_id: int, body: bytes = b"", timeout: float | None = None) -> p.Pdu:
        """Send a request and wait for its response (or a generic_nack for it)."""
        if self.closed.is_set():
            raise SessionClosed(self.close_reason or "closed")
        sequence = next(self._sequence)
        if sequence >= 0x7FFFFFFF:  # 3.4 allows 1..0x7FFFFFFF: start again
            self._sequence = itertools.count(1)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[p.Pdu] = loop.create_future()
        limit = timeout or self._timeout
        # One watchdog for all requests (``_watch``): a timer per request costs more than the rest of it.
        self._pending[sequence] = (future, loop.time() + limit)
        try:
            self._send(p.Pdu(command_id, 0, sequence, body))
            if self._writer.transport.get_write_buffer_size() > WRITE_BUFFER:  # the SMSC reads slowly
                await self._drain()
            return await future
        except TimeoutError:
            await self.close(f"no response to 0x{command_id:08X} within {limit:g}s")
            raise
        finally:
            self._pending.pop(sequence, None)

    def _send(self, pdu: p.Pdu) -> None:
        """Queue a PDU; everything queued in one turn of the loop goes out in one write (one system call)."""
        if self.closed.is_set():
            raise SessionClosed(self.close_reason or "closed")
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(p.encode(pdu))

    def _flush(self) -> None:
        if self._outgoing and not self.closed.is_set():
            self._writer.write(b"".join(self._outgoing))
        self._outgoing.clear()

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            await self.close(f"write failed: {exc}")
            raise SessionClosed(self.close_reason) from None

    async def unbind(self, timeout: float) -> None:
        """Say goodbye politely; some SMSCs close without answering, which is fine."""
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            await self.request(p.UNBIND, b"", timeout)
        await self.close("unbound")

    async def close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(SessionClosed(reason))
        self._pending.clear()
        current = asyncio.current_task()
        for task in (self._reading, self._keepalive, self._watchdog, *self._tasks):
            if task is not None and task is not current:
                task.cancel()
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    # -- reading -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        buffer = bytearray()
        try:
            while chunk := await self._reader.read(READ_SIZE):
                buffer += chunk
                for frame in p.split_frames(buffer):
                    self._dispatch(p.decode(frame))
            await self.close("closed by the SMSC")
        except p.PduError as exc:
            log.warning("%s: malformed PDU from the SMSC (%s); closing the connection", self.name, exc)
            await self.close(f"malformed PDU: {exc}")
        except (ConnectionError, OSError) as exc:
            await self.close(f"connection lost: {exc}")

    def _dispatch(self, pdu: p.Pdu) -> None:
        if pdu.is_response:
            waiting = self._pending.get(pdu.sequence)
            if waiting is not None and not waiting[0].done():
                waiting[0].set_result(pdu)
            elif pdu.command_id == p.GENERIC_NACK:
                log.warning("%s: generic_nack 0x%08X for sequence %d", self.name, pdu.status, pdu.sequence)
            else:
                log.warning("%s: response 0x%08X to no request (sequence %d): ignored", self.name,
                            pdu.command_id, pdu.sequence)  # fmt: skip
            return
        if pdu.command_id == p.ENQUIRE_LINK:
            self._spawn(self._answer(p.response(pdu)))
        elif pdu.command_id == p.UNBIND:
            self._spawn(self._answer_unbind(pdu))
        elif pdu.command_id == p.DELIVER_SM:
            self._spawn(self._deliver(pdu))
        else:
            log.warning("%s: unknown command 0x%08X from the SMSC: generic_nack", self.name, pdu.command_id)
            self._spawn(self._answer(p.generic_nack(pdu.sequence, p.ESME_RINVCMDID)))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, pdu: p.Pdu) -> None:
        with contextlib.suppress(SessionClosed):
            self._send(pdu)
            await self._drain()

    async def _answer_unbind(self, pdu: p.Pdu) -> None:
        log.info("%s: the SMSC unbinds", self.name)
        await self._answer(p.response(pdu))
        await self.close("unbound by the SMSC")

    async def _deliver(self, pdu: p.Pdu) -> None:
        try:
            status = await self._on_deliver(pdu)
        except Exception:  # a bug must not leave the SMSC without an answer: it will try again
            log.exception("%s: handling deliver_sm %d failed", self.name, pdu.sequence)
            status = p.ESME_RX_T_APPN
        await self._answer(p.response(pdu, status, b"\x00"))  # deliver_sm_resp: an empty message_id

    async def _watch(self) -> None:
        """Fail the requests whose response is overdue (a quarter of the timeout late at most)."""
        loop = asyncio.get_running_loop()
        while not self.closed.is_set():
            await asyncio.sleep(min(self._timeout / 4, 1.0))
            now = loop.time()
            for future, deadline in list(self._pending.values()):
                if deadline <= now and not future.done():
                    future.set_exception(TimeoutError())

    async def _keep_alive(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(self._interval)
            try:
                await self.request(p.ENQUIRE_LINK)
            except (SessionClosed, TimeoutError):
                return
