"""A pass= value never shows: not in repr, str, errors or logs (mailsms.address)."""

from __future__ import annotations

import pytest

from mailsms.address import Secret, parse_address, redact, render_address
from mailsms.config import AddressConfig
from mailsms.errors import MailsmsError

SECRET = "Tr0ub4dor"
NO_DOMAINS = AddressConfig()
SMS_DOMAIN = AddressConfig(sms_domains=("sms.example.com",))


def assert_hidden(*objects: object) -> None:
    for each in objects:
        assert SECRET not in repr(each)
        assert SECRET not in str(each)
        assert SECRET not in f"{each}"


def test_secret_shows_as_set_and_reveals_on_request() -> None:
    secret = Secret(SECRET)
    assert repr(secret) == str(secret) == "(set)"
    assert secret.reveal() == SECRET


def test_secrets_compare_and_hash_by_value() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))


def test_parsed_value_repr_and_str_never_show_the_password() -> None:
    address = parse_address(f'"sms:+15551234567?user=alice&pass={SECRET}"@sms.example.com', NO_DOMAINS)
    assert address.params.password is not None
    assert address.params.password.reveal() == SECRET
    assert_hidden(address, address.params, address.params.password, address.params.given())
    assert "password=(set)" in repr(address)


def test_str_of_the_value_is_the_redacted_canonical_form() -> None:
    address = parse_address(f"sms:+15551234567?pass={SECRET}&maxmsgs=2@sms.example.com", NO_DOMAINS)
    assert str(address) == address.redacted() == '"sms:+15551234567?pass=(set)&maxmsgs=2"@sms.example.com'


def test_redact_of_the_rendered_form_equals_the_redacted_form() -> None:
    address = parse_address(f'"sms:+15551234567?pass={SECRET}%26%22%40 x&user=a"@sms.example.com', NO_DOMAINS)
    assert SECRET in render_address(address)
    assert redact(render_address(address)) == address.redacted()


@pytest.mark.parametrize(
    ("text", "config"),
    [
        (f'"sms:+15551234567?pass={SECRET}&maxmsgs=0"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass={SECRET}&colour=red"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass=ab&{SECRET}"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass=ab&{SECRET}=1"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass=ab&user=x&{SECRET}"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass={SECRET}&pass={SECRET}"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass={SECRET}%"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass={SECRET}%FF"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass={SECRET}%0A"@sms.example.com', NO_DOMAINS),
        (f"sms:+15551234567?pass=ab@{SECRET} x", NO_DOMAINS),
        (f"sms:+15551234567?pass=ab@{SECRET}", SMS_DOMAIN),
        (f"sms:+15551234567?PASS=ab@{SECRET}", SMS_DOMAIN),
        (f"sms:+15551234567?p%61ss=ab@{SECRET}", SMS_DOMAIN),
        (f'"sms:+1555?pass={SECRET}"@sms.example.com', NO_DOMAINS),
        (f'"sms:+15551234567?pass={SECRET}"@other.example', SMS_DOMAIN),
    ],
)
def test_no_error_ever_shows_the_password(text: str, config: AddressConfig) -> None:
    with pytest.raises(MailsmsError) as caught:
        parse_address(text, config)
    error = caught.value
    assert_hidden(error, error.reason, error.reply(), error.args)


def test_an_unencoded_at_sign_in_a_password_of_an_unquoted_address_reads_as_the_domain() -> None:
    # the ambiguity IceWarp warns about ("@ has to be replaced with %40"): nothing can hide it
    assert parse_address("sms:+15551234567?pass=ab@tr0ub4dor", NO_DOMAINS).domain == "tr0ub4dor"


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        ('"sms:+1555?pass=s3cret"@d.example', '"sms:+1555?pass=(set)"@d.example'),
        ('"sms:+1555?user=a&pass=s3cret&maxmsgs=2"@d.example', '"sms:+1555?user=a&pass=(set)&maxmsgs=2"@d.example'),
        ('"sms:+1555?pass=s3 cr@t"@d.example', '"sms:+1555?pass=(set)"@d.example'),
        ('"sms:+1555?pass=s3\\"cr\\\\et&user=a"@d.example', '"sms:+1555?pass=(set)&user=a"@d.example'),
        ("sms:+1555?pass=s3cret@d.example", "sms:+1555?pass=(set)@d.example"),
        ("sms:+1555?pass=s3@cret@d.example", "sms:+1555?pass=(set)@d.example"),
        ("<sms:+1555?PASS=s3cret@d.example>", "<sms:+1555?PASS=(set)@d.example>"),
        ("to=<sms:+1555?pass=s3cret@d.example>, relay=x", "to=<sms:+1555?pass=(set)@d.example>, relay=x"),
        ("sms:+1555?p%61ss=s3cret@d.example", "sms:+1555?p%61ss=(set)@d.example"),
        ("sms:+1555?pass=a&pass=b@d.example", "sms:+1555?pass=(set)&pass=(set)@d.example"),
        ("sms:+1555?pass=@d.example", "sms:+1555?pass=(set)@d.example"),
        ("sms:+1555?user=alice@d.example", "sms:+1555?user=alice@d.example"),
        ("no address at all", "no address at all"),
        ('"sms:+1555?pass=ab&tail"@d.example', '"sms:+1555?pass=(set)&(set)"@d.example'),
        (
            '"sms:+1555?pass=ab&user=x&tail=1&pass=c"@d.example',
            '"sms:+1555?pass=(set)&user=x&(set)&pass=(set)"@d.example',
        ),
        ("sms:+1555?pass=ab&tail&maxmsgs=2@d.example", "sms:+1555?pass=(set)&(set)&maxmsgs=2@d.example"),
        ("sms:+1555?pass=ab&tail@d.example x=1&y", "sms:+1555?pass=(set)&(set)@d.example x=1&y"),
        ('"sms:+1555?pass=unterminated', '"sms:+1555?pass=(set)'),
    ],
)
def test_redact_replaces_every_pass_value_in_raw_text(raw: str, redacted: str) -> None:
    assert redact(raw) == redacted


def test_redact_is_idempotent() -> None:
    once = redact('"sms:+1555?pass=s3cret&user=a"@d.example')
    assert redact(once) == once


def test_a_user_value_that_looks_like_pass_is_left_alone() -> None:
    assert redact("sms:+1555?user=bypass=1@d.example") == "sms:+1555?user=bypass=1@d.example"
