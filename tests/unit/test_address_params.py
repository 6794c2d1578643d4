"""Every parameter of an sms: address, good and bad (mailsms.address_params)."""

from __future__ import annotations

import pytest

from mailsms.address import SmsParams, parse_address
from mailsms.address_params import GSM_SENDER_CHARS, Secret, parse_params
from mailsms.config import AddressConfig
from mailsms.errors import BadAddressSyntax


def params(query: str) -> SmsParams:
    return parse_address(f'"sms:+15551234567?{query}"@sms.example.com', AddressConfig()).params


def refused(query: str) -> str:
    with pytest.raises(BadAddressSyntax) as caught:
        params(query)
    assert caught.value.reply().startswith("553 5.1.3 ")
    return caught.value.reason


# --- good values, with their parsed types --------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=alice", SmsParams(user="alice")),
        ("pass=s3cret", SmsParams(password=Secret("s3cret"))),
        ("maxmsgs=1", SmsParams(maxmsgs=1)),
        ("maxmsgs=128", SmsParams(maxmsgs=128)),
        ("maxmsg=12", SmsParams(maxmsgs=12)),
        ("binary=1", SmsParams(binary=True)),
        ("binary=0", SmsParams(binary=False)),
        ("udh=050003CC0201", SmsParams(udh="050003CC0201")),
        ("udh=0b0a", SmsParams(udh="0B0A")),
        ("pid=0", SmsParams(pid=0)),
        ("pid=65", SmsParams(pid=65)),
        ("dcs=255", SmsParams(dcs=255)),
        ("dcs=0x08", SmsParams(dcs=8)),
        ("dcs=0XF5", SmsParams(dcs=0xF5)),
        ("sender=ACME", SmsParams(sender="ACME")),
        ("sender=ACME Ltd.", SmsParams(sender="ACME Ltd.")),
        ("sender=Zoé %26 Ça", SmsParams(sender="Zoé & Ça")),
        ("sender=+15551230000", SmsParams(sender="+15551230000")),
        ("sender=12345", SmsParams(sender="12345")),
        ("authenticated=1", SmsParams(authenticated=True)),
        ("authenticated=0", SmsParams(authenticated=False)),
        ("reply=bob@example.org", SmsParams(reply="bob@example.org")),
        ("reply=bob%40example.org", SmsParams(reply="bob@example.org")),
        ("id=kannel-1", SmsParams(gateway_id="kannel-1")),
        ("id=24", SmsParams(gateway_id="24")),
        ("value=%26unicode%3D1", SmsParams(values=("&unicode=1",))),
        ("flash=1", SmsParams(flash=True)),
        ("body=hello world", SmsParams(body="hello world")),
        ("body=", SmsParams(body="")),
        ("body=line%0Aline", SmsParams(body="line\nline")),
    ],
)
def test_each_parameter_parses_to_its_type(query: str, expected: SmsParams) -> None:
    assert params(query) == expected


def test_all_parameters_together() -> None:
    parsed = params(
        "user=alice&pass=pw&maxmsgs=3&binary=0&udh=00&pid=1&dcs=2&sender=ACME&authenticated=1"
        "&reply=a@b.example&id=gw&value=x&value=y&flash=0&body=hi"
    )
    assert parsed.given() == {
        "user": "alice",
        "pass": "(set)",
        "maxmsgs": 3,
        "binary": False,
        "udh": "00",
        "pid": 1,
        "dcs": 2,
        "sender": "ACME",
        "authenticated": True,
        "reply": "a@b.example",
        "id": "gw",
        "value": ["x", "y"],
        "flash": False,
        "body": "hi",
    }


def test_given_lists_only_the_parameters_that_were_given() -> None:
    assert params("maxmsgs=2").given() == {"maxmsgs": 2}
    assert SmsParams().given() == {}


@pytest.mark.parametrize("name", ["MAXMSGS", "MaxMsgs", "maxMsg"])
def test_parameter_names_are_case_insensitive(name: str) -> None:
    assert params(f"{name}=4").maxmsgs == 4


# --- decoding ------------------------------------------------------------------------------


def test_plus_stays_plus_and_is_never_a_space() -> None:
    assert params("sender=+15551230000&body=1+1=2").body == "1+1=2"
    assert params("sender=+15551230000").sender == "+15551230000"


def test_percent_40_is_an_at_sign() -> None:
    assert params("user=alice%40example.com").user == "alice@example.com"


def test_percent_encoded_utf8_is_decoded() -> None:
    assert params("body=gr%C3%BC%C3%9Fe").body == "grüße"


def test_raw_non_ascii_is_taken_as_it_is() -> None:
    assert params("user=jürgen").user == "jürgen"


def test_a_value_is_split_at_the_first_equals_sign() -> None:
    assert params("body=a=b").body == "a=b"


def test_value_is_repeatable_and_keeps_its_order() -> None:
    assert params("value=b&value=a&value=b").values == ("b", "a", "b")


def test_a_stray_percent_sign_is_refused() -> None:
    assert refused("body=100%") == (
        "bad parameter 'body': '%' must start an escape of two hex digits (write a literal % as %25)"
    )


def test_percent_encoded_bytes_that_are_not_utf8_are_refused() -> None:
    assert refused("body=%FF") == "bad parameter 'body': percent-encoded bytes are not UTF-8"


def test_a_percent_encoded_control_character_is_refused_outside_body() -> None:
    assert refused("user=a%0Ab") == "bad parameter 'user': control characters are not allowed"
    assert "control characters" in refused("body=a%00b")


# --- errors: unknown, repeated, malformed --------------------------------------------------


