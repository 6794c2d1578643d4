"""Reading a modem's answers about messages, and what its error codes mean (pure functions).

``+CMS ERROR`` codes come from ``ndr.codes`` (one table for every gateway
type); ``+CME ERROR`` codes (3GPP TS 27.007 9.2) name trouble with the
modem or the SIM, never with the message, so they are all temporary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ndr import codes
from transports.modem_at import CommandFailed

_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")

CME_ERRORS: Mapping[int, codes.Verdict] = {
    0: codes.Verdict(codes.PENDING, "4.3.0", "phone failure"),
    3: codes.Verdict(codes.PENDING, "4.3.0", "operation not allowed"),
    4: codes.Verdict(codes.PENDING, "4.3.0", "operation not supported"),
    10: codes.Verdict(codes.PENDING, "4.3.5", "SIM not inserted"),
    11: codes.Verdict(codes.PENDING, "4.3.5", "SIM PIN required"),
    12: codes.Verdict(codes.PENDING, "4.3.5", "SIM PUK required"),
    13: codes.Verdict(codes.PENDING, "4.3.0", "SIM failure"),
    14: codes.Verdict(codes.PENDING, "4.3.0", "SIM busy"),
    15: codes.Verdict(codes.PENDING, "4.3.5", "SIM wrong"),
    16: codes.Verdict(codes.PENDING, "4.3.5", "incorrect password"),
    20: codes.Verdict(codes.PENDING, "4.3.1", "memory full"),
    21: codes.Verdict(codes.PENDING, "4.3.0", "invalid index"),
    23: codes.Verdict(codes.PENDING, "4.3.0", "memory failure"),
    30: codes.Verdict(codes.PENDING, "4.4.0", "no network service"),
    31: codes.Verdict(codes.PENDING, "4.4.1", "network timeout"),
    32: codes.Verdict(codes.PENDING, "4.4.0", "network not allowed, emergency calls only"),
    100: codes.Verdict(codes.PENDING, "4.0.0", "unknown error"),
}
CME_UNLISTED = codes.Verdict(codes.PENDING, "4.3.0", "modem error")
PLAIN_ERROR = codes.Verdict(codes.PENDING, "4.3.0", "the modem said ERROR without a reason")


def error_verdict(error: CommandFailed) -> codes.Verdict:
    """What a failed command means for the part it tried to send."""
    if error.kind == "CMS" and error.code is not None:
        return codes.cms_error(error.code)
    if error.kind == "CME" and error.code is not None:
        return CME_ERRORS.get(error.code, CME_UNLISTED)
    return PLAIN_ERROR


def parse_reference(lines: Sequence[str]) -> int | None:
    """``+CMGS: <mr>[,<scts>]`` -> mr (0..255); None when the modem gave none."""
    for line in lines:
        if line.startswith("+CMGS:"):
            value = line[6:].split(",")[0].strip()
            if value.isdigit():
                return int(value) & 0xFF
    return None


def parse_index(line: str) -> int | None:
    """``+CMTI: "SM",3`` / ``+CDSI: "SR",7`` -> the storage index."""
    value = line.partition(":")[2].split(",")[-1].strip()
    return int(value) if value.isdigit() else None


def parse_memory(line: str) -> str:
    """``+CMTI: "SM",3`` -> ``SM`` ("" when the indication names none)."""
    match = re.match(r'^\+C\w+:\s*"([A-Z]{2})"', line)
    return match.group(1) if match else ""


def _is_pdu(line: str) -> bool:
    return bool(_HEX.match(line))


def parse_list(lines: Sequence[str]) -> list[tuple[int, str | None]]:
    """``AT+CMGL`` in PDU mode: (index, PDU hex) pairs; None where the PDU line is missing or garbled."""
    entries: list[tuple[int, str | None]] = []
    pending: int | None = None
    for line in lines:
        if line.startswith("+CMGL:"):
            if pending is not None:
                entries.append((pending, None))
            first = line[6:].split(",")[0].strip()
            pending = int(first) if first.isdigit() else None
            continue
        if pending is not None:
            entries.append((pending, line.upper() if _is_pdu(line) else None))
            pending = None
    if pending is not None:
        entries.append((pending, None))
    return entries


def parse_read(lines: Sequence[str]) -> str | None:
    """``AT+CMGR`` in PDU mode: the PDU hex, "" when garbled, None when the index is empty."""
    for position, line in enumerate(lines):
        if line.startswith("+CMGR:"):
            following = lines[position + 1] if position + 1 < len(lines) else ""
            return following.upper() if _is_pdu(following) else ""
    return None
