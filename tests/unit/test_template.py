"""HTTP gateway templates: every variable and modifier of seed 002's "HTTP Gateway" table."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transports.template import (
    MODIFIERS,
    VARIABLES,
    Context,
    Fields,
    RenderError,
    TemplateError,
    compile_template,
    template_problem,
)

UDH = bytes.fromhex("050003CC0201")  # part 1 of 2, reference 0xCC, length byte included
TEXT = Fields("+15551234567", "gsm7", text="Hello world", parts=1, msgid="Q1.1")
UNICODE = Fields("+15551234567", "ucs2", text="Grüße 😀", udh=UDH, parts=2, msgid="Q1.1")
BINARY = Fields("+15551234567", "binary", data=b"\x01\x02\xff", udh=bytes.fromhex("0605040b8423f0"), msgid="Q1.1")


def render(template: str, fields: Fields = TEXT, context: Context = "url") -> str:
    return compile_template(template, context).render(fields)


def problem(template: str, context: Context = "url") -> str:
    with pytest.raises(TemplateError) as info:
        compile_template(template, context)
    return info.value.problem


# -- variables ----------------------------------------------------------------------------


def test_seed_url_example_renders_every_parameter() -> None:
    url = "http://h/sms/?number=%number%&data=%data%&udh=%udh%&binary=%binary%&pid=%pid%&dcs=%dcs%&sender=%sender%"
    fields = Fields("+15551234567", "gsm7", text="hi there", sender="Alerts", pid=0)
    assert render(url, fields) == (
        "http://h/sms/?number=%2B15551234567&data=hi%20there&udh=&binary=0&pid=0&dcs=0&sender=Alerts"
    )


def test_number_keeps_its_plus_percent_encoded_in_urls_and_as_is_in_json() -> None:
    assert render("%number%") == "%2B15551234567"
    assert render("%number%", context="json") == "+15551234567"


def test_data_is_the_text_percent_encoded_as_utf8() -> None:
    assert render("%data%", UNICODE) == "Gr%C3%BC%C3%9Fe%20%F0%9F%98%80"


def test_binary_data_is_base64_by_default() -> None:
    # Seed: "If the SMS payload is binary data, it is automatically base64 encoded."
    assert render("%data%", BINARY, "json") == base64.b64encode(b"\x01\x02\xff").decode()
    assert render("%data%", BINARY) == "AQL%2F"  # base64 "AQL/", then escaped for the URL


def test_udh_is_base64_without_its_length_byte() -> None:
    # Seed: "By default, the UDH parameter is formatted in base64 without the length prefix."
    assert render("%udh%", UNICODE, "json") == base64.b64encode(UDH[1:]).decode()


def test_udh_is_empty_for_a_single_part() -> None:
    assert render("[%udh%]", TEXT) == "[]"


def test_binary_is_1_only_for_binary_messages() -> None:
    assert [render("%binary%", f) for f in (TEXT, UNICODE, BINARY)] == ["0", "0", "1"]


def test_pid_is_empty_unless_set() -> None:
    assert render("[%pid%]") == "[]"
    assert render("%pid%", Fields("+1", "gsm7", pid=65)) == "65"


def test_dcs_is_as_given_else_says_what_the_data_is() -> None:
    assert [render("%dcs%", f) for f in (TEXT, UNICODE, BINARY)] == ["0", "8", "4"]
    assert render("%dcs%", Fields("+1", "gsm7", flash=True)) == "16"  # class 0
    assert render("%dcs%", Fields("+1", "ucs2", dcs=0x19)) == "25"


def test_sender_is_passed_and_may_be_empty() -> None:
    assert render("%sender%", Fields("+1", "gsm7", sender="+15557654321")) == "%2B15557654321"
    assert render("[%sender%]") == "[]"


def test_parts_is_the_number_of_messages_in_total() -> None:
    assert render("concat=%parts%", UNICODE) == "concat=2"


def test_condition_is_empty_and_carries_a_conditional_value() -> None:
    # The seed's own example: %condition;isunicode;value=&unicode=1%
    template = "x=1%condition;isunicode;value=&unicode=1%"
    assert render(template, UNICODE) == "x=1&unicode=1"
    assert render(template, TEXT) == "x=1"
    assert render("[%condition%]") == "[]"


def test_msgid_dlr_url_and_credentials() -> None:
    fields = Fields(
        "+1", "gsm7", msgid="ABC.2", dlr_url="http://127.0.0.1/dlr/g?id=ABC.2", username="u", password="p w"
    )
    assert render("%msgid%", fields) == "ABC.2"
    assert render("%dlr_url%", fields) == "http%3A%2F%2F127.0.0.1%2Fdlr%2Fg%3Fid%3DABC.2"
    assert render("%username%:%password%", fields) == "u:p%20w"


def test_values_keep_their_query_syntax() -> None:
    # Seed: "value=&unicode=1" passes unicode=1 to the remote gateway.
    fields = Fields("+1", "gsm7", values=("&unicode=1", "&note=a b#"))
    assert render("x=1%values%", fields) == "x=1&unicode=1&note=a%20b%23"
    assert render("%values%", fields, "json") == "&unicode=1&note=a b#"


def test_every_variable_is_known() -> None:
    for name in VARIABLES:
        compile_template(f"%{name}%", "url").render(UNICODE)


# -- modifiers ----------------------------------------------------------------------------


def test_unicode_encodes_as_ucs2_bytes() -> None:
    assert render("%data;unicode;hex%", Fields("+1", "ucs2", text="Hi€")) == "0048006920AC"
    assert render("%data;unicode%", Fields("+1", "ucs2", text="é")) == "%00%E9"


def test_hex_encodes_upper_case_hex() -> None:
    assert render("%data;hex%", BINARY) == "0102FF"
    assert render("%data;hex%", Fields("+1", "gsm7", text="é")) == "C3A9"  # text as UTF-8


def test_b64_encodes_base64() -> None:
    assert render("%data;b64%", TEXT, "json") == base64.b64encode(b"Hello world").decode()


def test_len_puts_the_length_first_as_clickatell_wants_the_udh() -> None:
    # Seed: %udh;len;hex% is the UDH with its length byte, in hex.
    assert render("%udh;len;hex%", UNICODE) == "050003CC0201"
    assert render("%data;len;hex%", Fields("+1", "gsm7", text="Hi")) == "024869"


def test_len_of_more_than_255_bytes_cannot_be_rendered() -> None:
    with pytest.raises(RenderError, match="255"):
        render("%data;len%", Fields("+1", "gsm7", text="x" * 256))


def test_conditions_select_by_encoding() -> None:
    template = "%data;isascii%%data;isunicode;unicode;hex%%data;isbinary;hex%"
    assert render(template, TEXT) == "Hello%20world"
    assert render(template, Fields("+1", "ucs2", text="é")) == "00E9"
    assert render(template, BINARY) == "0102FF"


def test_several_conditions_mean_any_of_them() -> None:
    template = "%condition;isunicode;isbinary;value=8bit%"
    assert [render(template, f) for f in (TEXT, UNICODE, BINARY)] == ["", "8bit", "8bit"]


def test_value_adds_text_unescaped() -> None:
    assert render("%condition;value=&a=b c%") == "&a=b c"


def test_charset_converts_the_text() -> None:
    assert render("%data;charset=iso-8859-1%", Fields("+1", "gsm7", text="é€")) == "%E9%3F"  # € does not fit


def test_interprefix_replaces_the_plus() -> None:
    # Seed: %number;interprefix=00% turns +4205452544 into 004205452544.
    assert render("num=%number;interprefix=00%", Fields("+4205452544", "gsm7")) == "num=004205452544"
    assert render("%number;interprefix=%", Fields("+4205452544", "gsm7")) == "4205452544"
    assert render("%sender;interprefix=00%", Fields("+1", "gsm7", sender="Alerts")) == "Alerts"


def test_raw_sends_bytes_percent_encoded_once() -> None:
    # Kannel's udh=: the raw header bytes, URL-encoded once.
    assert render("%udh;len;raw%", UNICODE) == "%05%00%03%CC%02%01"


def test_isset_and_isempty_look_at_the_variable() -> None:
    template = "%sender;isset;value=&from=%%sender%"
    assert render(template, Fields("+1", "gsm7", sender="Bob")) == "&from=Bob"
    assert render(template, TEXT) == ""
    assert render("%sender;isempty;value=anonymous%", TEXT) == "anonymous"
    assert render("%udh;isset;len;raw%", TEXT) == ""  # not a lone length byte


def test_every_modifier_is_known() -> None:
    for name in MODIFIERS:
        argument = {"value": "=x", "charset": "=utf-8", "interprefix": "=00"}.get(name, "")
        compile_template(f"%data;{name}{argument}%", "url").render(UNICODE)


# -- places --------------------------------------------------------------------------------


def test_json_values_are_escaped_as_string_content() -> None:
    fields = Fields("+1", "gsm7", text='say "hi"\n\\')
    body = render('{"text": "%data%"}', fields, "json")
    assert json.loads(body) == {"text": 'say "hi"\n\\'}


def test_form_values_are_percent_encoded() -> None:
    assert render("text=%data%", Fields("+1", "gsm7", text="a&b=c+d"), "form") == "text=a%26b%3Dc%2Bd"


def test_json_and_headers_carry_bytes_as_base64() -> None:
    assert render("%data;unicode%", Fields("+1", "ucs2", text="A"), "json") == "AEE="
    assert render("%udh;raw%", UNICODE, "header") == base64.b64encode(UDH[1:]).decode()


def test_a_header_cannot_get_a_line_break() -> None:
    with pytest.raises(RenderError):
        render("%values%", Fields("+1", "gsm7", values=("a\r\nX-Evil: 1",)), "header")


# -- parsing --------------------------------------------------------------------------------


def test_percent_escapes_in_the_url_stay_as_written() -> None:
    written = "http://h/?from=%2B4420&t=%C3%A9%20x&to="
    assert render(written + "%number%") == written + "%2B15551234567"


def test_text_without_expressions_is_unchanged() -> None:
    assert render("100% sure, 50%off") == "100% sure, 50%off"


def test_unknown_variable_is_named_with_a_suggestion() -> None:
    assert problem("http://h/?to=%numbr%").startswith("unknown variable %numbr% (did you mean 'number'?)")
    assert "unknown variable %sender_phonealias%" in problem("%sender_phonealias%")


def test_unknown_modifier_is_named_with_a_suggestion() -> None:
    assert problem("%data;hx%").startswith("unknown modifier ;hx in %data;hx% (did you mean 'hex'?)")
    assert "unknown modifier ;" in problem("%data;;hex%")


def test_modifier_arguments_are_checked() -> None:
    assert "needs an argument" in problem("%condition;value%")
    assert "takes no argument" in problem("%data;hex=1%")
    assert "unknown character set 'klingon'" in problem("%data;charset=klingon%")
    assert "unknown character set" in problem("%data;charset=rot13%")  # not a text encoding
    assert "never render" in problem("%sender;isset;isempty%")


def test_an_unclosed_known_variable_is_an_error() -> None:
    # The seed itself has "...&data=%data&concat=%parts%": %data would go out literally.
    assert problem("to=%number%&data=%data&concat=%parts%").startswith("%data is not closed")


def test_template_problem_is_empty_for_a_good_template() -> None:
    assert template_problem("http://h/?to=%number%", "url") == ""
    assert template_problem("%nope%", "url").startswith("unknown variable")


def test_variables_lists_what_a_template_uses() -> None:
    assert compile_template("%number%%data;hex%x", "url").variables == {"number", "data"}


# -- properties -----------------------------------------------------------------------------

_PIECES = st.sampled_from(
    ["%", ";", "=", "&", "x", "2B", "C3", *VARIABLES, *MODIFIERS, "value=", "charset=", "utf-8", "interprefix="]
)
_SOURCES = st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=12).map("".join))
_FIELDS = st.builds(
    Fields,
    number=st.text(max_size=20),
    encoding=st.sampled_from(["gsm7", "ucs2", "binary"]),
    text=st.text(max_size=300),
    data=st.one_of(st.none(), st.binary(max_size=300)),
    udh=st.binary(max_size=20),
    sender=st.text(max_size=12),
    pid=st.one_of(st.none(), st.integers(0, 255)),
    dcs=st.one_of(st.none(), st.integers(0, 255)),
    flash=st.booleans(),
    parts=st.integers(1, 255),
    values=st.lists(st.text(max_size=10), max_size=3).map(tuple),
)


@given(source=_SOURCES, context=st.sampled_from(["url", "form", "json", "header"]))
def test_parser_raises_nothing_but_template_error(source: str, context: Context) -> None:
    with contextlib.suppress(TemplateError):
        compile_template(source, context)


@given(source=_SOURCES, context=st.sampled_from(["url", "form", "json", "header"]), fields=_FIELDS)
def test_rendering_raises_nothing_but_render_error(source: str, context: Context, fields: Fields) -> None:
    try:
        template = compile_template(source, context)
    except TemplateError:
        return
    try:
        out = template.render(fields)
    except RenderError:
        return
    assert isinstance(out, str)


@given(text=st.text(max_size=200))
def test_json_rendering_always_gives_the_text_back(text: str) -> None:
    body = render('{"t": "%data%"}', Fields("+1", "ucs2", text=text), "json")
    assert json.loads(body) == {"t": text}


@given(text=st.text(max_size=200))
def test_url_rendering_is_percent_encoded_utf8(text: str) -> None:
    from urllib.parse import unquote

    out = render("%data%", Fields("+1", "ucs2", text=text))
    assert all(c.isascii() and c not in "&=+?# " for c in out)
    assert unquote(out) == text
