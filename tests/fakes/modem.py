"""A fake GSM modem on a pty pair, scriptable per vendor quirk.

The modem side holds the pty master in its own thread; the gateway opens
the slave through a symlink (``link``), as it would ``/dev/ttyUSB0``.
``unplug`` closes the master (the slave node vanishes and the gateway's
reads hang up), ``plug`` makes a new pair behind the same link, like a USB
modem coming back.  Closing the slave is seen here as EIO on the master:
that is how a hang "until the port is reopened" ends.

The network side: ``deliver`` stores an SMS-DELIVER and announces it with
``+CMTI``; a submit that asks for a status report gets one (stored with
``+CDSI``, or sent directly as ``+CDS``, as ``AT+CNMI`` chose).

    python -m tests.fakes.modem LINK   # serve until killed (for benchmarks)
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mailsms.segment.pdu import decode_submit_pdu
from mailsms.segment.pdu_deliver import encode_status_report_pdu

Clock = Callable[[], float]


@dataclass
class Quirks:
    """What makes this fake modem difficult.  Counts of sends start at 1."""

    echo: bool = False  # echo stays on whatever ATE0 says
    urc_mid_reply: bool = False  # "RING" and a "+CMTI" in the middle of every listing and of +CMGS answers
    answer_delay: float = 0.0  # seconds before each answer
    hang_on_send: int = 0  # this send is swallowed: no answer until the port is reopened
    hang_at_prompt: int = 0  # this AT+CMGS gets no "> " until the port is reopened
    cms_error_on_send: dict[int, int] = field(default_factory=dict)  # send number -> +CMS ERROR code
    pin: str = ""  # the SIM asks for this PIN
    report_before_cmgs: bool = False  # a direct status report (+CDS) comes before +CMGS
    report_status: int = 0x00  # TP-ST of the reports made
    drop_indications: bool = False  # never says +CMTI
    garbage: bytes = b""  # sent before every answer, without a line end of its own
    storage_size: int = 20
    first_reference: int = 0
    list_length_lie: int = 0  # added to the <length> of every +CMGL line
    silent: bool = False  # answers nothing at all (a dead modem)


@dataclass
class Stored:
    stat: int  # 0 unread, 1 read
    pdu: bytes


class FakeModem:
    """See the module docstring."""

    def __init__(self, link: Path, quirks: Quirks | None = None, clock: Clock = time.time) -> None:
        self.link = link
        self.quirks = quirks or Quirks()
        self.clock = clock
        self.sim: dict[int, Stored] = {}
        self.sent: list[bytes] = []  # SMS-SUBMIT PDUs put on the air, in order
        self.references: list[int] = []
        self.commands: list[str] = []
        self.pin_attempts = 0
        self.closes = 0  # times the gateway closed the port
        self.sends = 0  # PDUs received after a prompt (put on the air or not)
        self.prompts = 0
        self.cnmi = (0, 0, 0, 0, 0)
        self.smsc = "+15550000000"
        self.next_reference = self.quirks.first_reference
        self._lock = threading.Lock()
        self._master = -1
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # set while the device is off: ends its loop and its waits
        self._stopping.set()
        self._port_open = False  # a gateway has written since the port was last closed
        self._power_on()

    # -- the device ---------------------------------------------------------------------

    def _power_on(self) -> None:
        self.echo = True
        self.cmee = 0
        self.sim_state = "SIM PIN" if self.quirks.pin else "READY"
        self._input = bytearray()
        self._pdu_mode: int | None = None  # TPDU length announced by AT+CMGS
        self.hung = False

    def start(self) -> FakeModem:
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(name)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="fake-modem", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()

    def unplug(self) -> None:
        """The USB cable is pulled: the device node vanishes and the gateway's port hangs up."""
        self.stop()

    def plug(self) -> None:
        """Plugged back in: a fresh device (echo on, SIM locked again if it has a PIN) at the same path."""
        self._power_on()
        self.start()

    def __enter__(self) -> FakeModem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the network side -----------------------------------------------------------------

    def deliver(self, pdu: bytes) -> int | None:
        """An SMS arrives: stored and announced; None when the storage is full (the network keeps it)."""
        with self._lock:
            index = self._store(pdu)
        if index is not None and not self.quirks.drop_indications:
            self._write(f'\r\n+CMTI: "SM",{index}\r\n')
        return index

    def preload(self, pdu: bytes, stat: int = 1) -> int | None:
        """A message already on the SIM before the gateway starts."""
        with self._lock:
            return self._store(pdu, stat)

    def unsolicited(self, text: str) -> None:
        self._write(text)

    def _store(self, pdu: bytes, stat: int = 0) -> int | None:
        for index in range(1, self.quirks.storage_size + 1):
            if index not in self.sim:
                self.sim[index] = Stored(stat, pdu)
                return index
        return None

    # -- the line -------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                readable, _, _ = select.select([self._master], [], [], 0.02)
            except (OSError, ValueError):
                return
            if not readable:
                continue
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:  # EIO: nobody has the port open
                self._closed()
                self._stopping.wait(0.005)  # until a gateway opens the port again, or the device stops
                continue
            self._receive(data)

    def _closed(self) -> None:
        if self._port_open:
            self.closes += 1
        self._port_open = False
        self.hung = False
        self._pdu_mode = None
        self._input.clear()

    def _receive(self, data: bytes) -> None:
        self._port_open = True
        if self.hung or self.quirks.silent:
            return
        for byte in data:
            self._byte(byte)
            if self.hung:
                return

    def _byte(self, byte: int) -> None:
        if self._pdu_mode is not None:
            if byte == 0x1A:
                text, self._input = self._input.decode("latin-1"), bytearray()
                if self.echo or self.quirks.echo:
                    self._write(text + "\x1a")
                length, self._pdu_mode = self._pdu_mode, None
                self._submitted(length, text.strip())
            elif byte == 0x1B:
                self._pdu_mode = None
                self._input.clear()
                self._answer("OK")
            else:
                self._input.append(byte)
            return
        if byte in (0x1A, 0x1B):
            return
        if byte in (0x0D, 0x0A):
            line, self._input = self._input.decode("latin-1").strip(), bytearray()
            if self.echo or self.quirks.echo:
                self._write(line + "\r")
            if line:
                self.commands.append(line)
                self._command(line)
            return
        self._input.append(byte)

    def _write(self, text: str | bytes) -> None:
        data = text.encode("latin-1") if isinstance(text, str) else text
        if self._master < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def _answer(self, *lines: str) -> None:
        if self.quirks.answer_delay:
            self._stopping.wait(self.quirks.answer_delay)  # a slow modem; cut short when it stops
        out = self.quirks.garbage.decode("latin-1")
        for line in lines:
            out += f"\r\n{line}\r\n"
        self._write(out)

    def _error(self, cms: int | None = None, cme: int | None = None) -> None:
        if self.cmee and cms is not None:
            self._answer(f"+CMS ERROR: {cms}")
        elif self.cmee and cme is not None:
            self._answer(f"+CME ERROR: {cme}")
        else:
            self._answer("ERROR")

    # -- commands --------------------------------------------------------------------------

    def _command(self, line: str) -> None:
        upper = line.upper()
        handler = _SIMPLE.get(upper)
        if handler is not None:
            self._answer(*handler(self))
            return
        for prefix, method in _PREFIXED:
            if upper.startswith(prefix):
                method(self, line[len(prefix) :])
                return
        self._answer("ERROR")

    def _ate(self, value: str) -> None:
        self.echo = value.strip() != "0"
        self._answer("OK")

    def _atz(self, _: str) -> None:
        self.echo = True
        self._answer("OK")

    def _cmee(self, value: str) -> None:
        self.cmee = int(value) if value.isdigit() else 0
        self._answer("OK")

    def _cpin(self, value: str) -> None:
        if value == "?":
            self._answer(f"+CPIN: {self.sim_state}", "OK")
            return
        if self.sim_state != "SIM PIN":
            self._error(cme=3)
            return
        self.pin_attempts += 1
        if value.strip('="') == self.quirks.pin:
            self.sim_state = "READY"
            self._answer("OK")
            return
        if self.pin_attempts >= 3:
            self.sim_state = "SIM PUK"
        self._error(cme=16)

    def _cnmi(self, value: str) -> None:
        numbers = [int(v) if v.strip().isdigit() else 0 for v in value.lstrip("=").split(",")]
        self.cnmi = (*numbers, 0, 0, 0, 0, 0)[:5]  # type: ignore[assignment]
        self._answer("OK")

    def _cpms(self, value: str) -> None:
        used, total = len(self.sim), self.quirks.storage_size
        if value == "?":
            self._answer(f'+CPMS: "SM",{used},{total},"SM",{used},{total},"SM",{used},{total}', "OK")
        else:
            self._answer(f"+CPMS: {used},{total},{used},{total},{used},{total}", "OK")

    def _csca(self, value: str) -> None:
        if value == "?":
            self._answer(f'+CSCA: "{self.smsc}",145', "OK")
        else:
            self.smsc = value.lstrip("=").split(",")[0].strip('"')
            self._answer("OK")

    def _ready_for_sms(self) -> bool:
        if self.sim_state != "READY":
            self._error(cms=311)
            return False
        return True

    def _cmgs(self, value: str) -> None:
        if not self._ready_for_sms():
            return
        if not value.lstrip("=").isdigit():
            self._error(cms=304)
            return
        self.prompts += 1
        if self.quirks.hang_at_prompt == self.prompts:
            self.hung = True
            return
        self._pdu_mode = int(value.lstrip("="))
        self._write(self.quirks.garbage + b"\r\n> ")

    def _submitted(self, length: int, pdu_hex: str) -> None:
        self.sends += 1
        number = self.sends
        if self.quirks.hang_on_send == number:
            self.hung = True
            return
        if number in self.quirks.cms_error_on_send:
            self._error(cms=self.quirks.cms_error_on_send[number])
            return
        try:
            pdu = bytes.fromhex(pdu_hex)
            submit = decode_submit_pdu(pdu)
        except (ValueError, IndexError):
            self._error(cms=304)
            return
        if length != len(pdu) - 1 - pdu[0]:
            self._error(cms=304)
            return
        reference = self.next_reference
        self.next_reference = (self.next_reference + 1) % 256
        self.sent.append(pdu)
        self.references.append(reference)
        report = None
        if submit.status_report:
            now = self.clock()
            report = encode_status_report_pdu(
                reference, submit.destination, submitted=now, discharged=now + 1, status=self.quirks.report_status
            )
        ds = self.cnmi[3]
        if report is not None and self.quirks.report_before_cmgs:
            self._write(f"\r\n+CDS: {len(report) - 1}\r\n{report.hex().upper()}\r\n")
            report = None
        lines = [f"+CMGS: {reference}"]
        if self.quirks.urc_mid_reply:
            lines = ["RING", *lines]
        self._answer(*lines, "OK")
        if report is None:
            return
        if ds == 1:
            self._write(f"\r\n+CDS: {len(report) - 1}\r\n{report.hex().upper()}\r\n")
            return
        with self._lock:
            index = self._store(report)
        if index is not None and ds == 2:
            self._write(f'\r\n+CDSI: "SR",{index}\r\n')  # the status report memory, as many modems say

    def _cmgl(self, value: str) -> None:
        lines: list[str] = []
        with self._lock:
            entries = sorted(self.sim.items())
        for position, (index, stored) in enumerate(entries):
            length = len(stored.pdu) - 1 - stored.pdu[0] + self.quirks.list_length_lie
            lines += [f"+CMGL: {index},{stored.stat},,{length}", stored.pdu.hex().upper()]
            stored.stat = 1
            if self.quirks.urc_mid_reply and position == 0:
                lines += ["RING", '+CMTI: "SM",99']
        self._answer(*lines, "OK")

    def _cmgr(self, value: str) -> None:
        index = int(value.lstrip("=")) if value.lstrip("=").isdigit() else -1
        with self._lock:
            stored = self.sim.get(index)
        if stored is None:
            self._answer("OK") if index > 0 else self._error(cms=321)
            return
        length = len(stored.pdu) - 1 - stored.pdu[0]
        self._answer(f"+CMGR: {stored.stat},,{length}", stored.pdu.hex().upper(), "OK")
        stored.stat = 1

    def _cmgd(self, value: str) -> None:
        index = value.lstrip("=").split(",")[0]
        with self._lock:
            if index.isdigit():
                self.sim.pop(int(index), None)
        self._answer("OK")

    def _ok(self, _: str) -> None:
        self._answer("OK")