def test_an_unknown_parameter_is_an_error_naming_it() -> None:
    assert refused("maxmsgs=2&colour=red") == "unknown parameter 'colour'"


def test_a_parameter_without_value_is_an_error() -> None:
    assert refused("flash") == "parameter 'flash' has no value"


def test_a_parameter_without_name_is_an_error() -> None:
    assert refused("=1") == "parameter with no name"


@pytest.mark.parametrize("query", ["user=a&user=b", "USER=a&user=a", "flash=1&flash=1", "pass=a&pass=b"])
def test_a_repeated_parameter_is_an_error(query: str) -> None:
    assert "given twice" in refused(query)


def test_maxmsg_and_maxmsgs_together_are_a_repeated_parameter() -> None:
    assert refused("maxmsg=2&maxmsgs=3") == "parameter 'maxmsgs' given twice (maxmsg and maxmsgs are one parameter)"


@pytest.mark.parametrize("value", ["0", "129", "-1", "+3", "3.0", "three", "", "1000", " 3", "٣"])
def test_maxmsgs_must_be_an_integer_1_to_128(value: str) -> None:
    assert refused(f"maxmsgs={value}") == "bad parameter 'maxmsgs': must be an integer 1..128"


def test_maxmsg_alias_is_checked_the_same_way() -> None:
    assert refused("maxmsg=500") == "bad parameter 'maxmsg': must be an integer 1..128"


@pytest.mark.parametrize("name", ["binary", "flash", "authenticated"])
@pytest.mark.parametrize("value", ["2", "true", "yes", "", "01"])
def test_flags_must_be_0_or_1(name: str, value: str) -> None:
    assert refused(f"{name}={value}") == f"bad parameter '{name}': must be 0 or 1"


@pytest.mark.parametrize("value", ["xyz", "0", "123", "", "0x0A", "0" * 282])
def test_udh_must_be_whole_bytes_of_hex(value: str) -> None:
    assert refused(f"udh={value}").startswith("bad parameter 'udh': must be hex digits")


def test_udh_may_be_140_bytes() -> None:
    assert params("udh=" + "AB" * 140).udh == "AB" * 140


@pytest.mark.parametrize("name", ["pid", "dcs"])
@pytest.mark.parametrize("value", ["256", "-1", "0x100", "x", "", "1.5", "0x"])
def test_pid_and_dcs_must_be_a_byte(name: str, value: str) -> None:
    assert refused(f"{name}={value}") == f"bad parameter '{name}': must be a byte: 0..255, decimal or 0x hex"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("ACME Company", "1 to 11 characters"),
        ("", "1 to 11 characters"),
        ("AC[ME]", "GSM punctuation"),
        ("ACME€", "GSM punctuation"),
        ("ACME`", "GSM punctuation"),
        ("çedilla", "GSM punctuation"),
        (" ACME", "start or end with a space"),
        ("+1555", "'+' and 7 to 15 digits"),
        ("+ACME", "'+' and 7 to 15 digits"),
        ("+0123456789", "'+' and 7 to 15 digits"),
        ("12", "3 to 15 digits"),
        ("1234567890123456", "3 to 15 digits"),
    ],
)
def test_sender_rules(value: str, rule: str) -> None:
    reason = refused(f"sender={value}")
    assert reason.startswith("bad parameter 'sender': ")
    assert rule in reason


def test_an_alphanumeric_sender_may_use_all_11_gsm_characters() -> None:
    assert params("sender=ΔΦΓΛΩΠΨΣΘΞ@").sender == "ΔΦΓΛΩΠΨΣΘΞ@"


def test_the_sender_alphabet_is_gsm_basic_without_line_breaks_and_escape() -> None:
    assert len(GSM_SENDER_CHARS) == 125
    assert not GSM_SENDER_CHARS & set("\n\r\x1b[]{}\\^|~€`ç")


@pytest.mark.parametrize("value", ["not-an-address", "bob@", "@example.org", "a b@example.org"])
def test_reply_must_be_an_email_address(value: str) -> None:
    assert refused(f"reply={value}").startswith("bad parameter 'reply': not an e-mail address: ")


def test_reply_is_normalised_by_email_validator() -> None:
    assert params("reply=Bob@EXAMPLE.org").reply == "Bob@example.org"


def test_reply_may_be_another_sms_address() -> None:
    assert params("reply=%22sms:+15550001111%22@sms.example.com").reply == '"sms:+15550001111"@sms.example.com'


@pytest.mark.parametrize("value", ["", "-gw", "gw/1", "g w", "x" * 65])
def test_id_must_be_a_gateway_id(value: str) -> None:
    assert refused(f"id={value}").startswith("bad parameter 'id': ")


@pytest.mark.parametrize("name", ["user", "pass"])
def test_user_and_pass_may_not_be_empty(name: str) -> None:
    assert refused(f"{name}=") == f"bad parameter '{name}': empty value"


def test_an_empty_value_explains_how_to_pass_gateway_parameters() -> None:
    # IceWarp's own example, value=&unicode=1, is ambiguous in an address: the '&' must be %26
    assert "value=%26unicode%3D1" in refused("value=&unicode=1")


def test_errors_name_the_parameter_but_never_its_value() -> None:
    for name in ["user", "maxmsgs", "binary", "udh", "pid", "sender", "id", "value", "flash"]:
        assert "SECRETISH" not in refused(f"{name}=SECRETISH%0A-TOO-LONG")


def test_parse_params_reads_a_query_on_its_own() -> None:
    assert parse_params("maxmsgs=2&flash=1") == SmsParams(maxmsgs=2, flash=True)
