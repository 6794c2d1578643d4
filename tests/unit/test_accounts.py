"""Accounts: the seed's colon format, Delphi dates, the month rollover, password hashes."""

from __future__ import annotations

import datetime as dt

import pytest

from mailsms.accounts import (
    Account,
    counted,
    date_to_delphi,
    delphi_to_date,
    format_line,
    hash_password,
    month_of,
    parse_line,
    rolled,
    verify_password,
)

MAY_2024 = dt.datetime(2024, 5, 15, 12, tzinfo=dt.UTC).timestamp()


def test_delphi_dates_count_days_since_1899_12_30() -> None:
    assert delphi_to_date("45443") == dt.date(2024, 5, 31)
    assert delphi_to_date("45443.75") == dt.date(2024, 5, 31)
    assert delphi_to_date("") is None and delphi_to_date("0") is None
    assert date_to_delphi(dt.date(2024, 5, 31)) == "45443"


def test_a_seed_line_is_parsed_with_its_ten_fields() -> None:
    line = "alice:s3cret:kannel-1:Sales team:100:7:1715774400:42:45443:"
    parsed = parse_line(line, MAY_2024)
    assert parsed is not None
    account = parsed.account
    assert (account.user, account.gateway, account.description) == ("alice", "kannel-1", "Sales team")
    assert (account.maxsend, account.sent, account.prevsent) == (100, 7, 42)
    assert account.lastsent == 1715774400.0 and account.month == "2024-05"
    assert account.expire == dt.date(2024, 5, 31) and not account.inactive
    assert parsed.password == "s3cret"
    assert "s3cret" not in repr(parsed)


def test_a_password_may_hold_colons() -> None:
    parsed = parse_line("bob:a:b:c::::0::::1", MAY_2024)
    assert parsed is not None and parsed.password == "a:b:c" and parsed.account.inactive


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("alice:x", "expected 10 colon-separated fields"),
        ("alice:pw::d:many:0:0:0::", "maxsend must be a whole number"),
        ("alice:pw::d:0:0:0:0:someday:", "expire must be a Delphi date"),
        ("alice:pw::d:0:0:0:0::yes", "inactive must be 1 or empty"),
        (":pw::d:0:0:0:0::", "user must be"),
    ],
)
def test_bad_lines_name_the_field_and_never_the_password(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_line(line, MAY_2024)
    assert "pw" not in str(info.value)


def test_blank_and_comment_lines_are_skipped() -> None:
    assert parse_line("", MAY_2024) is None and parse_line("# user:password:...", MAY_2024) is None


def test_export_writes_ten_fields_with_the_password_empty_and_current_counters() -> None:
    account = Account("alice", hash_password("pw"), "gw", "d", 100, sent=7, prevsent=1, lastsent=1715774400.0,
                      month="2024-04", expire=dt.date(2024, 5, 31))  # fmt: skip
    line = format_line(account, MAY_2024)
    assert line == "alice::gw:d:100:0:1715774400:7:45443:"
    assert len(line.split(":")) == 10


def test_counters_roll_over_at_the_end_of_a_month() -> None:
    account = Account("a", sent=5, prevsent=3, month="2024-04")
    assert (rolled(account, "2024-04").sent, rolled(account, "2024-04").prevsent) == (5, 3)
    assert (rolled(account, "2024-05").sent, rolled(account, "2024-05").prevsent) == (0, 5)
    assert (rolled(account, "2024-07").sent, rolled(account, "2024-07").prevsent) == (0, 0)
    assert rolled(Account("a", sent=5, month="2023-12"), "2024-01").prevsent == 5


def test_counting_rolls_first_then_adds() -> None:
    after = counted(Account("a", sent=9, month="2024-04"), 2, MAY_2024)
    assert (after.sent, after.prevsent, after.month, after.lastsent) == (2, 9, "2024-05", MAY_2024)
    assert month_of(MAY_2024) == "2024-05"


def test_monthly_limit_and_expiry() -> None:
    account = Account("a", maxsend=10, sent=10, month="2024-05", expire=dt.date(2024, 5, 15))
    assert account.left_this_month("2024-05") == 0
    assert account.left_this_month("2024-06") == 10
    assert account.usable(dt.date(2024, 5, 15)) is None
    assert "expired" in (account.usable(dt.date(2024, 5, 16)) or "")
    assert Account("a", maxsend=0).left_this_month("2024-05") is None


def test_passwords_are_argon2_hashes_verified_by_value() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("$argon2id$") and "s3cret" not in hashed
    assert verify_password(hashed, "s3cret")
    assert not verify_password(hashed, "S3cret")
    assert not verify_password("", "anything")  # no password set: nothing matches
    assert not verify_password("not a hash", "x")
