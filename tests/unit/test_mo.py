from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.errors import BadContent, BadRequest
from mailsms.form import FormFields
from mailsms.mo import parse_mo
from mailsms.segment import concat_udh
from mailsms.store.inbound import NewInbound


def mo(**values: str | bytes) -> NewInbound:
    pairs = [(k, v if isinstance(v, bytes) else v.encode()) for k, v in values.items()]
    return parse_mo(FormFields(pairs), "kannel", id="ID1", received=1.5)


def test_fields_become_the_stored_row() -> None:
    got = mo(**{"from": " +4915112345678 ", "to": "12345", "text": "hi", "smsc_id": "s1", "udh": "050003a70201"})
    assert got == mo(**{"from": "+4915112345678", "to": "12345", "text": "hi", "smsc_id": "s1", "udh": "050003A70201"})
    assert got.sender == "+4915112345678"
    assert got.udh == bytes.fromhex("050003A70201")
    assert (got.id, got.received, got.gateway, got.coding) == ("ID1", 1.5, "kannel", 0)


def test_coding_defaults_to_what_the_text_needs() -> None:
    assert mo(**{"from": "a", "text": "plain"}).coding == 0
    assert mo(**{"from": "a", "text": "日本"}).coding == 2
    assert mo(**{"from": "a", "text": "plain", "coding": "-1"}).coding == 0  # Kannel: undefined


def test_8bit_payload_is_kept_as_data() -> None:
    got = mo(**{"from": "a", "text": b"\x00\xff\x10", "coding": "1"})
    assert (got.data, got.text, got.coding) == (b"\x00\xff\x10", "", 1)


def test_charset_decodes_the_text() -> None:
    assert mo(**{"from": "a", "text": "é".encode("latin-1"), "charset": "ISO-8859-1"}).text == "é"
    assert mo(**{"from": "a", "text": "€".encode("utf-16-be"), "charset": "UCS-2"}).text == "€"


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"text": "x"}, BadRequest),
        ({"from": "a"}, BadRequest),
        ({"from": " ", "text": "x"}, BadRequest),
        ({"from": "a" * 65, "text": "x"}, BadRequest),
        ({"from": "a", "text": b"\xc3"}, BadContent),
        ({"from": "a", "text": "a\x00"}, BadContent),
        ({"from": "a", "text": "x", "charset": "nope"}, BadRequest),
        ({"from": "a", "text": "x", "coding": "3"}, BadRequest),
        ({"from": "a", "text": "x", "udh": "xyz"}, BadContent),
        ({"from": "a", "text": "x", "udh": "00" * 141}, BadContent),
        ({"from": "a", "text": "x", "udh": "050003a702"}, BadContent),
        ({"from": "a", "text": "x", "udh": "050003a70200"}, BadContent),
        ({"from": "a", "text": "x", "udh": "0500040102"}, BadContent),
        ({"from": "a", "text": "x" * 65_537}, BadContent),
    ],
)
def test_what_cannot_be_stored_faithfully_is_refused(values: dict[str, str | bytes], error: type[Exception]) -> None:
    with pytest.raises(error):
        mo(**values)


@given(st.integers(0, 255), st.integers(1, 255), st.data())
def test_every_concatenation_udh_we_would_send_is_accepted(reference: int, total: int, data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, total))
    udh = concat_udh(reference, total, seq)
    assert mo(**{"from": "a", "text": "x", "udh": udh.hex()}).udh == udh


@given(st.binary(min_size=1, max_size=140))
def test_a_udh_whose_length_byte_lies_is_refused(udh: bytes) -> None:
    lying = bytes([(udh[0] + 1) % 256]) + udh[1:] if udh[0] == len(udh) - 1 else udh
    with pytest.raises(BadContent):
        mo(**{"from": "a", "text": "x", "udh": lying.hex()})
