"""An SMS a transport received itself (a modem) made fit for the inbound store."""

from __future__ import annotations

from mailsms.mo import MAX_TEXT, mo_from_transport
from transports.base import IncomingSms


def test_a_modem_sms_keeps_its_fields() -> None:
    sms = IncomingSms("gsm1", "+4917012345", "Hello ", to="+1555", udh=bytes.fromhex("050003070201"), coding=0,
                      smsc_id="pdu-abc")  # fmt: skip
    mo = mo_from_transport(sms, id="ID1", received=5.0)
    assert (mo.id, mo.gateway, mo.sender, mo.to, mo.text, mo.udh, mo.coding, mo.smsc_id, mo.received) == (
        "ID1", "gsm1", "+4917012345", "+1555", "Hello ", bytes.fromhex("050003070201"), 0, "pdu-abc", 5.0,
    )  # fmt: skip


def test_what_the_store_cannot_hold_is_made_to_fit() -> None:
    sms = IncomingSms("gsm1", "+1", "a\x00b" + "x" * (MAX_TEXT + 10), udh=b"\x05\x00\x03", coding=7)
    mo = mo_from_transport(sms, id="ID2", received=0.0)
    assert mo.text.startswith("abx") and len(mo.text) == MAX_TEXT
    assert (mo.udh, mo.coding) == (b"", 0)


def test_binary_payload_is_kept() -> None:
    mo = mo_from_transport(IncomingSms("gsm1", "+1", "", coding=1, data=b"\x00\xff"), id="ID3", received=0.0)
    assert (mo.coding, mo.data) == (1, b"\x00\xff")
