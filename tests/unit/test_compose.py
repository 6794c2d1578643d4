"""compose(): the SMS text from a mail, with the facts the log and the reports need."""

from __future__ import annotations

import pytest

from mailsms import compose as compose_module
from mailsms.compose import Composed, check_template, compose
from mailsms.config import ComposeConfig

DEFAULTS = ComposeConfig()


def mail(body: str | bytes = "", *, headers: str = "", subject: str | None = "Hello", **fields: str) -> bytes:
    """A small mail: ``subject``, ``fields`` (``from_`` is From, ``message_id`` Message-Id), raw ``headers``, a body."""
    lines = [f"Subject: {subject}"] if subject is not None else []
    lines += [f"{name.strip('_').replace('_', '-').title()}: {value}" for name, value in fields.items()]
    head = "\r\n".join(lines) + "\r\n" + headers
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head.encode("utf-8") + b"\r\n" + data


def text_of(raw: bytes, **config: object) -> str:
    return compose(raw, ComposeConfig(**config)).text  # type: ignore[arg-type]


# -- the default template -------------------------------------------------------------


def test_default_template_is_subject_colon_body() -> None:
    assert text_of(mail("Call me.")) == "Hello: Call me."


def test_no_subject_gives_just_the_body() -> None:
    assert text_of(mail("Call me.", subject=None)) == "Call me."


def test_blank_subject_gives_just_the_body() -> None:
    assert text_of(mail("Call me.", subject="   ")) == "Call me."


def test_no_body_gives_just_the_subject() -> None:
    assert text_of(mail("")) == "Hello"


def test_no_subject_and_no_body_gives_empty_text() -> None:
    assert text_of(mail("\r\n \r\n", subject=None)) == ""


def test_whitespace_of_subject_and_body_is_collapsed() -> None:
    assert text_of(mail("Line one\r\n\r\n\tline   two\r\n", subject="A\t  B")) == "A B: Line one line two"


# -- configured templates -----------------------------------------------------------------


def test_fallback_chain_takes_first_non_empty() -> None:
    template = "{subject|body|'(no text)'}"
    assert text_of(mail("body text"), template=template) == "Hello"
    assert text_of(mail("body text", subject=""), template=template) == "body text"
    assert text_of(mail("", subject=""), template=template) == "(no text)"


def test_from_is_display_name_else_address() -> None:
    named = mail("hi", from_="Jane Doe <jane@example.com>")
    bare = mail("hi", from_="jane@example.com")
    assert text_of(named, template="{from}: {body}") == "Jane Doe: hi"
    assert text_of(bare, template="{from}: {body}") == "jane@example.com: hi"


def test_from_addr_is_the_address() -> None:
    assert text_of(mail("hi", from_='"Doe, Jane" <jane@example.com>'), template="{from_addr}") == "jane@example.com"


def test_from_display_name_is_rfc2047_decoded() -> None:
    raw = mail("hi", from_="=?utf-8?Q?J=C3=B6rg_M=C3=BCller?= <j@example.de>")
    assert text_of(raw, template="{from} {from_addr}") == "Jörg Müller j@example.de"


def test_to_is_the_decoded_to_header() -> None:
    to = "sms:+15551234567@sms.example.net"
    assert text_of(mail("hi", to=to), template="{to}") == to


def test_prefix_text_is_written_with_a_non_empty_first_placeholder() -> None:
    raw = mail("hi", from_="jane@example.com")
    assert text_of(raw, template="Mail from {from}: {body}") == "Mail from jane@example.com: hi"
    assert text_of(mail("hi"), template="Mail from {from}: {body}") == "hi"


def test_bad_template_falls_back_to_the_default() -> None:
    assert check_template("{subjet}: {body}") is not None
    assert text_of(mail("Call me."), template="{subjet}: {body}") == "Hello: Call me."


# -- facts for the log and for reports ---------------------------------------------------------