_SIMPLE: dict[str, Callable[[FakeModem], tuple[str, ...]]] = {
    "AT": lambda m: ("OK",),
    "AT+CREG?": lambda m: ("+CREG: 0,1", "OK"),
    "AT+CSQ": lambda m: ("+CSQ: 20,99", "OK"),
    "AT+CGMI": lambda m: ("Fake Modems Ltd", "OK"),
    "AT+CGMM": lambda m: ("FM-1", "OK"),
    "AT+CGMR": lambda m: ("1.0.7", "OK"),
    "AT+CGSN": lambda m: ("490154203237518", "OK"),
    "AT+CNUM": lambda m: ('+CNUM: "","+15550001111",145', "OK"),
}
_PREFIXED: list[tuple[str, Callable[[FakeModem, str], None]]] = [
    ("ATE", FakeModem._ate),
    ("ATZ", FakeModem._atz),
    ("AT+CMEE=", FakeModem._cmee),
    ("AT+CPIN", lambda m, v: m._cpin(v.lstrip("=") if v != "?" else v)),
    ("AT+CMGF=0", FakeModem._ok),
    ("AT+CNMI=", FakeModem._cnmi),
    ("AT+CPMS", lambda m, v: m._cpms(v)),
    ("AT+CSCA", lambda m, v: m._csca(v)),
    ("AT+CMGS", FakeModem._cmgs),
    ("AT+CMGL", FakeModem._cmgl),
    ("AT+CMGR", FakeModem._cmgr),
    ("AT+CMGD", FakeModem._cmgd),
]


def main() -> None:
    """Serve one fake modem at ``argv[1]`` until killed (benchmarks run it in its own process)."""
    import signal

    modem = FakeModem(Path(sys.argv[1])).start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    modem.stop()


if __name__ == "__main__":
    main()
