"""Which reports a sender gets, from the envelope (RFC 3461 NOTIFY), and when a delay warning is due."""

from __future__ import annotations

import pytest

from mailsms.notify import DELAYED, DELIVERED, FAILED, RELAYED, event_names, wanted_events, warn_time


@pytest.mark.parametrize(
    ("notify", "events"),
    [
        (None, FAILED | DELAYED),
        ("", FAILED | DELAYED),
        ("NEVER", 0),
        ("SUCCESS", DELIVERED | RELAYED),
        ("success,failure", DELIVERED | RELAYED | FAILED),
        ("FAILURE,DELAY", FAILED | DELAYED),
        ("DELAY", DELAYED),
        ("SUCCESS,FAILURE,DELAY", DELIVERED | RELAYED | FAILED | DELAYED),
    ],
)
def test_notify_parameter_chooses_the_events(notify: str | None, events: int) -> None:
    assert wanted_events("alice@example.com", notify) == events


@pytest.mark.parametrize("sender", ["", "<>", " ", "MAILER-DAEMON@example.com", "postmaster@example.com"])
def test_no_report_ever_goes_to_the_null_sender_or_the_mail_system(sender: str) -> None:
    assert wanted_events(sender, "SUCCESS,FAILURE,DELAY") == 0


def test_no_report_about_a_bounce_or_an_auto_reply() -> None:
    assert wanted_events("alice@example.com", None, auto_submitted=True) == 0


def test_warning_time_is_fixed_at_arrival() -> None:
    assert warn_time(1000.0, 14400.0, FAILED | DELAYED) == 15400.0
    assert warn_time(1000.0, 0.0, FAILED | DELAYED) is None  # 0 turns warnings off
    assert warn_time(1000.0, 14400.0, FAILED) is None  # NOTIFY without DELAY


def test_event_names_are_the_rfc_3464_actions() -> None:
    assert event_names(FAILED | DELIVERED) == ["failed", "delivered"]
