"""SMSCs for SMPP tests: an in-process fake built on our PDU codec, and a driver for smpp34's real server.

``FakeSmsc`` (component tests) listens on 127.0.0.1, takes binds and
``submit_sm``, and lets a test decide every answer: refuse the bind, hold
responses to build up a window, throttle, drop the connection, send
``deliver_sm`` (receipts, MO), ``enquire_link`` or raw bytes.

``python -m tests.fakes.smsc_smpp --port N`` (integration tests, the
benchmark) runs the SMSC server of the ``smpp34`` package from PyPI in its
own process.  It reads commands as JSON lines on stdin (``{"cmd": "mo",
...}``, ``{"cmd": "throttle", "count": 3}``, ``{"cmd": "stop"}``) and writes
events as JSON lines on stdout (``listening``, ``bound``, ``submit``,
``throttling``, ``rejected``, ``receipt``, ``mo``).  Every accepted submit with
``registered_delivery`` gets a delivery receipt: the TLVs
``receipted_message_id`` (the hex id of the submit_sm_resp) and
``message_state``, and a receipt text whose ``id:`` is the same number in
decimal, as some SMSCs write it.  ``--engine fake`` runs ``FakeSmsc``
instead, accepting everything: a peer for benchmarks that costs less than
smpp34's Python event bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transports import smpp_pdu as p

Answer = Callable[[p.ShortMessage, int], tuple[int, str]]


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bound_as: int = 0
    pending: dict[int, asyncio.Future[p.Pdu]] = field(default_factory=dict)

    def send(self, pdu: p.Pdu) -> None:
        self.writer.write(p.encode(pdu))


class FakeSmsc:
    """An SMSC a test steers; see the module docstring."""

    def __init__(self) -> None:
        self.port = 0
        self.bind_status = p.ESME_ROK
        self.binds: list[tuple[int, p.Bind]] = []
        self.submits: list[p.ShortMessage] = []
        self.requests: list[int] = []  # command ids of every request from the ESME, in order
        self.connections: list[Connection] = []
        self.release = asyncio.Event()  # cleared: submit_sm responses wait
        self.release.set()
        self.waiting = 0  # submit_sm received, response held
        self.answer: Answer = self.accept
        self._ids = itertools.count(1)
        self._sequence = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def accept(self, sm: p.ShortMessage, index: int) -> tuple[int, str]:
        return p.ESME_ROK, f"{next(self._ids):X}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.release.set()
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def bound(self) -> list[Connection]:
        return [c for c in self.connections if c.bound_as and not c.writer.is_closing()]

    def drop(self) -> None:
        """Close every connection at once, as a crashing SMSC would."""
        for connection in self.connections:
            connection.writer.transport.abort()

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, to the newest bound connection."""
        self.bound[-1].writer.write(data)

    async def request(self, command_id: int, body: bytes = b"", timeout: float = 5.0) -> p.Pdu:
        """Send a request to the newest connection that may receive, and wait for the answer."""
        receivers = [c for c in self.bound if c.bound_as in (p.BIND_TRANSCEIVER, p.BIND_RECEIVER)]
        connection = receivers[-1]
        sequence = next(self._sequence)
        future: asyncio.Future[p.Pdu] = asyncio.get_running_loop().create_future()
        connection.pending[sequence] = future
        connection.send(p.Pdu(command_id, 0, sequence, body))
        return await asyncio.wait_for(future, timeout)

    async def deliver(self, sm: p.ShortMessage, timeout: float = 5.0) -> int:
        """Send a deliver_sm; the command_status of the ESME's deliver_sm_resp."""
        return (await self.request(p.DELIVER_SM, p.encode_sm(sm), timeout)).status

    async def deliver_raw(self, body: bytes, timeout: float = 5.0) -> p.Pdu:
        """A deliver_sm with any body; the ESME's answer."""
        return await self.request(p.DELIVER_SM, body, timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(reader, writer)
        self.connections.append(connection)
        try:
            while True:
                header = await reader.readexactly(p.HEADER_SIZE)
                rest = await reader.readexactly(p.frame_length(header) - p.HEADER_SIZE)
                self._handle(connection, p.decode(header + rest))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _handle(self, connection: Connection, pdu: p.Pdu) -> None:
        if pdu.is_response:
            future = connection.pending.pop(pdu.sequence, None)
            if future is not None and not future.done():
                future.set_result(pdu)
            return
        self.requests.append(pdu.command_id)
        if pdu.command_id in p.BIND_COMMANDS:
            self.binds.append((pdu.command_id, p.decode_bind(pdu.body)))
            if self.bind_status == p.ESME_ROK:
                connection.bound_as = pdu.command_id
            connection.send(p.response(pdu, self.bind_status, p.encode_message_id("FAKE")))
        elif pdu.command_id == p.SUBMIT_SM:
            sm = p.decode_sm(pdu.body)
            self.submits.append(sm)
            if self.release.is_set():  # answer at once: the fast path of benchmarks
                status, message_id = self.answer(sm, len(self.submits) - 1)
                connection.send(p.response(pdu, status, p.encode_message_id(message_id) if status == 0 else b""))
                return
            task = asyncio.ensure_future(self._answer_submit(connection, pdu, sm, len(self.submits) - 1))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif pdu.command_id in (p.ENQUIRE_LINK, p.UNBIND):
            connection.send(p.response(pdu))
        else:
            connection.send(p.generic_nack(pdu.sequence, p.ESME_RINVCMDID))

    async def _answer_submit(self, connection: Connection, pdu: p.Pdu, sm: p.ShortMessage, index: int) -> None:
        self.waiting += 1
        try:
            await self.release.wait()
        finally:
            self.waiting -= 1
        status, message_id = self.answer(sm, index)
        if not connection.writer.is_closing():
            connection.send(p.response(pdu, status, p.encode_message_id(message_id) if status == 0 else b""))


# -- smpp34's server in its own process -----------------------------------------------------------------


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _simulate(port: int, receipts: bool, quiet: bool) -> None:
    import smpp34

    server = smpp34.Server(host="127.0.0.1", port=port, system_id="SMPP34SIM")
    await server.start()
    _emit("listening", port=port)
    receivers: dict[str, smpp34.Esme] = {}
    throttle = 0
    ids = itertools.count(0x1F40)
    tasks: set[asyncio.Task[None]] = set()

    def spawn(work: Any) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def receipt(esme: smpp34.Esme, event: smpp34.SubmitSmEvent, message_id: str) -> None:
        text = f"id:{int(message_id, 16)} sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 "
        text += "stat:DELIVRD err:000 text:"
        tlvs = [smpp34.Tlv(0x001E, message_id.encode() + b"\x00"), smpp34.Tlv(0x0427, b"\x02")]
        answer = await esme.deliver_sm(
            event.source_addr, text.encode(), source_addr=event.destination_addr, esm_class=0x04,
            source_addr_ton=event.dest_addr_ton, dest_addr_ton=event.source_addr_ton, tlvs=tlvs,
        )  # fmt: skip
        _emit("receipt", id=message_id, status=answer.command_status)

    async def mo(command: dict[str, Any]) -> None:
        esme = next(iter(receivers.values()), None)
        if esme is None:
            _emit("mo", status=-1)
            return
        answer = await esme.deliver_sm(
            command["dest"], bytes.fromhex(command["hex"]), source_addr=command["source"], source_addr_ton=1,
            source_addr_npi=1, esm_class=command.get("esm_class", 0), data_coding=command.get("data_coding", 0),
        )  # fmt: skip
        _emit("mo", status=answer.command_status)

    async def commands() -> None:
        nonlocal throttle
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = json.loads(line)
            if command["cmd"] == "throttle":
                throttle = int(command["count"])
                _emit("throttling", count=throttle)
            elif command["cmd"] == "mo":
                spawn(mo(command))
            elif command["cmd"] == "stop":
                break

    control = asyncio.create_task(commands())
    while not control.done():
        nexts = asyncio.ensure_future(server.next())
        await asyncio.wait([nexts, control], return_when=asyncio.FIRST_COMPLETED)
        if not nexts.done():
            nexts.cancel()
            break
        event = nexts.result()
        if isinstance(event, smpp34.Esme):
            if event.can_receive:
                receivers[event.session_id] = event
            _emit("bound", system_id=event.system_id, session=event.session_id, can_receive=event.can_receive)
        elif isinstance(event, smpp34.Unbound):
            receivers.pop(event.session_id, None)
            _emit("unbound", session=event.session_id)
        elif throttle > 0:
            throttle -= 1
            event.reject(smpp34.ESME_RTHROTTLED)
            _emit("rejected", status=smpp34.ESME_RTHROTTLED)
        else:
            message_id = f"{next(ids):X}"
            event.accept(message_id)
            if not quiet:
                _emit("submit", id=message_id, dest=event.destination_addr, dest_ton=event.dest_addr_ton,
                      esm_class=event.esm_class, data_coding=event.data_coding,
                      registered_delivery=event.registered_delivery, hex=event.short_message.hex())  # fmt: skip
            esme = receivers.get(event.session_id) or next(iter(receivers.values()), None)
            if receipts and event.registered_delivery & 1 and esme is not None:
                spawn(receipt(esme, event, message_id))
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await server.stop()


async def _fake(port: int) -> None:
    """Our own FakeSmsc on a fixed port, accepting everything, until stdin closes or says stop."""
    smsc = FakeSmsc()
    server = await asyncio.start_server(smsc._serve, "127.0.0.1", port)
    _emit("listening", port=port)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := await reader.readline()) and json.loads(line).get("cmd") != "stop":
        pass
    smsc.drop()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine", choices=("smpp34", "fake"), default="smpp34")
    parser.add_argument("--no-receipts", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no event per accepted submit_sm (benchmarks)")
    args = parser.parse_args()
    if args.engine == "fake":
        asyncio.run(_fake(args.port))
    else:
        asyncio.run(_simulate(args.port, not args.no_receipts, args.quiet))


if __name__ == "__main__":
    main()
