"""The milter wire protocol (version 6, as Postfix 3 and Sendmail 8.14+ speak it): pure and typed.

A packet is a 4-byte big-endian length, one command byte and the payload;
the length counts the command byte.  Names follow libmilter's ``mfdef.h``
and ``mfapi.h`` so that the C sources and this module read alike.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

# Commands from the MTA (mfdef.h).
SMFIC_ABORT = b"A"
SMFIC_BODY = b"B"
SMFIC_CONNECT = b"C"
SMFIC_MACRO = b"D"
SMFIC_BODYEOB = b"E"
SMFIC_HELO = b"H"
SMFIC_QUIT_NC = b"K"
SMFIC_HEADER = b"L"
SMFIC_MAIL = b"M"
SMFIC_EOH = b"N"
SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
SMFIC_RCPT = b"R"
SMFIC_DATA = b"T"
SMFIC_UNKNOWN = b"U"

# Replies to the MTA (mfdef.h).
SMFIR_ADDRCPT = b"+"
SMFIR_DELRCPT = b"-"
SMFIR_ACCEPT = b"a"
SMFIR_REPLBODY = b"b"
SMFIR_CONTINUE = b"c"
SMFIR_DISCARD = b"d"
SMFIR_CHGFROM = b"e"
SMFIR_ADDHEADER = b"h"
SMFIR_INSHEADER = b"i"
SMFIR_CHGHEADER = b"m"
SMFIR_PROGRESS = b"p"
SMFIR_QUARANTINE = b"q"
SMFIR_REJECT = b"r"
SMFIR_SKIP = b"s"
SMFIR_TEMPFAIL = b"t"
SMFIR_REPLYCODE = b"y"

# Actions a filter may take (mfapi.h), asked for at option negotiation.
SMFIF_ADDHDRS = 0x01
SMFIF_CHGBODY = 0x02
SMFIF_ADDRCPT = 0x04
SMFIF_DELRCPT = 0x08
SMFIF_CHGHDRS = 0x10
SMFIF_QUARANTINE = 0x20
SMFIF_CHGFROM = 0x40
SMFIF_ADDRCPT_PAR = 0x80
SMFIF_SETSYMLIST = 0x100

# Protocol steps a filter may leave out or not answer (mfdef.h).
SMFIP_NOCONNECT = 0x01
SMFIP_NOHELO = 0x02
SMFIP_NOMAIL = 0x04
SMFIP_NORCPT = 0x08
SMFIP_NOBODY = 0x10
SMFIP_NOHDRS = 0x20
SMFIP_NOEOH = 0x40
SMFIP_NR_HDR = 0x80
SMFIP_NOUNKNOWN = 0x100
SMFIP_NODATA = 0x200
SMFIP_SKIP = 0x400
SMFIP_RCPT_REJ = 0x800
SMFIP_NR_CONN = 0x1000
SMFIP_NR_HELO = 0x2000
SMFIP_NR_MAIL = 0x4000
SMFIP_NR_RCPT = 0x8000
SMFIP_NR_DATA = 0x10000
SMFIP_NR_UNKN = 0x20000
SMFIP_NR_EOH = 0x40000
SMFIP_NR_BODY = 0x80000
SMFIP_HDR_LEADSPC = 0x100000

SMFI_VERSION = 6
MAX_PACKET = 1024 * 1024  # larger than any command Postfix sends (body chunks are 64 KB)
_LENGTH = struct.Struct(">I")
_OPTNEG = struct.Struct(">III")
_REPLY = re.compile(r"^[45][0-9][0-9] [45]\.[0-9]{1,3}\.[0-9]{1,3} \S")


class MilterProtocolError(Exception):
    """The peer broke the protocol: the session ends, others go on."""


@dataclass(frozen=True)
class Packet:
    command: bytes
    data: bytes


@dataclass(frozen=True)
class Options:
    """What option negotiation settles: version, actions (SMFIF_*) and protocol steps (SMFIP_*)."""

    version: int
    actions: int
    protocol: int


class PacketReader:
    """Splits a byte stream into packets; ``feed`` as bytes arrive, ``close`` at end of stream."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._buffer = bytearray()
        self._max = max_packet

    def feed(self, data: bytes) -> list[Packet]:
        """Every complete packet in what has arrived so far; raises MilterProtocolError on a bad length."""
        self._buffer += data
        packets: list[Packet] = []
        while len(self._buffer) >= 4:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length == 0:
                raise MilterProtocolError("packet of length 0 has no command")
            if length > self._max:
                raise MilterProtocolError(f"packet length {length} exceeds {self._max}")
            if len(self._buffer) < 4 + length:
                break
            packets.append(Packet(bytes(self._buffer[4:5]), bytes(self._buffer[5 : 4 + length])))
            del self._buffer[: 4 + length]
        return packets

    def close(self) -> None:
        """End of stream: raises MilterProtocolError if a packet was cut short."""
        if self._buffer:
            raise MilterProtocolError(f"connection closed inside a packet ({len(self._buffer)} bytes pending)")


