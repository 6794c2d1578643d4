from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.errors import BadRequest
from mailsms.form import NUMBER_FIELDS, FormFields, json_pairs, parse_urlencoded


def fields(raw: str) -> FormFields:
    return FormFields(parse_urlencoded(raw))


def test_plus_is_a_space_except_at_the_start_of_a_number_field() -> None:
    got = fields("number=+1+555+123&sender=+1555&from=+49&to=+1&data=a+b&text=+x")
    assert got.text("number") == "+1 555 123"
    assert (got.text("sender"), got.text("from"), got.text("to")) == ("+1555", "+49", "+1")
    assert (got.text("data"), got.text("text")) == ("a b", " x")


def test_names_are_case_insensitive_and_empty_items_are_skipped() -> None:
    got = fields("&messageId=abc&&STATUS=1&")
    assert got.names() == {"messageid", "status"}
    assert got.first_of(("id", "msgid", "messageid")) == ("messageid", "abc")


def test_values_stay_bytes_until_decoded() -> None:
    got = fields("text=%FF%FE&ok=%C3%A9")
    assert got.raw("text") == b"\xff\xfe"
    assert got.text("ok") == "é"
    with pytest.raises(BadRequest, match="field 'text' is not UTF-8"):
        got.text("text")


@pytest.mark.parametrize("raw", ["a=100%", "a=%zz", "a=%4"])
def test_stray_percent_is_an_error(raw: str) -> None:
    with pytest.raises(BadRequest, match="percent-encoding"):
        parse_urlencoded(raw)


def test_repeated_field_is_an_error_unless_asked_for_all() -> None:
    got = fields("value=a&value=b")
    with pytest.raises(BadRequest, match="given twice"):
        got.text("value")
    assert got.all_text("value") == ["a", "b"]


def test_required_missing_and_control_characters_are_named() -> None:
    with pytest.raises(BadRequest, match="missing field 'from'"):
        fields("").text("from", required=True)
    with pytest.raises(BadRequest, match="control characters"):
        fields("a=x%0Ay").text("a")
    with pytest.raises(BadRequest, match="longer than 3"):
        fields("a=abcd").text("a", max_length=3)


def test_json_pairs_take_scalars_and_lists() -> None:
    got = FormFields(json_pairs({"From": "+1", "coding": 2, "flash": True, "value": ["a", "b"], "skip": None}))
    assert (got.text("from"), got.text("coding"), got.text("flash")) == ("+1", "2", "1")
    assert got.all_text("value") == ["a", "b"]
    with pytest.raises(BadRequest):
        json_pairs({"a": {"b": 1}})
    with pytest.raises(BadRequest):
        json_pairs([1])


_names = st.sampled_from(["number", "sender", "from", "to", "data", "text", "user", "pass", "x"])


@given(st.dictionaries(_names, st.text(st.characters(exclude_categories=("Cs",)))))
def test_any_form_an_encoder_writes_reads_back_unchanged(values: dict[str, str]) -> None:
    """urlencode (as Python, browsers and curl --data-urlencode write forms) round-trips, + and all.

    The one exception, on purpose: a number field that starts with a space reads as starting with "+".
    """

    def expected(name: str, value: str) -> bytes:
        if name in NUMBER_FIELDS and value.startswith(" "):
            value = "+" + value[1:]
        return value.encode()

    got = fields(urlencode(values))
    assert {name: got.raw(name) for name in got.names()} == {k: expected(k, v) for k, v in values.items()}


@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_percent_encoding_everything_round_trips_in_every_field(value: str) -> None:
    for name in ("number", "text"):
        assert fields(f"{name}={quote(value, safe='')}").raw(name) == value.encode()
