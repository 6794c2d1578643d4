from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.dlr import DlrUpdate, describe, parse_dlr, status_state
from mailsms.errors import BadRequest
from mailsms.form import FormFields
from transports.base import DeliveryReport


def dlr(**values: str) -> DlrUpdate:
    return parse_dlr(FormFields((k.lower(), v.encode()) for k, v in values.items()))


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("delivered", "delivered"),
        ("DELIVERED", "delivered"),
        ("failed", "failed"),
        ("rejected", "failed"),
        ("expired", "failed"),
        ("buffered", "intermediate"),
        ("submitted", "intermediate"),
        ("accepted", "intermediate"),
        ("1", "delivered"),
        ("2", "failed"),
        ("4", "intermediate"),
        ("8", "intermediate"),
        ("16", "failed"),
        ("9", "delivered"),  # submitted and delivered in one report
        ("18", "failed"),
        ("12", "intermediate"),
    ],
)
def test_status_words_and_kannel_types(status: str, state: str) -> None:
    assert status_state(status) == state


@pytest.mark.parametrize("status", ["", "0", "32", "0001000", "lost", "-1", "1.0"])
def test_unknown_status_is_refused(status: str) -> None:
    with pytest.raises(BadRequest):
        status_state(status)


@given(st.integers(1, 31))
def test_every_kannel_mask_is_understood_and_delivered_wins(mask: int) -> None:
    state = status_state(str(mask))
    assert (state == "delivered") == bool(mask & 1)
    assert (state == "failed") == (not mask & 1 and bool(mask & 18))


@pytest.mark.parametrize("field", ["id", "msgid", "messageId", "apiMessageId"])
def test_message_id_aliases(field: str) -> None:
    assert dlr(**{field: "Q1.1", "status": "1"}).message_id == "Q1.1"


def test_id_wins_over_aliases() -> None:
    assert dlr(msgid="b", id="a", status="1").message_id == "a"


def test_final_report_for_the_scheduler() -> None:
    failed = dlr(id="Q1.2", status="16", reason="NACK/0x0b\r\n/Invalid destination")
    assert failed.report("kannel") == DeliveryReport("kannel", "Q1.2", False, "NACK/0x0b /Invalid destination", "")
    assert dlr(id="Q", status="expired").report("k") == DeliveryReport(
        "k", "Q", False, "delivery report: expired", "4.4.7"
    )
    delivered = dlr(id="Q", status="1").report("k")
    assert (delivered.delivered, delivered.reason, delivered.dsn) == (True, "delivery report: delivered", "")
    assert not dlr(id="Q", status="8").final


def test_reason_is_one_short_line_whatever_its_bytes() -> None:
    got = parse_dlr(FormFields([("id", b"Q"), ("status", b"2"), ("reason", b"\xff" + b"x" * 500)]))
    assert got.reason.startswith("\ufffd") and len(got.reason) == 200


def test_missing_id_or_status_is_named() -> None:
    with pytest.raises(BadRequest, match="missing field 'id'"):
        dlr(status="1")
    with pytest.raises(BadRequest, match="missing field 'status'"):
        dlr(id="Q")


def test_describe_puts_kannel_types_in_words() -> None:
    assert describe("9") == "delivered, submitted to the SMSC"
    assert describe("Delivered") == "delivered"
