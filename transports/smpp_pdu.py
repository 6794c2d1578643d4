"""SMPP 3.4 PDUs: the header, the bodies mailsms sends and reads, TLVs (pure, no I/O).

A PDU is ``command_length command_id command_status sequence_number`` (four
big-endian 32-bit integers) and a body.  Only what an ESME needs is decoded:
bind and its response, ``submit_sm``/``deliver_sm`` (one body layout, 5.2 of
the specification), the ``message_id`` of a response, and TLVs.  Everything
that reads bytes from the network raises ``PduError`` and nothing else, so
the session can answer a malformed PDU instead of crashing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

HEADER = struct.Struct(">IIII")
HEADER_SIZE = HEADER.size
MAX_PDU = 64 * 1024  # far above any real PDU; a larger length means the stream is out of step
RESPONSE = 0x80000000

GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
BIND_COMMANDS = (BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER)

# command_status values this module's users name (5.1.3).
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64

# TLV tags (5.3.2).
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_PAYLOAD = 0x0424

# esm_class bits.
ESM_RECEIPT = 0x04  # deliver_sm: an SMSC delivery receipt
ESM_UDHI = 0x40  # short_message starts with a UDH

Tlvs = tuple[tuple[int, bytes], ...]


class PduError(ValueError):
    """Bytes that are not a well-formed SMPP PDU; ``status`` is the command_status to answer with."""

    def __init__(self, message: str, status: int = ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE)


def encode(pdu: Pdu) -> bytes:
    """The PDU on the wire."""
    return HEADER.pack(HEADER_SIZE + len(pdu.body), pdu.command_id, pdu.status, pdu.sequence) + pdu.body


def frame_length(header: bytes) -> int:
    """The whole PDU's length from its first 16 bytes; PduError when it cannot be a PDU."""
    if len(header) < HEADER_SIZE:
        raise PduError(f"short header: {len(header)} bytes")
    (length,) = struct.unpack_from(">I", header)
    if not HEADER_SIZE <= length <= MAX_PDU:
        raise PduError(f"command_length {length} out of range")
    return int(length)


