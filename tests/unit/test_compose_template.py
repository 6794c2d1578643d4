"""compose.template: placeholders, fallback chains, separators that vanish next to empty values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.compose import check_template
from mailsms.compose_template import DEFAULT_TEMPLATE, NAMES, Template, parse_template


def render(template: str, **values: str) -> str:
    parsed = parse_template(template)
    assert isinstance(parsed, Template), parsed
    return parsed.render({name.rstrip("_"): value for name, value in values.items()})


# -- placeholders and chains -------------------------------------------------------------------


def test_placeholder_is_replaced_by_its_value() -> None:
    assert render("{body}", body="hi") == "hi"


def test_every_documented_name_is_known() -> None:
    for name in NAMES:
        assert check_template("{" + name + "}") is None


def test_chain_takes_the_first_non_empty_alternative() -> None:
    assert render("{subject|body}", subject="", body="b") == "b"
    assert render("{subject|body}", subject="s", body="b") == "s"


def test_chain_ends_in_a_quoted_literal() -> None:
    assert render("{subject|body|'(no text)'}") == "(no text)"
    assert render('{subject|"(none)"}') == "(none)"


def test_blank_values_count_as_empty() -> None:
    assert render("{subject|body}", subject="  ", body="b") == "b"


def test_blanks_around_alternatives_are_allowed() -> None:
    assert render("{ subject | body }", body="b") == "b"


def test_double_braces_are_literal_braces() -> None:
    assert render("{{x}} {body}", body="b") == "{x} b"


def test_template_without_placeholders_is_written_as_it_is() -> None:
    assert render("Mail for you") == "Mail for you"


# -- separators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [("S", "B", "S: B"), ("", "B", "B"), ("S", "", "S"), ("", "", "")],
)
def test_default_template_drops_the_separator_next_to_an_empty_side(subject: str, body: str, expected: str) -> None:
    assert render(DEFAULT_TEMPLATE, subject=subject, body=body) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"from_": "F", "subject": "S", "body": "B"}, "F: S - B"),
        ({"from_": "F", "body": "B"}, "F: B"),
        ({"subject": "S", "body": "B"}, "S - B"),
        ({"from_": "F", "subject": "S"}, "F: S"),
        ({"body": "B"}, "B"),
    ],
)
def test_one_separator_between_non_empty_neighbours_the_one_after_the_earlier(
    values: dict[str, str], expected: str
) -> None:
    assert render("{from}: {subject} - {body}", **values) == expected


def test_prefix_goes_with_the_first_placeholder() -> None:
    assert render("From {from}: {body}", from_="F", body="B") == "From F: B"
    assert render("From {from}: {body}", body="B") == "B"


def test_suffix_goes_with_the_last_placeholder() -> None:
    assert render("{body} ({from})", from_="F", body="B") == "B (F)"
    assert render("{body} ({from})", body="B") == "B"


def test_a_literal_placeholder_is_always_written() -> None:
    assert render("{'SMS'}: {subject}: {body}", body="B") == "SMS: B"


# -- bad templates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{subject", "unbalanced '{' at column 1"),
        ("{subject}: {body", "unbalanced '{' at column 12"),
        ("subject}", "unbalanced '}' at column 8"),
        ("{subjet}", "unknown name 'subjet' at column 2"),
        ("{}", "empty alternative at column 2"),
        ("{subject|}", "empty alternative at column 10"),
        ("{subject||body}", "empty alternative at column 10"),
        ("{subject|'x}", "unterminated quote at column 10"),
        ("{subject body}", "expected '|' or '}' at column 10"),
        ("{subject{body}}", "expected '|' or '}' at column 9"),
        ("x" * 2001, "template is longer than 2000 characters"),
    ],
)
def test_bad_template_is_reported_with_its_column(template: str, message: str) -> None:
    error = check_template(template)
    assert error is not None
    assert error.startswith(message)


def test_unknown_name_message_lists_the_known_names() -> None:
    assert "subject, body, from, from_addr, to" in (check_template("{sender}") or "")


def test_default_template_is_valid() -> None:
    assert check_template(DEFAULT_TEMPLATE) is None


# -- properties ----------------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_check_template_never_raises(template: str) -> None:
    result = check_template(template)
    assert result is None or (isinstance(result, str) and result)


@given(st.text(alphabet="{}|'\" abcdefghijklmnopqrstuvwxyz_:", max_size=60))
def test_check_template_never_raises_on_template_like_text(template: str) -> None:
    parsed = parse_template(template)
    assert (check_template(template) is None) == isinstance(parsed, Template)


_pieces = st.one_of(
    st.sampled_from(["{subject}", "{body}", "{from}", "{from_addr}", "{to}", "{subject|body|'-'}", "{{", "}}"]),
    st.text(alphabet="abc :-()[]", max_size=5),
)
_values = st.fixed_dictionaries({name: st.sampled_from(["", " ", "v", "long value"]) for name in NAMES})


@given(st.lists(_pieces, max_size=8).map("".join), _values)
def test_valid_templates_render_without_raising(template: str, values: dict[str, str]) -> None:
    parsed = parse_template(template)
    assert isinstance(parsed, Template)
    assert isinstance(parsed.render(values), str)


@given(st.text(max_size=30), st.text(max_size=30))
def test_default_template_is_subject_and_body_joined_when_both_present(subject: str, body: str) -> None:
    present = [value.strip() for value in (subject, body) if value.strip()]
    assert render(DEFAULT_TEMPLATE, subject=subject, body=body) == ": ".join(present)
