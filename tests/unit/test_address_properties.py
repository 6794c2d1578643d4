"""Properties of the sms: address parser: round trips, exact decoding, and only our own errors."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsms.address import SmsAddress, parse_address, redact, render_address
from mailsms.address_params import GSM_SENDER_CHARS, Secret
from mailsms.config import AddressConfig
from mailsms.errors import MailsmsError

CONFIGS = [
    AddressConfig(),
    AddressConfig(sms_domains=("sms.example.com",)),
    AddressConfig(short_codes=True),
    AddressConfig(default_region="US"),
    AddressConfig(default_region="DE", short_codes=True),
    AddressConfig(strict_numbers=True),
    AddressConfig(default_region="ZZ"),
]


def parse_or_error(text: str, config: AddressConfig, *, trusted: bool = False) -> SmsAddress | MailsmsError:
    """The parsed value, or the MailsmsError; any other exception fails the test."""
    try:
        return parse_address(text, config, trusted=trusted)
    except MailsmsError as error:
        return error


def assert_one_ascii_line(reason: str) -> None:
    # a reason goes into an SMTP reply: one line, ASCII
    assert reason.isascii()
    assert "\n" not in reason
    assert "\r" not in reason


# text a value may hold: anything but control characters and lone surrogates
value_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
body_text = st.text(st.one_of(st.characters(blacklist_categories=("Cc", "Cs")), st.sampled_from("\t\r\n")), max_size=40)
tricky = st.text(st.sampled_from('&=%+@"\\ ?<>:;,é€😀'), min_size=1, max_size=12)
value_or_tricky = st.one_of(value_text, tricky)

e164 = st.builds(
    lambda first, rest: f"+{first}{rest}",
    st.integers(1, 9),
    st.text("0123456789", min_size=6, max_size=14),
)
gsm_sender = st.text(st.sampled_from(sorted(GSM_SENDER_CHARS)), min_size=1, max_size=11).filter(
    lambda s: s.strip(" ") == s and not s.startswith("+") and not s.isdigit()
)
sender = st.one_of(gsm_sender, e164, st.text("0123456789", min_size=3, max_size=15))
email = st.from_regex(r"[A-Za-z0-9_+-]{1,10}(\.[A-Za-z0-9_+-]{1,5})?@[a-z0-9]{1,10}\.(com|org|net)", fullmatch=True)
domain = st.from_regex(r"[A-Za-z0-9]{1,10}(\.[A-Za-z0-9]{1,10}){0,2}", fullmatch=True)
gateway_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True)


@dataclass
class Generated:
    """Parameters as they should come out of the parser, and the items that say so."""

    expected: dict[str, object] = field(default_factory=dict)
    items: list[tuple[str, str]] = field(default_factory=list)


@st.composite
def parameters(draw: st.DrawFn) -> Generated:
    gen = Generated()
    choices: dict[str, st.SearchStrategy[object]] = {
        "user": value_or_tricky,
        "pass": value_or_tricky,
        "maxmsgs": st.integers(1, 128),
        "binary": st.booleans(),
        "udh": st.binary(min_size=1, max_size=140),
        "pid": st.integers(0, 255),
        "dcs": st.integers(0, 255),
        "sender": sender,
        "authenticated": st.booleans(),
        "reply": email,
        "id": gateway_id,
        "flash": st.booleans(),
        "body": st.one_of(body_text, tricky),
    }
    for name, strategy in choices.items():
        if not draw(st.booleans()):
            continue
        value = draw(strategy)
        spelled = name if name != "maxmsgs" else draw(st.sampled_from(["maxmsgs", "maxmsg"]))
        spelled = "".join(c.upper() if draw(st.booleans()) else c for c in spelled)
        if isinstance(value, bool):
            gen.items.append((spelled, str(int(value))))
        elif isinstance(value, bytes):
            text = value.hex()
            gen.items.append((spelled, text.upper() if draw(st.booleans()) else text))
            value = value.hex().upper()
        elif isinstance(value, int):
            gen.items.append((spelled, hex(value) if name in ("pid", "dcs") and draw(st.booleans()) else str(value)))
        else:
            gen.items.append((spelled, str(value)))
        if name == "reply":
            value = str(value).rpartition("@")[0] + "@" + str(value).rpartition("@")[2].lower()
        gen.expected[name] = "(set)" if name == "pass" else value
    values = draw(st.lists(value_or_tricky, max_size=3))
    gen.items = draw(st.permutations(gen.items + [("value", v) for v in values]))
    if values:
        gen.expected["value"] = [v for name, v in gen.items if name == "value"]
    return gen


ALWAYS_ENCODED = set("&%")


def encode(value: str, rnd: random.Random) -> str:
    """Percent-encode the characters that must be, and a random share of the others."""
    out = []
    for char in value:
        if char in ALWAYS_ENCODED or ord(char) < 0x20 or rnd.random() < 0.3:
            out.append("".join(f"%{b:02X}" if rnd.random() < 0.5 else f"%{b:02x}" for b in char.encode()))
        else:
            out.append(char)
    return "".join(out)


def separated(number: str, rnd: random.Random) -> str:
    """The number with RFC 3966 visual separators sprinkled in."""
    return number[0] + "".join(rnd.choice(["", "", "-", ".", " ", "(", ")"]) + c for c in number[1:])


@st.composite
def addresses(draw: st.DrawFn) -> tuple[str, str, str, Generated]:
    number = draw(e164)
    dom = draw(domain)
    gen = draw(parameters())
    rnd = draw(st.randoms(use_true_random=False))
    query = "&".join(f"{name}={encode(value, rnd)}" for name, value in gen.items)
    local = f"{draw(st.sampled_from(['sms:', 'SMS:', 'Sms:']))}{separated(number, rnd)}"
    if query or draw(st.booleans()):
        local += f"?{query}"
    if draw(st.booleans()):
        text = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"@' + dom
    else:
        text = f"{local.replace(' ', '%20')}@{dom}"
    if draw(st.booleans()):
        text = f"<{text}>"
    return text, number, dom.lower(), gen


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses())
def test_parsing_decodes_every_value_exactly(generated: tuple[str, str, str, Generated]) -> None:
    text, number, dom, gen = generated
    address = parse_address(text, AddressConfig())
    assert address.number == number
    assert address.domain == dom
    assert address.params.given() == gen.expected
    if "pass" in gen.expected:
        pass_value = next(v for n, v in gen.items if n.lower() == "pass")
        assert address.params.password is not None
        assert address.params.password.reveal() == pass_value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses(), st.integers(1, 128), st.booleans())
def test_render_then_parse_gives_the_same_value(
    generated: tuple[str, str, str, Generated], default_maxmsgs: int, trusted: bool
) -> None:
    first = parse_address(generated[0], AddressConfig(), default_maxmsgs=default_maxmsgs, trusted=trusted)
    rendered = render_address(first)
    again = parse_address(rendered, AddressConfig(), default_maxmsgs=default_maxmsgs, trusted=trusted)
    assert again == first
    assert render_address(again) == rendered
    assert redact(rendered) == first.redacted()


@settings(deadline=None)
@given(st.sampled_from(["+", ""]), st.text("0123456789", min_size=3, max_size=15), st.sampled_from(CONFIGS[:6]))
def test_every_accepted_number_renders_and_parses_back(plus: str, digits: str, config: AddressConfig) -> None:
    first = parse_or_error(f"sms:{plus}{digits}@sms.example.com", config)
    if isinstance(first, SmsAddress):
        assert parse_address(render_address(first), config) == first


@settings(max_examples=200, deadline=None)
@given(addresses(), st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20))
def test_the_password_never_shows_in_repr_str_or_redacted_form(
    generated: tuple[str, str, str, Generated], secret_tail: str
) -> None:
    secret = "Zx9Qv7" + secret_tail
    base = parse_address(generated[0], AddressConfig())
    with_secret = dataclasses.replace(base, params=dataclasses.replace(base.params, password=Secret(secret)))
    parsed = parse_address(render_address(with_secret), AddressConfig())
    assert parsed.params.password == Secret(secret)
    shown = (repr(parsed), str(parsed), parsed.redacted(), str(parsed.params.given()), redact(render_address(parsed)))
    assert not [each for each in shown if "Zx9Qv7" in each]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80), st.sampled_from(CONFIGS), st.booleans())
def test_arbitrary_text_raises_nothing_but_mailsms_errors(text: str, config: AddressConfig, trusted: bool) -> None:
    outcome = parse_or_error(text, config, trusted=trusted)
    if isinstance(outcome, MailsmsError):
        assert_one_ascii_line(outcome.reason)


address_alphabet = st.sampled_from(list('sSmM:+0123456789?&=%@"\\<>()-. abcpqrstuxyzé\x00\n2FfA\udcff'))


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["", "sms:", "SMS:+1555", '"sms:', "<sms:", "+1", "sms:+15551234567?"]),
    st.text(address_alphabet, max_size=60),
    st.sampled_from(["", "@sms.example.com", '"@x.example', "@", "@[1.2.3.4]>"]),
    st.sampled_from(CONFIGS),
)
def test_address_like_text_raises_nothing_but_mailsms_errors(
    prefix: str, middle: str, suffix: str, config: AddressConfig
) -> None:
    outcome = parse_or_error(prefix + middle + suffix, config)
    if isinstance(outcome, MailsmsError):
        assert_one_ascii_line(outcome.reason)
    else:
        assert parse_address(render_address(outcome), config) == outcome


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_redact_accepts_any_text_and_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
