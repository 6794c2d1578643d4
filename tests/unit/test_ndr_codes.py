"""The error mapping table: every entry is a well-formed RFC 3463 code that agrees with its verdict."""

from __future__ import annotations

import re

import pytest

from ndr import codes
from ndr.codes import DELIVERED, FAILED, PENDING, RELAYED

STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


@pytest.mark.parametrize(("name", "verdict"), codes.all_verdicts(), ids=[name for name, _ in codes.all_verdicts()])
def test_every_entry_is_an_rfc_3463_code_whose_class_matches_the_outcome(name: str, verdict: codes.Verdict) -> None:
    assert STATUS.match(verdict.status), name
    first = verdict.status[0]
    if verdict.outcome in (DELIVERED, RELAYED):
        assert first == "2", name
    elif verdict.outcome == PENDING:
        assert first == "4", name
    else:
        assert first in "45", name
    assert verdict.text and verdict.text.isascii(), name


def test_kannel_dlr_types() -> None:
    assert codes.kannel_dlr(1) == codes.Verdict(DELIVERED, "2.0.0", "delivered to the phone")
    assert (codes.kannel_dlr(2).outcome, codes.kannel_dlr(2).status) == (FAILED, "5.0.0")
    assert (codes.kannel_dlr(4).outcome, codes.kannel_dlr(4).status) == (PENDING, "4.4.1")
    assert (codes.kannel_dlr(8).outcome, codes.kannel_dlr(8).status) == (RELAYED, "2.0.0")
    assert (codes.kannel_dlr(16).outcome, codes.kannel_dlr(16).status) == (FAILED, "5.3.0")


def test_a_final_kannel_bit_wins_over_an_intermediate_one() -> None:
    assert codes.kannel_dlr(1 | 8).outcome == DELIVERED
    assert codes.kannel_dlr(16 | 8).outcome == FAILED
    assert codes.kannel_dlr(0) == codes.UNKNOWN


@pytest.mark.parametrize(
    ("state", "outcome", "status"),
    [
        ("DELIVRD", DELIVERED, "2.0.0"),
        ("delivered", DELIVERED, "2.0.0"),
        (2, DELIVERED, "2.0.0"),
        ("EXPIRED", FAILED, "4.4.7"),
        (3, FAILED, "4.4.7"),
        ("UNDELIV", FAILED, "5.0.0"),
        ("REJECTD", FAILED, "5.7.1"),
        ("rejected", FAILED, "5.7.1"),
        ("DELETED", FAILED, "5.3.0"),
        ("ENROUTE", PENDING, "4.4.1"),
        ("ACCEPTD", DELIVERED, "2.0.0"),
        ("UNKNOWN", PENDING, "4.0.0"),
        ("nonsense", PENDING, "4.0.0"),
    ],
)
def test_smpp_message_states(state: str | int, outcome: str, status: str) -> None:
    verdict = codes.smpp_state(state)
    assert (verdict.outcome, verdict.status) == (outcome, status)


def test_smpp_command_status_of_a_refused_submit() -> None:
    assert codes.smpp_command_status(0x0B).status == "5.1.1"  # invalid destination
    assert codes.smpp_command_status(0x58) == codes.Verdict(
        PENDING, "4.4.5", "ESME_RTHROTTLED: throttled, too many messages"
    )
    assert codes.smpp_command_status(0x01).status == "5.3.4"  # message too long
    unlisted = codes.smpp_command_status(0x0400)
    assert (unlisted.outcome, unlisted.status, unlisted.text) == (FAILED, "5.0.0", "SMPP error 0x00000400")


def test_map_errors_unknown_subscriber_and_absent_phone() -> None:
    assert codes.map_error(1).status == "5.1.1"
    assert (codes.map_error(6).outcome, codes.map_error(6).status) == (PENDING, "4.4.1")
    assert codes.map_error(32).status == "4.2.2"  # memory full
    assert codes.map_error(999).status == "5.0.0"


@pytest.mark.parametrize(
    ("value", "outcome", "status"),
    [
        (0x00, DELIVERED, "2.0.0"),
        (0x10, DELIVERED, "2.0.0"),  # service centre specific, delivered range
        (0x20, PENDING, "4.4.5"),
        (0x30, PENDING, "4.0.0"),
        (0x43, FAILED, "5.1.1"),
        (0x46, FAILED, "4.4.7"),  # validity period expired
        (0x50, FAILED, "5.0.0"),
        (0x60, FAILED, "4.4.5"),
        (0x70, FAILED, "4.0.0"),
        (0x80, FAILED, "5.0.0"),
    ],
)
def test_gsm_tp_st_values(value: int, outcome: str, status: str) -> None:
    verdict = codes.tp_status(value)
    assert (verdict.outcome, verdict.status) == (outcome, status)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (1, "5.1.1"),  # unassigned number
        (30, "5.1.1"),  # unknown subscriber
        (42, "4.4.5"),  # congestion: throttled
        (144, "5.6.3"),  # data coding scheme not supported: unrepresentable
        (208, "4.2.2"),  # SIM storage full
        (311, "4.3.5"),  # SIM PIN required: our configuration
        (332, "4.4.1"),  # network timeout
        (99_999, "4.0.0"),  # manufacturer specific: try again
        (77, "5.0.0"),  # a network cause without an entry
    ],
)
def test_cms_errors(code: int, status: str) -> None:
    assert codes.cms_error(code).status == status


def test_words_of_http_gateways() -> None:
    assert codes.dlr_word("Expired").status == "4.4.7"
    assert codes.dlr_word("unknown subscriber").status == "5.1.1"
    assert codes.dlr_word("too-long").status == "5.3.4"
    assert codes.dlr_word("unrepresentable").status == "5.6.3"
    assert codes.dlr_word("throttled") == codes.Verdict(PENDING, "4.4.5", "throttled")
    assert codes.dlr_word("???") == codes.UNKNOWN


def test_final_means_delivered_or_failed() -> None:
    assert codes.kannel_dlr(1).final and codes.kannel_dlr(2).final
    assert not codes.kannel_dlr(4).final and not codes.kannel_dlr(8).final
