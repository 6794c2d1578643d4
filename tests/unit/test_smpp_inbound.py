"""Delivery receipts and incoming SMS in a deliver_sm, read without a connection."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transports import smpp_inbound as inbound
from transports import smpp_pdu as p

RECEIPT = "id:7214 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:{stat} err:{err} text:Hi: id:9"


def receipt_sm(text: str = "", tlvs: p.Tlvs = ()) -> p.ShortMessage:
    return p.ShortMessage("15551234567", "mailsms", text.encode(), esm_class=p.ESM_RECEIPT, tlvs=tlvs)


def test_the_receipt_text_gives_id_state_and_error() -> None:
    receipt = inbound.parse_receipt(receipt_sm(RECEIPT.format(stat="UNDELIV", err="001")))
    assert receipt == inbound.Receipt("7214", "UNDELIV", "001")


def test_text_field_runs_to_the_end_and_is_never_parsed_as_fields() -> None:
    fields = inbound.receipt_fields(RECEIPT.format(stat="DELIVRD", err="000"))
    assert fields["id"] == "7214" and fields["text"] == "Hi: id:9"


def test_tlvs_win_over_the_text() -> None:
    tlvs = ((p.TLV_RECEIPTED_MESSAGE_ID, b"1C2E\x00"), (p.TLV_MESSAGE_STATE, b"\x05"))
    receipt = inbound.parse_receipt(receipt_sm(RECEIPT.format(stat="DELIVRD", err="000"), tlvs))
    assert (receipt.message_id, receipt.state) == ("1C2E", "UNDELIV")


def test_a_receipt_of_tlvs_only_is_understood() -> None:
    tlvs = ((p.TLV_RECEIPTED_MESSAGE_ID, b"abc"), (p.TLV_MESSAGE_STATE, b"\x02"))
    assert inbound.parse_receipt(receipt_sm("", tlvs)) == inbound.Receipt("abc", "DELIVRD")


@pytest.mark.parametrize(
    ("stat", "err", "delivered", "dsn"),
    [("DELIVRD", "000", True, ""), ("UNDELIV", "001", False, "5.1.1"), ("EXPIRED", "000", False, "4.4.7"),
     ("REJECTD", "000", False, "5.7.1"), ("UNDELIV", "000", False, "5.0.0")],
)  # fmt: skip
def test_final_receipts_become_reports_with_dsn_codes(stat: str, err: str, delivered: bool, dsn: str) -> None:
    receipt = inbound.parse_receipt(receipt_sm(RECEIPT.format(stat=stat, err=err)))
    report = inbound.report(receipt, "smpp-1", "1C2E")
    assert report is not None
    assert (report.gateway_id, report.message_id, report.delivered, report.dsn) == ("smpp-1", "1C2E", delivered, dsn)
    assert report.reason.startswith(f"smpp: stat:{stat}")


@pytest.mark.parametrize("stat", ["ENROUTE", "SCHEDULED", "UNKNOWN", ""])
def test_intermediate_receipts_give_no_report(stat: str) -> None:
    assert inbound.report(inbound.Receipt("1", stat), "g", "1") is None


def test_a_hex_submit_id_is_found_from_its_decimal_receipt_spelling_and_back() -> None:
    assert set(inbound.submit_keys("1C2E")) & set(inbound.id_keys("7214"))
    assert set(inbound.submit_keys("7214")) & set(inbound.id_keys("1C2E"))
    assert not set(inbound.submit_keys("abc-1")) & set(inbound.id_keys("abc-2"))


@given(st.integers(0, 2**63))
def test_any_number_matches_across_bases(number: int) -> None:
    decimal, hexadecimal = str(number), f"{number:X}"
    assert set(inbound.submit_keys(decimal)) & set(inbound.id_keys(hexadecimal))
    if not hexadecimal.isdigit():  # an all-digit id is taken as decimal
        assert set(inbound.submit_keys(hexadecimal)) & set(inbound.id_keys(decimal))


def test_an_mo_with_udh_has_it_split_off_and_ucs2_decoded() -> None:
    udh = bytes.fromhex("0500030a0201")
    sm = p.ShortMessage("447700900123", "4477", udh + "Grüße 👋".encode("utf-16-be"), source_addr_ton=1,
                        esm_class=p.ESM_UDHI, data_coding=8)  # fmt: skip
    mo = inbound.incoming(sm, "smpp-1")
    assert (mo.sender, mo.to, mo.udh, mo.coding, mo.text) == ("+447700900123", "4477", udh, 2, "Grüße 👋")


def test_an_mo_in_gsm7_septets_is_decoded_with_escapes() -> None:
    sm = p.ShortMessage("4477", "mailsms", b"5\x1be [ok]".replace(b"[", b"\x1b\x3c").replace(b"]", b"\x1b\x3e"))
    mo = inbound.incoming(sm, "g")
    assert (mo.text, mo.coding, mo.udh) == ("5€ [ok]", 0, b"")


def test_an_8bit_mo_keeps_its_bytes() -> None:
    mo = inbound.incoming(p.ShortMessage("1", "2", b"\x00\xff", data_coding=4), "g")
    assert (mo.coding, mo.data, mo.text) == (1, b"\x00\xff", "")


def test_a_udh_longer_than_the_data_is_refused() -> None:
    with pytest.raises(ValueError, match="UDH"):
        inbound.incoming(p.ShortMessage("1", "2", b"\x09\x00", esm_class=p.ESM_UDHI), "g")


@pytest.mark.parametrize(("dcs", "coding"), [(0, 0), (8, 2), (4, 1), (2, 1), (0x10, 0), (0x18, 2), (0xF0, 0),
                                             (0xF4, 1), (6, 1)])  # fmt: skip
def test_data_coding_maps_to_the_alphabet(dcs: int, coding: int) -> None:
    assert inbound.alphabet(dcs) == coding


@given(st.binary(max_size=160), st.integers(0, 255), st.integers(0, 255))
def test_any_mo_payload_is_read_or_refused_with_value_error(data: bytes, esm: int, dcs: int) -> None:
    with contextlib.suppress(ValueError):
        inbound.incoming(p.ShortMessage("1", "2", data, esm_class=esm, data_coding=dcs), "g")
