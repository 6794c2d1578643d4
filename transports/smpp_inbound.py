"""What a ``deliver_sm`` means: a delivery receipt or an incoming SMS (pure).

A receipt (``esm_class`` & 0x04) names the part by the id the SMSC gave in
``submit_sm_resp``, in the TLV ``receipted_message_id`` or in the receipt
text (Appendix B of SMPP 3.4: ``id:... sub:... dlvrd:... submit date:...
done date:... stat:DELIVRD err:... text:...``); its state is the TLV
``message_state`` or the text's ``stat:``.  The TLVs win when both are there:
the text is free-form and some SMSCs cut or pad it.

Some SMSCs write the receipt id in another base than the submit_sm_resp
(a hex id in the response, its decimal value in the receipt, or the other
way round).  ``id_keys`` gives every spelling an id may take, so that the
transport can find the submit id of a receipt among the ids it handed out
recently; an id it does not know is reported as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailsms.segment import gsm
from ndr import codes
from transports.base import DeliveryReport, IncomingSms
from transports.smpp_pdu import (
    ESM_RECEIPT,
    ESM_UDHI,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    ShortMessage,
    payload,
    tlv,
)

_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*", re.IGNORECASE)
TON_INTERNATIONAL = 1
TON_ALPHANUMERIC = 5


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: the SMSC's id of the part, its state word, the network error if any."""

    message_id: str
    state: str  # DELIVRD, UNDELIV, ... ("" when the receipt says nothing usable)
    error: str = ""


def is_receipt(sm: ShortMessage) -> bool:
    return bool(sm.esm_class & ESM_RECEIPT)


def receipt_fields(text: str) -> dict[str, str]:
    """The ``name:value`` fields of a receipt text, names in lower case; ``text:`` runs to the end."""
    fields: dict[str, str] = {}
    matches = list(_FIELD.finditer(text))
    for index, match in enumerate(matches):
        name = match.group(1).lower()
        end = len(text) if name == "text" or index + 1 == len(matches) else matches[index + 1].start()
        fields.setdefault(name, text[match.end() : end].strip())
        if name == "text":
            break
    return fields


def parse_receipt(sm: ShortMessage) -> Receipt:
    """The receipt in a deliver_sm; the TLVs ``receipted_message_id`` and ``message_state`` win over the text."""
    fields = receipt_fields(payload(sm).decode("latin-1"))
    message_id = fields.get("id", "")
    state = fields.get("stat", "").upper()
    raw_id = tlv(sm.tlvs, TLV_RECEIPTED_MESSAGE_ID)
    if raw_id:
        message_id = raw_id.split(b"\x00", 1)[0].decode("latin-1")
    raw_state = tlv(sm.tlvs, TLV_MESSAGE_STATE)
    if raw_state and raw_state[0] in codes.SMPP_STATE_NUMBERS:
        state = codes.SMPP_STATE_NUMBERS[raw_state[0]]
    error = fields.get("err", "")
    raw_error = tlv(sm.tlvs, TLV_NETWORK_ERROR_CODE)
    if raw_error and len(raw_error) == 3:  # network type, then a 16-bit code
        error = str(int.from_bytes(raw_error[1:], "big"))
    return Receipt(message_id.strip(), state, error)


def report(receipt: Receipt, gateway_id: str, message_id: str) -> DeliveryReport | None:
    """The final report of a receipt for the part ``message_id``; None for an intermediate one (ENROUTE...)."""
    verdict = codes.smpp_state(receipt.state)
    if not verdict.final:
        return None
    delivered = verdict.outcome == codes.DELIVERED
    reason = f"smpp: stat:{receipt.state} {verdict.text}"
    dsn = "" if delivered else verdict.status
    if not delivered and receipt.error.isdigit() and int(receipt.error):
        network = codes.map_error(int(receipt.error))
        reason += f", err:{receipt.error} {network.text}"
        if dsn.startswith("5") and network.status.startswith("5"):
            dsn = network.status  # more precise: unknown subscriber (5.1.1) rather than undeliverable
    return DeliveryReport(gateway_id, message_id, delivered, reason, dsn)


