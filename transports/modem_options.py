"""A modem gateway's keys, the SMS-SUBMIT for a part, and where its state lives (pure, or nearly).

``[[gateway]] type = "modem"`` reads into ``Options``; ``build_pdu`` turns
one part of our own segmentation into the PDU for ``AT+CMGS``; the
``pin-refused`` file remembers a PIN the SIM refused, across restarts.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mailsms.schema import bounded, duration
from mailsms.segment import gsm
from mailsms.segment.pdu import encode_submit_pdu, encode_user_data, relative_validity
from mailsms.segment.split import Encoding, Part
from transports.base import OutgoingPart, OutgoingSms

MAX_SWEEP_INTERVAL = 10.0  # some modems drop +CMTI: the SIM is read at least this often
PIN_REFUSED = "pin-refused"
_DCS = {"gsm7": 0x00, "binary": 0x04, "ucs2": 0x08}
_STORAGES = ("SM", "ME", "MT", "SR", "BM")


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
    sweep_interval: float = duration("10s")  # AT+CMGL=4 this often (at most 10s)
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
        if self.cnmi and not re.fullmatch(r"[0-9](,[0-9]){0,4}", self.cnmi):
            problems.append(("cnmi", "must be AT+CNMI values such as 2,1,0,2,0"))
        if self.storage not in _STORAGES:
            problems.append(("storage", f"must be one of {', '.join(_STORAGES)}"))
        if self.power_cycle:
            try:
                shlex.split(self.power_cycle)
            except ValueError as exc:
                problems.append(("power_cycle", f"cannot be split into words: {exc}"))
        return problems + self._timing_problems()

    def _timing_problems(self) -> list[tuple[str, str]]:
        problems = [(key, "must be more than 0") for key in ("read_timeout", "reopen_delay") if getattr(self, key) <= 0]
        if not 0 < self.sweep_interval <= MAX_SWEEP_INTERVAL:
            problems.append(("sweep_interval", f"must be more than 0 and at most {MAX_SWEEP_INTERVAL:g}s"))
        if self.validity > 63 * 7 * 86400:
            problems.append(("validity", "at most 63 weeks"))
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