def test_threading_headers_are_reported() -> None:
    raw = mail("hi", message_id="<m1@example.com>", in_reply_to="<m0@example.com>", references="<a@x> <m0@example.com>")
    composed = compose(raw, DEFAULTS)
    assert composed.message_id == "<m1@example.com>"
    assert composed.in_reply_to == "<m0@example.com>"
    assert composed.references == "<a@x> <m0@example.com>"


def test_missing_headers_are_empty_strings() -> None:
    composed = compose(b"\r\njust a body", DEFAULTS)
    assert composed == Composed("just a body", "", "", "", "", "", False, (), ())


def test_from_header_is_decoded_whole() -> None:
    composed = compose(mail("hi", from_="=?iso-8859-1?Q?Ren=E9?= <rene@example.fr>"), DEFAULTS)
    assert composed.from_header == "René <rene@example.fr>"


def test_original_headers_are_decoded_in_fixed_order() -> None:
    raw = mail("hi", message_id="<m@x>", date="Mon, 1 Jan 2024 10:00:00 +0000", cc="c@x", to="t@x", from_="f@x")
    assert compose(raw, DEFAULTS).original_headers == (
        ("From", "f@x"),
        ("To", "t@x"),
        ("Cc", "c@x"),
        ("Subject", "Hello"),
        ("Date", "Mon, 1 Jan 2024 10:00:00 +0000"),
        ("Message-ID", "<m@x>"),
    )


def test_original_headers_are_capped_to_998_characters() -> None:
    composed = compose(mail("hi", subject="x" * 5000), DEFAULTS)
    assert dict(composed.original_headers)["Subject"] == "x" * 998


def test_attachments_are_listed_not_sent() -> None:
    raw = (
        b"Subject: scan\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b"--b\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0xLjQK\r\n--b--\r\n"
    )
    composed = compose(raw, DEFAULTS)
    assert composed.text == "scan: See attached."
    assert composed.attachments == ("scan.pdf",)


# -- bounces and automatic replies --------------------------------------------------------------


@pytest.mark.parametrize("value", ["auto-replied", "auto-generated", "auto-notified; owner-email=x@y", "Auto-Replied"])
def test_auto_submitted_other_than_no_is_automatic(value: str) -> None:
    assert compose(mail("away", auto_submitted=value), DEFAULTS).auto_submitted


def test_auto_submitted_no_is_not_automatic() -> None:
    assert not compose(mail("hi", auto_submitted="no"), DEFAULTS).auto_submitted


def test_multipart_report_is_automatic() -> None:
    raw = mail("", headers='Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n')
    assert compose(raw, DEFAULTS).auto_submitted


def test_an_ordinary_mail_is_not_automatic() -> None:
    assert not compose(mail("hi"), DEFAULTS).auto_submitted


def test_text_bounces_does_not_change_what_compose_reports() -> None:
    raw = mail("away", auto_submitted="auto-replied")
    assert compose(raw, ComposeConfig(text_bounces=True)) == compose(raw, DEFAULTS)


# -- quotes and signatures can be kept ---------------------------------------------------------


def test_strip_quotes_false_keeps_quoted_lines() -> None:
    raw = mail("Yes.\r\n\r\nOn Mon, Bob wrote:\r\n> Coming?\r\n", subject="")
    assert text_of(raw) == "Yes."
    assert text_of(raw, strip_quotes=False) == "Yes. On Mon, Bob wrote: > Coming?"


def test_strip_signature_false_keeps_the_signature() -> None:
    raw = mail("Yes.\r\n-- \r\nBob\r\n", subject="")
    assert text_of(raw) == "Yes."
    assert text_of(raw, strip_signature=False) == "Yes. -- Bob"


# -- never raises ---------------------------------------------------------------------------


def test_an_internal_error_gives_an_empty_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(compose_module, "extract", broken)
    assert compose(mail("hi"), DEFAULTS) == compose_module.EMPTY


def test_empty_input_gives_an_empty_result() -> None:
    assert compose(b"", DEFAULTS) == compose_module.EMPTY