_HEX = frozenset("0123456789abcdefABCDEF")


def _numeric(text: str) -> tuple[bool, bool]:
    """(all decimal digits, all hex digits) of a short id."""
    if not text or len(text) > 30:
        return False, False
    return text.isdigit() and text.isascii(), _HEX.issuperset(text)


def id_keys(message_id: str) -> list[str]:
    """The spellings of an SMSC id to look up: itself, its numeric value read as decimal and as hex."""
    keys = [message_id]
    text = message_id.strip()
    decimal, hexadecimal = _numeric(text)
    if decimal:
        keys.append(f"n:{int(text)}")
    if hexadecimal:
        keys.append(f"n:{int(text, 16)}")
    return keys


def submit_keys(message_id: str) -> list[str]:
    """The keys under which a submit id is remembered: itself, and its numeric value in its own base.

    An all-digit id is taken as decimal and a hex id with letters as hex, so
    that a receipt with the other base's spelling of the same number finds it.
    """
    text = message_id.strip()
    decimal, hexadecimal = _numeric(text)
    if decimal:
        return [message_id, f"n:{int(text)}"]
    if hexadecimal:
        return [message_id, f"n:{int(text, 16)}"]
    return [message_id]


# -- incoming SMS ---------------------------------------------------------------------------------


def address(addr: str, ton: int) -> str:
    """An SMPP address as mailsms writes numbers: ``+`` before an international one."""
    if ton == TON_INTERNATIONAL and addr and not addr.startswith("+"):
        return f"+{addr}"
    return addr


def incoming(sm: ShortMessage, gateway_id: str) -> IncomingSms:
    """An MO as the inbound store takes it: UDH split off, text decoded by ``data_coding``.

    Raises ValueError when the UDH is longer than the user data.
    """
    data = payload(sm)
    udh = b""
    if sm.esm_class & ESM_UDHI and data:
        size = data[0] + 1
        if size > len(data):
            raise ValueError(f"UDH of {size} octets in {len(data)} octets of user data")
        udh, data = data[:size], data[size:]
    coding, text, binary = decode_user_data(sm.data_coding, data)
    return IncomingSms(
        gateway_id=gateway_id,
        sender=address(sm.source_addr, sm.source_addr_ton),
        text=text,
        to=address(sm.destination_addr, sm.dest_addr_ton),
        udh=udh,
        coding=coding,
        data=binary,
    )


def alphabet(data_coding: int) -> int:
    """IncomingSms.coding of an SMPP data_coding: 0 GSM 7-bit, 1 8-bit, 2 UCS-2.

    Codings mailsms cannot read as text (JIS, Cyrillic, Hebrew, reserved) are
    kept as 8-bit data rather than decoded into garbage.
    """
    if data_coding == 0x00:
        return 0
    if data_coding == 0x08:
        return 2
    if data_coding & 0xF0 == 0xF0:  # GSM 03.38 group: bit 2 says 8-bit
        return 1 if data_coding & 0x04 else 0
    if data_coding & 0xF0 == 0x10:  # general group with a message class: alphabet in bits 2-3
        return {0: 0, 1: 1, 2: 2}.get((data_coding >> 2) & 0x03, 1)
    return 1


def decode_user_data(data_coding: int, data: bytes) -> tuple[int, str, bytes | None]:
    """(coding, text, binary payload) of the user data after the UDH."""
    if data_coding in (0x01, 0x03):  # IA5/ASCII, Latin-1: a text already
        return 0, data.decode("latin-1"), None
    coding = alphabet(data_coding)
    if coding == 2:
        return 2, data[: len(data) // 2 * 2].decode("utf-16-be", "replace"), None
    if coding == 1:
        return 1, "", data
    return 0, gsm.decode_septets(bytes(b & 0x7F for b in data)), None
