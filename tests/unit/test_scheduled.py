"""Scheduled sends: the at= parameter, the Deferred-Delivery header and the limits on both."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.address_params import iso_time, parse_params, render_params
from mailsms.compose import compose, header_time
from mailsms.config import ComposeConfig
from mailsms.errors import BadAddressSyntax, BadContent
from mailsms.server import MAX_SCHEDULE_AHEAD, scheduled_time

NOON_UTC = datetime.datetime(2026, 12, 24, 12, 0, tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize(
    "written",
    ["2026-12-24T12:00:00Z", "2026-12-24T13:00+01:00", "2026-12-24T07:00:00-05:00", "2026-12-24T12:00:00"],
)
def test_at_takes_iso_8601_with_a_zone_or_utc(written: str) -> None:
    assert parse_params(f"at={written}").at == NOON_UTC


@pytest.mark.parametrize("written", ["tomorrow", "2026-13-01T00:00Z", "", "1796000000"])
def test_a_bad_at_is_553_naming_the_parameter(written: str) -> None:
    with pytest.raises(BadAddressSyntax, match="at"):
        parse_params(f"at={written}")


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_at_renders_in_utc_and_parses_back(seconds: int) -> None:
    params = parse_params(f"at={iso_time(float(seconds))}")
    assert params.at == float(seconds)
    assert parse_params(render_params(params)).at == float(seconds)


def test_the_deferred_delivery_header_is_read_in_its_zone() -> None:
    mail = b"From: a@example.com\r\nDeferred-Delivery: Thu, 24 Dec 2026 13:00:00 +0100\r\n\r\nHello\r\n"
    assert compose(mail, ComposeConfig()).deferred_delivery == NOON_UTC
    assert header_time(b"Thu, 24 Dec 2026 12:00:00 -0000") == NOON_UTC


@pytest.mark.parametrize("value", [b"", b"soon", b"Thu, 99 Dec 2026 13:00:00 +0100", b"\xff\xfe"])
def test_a_bad_deferred_delivery_header_means_now(value: bytes) -> None:
    assert header_time(value) is None


def test_at_wins_over_the_header_and_the_past_means_now() -> None:
    now = NOON_UTC
    assert scheduled_time(now + 60, now + 3600, now) == now + 60
    assert scheduled_time(None, now + 3600, now) == now + 3600
    assert scheduled_time(now - 60, None, now) is None
    assert scheduled_time(None, now - 60, now) is None
    assert scheduled_time(None, None, now) is None


def test_more_than_a_year_ahead_is_refused() -> None:
    now = NOON_UTC
    with pytest.raises(BadAddressSyntax):
        scheduled_time(now + MAX_SCHEDULE_AHEAD + 1, None, now)
    with pytest.raises(BadContent):
        scheduled_time(None, now + MAX_SCHEDULE_AHEAD + 1, now)
