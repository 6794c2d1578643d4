"""The AT command channel to a modem: one command at a time, unsolicited lines put aside.

pyserial opens the port and sets the line up (speed, raw mode, an exclusive
lock); from then on the event loop reads the non-blocking descriptor
(``add_reader``), so the loop never waits on the port and every command
waits on a future with a deadline.  What the modem says is cut into lines;
a line that is the echo of what we sent is dropped, an unsolicited result
(``+CMTI``, ``+CDS`` with its PDU line, ``RING`` ...) goes to ``on_urc`` even
in the middle of a reply, anything else belongs to the command waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mailsms.modem")

# Lines a modem sends on its own; "+CREG:" only counts when no AT+CREG? waits for it.
URC_PREFIXES = (
    "+CMTI:", "+CDSI:", "+CDS:", "+CMT:", "+CBM:", "+CBMI:", "RING", "+CRING:", "+CLIP:", "+CREG:", "+CGREG:",
    "+CUSD:", "+CIEV:", "^RSSI:", "^BOOT:", "^MODE:", "^SRVST:", "^SIMST:", "^DSFLOWRPT:", "+PBREADY",
)  # fmt: skip
# Unsolicited results whose PDU follows on the next line.
TWO_LINE_URCS = ("+CDS:", "+CMT:", "+CBM:")
FINAL_ERRORS = ("ERROR", "+CMS ERROR:", "+CME ERROR:", "COMMAND NOT SUPPORT", "TOO MANY PARAMETERS", "NO CARRIER")
MAX_BUFFER = 65_536  # bytes without a line end before the buffer is thrown away as noise
_NOISE = "".join(map(chr, [*range(0x20), *range(0x7F, 0x100)]))
_NOISE_BYTES = _NOISE.encode("latin-1")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")

UrcHandler = Callable[[str, str], None]  # (line, the PDU line of a two-line result or "")


class AtError(Exception):
    """A command did not get its answer."""


class CommandFailed(AtError):
    """The modem answered ``ERROR``, ``+CMS ERROR: n`` or ``+CME ERROR: n``."""

    def __init__(self, command: str, line: str) -> None:
        self.line = line
        self.kind = "CMS" if line.startswith("+CMS") else "CME" if line.startswith("+CME") else "ERROR"
        value = line.partition(":")[2].strip()
        self.code = int(value) if value.isdigit() else None
        super().__init__(f"{command} -> {line}")


class ModemTimeout(AtError):
    """No final answer within the read timeout; ``silent`` when not a byte came."""

    def __init__(self, command: str, timeout: float, silent: bool) -> None:
        self.silent = silent
        self.after_pdu = False  # AT+CMGS: the PDU was written, so the SMS may have gone out
        what = "no answer" if silent else "no final answer"
        super().__init__(f"{command}: {what} within {timeout:g}s")


class PortLost(AtError):
    """The port went away (unplugged, closed under us) or cannot be read or written."""


@dataclass(frozen=True)
class Reply:
    """The information lines of one answer, without echo and unsolicited lines."""

    lines: tuple[str, ...]

    def field(self, prefix: str) -> str:
        """The value after ``prefix`` on the first line that has it ("" when none does)."""
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        return ""


def clean(raw: bytes) -> str:
    """One line as text: non-ASCII bytes and control characters at its ends (line noise) cut off."""
    return raw.decode("latin-1").strip(_NOISE + " ")


def response_prefix(command: str) -> str:
    """``AT+CREG?`` -> ``+CREG:``: the prefix of the information lines a command answers with."""
    match = re.match(r"(?i)^AT([+^][A-Z]+)", command)
    return f"{match.group(1).upper()}:" if match else ""


def is_urc(line: str, expecting: str) -> bool:
    """Whether ``line`` is unsolicited while a command answering with ``expecting`` waits."""
    if expecting and line.startswith(expecting):
        return False
    return line.startswith(URC_PREFIXES)


class _Pending:
    """The command waiting for its final answer (and for the ``> `` prompt, for AT+CMGS)."""

    def __init__(self, command: str, loop: asyncio.AbstractEventLoop, want_prompt: bool) -> None:
        self.command = command
        self.expecting = response_prefix(command)
        self.echoes = {command.strip().upper()}
        self.lines: list[str] = []
        self.done: asyncio.Future[Reply] = loop.create_future()
        self.prompt: asyncio.Future[None] | None = loop.create_future() if want_prompt else None
        self.heard = False


class AtChannel:
    """One open serial port, read by the event loop."""

    def __init__(self, device: str, baudrate: int, on_urc: UrcHandler, name: str) -> None:
        self.device = device
        self.baudrate = baudrate
        self.on_urc = on_urc
        self.on_lost: Callable[[str], None] | None = None
        self.name = name
        self._serial: object | None = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        self._pending: _Pending | None = None
        self._urc_header = ""  # a two-line URC waiting for its PDU line
        self.last_rx = 0.0
        self.lost: str = ""

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    async def open(self) -> None:
        """Open the port (in a thread: a sick USB device can block in open) and start reading."""
        import serial

        def _open() -> object:
            port = serial.Serial(self.device, self.baudrate, timeout=0, write_timeout=0, exclusive=True)
            with contextlib.suppress(OSError, serial.SerialException):
                port.reset_input_buffer()
            return port

        try:
            port = await asyncio.to_thread(_open)
        except serial.SerialException as exc:
            raise PortLost(f"cannot open {self.device}: {_strerror(exc)}") from None
        self._serial = port
        self._fd = port.fileno()  # type: ignore[attr-defined]
        os.set_blocking(self._fd, False)
        self._loop = asyncio.get_running_loop()
        self._buffer.clear()
        self._urc_header = ""
        self.lost = ""
        self._loop.add_reader(self._fd, self._readable)

    async def close(self) -> None:
        """Stop reading and close the port; a command still waiting fails with PortLost."""
        self._detach("port closed")
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(port.close)  # type: ignore[attr-defined]

    def _detach(self, reason: str) -> None:
        if self._fd is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        self._fd = None
        pending, self._pending = self._pending, None
        if pending is not None:
            _fail(pending, PortLost(f"{pending.command}: {reason}"))

    def _lose(self, reason: str) -> None:
        self.lost = reason
        self._detach(reason)
        if self.on_lost is not None:
            self.on_lost(reason)

    # -- reading ----------------------------------------------------------------

    def _readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lose(f"{self.device}: read failed: {exc.strerror}")
            return
        if not data:
            self._lose(f"{self.device}: the port hung up")
            return
        self.feed(data)

    def feed(self, data: bytes) -> None:
        """Take bytes from the modem: lines, and the ``> `` prompt when one is awaited."""
        self.last_rx = time.monotonic()
        if self._pending is not None:
            self._pending.heard = True
        self._buffer += data
        while True:
            pending = self._pending
            if pending is not None and pending.prompt is not None and not pending.prompt.done():
                start = len(self._buffer) - len(self._buffer.lstrip(_NOISE_BYTES))
                if self._buffer[start : start + 1] == b">":
                    end = start + (2 if self._buffer[start + 1 : start + 2] == b" " else 1)
                    del self._buffer[:end]
                    pending.prompt.set_result(None)
                    continue
            cut = min((i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                break
            raw = bytes(self._buffer[:cut])
            del self._buffer[: cut + 1]
            line = clean(raw)
            if line:
                self._line(line)
        if len(self._buffer) > MAX_BUFFER:
            log.warning("%s: %d bytes without a line end thrown away", self.name, len(self._buffer))
            self._buffer.clear()

    def _line(self, line: str) -> None:
        pending = self._pending
        if self._urc_header:
            header, self._urc_header = self._urc_header, ""
            if _HEX.match(line):
                self.on_urc(header, line)
                return
            self.on_urc(header, "")
        if pending is not None and line.upper() in pending.echoes:
            return  # echo left on
        if is_urc(line, pending.expecting if pending else ""):
            if line.startswith(TWO_LINE_URCS):
                self._urc_header = line
            else:
                self.on_urc(line, "")
            return
        if pending is None:
            log.debug("%s: unexpected line ignored: %r", self.name, line[:80])
            return
        if line == "OK":
            self._pending = None
            if not pending.done.done():
                pending.done.set_result(Reply(tuple(pending.lines)))
            return
        if line.startswith(FINAL_ERRORS):
            self._pending = None
            _fail(pending, CommandFailed(pending.command, line))
            return
        pending.lines.append(line)

    # -- commands ---------------------------------------------------------------

    async def command(self, command: str, timeout: float) -> Reply:
        """Send one command line and wait for OK; CommandFailed, ModemTimeout or PortLost otherwise."""
        pending = self._start(command, want_prompt=False)
        await self._write(f"{command}\r".encode("ascii"))
        await self._wait(pending, pending.done, timeout)
        return pending.done.result()

    async def send_pdu(self, tpdu_length: int, pdu_hex: str, timeout: float) -> Reply:
        """``AT+CMGS=<len>``, wait for ``> ``, then the PDU and Ctrl-Z; the reply holds ``+CMGS: <mr>``."""
        command = f"AT+CMGS={tpdu_length}"
        pending = self._start(command, want_prompt=True)
        pending.echoes.add(pdu_hex.upper())
        await self._write(f"{command}\r".encode("ascii"))
        assert pending.prompt is not None
        await self._wait(pending, pending.prompt, timeout)
        await self._write(pdu_hex.encode("ascii") + b"\x1a")
        try:
            await self._wait(pending, pending.done, timeout)
        except ModemTimeout as exc:
            exc.after_pdu = True
            raise
        return pending.done.result()

    async def write_raw(self, data: bytes) -> None:
        """Bytes outside any command (Ctrl-Z, ESC)."""
        await self._write(data)

    async def wait_quiet(self, quiet: float, limit: float) -> None:
        """Wait until the modem has said nothing for ``quiet`` seconds (at most ``limit``), then forget it all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        start = time.monotonic()
        while True:
            idle = time.monotonic() - max(self.last_rx, start)
            if idle >= quiet or loop.time() >= deadline:
                break
            await asyncio.sleep(quiet - idle)
        self._buffer.clear()
        self._urc_header = ""

    def _start(self, command: str, *, want_prompt: bool) -> _Pending:
        if self._fd is None or self._loop is None:
            raise PortLost(f"{command}: {self.lost or 'port not open'}")
        if self._pending is not None:
            raise RuntimeError(f"{command} while {self._pending.command} waits")  # a bug: callers hold a lock
        self._pending = _Pending(command, self._loop, want_prompt)
        return self._pending

    async def _wait(self, pending: _Pending, future: asyncio.Future[Any], timeout: float) -> None:
        """Wait for ``future`` (the prompt or the final answer); the read timeout restarts with each byte."""
        sent = time.monotonic()
        cap = sent + 4 * timeout  # a modem talking on and on without an answer is hung too
        while not future.done():
            remaining = min(timeout - (time.monotonic() - max(self.last_rx, sent)), cap - time.monotonic())
            if remaining <= 0:
                if self._pending is pending:
                    self._pending = None
                error = ModemTimeout(pending.command, timeout, not pending.heard)
                _fail(pending, error)
                raise error
            await asyncio.wait({pending.done, future}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if future is not pending.done and pending.done.done() and not future.done():
                # OK where the prompt belongs: nothing will be sent.
                raise CommandFailed(pending.command, "ERROR (OK instead of the > prompt)")
        future.result()  # raises what the modem said instead

    async def _write(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            fd = self._fd
            if fd is None:
                raise PortLost(f"{self.device}: {self.lost or 'port not open'}")
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                writable = loop.create_future()
                loop.add_writer(fd, writable.set_result, None)
                try:
                    await asyncio.wait_for(writable, 5.0)
                except TimeoutError:
                    raise PortLost(f"{self.device}: the port takes no more bytes") from None
                finally:
                    loop.remove_writer(fd)
            except OSError as exc:
                self._lose(f"{self.device}: write failed: {exc.strerror}")
                raise PortLost(f"{self.device}: write failed: {exc.strerror}") from None


def _fail(pending: _Pending, exc: Exception) -> None:
    for future in (pending.prompt, pending.done):
        if future is not None and not future.done():
            future.set_exception(exc)
            future.exception()  # retrieved: nobody may be waiting on both


def _strerror(exc: Exception) -> str:
    """pyserial's "could not open port X: [Errno 2] ..." as "No such file or directory"."""
    code = exc.args[0] if exc.args else None
    return os.strerror(code) if isinstance(code, int) else str(exc)
