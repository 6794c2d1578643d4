from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.values import ListenAddress, parse_duration, parse_listen, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (300, 300.0),
        ("300", 300.0),
        ("300s", 300.0),
        ("5m", 300.0),
        ("4h", 14400.0),
        ("5d", 432000.0),
        ("1w", 604800.0),
        (1, 1.0),
        ("0.5s", 0.5),
        (0.25, 0.25),
        (" 2m ", 120.0),
    ],
)
def test_durations_are_postfix_style(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5x", "m", "", "-5", "5 minutes", True, [], -1])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "s", "m", "h", "d", "w"]))
def test_duration_unit_multiplies(number: int, unit: str) -> None:
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{number}{unit}") == number * factor


@pytest.mark.parametrize(
    ("text", "size"), [(10240000, 10240000), ("10M", 10 * 1024**2), ("64k", 65536), ("1G", 1024**3)]
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["10 MB", "x", -1, 1.5, False])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_listen_address_forms() -> None:
    assert parse_listen("127.0.0.1:2424") == ListenAddress("127.0.0.1", 2424)
    assert parse_listen("[::1]:25") == ListenAddress("::1", 25)
    assert parse_listen("localhost:0") == ListenAddress("localhost", 0)
    assert parse_listen("") is None
    assert str(ListenAddress("::1", 25)) == "[::1]:25"


@pytest.mark.parametrize("bad", ["2424", "127.0.0.1", ":2424", "host:99999", "host:x", "::1:25", "[::1]25"])
def test_bad_listen_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(bad)


@given(st.text(max_size=30))
def test_listen_parser_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_listen(text)