def encode(command: bytes, data: bytes = b"") -> bytes:
    """One packet: length, command byte, payload."""
    return _LENGTH.pack(len(data) + 1) + command + data


def parse_optneg(data: bytes) -> Options:
    if len(data) < _OPTNEG.size:
        raise MilterProtocolError(f"OPTNEG needs {_OPTNEG.size} bytes, got {len(data)}")
    return Options(*_OPTNEG.unpack_from(data))


def negotiate(offered: Options, actions: int, protocol: int) -> Options:
    """Our answer to the MTA's OPTNEG: version 6 at most, and only what the MTA offers."""
    if offered.version < 2:
        raise MilterProtocolError(f"milter protocol version {offered.version} is too old")
    return Options(min(offered.version, SMFI_VERSION), actions & offered.actions, protocol & offered.protocol)


def encode_optneg(options: Options) -> bytes:
    return encode(SMFIC_OPTNEG, _OPTNEG.pack(options.version, options.actions, options.protocol))


def split_strings(data: bytes) -> list[str]:
    """NUL-terminated strings; raises MilterProtocolError if the last one lacks its NUL."""
    if not data:
        return []
    if not data.endswith(b"\0"):
        raise MilterProtocolError("string not NUL-terminated")
    return [part.decode("utf-8", "surrogateescape") for part in data[:-1].split(b"\0")]


def parse_macros(data: bytes) -> tuple[bytes, dict[str, str]]:
    """SMFIC_MACRO: the command the macros are for, and name/value pairs."""
    if not data:
        raise MilterProtocolError("MACRO without a command code")
    strings = split_strings(data[1:])
    if len(strings) % 2:
        raise MilterProtocolError("MACRO with a name but no value")
    return data[:1], dict(zip(strings[::2], strings[1::2], strict=True))


def parse_header(data: bytes) -> tuple[str, str]:
    """SMFIC_HEADER: name and value."""
    strings = split_strings(data)
    if len(strings) != 2:
        raise MilterProtocolError(f"HEADER needs a name and a value, got {len(strings)} strings")
    return strings[0], strings[1]


def parse_address_args(data: bytes) -> tuple[str, dict[str, str]]:
    """SMFIC_MAIL / SMFIC_RCPT: the address (angle brackets kept) and ESMTP parameters."""
    strings = split_strings(data)
    if not strings:
        raise MilterProtocolError("MAIL or RCPT without an address")
    params: dict[str, str] = {}
    for arg in strings[1:]:
        name, _, value = arg.partition("=")
        params[name.upper()] = value
    return strings[0], params


def continue_() -> bytes:
    return encode(SMFIR_CONTINUE)


def accept() -> bytes:
    return encode(SMFIR_ACCEPT)


def reject() -> bytes:
    return encode(SMFIR_REJECT)


def tempfail() -> bytes:
    return encode(SMFIR_TEMPFAIL)


def replycode(reply: str) -> bytes:
    """SMFIR_REPLYCODE with a full SMTP reply, ``553 5.1.3 text``; the MTA requires a 4xx or 5xx code."""
    if not _REPLY.match(reply):
        raise ValueError(f"not a 4xx/5xx reply with an enhanced code: {reply!r}")
    # '%' would be read as a format directive by Sendmail; libmilter doubles it too.
    text = reply.replace("%", "%%").replace("\r", " ").replace("\n", " ")
    return encode(SMFIR_REPLYCODE, text.encode("utf-8", "surrogateescape") + b"\0")


def chgheader(name: str, index: int, value: str) -> bytes:
    """SMFIR_CHGHEADER: replace the ``index``-th (from 1) header called ``name``; value "" deletes it."""
    payload = _LENGTH.pack(index) + name.encode("ascii") + b"\0" + value.encode("utf-8", "surrogateescape") + b"\0"
    return encode(SMFIR_CHGHEADER, payload)


def addheader(name: str, value: str) -> bytes:
    return encode(SMFIR_ADDHEADER, name.encode("ascii") + b"\0" + value.encode("utf-8", "surrogateescape") + b"\0")


def parse_socket(spec: str) -> tuple[str, str, int]:
    """Postfix notation: ``inet:HOST:PORT`` → ("inet", host, port); ``unix:/path`` → ("unix", path, 0)."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(f"expected inet:HOST:PORT or unix:/path, got {spec!r}")
    if kind == "unix":
        return "unix", rest, 0
    if kind != "inet":
        raise ValueError(f"unknown socket type {kind!r}: use inet: or unix:")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected inet:HOST:PORT, got {spec!r}")
    return "inet", host, int(port)