def decode(frame: bytes) -> Pdu:
    """One complete PDU (exactly ``command_length`` bytes)."""
    length = frame_length(frame)
    if length != len(frame):
        raise PduError(f"command_length {length} but {len(frame)} bytes")
    _, command_id, status, sequence = HEADER.unpack_from(frame)
    return Pdu(command_id, status, sequence, bytes(frame[HEADER_SIZE:]))


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete PDUs at the start of ``buffer``; PduError on a bad length."""
    frames: list[bytes] = []
    while len(buffer) >= HEADER_SIZE:
        length = frame_length(bytes(buffer[:HEADER_SIZE]))
        if len(buffer) < length:
            break
        frames.append(bytes(buffer[:length]))
        del buffer[:length]
    return frames


# -- body fields --------------------------------------------------------------------------------


class _Reader:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def cstring(self, what: str, limit: int) -> str:
        end = self.body.find(b"\x00", self.pos, self.pos + limit)
        if end < 0:
            raise PduError(f"{what}: no NUL within {limit} octets")
        value = self.body[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def octet(self, what: str) -> int:
        if self.pos >= len(self.body):
            raise PduError(f"{what}: body ends early")
        value = self.body[self.pos]
        self.pos += 1
        return value

    def octets(self, what: str, count: int) -> bytes:
        if self.pos + count > len(self.body):
            raise PduError(f"{what}: {count} octets announced, {len(self.body) - self.pos} left")
        value = self.body[self.pos : self.pos + count]
        self.pos += count
        return value

    def tlvs(self) -> Tlvs:
        found: list[tuple[int, bytes]] = []
        while self.pos < len(self.body):
            header = self.octets("TLV header", 4)
            tag, size = struct.unpack(">HH", header)
            found.append((tag, self.octets(f"TLV 0x{tag:04X}", size)))
        return tuple(found)


def _cstring(value: str, what: str, limit: int) -> bytes:
    if not value:
        return b"\x00"
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise PduError(f"{what}: not representable in an SMPP C-string") from None
    if len(raw) >= limit or b"\x00" in raw:
        raise PduError(f"{what}: at most {limit - 1} octets, no NUL")
    return raw + b"\x00"


def encode_tlvs(tlvs: Tlvs) -> bytes:
    out = bytearray()
    for tag, value in tlvs:
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise PduError(f"TLV 0x{tag:04X} does not fit")
        out += struct.pack(">HH", tag, len(value)) + value
    return bytes(out)


def tlv(tlvs: Tlvs, tag: int) -> bytes | None:
    """The first value of ``tag``, or None."""
    return next((value for found, value in tlvs if found == tag), None)


@dataclass(frozen=True, slots=True)
class Bind:
    """bind_transmitter / bind_receiver / bind_transceiver (4.1)."""

    system_id: str
    password: str = field(default="", repr=False)
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


def encode_bind(bind: Bind) -> bytes:
    return (
        _cstring(bind.system_id, "system_id", 16)
        + _cstring(bind.password, "password", 9)
        + _cstring(bind.system_type, "system_type", 13)
        + bytes((bind.interface_version, bind.addr_ton, bind.addr_npi))
        + _cstring(bind.address_range, "address_range", 41)
    )


def decode_bind(body: bytes) -> Bind:
    reader = _Reader(body)
    system_id = reader.cstring("system_id", 16)
    password = reader.cstring("password", 9)
    system_type = reader.cstring("system_type", 13)
    version, ton, npi = reader.octet("interface_version"), reader.octet("addr_ton"), reader.octet("addr_npi")
    return Bind(system_id, password, system_type, version, ton, npi, reader.cstring("address_range", 41))


def encode_message_id(message_id: str) -> bytes:
    """The body of submit_sm_resp (and, with the SMSC's system_id, of a bind response)."""
    return _cstring(message_id, "message_id", 65)


def decode_message_id(body: bytes) -> str:
    """The message_id (or system_id) of a response; "" for an empty body (an error response may have none)."""
    if not body:
        return ""
    return _Reader(body).cstring("message_id", 65)


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """The body of submit_sm and deliver_sm (4.4.1, 4.6.1): they share one layout."""

    source_addr: str
    destination_addr: str
    short_message: bytes = field(default=b"", repr=False)  # the text: never in a log line
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: Tlvs = ()


def encode_sm(sm: ShortMessage) -> bytes:
    if len(sm.short_message) > 254:
        raise PduError("short_message: at most 254 octets", ESME_RINVMSGLEN)
    return b"".join(
        (
            _cstring(sm.service_type, "service_type", 6),
            bytes((sm.source_addr_ton, sm.source_addr_npi)),
            _cstring(sm.source_addr, "source_addr", 21),
            bytes((sm.dest_addr_ton, sm.dest_addr_npi)),
            _cstring(sm.destination_addr, "destination_addr", 21),
            bytes((sm.esm_class, sm.protocol_id, sm.priority_flag)),
            _cstring(sm.schedule_delivery_time, "schedule_delivery_time", 17),
            _cstring(sm.validity_period, "validity_period", 17),
            bytes((sm.registered_delivery, sm.replace_if_present_flag, sm.data_coding, sm.sm_default_msg_id)),
            bytes((len(sm.short_message),)),
            sm.short_message,
            encode_tlvs(sm.tlvs),
        )
    )


def decode_sm(body: bytes) -> ShortMessage:
    # Address fields are read up to 65 octets, not 21: some SMSCs send longer ones, and
    # refusing a receipt for that would only make the SMSC send it again and again.
    r = _Reader(body)
    service_type = r.cstring("service_type", 6)
    source_ton, source_npi = r.octet("source_addr_ton"), r.octet("source_addr_npi")
    source = r.cstring("source_addr", 65)
    dest_ton, dest_npi = r.octet("dest_addr_ton"), r.octet("dest_addr_npi")
    destination = r.cstring("destination_addr", 65)
    esm_class, protocol_id, priority = r.octet("esm_class"), r.octet("protocol_id"), r.octet("priority_flag")
    schedule = r.cstring("schedule_delivery_time", 17)
    validity = r.cstring("validity_period", 17)
    registered, replace = r.octet("registered_delivery"), r.octet("replace_if_present_flag")
    data_coding, default_id = r.octet("data_coding"), r.octet("sm_default_msg_id")
    text = r.octets("short_message", r.octet("sm_length"))
    return ShortMessage(
        source, destination, text, service_type, source_ton, source_npi, dest_ton, dest_npi, esm_class,
        protocol_id, priority, schedule, validity, registered, replace, data_coding, default_id, r.tlvs(),
    )  # fmt: skip


def payload(sm: ShortMessage) -> bytes:
    """The user data: ``short_message``, or the ``message_payload`` TLV when short_message is empty."""
    if sm.short_message:
        return sm.short_message
    return tlv(sm.tlvs, TLV_MESSAGE_PAYLOAD) or b""


def response(request: Pdu, status: int = ESME_ROK, body: bytes = b"") -> Pdu:
    """The response to ``request`` (same sequence number)."""
    return Pdu(request.command_id | RESPONSE, status, request.sequence, body)


def generic_nack(sequence: int, status: int) -> Pdu:
    return Pdu(GENERIC_NACK, status, sequence)
