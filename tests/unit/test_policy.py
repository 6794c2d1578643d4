"""The one decision: sender, destination, authentication, account state, limits."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from mailsms import config
from mailsms.accounts import Account, hash_password
from mailsms.config import PolicyConfig
from mailsms.errors import (
    AuthFailed,
    AuthRequired,
    ConfigError,
    MailsmsError,
    MonthlyLimitReached,
    NotAuthorized,
    QuotaExceeded,
    RateLimited,
)
from mailsms.policy import Buckets, PolicyEngine, Request, Rules, decide

NOW = dt.datetime(2024, 5, 15, 12, tzinfo=dt.UTC).timestamp()
HASH = hash_password("s3cret")
ALICE = Account("alice", HASH, gateway="gw2", maxsend=3, sent=0, month="2024-05")


def rules(**changes: object) -> Rules:
    return Rules.compile(dataclasses.replace(PolicyConfig(), **changes))  # type: ignore[arg-type]


def request(**changes: object) -> Request:
    base = Request("lmtp", "192.0.2.1", "someone@example.com", "+15551234567")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def reply(exc: pytest.ExceptionInfo[MailsmsError]) -> str:
    return f"{exc.value.code} {exc.value.enhanced}"


def test_anonymous_mail_is_accepted_without_require_auth() -> None:
    assert decide(request(), rules(), None, None, NOW).account == ""


def test_require_auth_without_credentials_is_530() -> None:
    with pytest.raises(AuthRequired) as info:
        decide(request(), rules(require_auth=True), None, None, NOW)
    assert reply(info) == "530 5.7.0"  # type: ignore[arg-type]


def test_wrong_password_for_an_existing_account_is_535_even_without_require_auth() -> None:
    with pytest.raises(AuthFailed) as info:
        decide(request(user="alice", password="nope"), rules(), ALICE, False, NOW)
    assert reply(info) == "535 5.7.8"  # type: ignore[arg-type]


def test_unknown_user_and_bare_pass_are_ignored_without_require_auth_refused_with_it() -> None:
    assert decide(request(user="ghost", password="x"), rules(), None, None, NOW).account == ""
    assert decide(request(password="x"), rules(), None, None, NOW).account == ""
    with pytest.raises(AuthFailed):
        decide(request(user="ghost", password="x"), rules(require_auth=True), None, None, NOW)


def test_right_password_binds_the_account_and_its_gateway() -> None:
    verdict = decide(request(user="alice", password="s3cret"), rules(require_auth=True), ALICE, True, NOW)
    assert (verdict.account, verdict.gateway, verdict.authenticated) == ("alice", "gw2", True)


def test_trusted_clients_and_smtp_auth_count_as_authenticated() -> None:
    assert decide(request(trusted=True), rules(require_auth=True), None, None, NOW).authenticated
    verdict = decide(request(session_user="alice"), rules(require_auth=True), ALICE, None, NOW)
    assert verdict.account == "alice"


def test_disabled_and_expired_accounts_are_550_5_7_1() -> None:
    for account in (dataclasses.replace(ALICE, inactive=True), dataclasses.replace(ALICE, expire=dt.date(2024, 5, 14))):
        with pytest.raises(NotAuthorized) as info:
            decide(request(user="alice", password="s3cret"), rules(), account, True, NOW)
        assert reply(info) == "550 5.7.1"  # type: ignore[arg-type]


def test_monthly_limit_is_452_4_2_2_or_552_5_2_2() -> None:
    used = dataclasses.replace(ALICE, sent=3)
    with pytest.raises(QuotaExceeded) as info:
        decide(request(user="alice", password="s3cret"), rules(), used, True, NOW)
    assert reply(info) == "452 4.2.2"  # type: ignore[arg-type]
    with pytest.raises(MonthlyLimitReached) as info2:
        decide(request(user="alice", password="s3cret"), rules(monthly_limit_reply="permanent"), used, True, NOW)
    assert reply(info2) == "552 5.2.2"  # type: ignore[arg-type]
    # the limit counts recipients already accepted in the same mail
    with pytest.raises(QuotaExceeded):
        decide(request(user="alice", password="s3cret"), rules(), ALICE, True, NOW, already=3)
    # a new month starts from zero
    assert decide(request(user="alice", password="s3cret"), rules(), dataclasses.replace(used, month="2024-04"),
                  True, NOW).account == "alice"  # fmt: skip


def test_from_disabled_wins_and_from_enabled_restricts() -> None:
    seed = rules(from_enabled=[".*"], from_disabled=[".*@fax$", ".*@gsm$"])
    decide(request(sender="a@example.com"), seed, None, None, NOW)
    with pytest.raises(NotAuthorized, match="from_disabled"):
        decide(request(sender="a@FAX"), seed, None, None, NOW)
    with pytest.raises(NotAuthorized, match="from_enabled"):
        decide(request(sender="a@other.org"), rules(from_enabled=[r"@example\.com$"]), None, None, NOW)


def test_bad_regex_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        config.parse("[policy]\nfrom_disabled = ['(unclosed']\n", "f.toml")
    assert "f.toml:2: policy.from_disabled: entry 1 is not a regular expression" in str(info.value)


@pytest.mark.parametrize("text", ["[policy]\nallowed_prefixes = ['44']\n", "[policy]\nallowed_regions = ['XX']\n"])
def test_bad_prefixes_and_regions_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        config.parse(text, "f.toml")


@pytest.mark.parametrize(
    "number",
    [
        "+19005550123",
        "+449098790000",
        "+33899123456",
        "+881612345678",
        "+8707612345678",
        "+88234567890",
        "+979123456789",
    ],
)
def test_premium_rate_and_satellite_numbers_are_refused_by_default(number: str) -> None:
    with pytest.raises(NotAuthorized) as info:
        decide(request(number=number), rules(), None, None, NOW)
    assert reply(info) == "550 5.7.1"  # type: ignore[arg-type]
    decide(request(number=number), rules(refuse_premium=False), None, None, NOW)


def test_prefix_lists_and_regions() -> None:
    with pytest.raises(NotAuthorized, match="blocked"):
        decide(request(number="+4930123456"), rules(blocked_prefixes=["+49"]), None, None, NOW)
    with pytest.raises(NotAuthorized, match="allowed_prefixes"):
        decide(request(number="+4930123456"), rules(allowed_prefixes=["+1"]), None, None, NOW)
    with pytest.raises(NotAuthorized, match="allowed_regions"):
        decide(request(number="+4930123456"), rules(allowed_regions=["US", "CA"]), None, None, NOW)
    decide(request(number="+15551234567"), rules(allowed_regions=["us"]), None, None, NOW)


def test_a_token_bucket_refills_per_hour() -> None:
    now = [0.0]
    buckets = Buckets(2, lambda: now[0])
    assert buckets.wait("a", 1) == 0.0
    buckets.take("a", 1)
    buckets.take("a", 1)
    assert buckets.wait("a", 1) == pytest.approx(1800.0)
    assert buckets.wait("b", 1) == 0.0
    now[0] = 1800.0
    assert buckets.wait("a", 1) == 0.0


async def test_engine_limits_messages_per_sender_and_parts_globally() -> None:
    now = [0.0]
    engine = PolicyEngine(PolicyConfig(sender_messages_per_hour=2, global_parts_per_hour=3), monotonic=lambda: now[0])
    verdicts = [await engine.check(request()) for _ in range(2)]
    with pytest.raises(RateLimited) as info:
        await engine.check(request())
    assert reply(info) == "450 4.7.1" and info.value.retry_after  # type: ignore[arg-type]
    await engine.check(request(sender="other@example.com"))
    engine.charge_parts("a@x", verdicts[0], 2)
    with pytest.raises(RateLimited):
        engine.charge_parts("b@x", verdicts[0], 2)


async def test_engine_checks_the_password_and_slows_down_repeated_failures() -> None:
    engine = PolicyEngine(PolicyConfig(auth_failure_delay=0.0), lambda user: ALICE if user == "alice" else None)
    assert (await engine.check(request(user="alice", password="s3cret"))).account == "alice"
    assert (await engine.check(request(user="alice", password="s3cret"))).account == "alice"  # cached
    for _ in range(5):
        with pytest.raises(AuthFailed):
            await engine.check(request(user="alice", password="wrong"))
    assert engine._failures["192.0.2.1"][0] == 5


def test_headers_and_the_kept_mail_lose_their_pass_values() -> None:
    from mailsms.server import scrub_mail, scrubbed

    headers = (("To", '"sms:+15551234567?user=a&pass=s3cr%26t"@sms.example.com'), ("Subject", "hi"))
    assert scrubbed(headers)[0][1] == '"sms:+15551234567?user=a&pass=(set)"@sms.example.com'
    kept = scrub_mail(b"To: <sms:+1555?pass=s3cret@x>\r\nSubject: x\r\n\r\nbody pass=stays\r\n")
    assert b"s3cret" not in kept and kept.endswith(b"\r\n\r\nbody pass=stays\r\n")


def test_premium_rate_detection_agrees_with_phonenumbers_number_type() -> None:
    """The fast check gives number_type's answer for every region's example numbers."""
    import phonenumbers

    from mailsms.policy import is_premium_rate

    kinds = (
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
    )
    numbers = [
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for kind in kinds
        if (example := phonenumbers.example_number_for_type(region, kind)) is not None
    ]
    expected = [
        phonenumbers.number_type(phonenumbers.parse(n, None)) == phonenumbers.PhoneNumberType.PREMIUM_RATE
        for n in numbers
    ]
    assert [is_premium_rate(n) for n in numbers] == expected
    assert sum(expected) > 50  # the examples do include premium-rate numbers
