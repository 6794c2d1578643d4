"""The start-up dialogue with a modem, and reading what it answers (pure parsers beside it).

The order follows what works across vendors (smsd, Gammu, IceWarp's GSM
service): ESC and Ctrl-Z to leave a half-finished PDU prompt, ``ATZ`` and
``ATE0``, verbose errors (``AT+CMEE=1``), the SIM (``AT+CPIN?``, the PIN
entered once: a SIM locks after three wrong ones), registration and signal,
PDU mode, the service centre, new-message indications and storage.  Every
step is logged with its answer; the PIN never is.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

from transports.modem_at import AtChannel, CommandFailed, ModemTimeout, Reply

log = logging.getLogger("mailsms.modem")

_REGISTRATION = {
    0: "not registered, not searching",
    1: "registered (home network)",
    2: "searching",
    3: "registration denied",
    4: "unknown",
    5: "registered (roaming)",
}
# Indication settings tried in order: stored SMS (+CMTI) and stored status reports (+CDSI),
# then reports sent directly (+CDS), then no reports at all (the sweep still finds them).
CNMI_FALLBACKS = ("2,1,0,2,0", "2,1,0,1,0", "1,1,0,2,0", "1,1,0,1,0", "2,1,0,0,0", "1,1,0,0,0")


class SimProblem(Exception):
    """The SIM cannot be used without a person: a wrong PIN, a PUK, no PIN configured.

    Never retried: each wrong PIN brings the SIM closer to being locked.
    """

    def __init__(self, message: str, *, pin_refused: bool = False) -> None:
        super().__init__(message)
        self.pin_refused = pin_refused


@dataclass(frozen=True)
class DialogueSettings:
    pin: str = field(default="", repr=False)
    smsc: str = ""
    init: tuple[str, ...] = ()
    cnmi: str = ""  # "" tries CNMI_FALLBACKS
    storage: str = "SM"
    timeout: float = 16.0
    identify: bool = True  # ask for manufacturer, model, revision, IMEI, own number


@dataclass
class ModemInfo:
    """What the dialogue learnt; empty strings for what the modem would not say."""

    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    sim: str = ""
    registration: str = ""
    signal: str = ""
    smsc: str = ""
    storage: str = ""
    own_number: str = ""
    indications: str = ""
    storage_used: int | None = None
    storage_total: int | None = None


def parse_registration(value: str) -> int | None:
    """``+CREG: <n>,<stat>[,...]`` (answer) or ``+CREG: <stat>[,...]`` (unsolicited) -> stat."""
    numbers = [p.strip().strip('"') for p in value.split(",")]
    if len(numbers) >= 2 and numbers[1].isdigit():
        return int(numbers[1])
    if numbers and numbers[0].isdigit():
        return int(numbers[0])
    return None


def describe_signal(value: str) -> str:
    """``+CSQ: <rssi>,<ber>`` in words: ``-73 dBm (CSQ 20)``."""
    rssi = value.split(",", maxsplit=1)[0].strip()
    if not rssi.isdigit():
        return value or "unknown"
    level = int(rssi)
    if level == 99:
        return "unknown (CSQ 99)"
    return f"{-113 + 2 * min(level, 31)} dBm (CSQ {level})"


def parse_storage(value: str) -> tuple[int, int] | None:
    """``+CPMS: <used>,<total>,...`` (set form) or ``"SM",<used>,<total>,...`` (query form)."""
    numbers = [p.strip() for p in value.split(",") if p.strip().isdigit()]
    if len(numbers) >= 2:
        return int(numbers[0]), int(numbers[1])
    return None


def parse_smsc(value: str) -> str:
    """``+CSCA: "+491722270333",145`` -> ``+491722270333``."""
    match = re.match(r'\s*"([^"]*)"', value)
    return match.group(1) if match else value.split(",", maxsplit=1)[0].strip()


def smsc_command(number: str) -> str:
    """``AT+CSCA`` setting the service centre, with its type of address."""
    return f'AT+CSCA="{number}",{145 if number.startswith("+") else 129}'


def _first_line(reply: Reply) -> str:
    return reply.lines[0] if reply.lines else ""


class Dialogue:
    """Runs the start-up dialogue on an open channel."""

    def __init__(self, channel: AtChannel, settings: DialogueSettings, name: str) -> None:
        self.channel = channel
        self.settings = settings
        self.name = name
        self.info = ModemInfo()

    async def step(self, command: str, *, shown: str = "", required: bool = True) -> Reply | None:
        """One command, logged with its answer; a failed optional step logs and returns None."""
        try:
            reply = await self.channel.command(command, self.settings.timeout)
        except CommandFailed as exc:
            log.info("%s: %s -> %s", self.name, shown or command, exc.line)
            if required:
                raise
            return None
        log.info("%s: %s -> %s", self.name, shown or command, " | ".join((*reply.lines, "OK")))
        return reply

    async def run(self) -> ModemInfo:
        """The whole dialogue; SimProblem for a SIM that needs a person, AtError for anything else."""
        timeout = self.settings.timeout
        await self.channel.write_raw(b"\x1b\x1a")  # leave a PDU prompt without sending it
        await self.channel.wait_quiet(min(0.25, timeout / 8), timeout)
        await self._sync()
        await self.step("ATE0", required=False)
        await self.step("AT+CMEE=1", required=False)
        for command in self.settings.init:
            await self.step(command)
        await self._sim()
        await self._registration()
        reply = await self.step("AT+CSQ", required=False)
        self.info.signal = describe_signal(reply.field("+CSQ:")) if reply else "unknown"
        await self.step("AT+CMGF=0")
        await self._smsc()
        await self._indications()
        await self._storage()
        if self.settings.identify:
            await self._identify()
        return self.info

    async def _sync(self) -> None:
        """``ATZ``; a modem that refuses a reset still has to answer ``AT``."""
        try:
            await self.step("ATZ")
        except CommandFailed:
            await self.step("AT")

    async def _sim(self) -> None:
        reply = await self.step("AT+CPIN?")
        state = reply.field("+CPIN:") if reply else ""
        if state == "SIM PIN":
            if not self.settings.pin:
                raise SimProblem("the SIM asks for its PIN and none is configured (pin)")
            try:
                await self.step(f'AT+CPIN="{self.settings.pin}"', shown='AT+CPIN="****"')
            except CommandFailed as exc:
                refused = exc.code == 16 or exc.kind == "ERROR"  # 16: incorrect password
                reason = f"the SIM refused the PIN ({exc.line}); not trying it again"
                raise SimProblem(reason, pin_refused=refused) from None
            except ModemTimeout:
                # Perhaps counted as a wrong attempt: a person decides, not a loop.
                raise SimProblem("no answer to the PIN; not entering it again until restarted") from None
            state = await self._wait_ready()
        if state in ("SIM PUK", "SIM PUK2", "PH-SIM PIN", "PH-NET PIN"):
            raise SimProblem(f"the SIM asks for {state}: unlock it by hand")
        if state != "READY":
            raise CommandFailed("AT+CPIN?", f"ERROR (SIM state {state or 'unknown'})")
        self.info.sim = "READY"

    async def _wait_ready(self) -> str:
        """After the PIN a SIM takes a few seconds; poll ``AT+CPIN?`` until READY (or the timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        state = ""
        while loop.time() < deadline:
            try:
                reply = await self.channel.command("AT+CPIN?", self.settings.timeout)
                state = reply.field("+CPIN:")
            except CommandFailed as exc:
                state = exc.line  # "+CME ERROR: 14" (SIM busy) while it reads its files
            if state == "READY" or state.startswith("SIM PUK"):
                break
            await asyncio.sleep(min(0.5, self.settings.timeout / 8))
        log.info("%s: AT+CPIN? -> %s", self.name, state)
        return state

    async def _registration(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        stat: int | None = None
        while True:
            reply = await self.step("AT+CREG?", required=False)
            stat = parse_registration(reply.field("+CREG:")) if reply else None
            if stat != 2 or loop.time() >= deadline:
                break
            await asyncio.sleep(min(1.0, self.settings.timeout / 8))
        self.info.registration = _REGISTRATION.get(stat, "unknown") if stat is not None else "unknown"
        if stat not in (1, 5):
            log.warning("%s: not registered with a network (%s): sending will fail until it is",
                        self.name, self.info.registration)  # fmt: skip

    async def _smsc(self) -> None:
        if self.settings.smsc:
            await self.step(smsc_command(self.settings.smsc), required=False)
        reply = await self.step("AT+CSCA?", required=False)
        self.info.smsc = parse_smsc(reply.field("+CSCA:")) if reply else ""

    async def _indications(self) -> None:
        for setting in (self.settings.cnmi,) if self.settings.cnmi else CNMI_FALLBACKS:
            if await self.step(f"AT+CNMI={setting}", required=False) is not None:
                self.info.indications = setting
                return
        log.warning("%s: the modem takes no new-message indications: incoming SMS wait for the sweep", self.name)

    async def _storage(self) -> None:
        memory = self.settings.storage
        reply = await self.step(f'AT+CPMS="{memory}","{memory}","{memory}"', required=False)
        counts = parse_storage(reply.field("+CPMS:")) if reply else None
        if counts is None:
            reply = await self.step("AT+CPMS?", required=False)
            counts = parse_storage(reply.field("+CPMS:")) if reply else None
        if counts is not None:
            self.info.storage_used, self.info.storage_total = counts
            self.info.storage = f"{memory} {counts[0]}/{counts[1]}"
            if counts[1] and counts[0] >= counts[1]:
                log.warning("%s: SMS storage %s is full (%d/%d): reading and deleting", self.name, memory, *counts)

    async def _identify(self) -> None:
        for command, attribute in (
            ("AT+CGMI", "manufacturer"),
            ("AT+CGMM", "model"),
            ("AT+CGMR", "revision"),
            ("AT+CGSN", "imei"),
        ):
            reply = await self.step(command, required=False)
            if reply is not None:
                value = reply.field(command[2:] + ":") or _first_line(reply)
                setattr(self.info, attribute, value.strip('"'))
        reply = await self.step("AT+CNUM", required=False)
        if reply is not None:
            match = re.search(r'"(\+?[0-9]+)"', reply.field("+CNUM:"))
            self.info.own_number = match.group(1) if match else ""
