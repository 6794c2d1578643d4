"""``mailsms modem probe``: run a modem's start-up dialogue and say what the modem is.

Prints manufacturer, model, revision, IMEI, SIM state, registration,
signal, service centre and storage, one ``key: value`` a line (``--json``:
one object).  The steps and their answers go to the log (stderr).  The
settings of a configured ``type = "modem"`` gateway are used when
``--gateway`` names it or ``--device`` is its device, so its PIN is entered
(once: a PIN the SIM refused before is not tried again).  Nothing is sent
and nothing is read off the SIM.  Exits 69 when the port cannot be opened
or the modem does not answer, 78 for a SIM that needs a person.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mailsms.errors import EX_CONFIG, EX_OK, EX_UNAVAILABLE, EX_USAGE

if TYPE_CHECKING:
    from pathlib import Path

    from transports.modem import Options
    from transports.modem_dialogue import ModemInfo

FIELDS = (
    ("manufacturer", "manufacturer"),
    ("model", "model"),
    ("revision", "revision"),
    ("imei", "IMEI"),
    ("own_number", "own number"),
    ("sim", "SIM"),
    ("registration", "registration"),
    ("signal", "signal"),
    ("smsc", "SMSC"),
    ("storage", "storage"),
    ("indications", "indications (AT+CNMI)"),
)


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "modem",
        parents=[parent],
        help="talk to a GSM modem",
        description="Check a GSM modem on a serial port. Stop mailsms serve first if it uses the port.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    probe = actions.add_parser("probe", parents=[parent], help="run the start-up dialogue and show the modem")
    probe.add_argument("--device", metavar="PATH", help="serial port, e.g. /dev/ttyUSB0")
    probe.add_argument("--gateway", metavar="ID", help="use this configured modem gateway's settings")
    probe.add_argument("--baudrate", type=int, metavar="N", help="line speed (default: the gateway's, else 115200)")
    probe.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="read timeout (default: the gateway's)")
    probe.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from mailsms import config, log

    log.setup(getattr(args, "log_level", "info"))
    if not args.device and not args.gateway:
        print("mailsms modem probe: give --device or --gateway", file=sys.stderr)
        return EX_USAGE
    loaded = config.load(config.config_path(getattr(args, "config", None)))
    chosen = _options(loaded, args)
    if isinstance(chosen, str):
        print(f"mailsms modem probe: {chosen}", file=sys.stderr)
        return EX_USAGE
    gateway_id, options = chosen
    changes: dict[str, Any] = {}
    if args.device:
        changes["device"] = args.device
    if args.baudrate:
        changes["baudrate"] = args.baudrate
    if args.timeout:
        changes["read_timeout"] = args.timeout
    options = dataclasses.replace(options, **changes)
    return probe(options, gateway_id, loaded.state_dir, as_json=args.json)


def _options(loaded: Any, args: argparse.Namespace) -> tuple[str, Options] | str:
    """The gateway id (or "") and the options to probe with, or what is wrong."""
    from transports.modem import Options

    modems = [g for g in loaded.gateways if g.type == "modem"]
    if args.gateway:
        found = next((g for g in modems if g.id == args.gateway), None)
        if found is None:
            return f"no modem gateway {args.gateway!r} in {loaded.source}"
        return found.id, found.options
    found = next((g for g in modems if g.options.device == args.device), None)
    if found is not None:
        return found.id, found.options
    return "", Options(device=args.device)


def probe(options: Options, gateway_id: str, state_dir: Path, *, as_json: bool = False) -> int:
    """Run the dialogue against ``options.device`` and print the answer; an exit code."""
    import asyncio

    from transports import modem
    from transports.modem_at import AtError
    from transports.modem_dialogue import SimProblem

    directory = modem.modem_dir(state_dir, gateway_id or "probe")
    if gateway_id and options.pin and modem.pin_refused_before(directory, gateway_id, options.pin):
        print(f"mailsms modem probe: the SIM refused this PIN before; change pin or remove {directory}/"
              f"{modem.PIN_REFUSED}", file=sys.stderr)  # fmt: skip
        return EX_CONFIG
    try:
        info = asyncio.run(_talk(options))
    except SimProblem as exc:
        if exc.pin_refused and gateway_id:
            modem.remember_refused_pin(directory, gateway_id, options.pin)
        print(f"mailsms modem probe: {options.device}: {exc}", file=sys.stderr)
        return EX_CONFIG
    except AtError as exc:
        where = "" if options.device in str(exc) else f"{options.device}: "
        print(f"mailsms modem probe: {where}{exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    print(render(info, options.device, as_json=as_json))
    return EX_OK


async def _talk(options: Options) -> ModemInfo:
    from transports.modem_at import AtChannel
    from transports.modem_dialogue import Dialogue, DialogueSettings

    def unsolicited(line: str, pdu: str) -> None:
        """A probe reads nothing off the SIM: indications are only noted."""

    channel = AtChannel(options.device, options.baudrate, unsolicited, "probe")
    settings = DialogueSettings(
        pin=options.pin, smsc=options.smsc, init=options.init, cnmi=options.cnmi, storage=options.storage,
        timeout=options.read_timeout,
    )  # fmt: skip
    await channel.open()
    try:
        return await Dialogue(channel, settings, f"probe {options.device}").run()
    finally:
        await channel.close()


def render(info: ModemInfo, device: str, *, as_json: bool = False) -> str:
    """``key: value`` lines, or one JSON object (``device`` and the FIELDS keys)."""
    values = {"device": device} | {key: str(getattr(info, key) or "") for key, _ in FIELDS}
    if as_json:
        import json

        return json.dumps(values)
    width = max(len(label) for _, label in FIELDS)
    lines = [f"{'device':<{width}}  {device}"]
    lines += [f"{label:<{width}}  {values[key] or '-'}" for key, label in FIELDS]
    return "\n".join(lines)
