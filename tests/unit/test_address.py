"""The forms of an sms: recipient, its number and its domain (mailsms.address)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mailsms.address import SmsAddress, SmsParams, parse_address, render_address
from mailsms.config import AddressConfig
from mailsms.errors import BadAddressSyntax, BadNumber, ConfigError, UnknownDomain

NO_CONFIG = AddressConfig()
SMS_DOMAIN = AddressConfig(sms_domains=("sms.example.com",))


def parse(
    text: str, config: AddressConfig = NO_CONFIG, *, default_maxmsgs: int = 1, trusted: bool = False
) -> SmsAddress:
    return parse_address(text, config, default_maxmsgs=default_maxmsgs, trusted=trusted)


# --- the forms an MTA or a client delivers -------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '"sms:+15551234567?maxmsgs=3&user=alice&pass=s3cret"@sms.example.com',
        "sms:+15551234567?maxmsgs=3&user=alice&pass=s3cret@sms.example.com",
        '<"sms:+15551234567?maxmsgs=3&user=alice&pass=s3cret"@sms.example.com>',
        "<sms:+15551234567?maxmsgs=3&user=alice&pass=s3cret@sms.example.com>",
        '  "sms:+15551234567?maxmsgs=3&user=alice&pass=s3cret"@sms.example.com\r\n',
    ],
)
def test_quoted_unquoted_and_bracketed_forms_give_the_same_value(text: str) -> None:
    address = parse(text)
    assert address.number == "+15551234567"
    assert address.domain == "sms.example.com"
    assert address.params.maxmsgs == 3
    assert address.params.user == "alice"
    assert address.params.password is not None
    assert address.params.password.reveal() == "s3cret"


def test_sms_scheme_without_parameters() -> None:
    assert parse("sms:+15551234567@sms.example.com") == SmsAddress("+15551234567", "sms.example.com")


@pytest.mark.parametrize("scheme", ["sms:", "SMS:", "Sms:", "sMs:"])
def test_scheme_is_case_insensitive(scheme: str) -> None:
    assert parse(f"{scheme}+15551234567@sms.example.com").number == "+15551234567"


def test_plain_e164_number_at_an_sms_domain() -> None:
    assert parse("+15551234567@sms.example.com", SMS_DOMAIN) == SmsAddress("+15551234567", "sms.example.com")


def test_plain_digits_at_an_sms_domain_are_an_international_number_without_plus() -> None:
    assert parse("15551234567@sms.example.com", SMS_DOMAIN).number == "+15551234567"


def test_quoted_pairs_in_the_quoted_local_part_are_undone() -> None:
    address = parse(r'"sms:+15551234567?body=say \"hi\" \\o/"@sms.example.com')
    assert address.params.body == 'say "hi" \\o/'


def test_quoted_local_part_may_hold_an_at_sign() -> None:
    address = parse('"sms:+15551234567?reply=bob@example.org"@sms.example.com')
    assert address.params.reply == "bob@example.org"
    assert address.domain == "sms.example.com"


def test_unquoted_local_part_splits_at_the_last_at_sign() -> None:
    address = parse("sms:+15551234567?reply=bob@example.org@sms.example.com")
    assert address.params.reply == "bob@example.org"
    assert address.domain == "sms.example.com"


def test_empty_query_and_empty_items_are_no_parameters() -> None:
    assert parse("sms:+15551234567?@sms.example.com").params == SmsParams()
    assert parse("sms:+15551234567?&maxmsgs=2&@sms.example.com").params == SmsParams(maxmsgs=2)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty address"),
        ("<>", "empty address"),
        ("sms:+15551234567", "missing '@domain'"),
        ('"sms:+15551234567@sms.example.com', "unterminated quoted local part"),
        ('"sms:+15551234567\\"@sms.example.com', "unterminated quoted local part"),
        ('"sms:+15551234567"x@sms.example.com', "expected '@' right after the quoted local part"),
        ("<sms:+15551234567@sms.example.com", "'<' without a closing '>'"),
        ("sms:+15551234567@", "missing domain after '@'"),
        ("@sms.example.com", "empty local part"),
        ("sms:+15551234567\n@sms.example.com", "control character"),
        ("sms:+15551234567?body=\udcff@sms.example.com", "not UTF-8"),
        ("+15551234567?maxmsgs=2@sms.example.com", "parameters need the sms: form"),
    ],
)
def test_malformed_addresses_are_bad_syntax_553(text: str, reason: str) -> None:
    with pytest.raises(BadAddressSyntax, match=reason.replace("?", r"\?")) as caught:
        parse(text, SMS_DOMAIN)
    assert caught.value.reply().startswith("553 5.1.3 ")


def test_an_overlong_address_is_bad_syntax() -> None:
    with pytest.raises(BadAddressSyntax, match="longer than 4096"):
        parse("sms:+15551234567?body=" + "x" * 5000 + "@sms.example.com")


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    ["+1 555 123 4567", "+1-555-123-4567", "+1.555.123.4567", "+1 (555) 123-4567", "(+1)5551234567"],
)
def test_visual_separators_are_removed_from_the_number(written: str) -> None:
    assert parse(f'"sms:{written}"@sms.example.com').number == "+15551234567"


def test_a_percent_encoded_plus_in_the_number_is_a_plus() -> None:
    assert parse("sms:%2B15551234567@sms.example.com").number == "+15551234567"


@pytest.mark.parametrize("digits", ["1234567", "123456789012345"])
def test_international_numbers_have_7_to_15_digits(digits: str) -> None:
    assert parse(f"sms:+{digits}@x.example").number == f"+{digits}"


@pytest.mark.parametrize("number", ["+123456", "+1234567890123456", "+0123456789"])
def test_international_numbers_outside_e164_are_bad_numbers(number: str) -> None:
    with pytest.raises(BadNumber, match="7 to 15 digits") as caught:
        parse(f"sms:{number}@x.example")
    assert caught.value.reply().startswith("550 5.1.1 ")
    assert number in caught.value.reason


@pytest.mark.parametrize("number", ["+1555abc4567", "+1555١٢٣4567", "+1/555/1234567", "1555;ext=1"])
def test_letters_and_other_characters_in_a_number_are_bad_numbers(number: str) -> None:
    with pytest.raises(BadNumber, match="only digits"):
        parse(f'"sms:{number}"@x.example')


def test_a_missing_number_is_a_bad_number() -> None:
    with pytest.raises(BadNumber, match="missing number after 'sms:'"):
        parse("sms:?maxmsgs=2@x.example")


def test_separators_alone_are_a_bad_number() -> None:
    with pytest.raises(BadNumber, match="no digits"):
        parse('"sms:-- ()"@x.example')


def test_rfc5724_lists_of_numbers_are_refused() -> None:
    with pytest.raises(BadNumber, match="one number per address"):
        parse("sms:+15551234567,+15557654321@x.example")


def test_a_plain_local_part_that_is_no_number_is_a_bad_number() -> None:
    with pytest.raises(BadNumber, match="'alice'"):
        parse("alice@sms.example.com", SMS_DOMAIN)


def test_without_region_a_leading_zero_needs_a_default_region() -> None:
    with pytest.raises(BadNumber, match="default_region"):
        parse("sms:07700900123@x.example")


def test_with_a_default_region_a_national_number_becomes_e164() -> None:
    config = AddressConfig(default_region="GB")
    assert parse("sms:07700 900123@x.example", config).number == "+447700900123"


def test_with_region_us_international_digits_without_plus_still_read_as_us() -> None:
    config = AddressConfig(default_region="us")
    assert parse("sms:15551234567@x.example", config).number == "+15551234567"
    assert parse("sms:(555) 123-4567@x.example", config).number == "+15551234567"


def test_with_a_default_region_an_impossible_national_number_is_a_bad_number() -> None:
    with pytest.raises(BadNumber, match="not a possible number in region GB"):
        parse("sms:15551234567@x.example", AddressConfig(default_region="GB"))


def test_a_local_only_number_cannot_be_written_in_e164_and_is_refused() -> None:
    with pytest.raises(BadNumber, match="region US"):
        parse("sms:5551234@x.example", AddressConfig(default_region="US"))


def test_an_unknown_default_region_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="default_region 'XX'"):
        parse("sms:5551234567@x.example", AddressConfig(default_region="XX"))


def test_the_555_test_range_is_possible_so_accepted_by_default() -> None:
    assert parse("sms:+15551234567@x.example").number == "+15551234567"


def test_strict_numbers_refuse_the_555_test_range() -> None:
    with pytest.raises(BadNumber, match="not a valid number"):
        parse("sms:+15551234567@x.example", AddressConfig(strict_numbers=True))


def test_strict_numbers_accept_a_valid_number() -> None:
    assert parse("sms:+12015550123@x.example", AddressConfig(strict_numbers=True)).number == "+12015550123"


def test_strict_numbers_apply_to_national_numbers() -> None:
    strict_us = AddressConfig(default_region="US", strict_numbers=True)
    assert parse("sms:2015550123@x.example", strict_us).number == "+12015550123"
    with pytest.raises(BadNumber, match="not a valid number in region US"):
        parse("sms:5551234567@x.example", strict_us)


def test_strict_numbers_apply_to_digits_without_plus_and_no_region() -> None:
    with pytest.raises(BadNumber, match="not a valid number"):
        parse("sms:15551234567@x.example", AddressConfig(strict_numbers=True))


@pytest.mark.parametrize("code", ["123", "12345", "12345678"])
def test_short_codes_of_3_to_8_digits_are_kept_when_enabled(code: str) -> None:
    assert parse(f"sms:{code}@x.example", AddressConfig(short_codes=True)).number == code


@pytest.mark.parametrize("code", ["123", "12345"])
def test_short_codes_are_refused_unless_enabled(code: str) -> None:
    with pytest.raises(BadNumber, match="short code"):
        parse(f"sms:{code}@x.example")


def test_short_codes_keep_their_range_of_3_to_8_digits() -> None:
    with pytest.raises(BadNumber):
        parse("sms:12@x.example", AddressConfig(short_codes=True))


def test_with_region_a_short_code_stays_a_short_code_unless_a_valid_national_number() -> None:
    config = AddressConfig(default_region="DE", short_codes=True)
    assert parse("sms:22222@x.example", config).number == "22222"
    us = AddressConfig(default_region="US", short_codes=True)
    assert parse("sms:12345@x.example", us).number == "12345"
    assert parse("sms:2015550123@x.example", us).number == "+12015550123"


def test_a_plain_short_code_at_an_sms_domain() -> None:
    config = AddressConfig(sms_domains=("sms.example.com",), short_codes=True)
    assert parse("12345@sms.example.com", config).number == "12345"


def test_international_numbers_do_not_import_phonenumbers_or_email_validator() -> None:
    code = (
        "import sys\n"
        "from mailsms.address import parse_address\n"
        "from mailsms.config import AddressConfig\n"
        "parse_address('\"sms:+1 555 123 4567?maxmsgs=3&user=a&pass=b\"@x.example', AddressConfig())\n"
        "parse_address('sms:15551234567@x.example', AddressConfig())\n"
        "print(sorted(m for m in ('phonenumbers', 'email_validator', 'hmac') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- domains -------------------------------------------------------------------------------


def test_configured_sms_domains_are_compared_case_insensitively() -> None:
    config = AddressConfig(sms_domains=("SMS.Example.COM",))
    assert parse("sms:+15551234567@sms.EXAMPLE.com", config).domain == "sms.example.com"


def test_the_domain_is_returned_in_lower_case_without_a_trailing_dot() -> None:
    assert parse("sms:+15551234567@SMS.Example.COM.", AddressConfig()).domain == "sms.example.com"


def test_another_domain_than_the_configured_ones_is_unknown_550() -> None:
    with pytest.raises(UnknownDomain, match=r"domain 'other\.example' is not an SMS domain") as caught:
        parse('"sms:+15551234567"@other.example', SMS_DOMAIN)
    assert caught.value.reply().startswith("550 5.1.1 ")


def test_without_configuration_any_domain_is_accepted_for_sms_local_parts() -> None:
    assert parse("sms:+15551234567@anything.example", AddressConfig()).domain == "anything.example"


def test_without_configuration_a_plain_number_needs_an_sms_domain() -> None:
    with pytest.raises(UnknownDomain, match=r"needs address\.sms_domains"):
        parse("+15551234567@sms.example.com", AddressConfig())


def test_an_address_literal_is_a_domain() -> None:
    assert parse("sms:+15551234567@[127.0.0.1]", AddressConfig()).domain == "[127.0.0.1]"


@pytest.mark.parametrize("domain", ["exa mple.com", "example..com", "-example.com", "a@b", "<x>", "ex\\ample"])
def test_malformed_domains_are_bad_syntax(domain: str) -> None:
    with pytest.raises(BadAddressSyntax, match="domain"):
        parse(f'"sms:+15551234567"@{domain}', AddressConfig())


def test_the_domain_is_checked_before_the_local_part() -> None:
    with pytest.raises(UnknownDomain):
        parse('"sms:nonsense?x=1"@other.example', SMS_DOMAIN)


# --- maxmsgs and trust ---------------------------------------------------------------------


def test_maxmsgs_defaults_to_1_as_in_icewarp() -> None:
    assert parse("sms:+15551234567@x.example").maxmsgs == 1
    assert parse("sms:+15551234567@x.example").params.maxmsgs is None


def test_maxmsgs_default_comes_from_the_configuration() -> None:
    assert parse("sms:+15551234567@x.example", default_maxmsgs=5).maxmsgs == 5


def test_a_given_maxmsgs_overrides_the_default() -> None:
    assert parse("sms:+15551234567?maxmsgs=7@x.example", default_maxmsgs=5).maxmsgs == 7


@pytest.mark.parametrize("default", [0, 129])
def test_a_default_maxmsgs_outside_1_to_128_is_a_configuration_error(default: int) -> None:
    with pytest.raises(ConfigError, match="maxmsgs"):
        parse("sms:+15551234567@x.example", default_maxmsgs=default)


def test_authenticated_1_from_a_user_grants_nothing() -> None:
    address = parse("sms:+15551234567?authenticated=1@x.example")
    assert address.params.authenticated is True
    assert address.skip_authentication is False


def test_authenticated_1_from_a_trusted_source_skips_authentication() -> None:
    assert parse("sms:+15551234567?authenticated=1@x.example", trusted=True).skip_authentication is True


def test_a_trusted_source_without_authenticated_1_does_not_skip_authentication() -> None:
    assert parse("sms:+15551234567@x.example", trusted=True).skip_authentication is False
    assert parse("sms:+15551234567?authenticated=0@x.example", trusted=True).skip_authentication is False


# --- rendering -----------------------------------------------------------------------------


def test_render_quotes_the_local_part_as_postfix_does() -> None:
    assert render_address(parse("SMS:+1 555 123 4567@SMS.example.com")) == '"sms:+15551234567"@sms.example.com'


def test_render_uses_canonical_names_order_and_encoding() -> None:
    address = parse(
        '"sms:+15551234567?Flash=1&value=a b&reply=Bob@Example.org&MAXMSG=3&sender=+15550001&udh=0a0b"@sms.example.com'
    )
    assert render_address(address) == (
        '"sms:+15551234567?maxmsgs=3&udh=0A0B&sender=+15550001&reply=Bob%40example.org&value=a%20b&flash=1"'
        "@sms.example.com"
    )


def test_render_includes_the_password_and_parses_back_to_the_same_value() -> None:
    address = parse('"sms:+15551234567?user=alice&pass=p@ss w%26rd%25"@sms.example.com')
    text = render_address(address)
    assert "pass=p%40ss%20w%26rd%25" in text
    assert parse(text) == address


def test_render_escapes_quotes_and_backslashes_of_a_hand_made_value() -> None:
    address = SmsAddress('+1555"\\', "x.example")
    assert render_address(address) == '"sms:+1555\\"\\\\"@x.example'
