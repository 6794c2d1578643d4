"""MIME for compose: header decoding, charsets, transfer encodings, part selection, attachments."""

from __future__ import annotations

import base64

import pytest

from mailsms.compose import compose
from mailsms.compose_headers import b64decode_lenient, decode_bytes, get_param, header_text, parse_head, parse_params
from mailsms.config import ComposeConfig

BODY_ONLY = ComposeConfig(template="{body}")


def body_of(raw: bytes) -> str:
    return compose(raw, BODY_ONLY).text


def single(body: bytes, content_type: str = "text/plain", encoding: str = "") -> bytes:
    cte = f"Content-Transfer-Encoding: {encoding}\r\n" if encoding else ""
    return f"Subject: s\r\nContent-Type: {content_type}\r\n{cte}\r\n".encode() + body


def multipart(subtype: str, *parts: bytes, boundary: str = "b", close: bool = True) -> bytes:
    head = f'Subject: s\r\nContent-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\npreamble\r\n'.encode()
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return head + body + (b"--" + boundary.encode() + b"--\r\nepilogue\r\n" if close else b"")


def part(body: bytes, content_type: str = "text/plain", *extra: str) -> bytes:
    return "".join(f"{line}\r\n" for line in (f"Content-Type: {content_type}", *extra)).encode() + b"\r\n" + body


# -- headers --------------------------------------------------------------------------------------


def test_folded_header_is_unfolded() -> None:
    fields, _ = parse_head(b"Subject: one\r\n two\r\n\tthree\r\n\r\nbody", 0, 30)
    assert header_text(fields[b"subject"]) == "one two three"


def test_first_occurrence_of_a_header_wins() -> None:
    fields, _ = parse_head(b"Subject: first\nSubject: second\n\n", 0, 33)
    assert fields[b"subject"] == b"first"


def test_header_names_are_case_insensitive() -> None:
    assert compose(b"SUBJECT: Up\r\n\r\n", BODY_ONLY).subject == "Up"


def test_lf_only_line_ends_are_accepted() -> None:
    assert compose(b"Subject: s\n\nbody\n", ComposeConfig()).text == "s: body"


def test_mail_without_header_section_is_all_body() -> None:
    assert body_of(b"Hello there\r\nsecond line") == "Hello there second line"


def test_unix_from_line_is_skipped() -> None:
    assert compose(b"From someone@example.com Mon Jan 1 00:00:00 2024\nSubject: s\n\nb", ComposeConfig()).text == "s: b"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"=?utf-8?Q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
        (b"=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße"),
        (b"=?utf-8?q?a_b?=", "a b"),
        (b"=?iso-8859-2?Q?P=F8=EDjezd?=", "Příjezd"),
        (b"=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"),
        (b"=?utf-8?Q?a?=\r\n =?utf-8?Q?b?=", "ab"),
        (b"x =?utf-8?Q?a?= y", "x a y"),
        (b"=?utf-8?B?4oKs?= =?iso-8859-1?Q?=E9?=", "€é"),
        (b"=?utf-8*en?Q?lang?=", "lang"),
    ],
)
def test_rfc2047_words_are_decoded(raw: bytes, expected: str) -> None:
    assert header_text(raw) == expected


def test_multibyte_character_split_across_two_words_is_joined() -> None:
    euro = "€".encode()
    words = b"=?utf-8?B?" + base64.b64encode(euro[:1]) + b"?= =?utf-8?B?" + base64.b64encode(euro[1:]) + b"?="
    assert header_text(words) == "€"


def test_word_in_unknown_charset_is_decoded_as_utf8_or_latin1() -> None:
    assert header_text(b"=?x-klingon?Q?caf=C3=A9?=") == "café"
    assert header_text(b"=?x-klingon?Q?caf=E9?=") == "café"


def test_malformed_words_are_left_as_they_are() -> None:
    assert header_text(b"=?utf-8?X?abc?= =?utf-8?Q?") == "=?utf-8?X?abc?= =?utf-8?Q?"


def test_invalid_base64_in_a_word_does_not_raise() -> None:
    assert isinstance(header_text(b"=?utf-8?B?!!!a?="), str)


def test_raw_utf8_header_is_decoded() -> None:
    assert header_text("Grüße".encode()) == "Grüße"


def test_raw_latin1_header_is_decoded() -> None:
    assert header_text("Grüße".encode("latin-1")) == "Grüße"


def test_subject_from_a_100kb_header_line_is_bounded() -> None:
    composed = compose(b"Subject: " + b"x" * 100_000 + b"\r\n\r\nbody", ComposeConfig())
    assert set(composed.subject) == {"x"}
    assert len(composed.subject) <= 16 * 1024
    assert composed.text.endswith(": body")


def test_header_section_without_end_within_the_limit_gives_no_body() -> None:
    raw = b"Subject: s\r\n" + b"X-Junk: y\r\n" * 50_000 + b"\r\nbody"
    assert compose(raw, ComposeConfig()).text == "s"


# -- parameters -----------------------------------------------------------------------------------------


def test_content_type_parameters_are_parsed() -> None:
    assert parse_params('Text/Plain; charset="utf-8"; format=flowed') == (
        "text/plain",
        {"charset": "utf-8", "format": "flowed"},
    )


def test_quoted_parameter_with_escapes_and_semicolon() -> None:
    assert parse_params(r'attachment; filename="a\"b;c.txt"')[1] == {"filename": 'a"b;c.txt'}


def test_rfc2231_filename_is_decoded() -> None:
    assert get_param(parse_params("attachment; filename*=utf-8''%E2%82%AC%20rate.pdf")[1], "filename") == "€ rate.pdf"


def test_rfc2231_continuations_are_joined() -> None:
    params = parse_params("attachment; filename*0*=utf-8''%C3%BCber; filename*1=sicht.pdf")[1]
    assert get_param(params, "filename") == "übersicht.pdf"


def test_rfc2047_encoded_filename_is_decoded() -> None:
    assert (
        get_param(parse_params('application/pdf; name="=?utf-8?Q?r=C3=A9sum=C3=A9.pdf?="')[1], "name") == "résumé.pdf"
    )


# -- charsets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["iso-8859-2", "koi8-r", "shift_jis", "euc-kr", "big5", "utf-16", "cp1251"])
def test_declared_charset_is_honoured(charset: str) -> None:
    text = {"koi8-r": "Привет", "cp1251": "Привет", "shift_jis": "こんにちは", "euc-kr": "안녕하세요", "big5": "你好"}
    expected = text.get(charset, "Dobrý den")
    assert body_of(single(expected.encode(charset), f"text/plain; charset={charset}")) == expected


def test_latin1_label_is_read_as_windows_1252() -> None:
    assert body_of(single(b"\x93quoted\x94 \x80 5", "text/plain; charset=iso-8859-1")) == "\u201cquoted\u201d € 5"


def test_us_ascii_label_with_utf8_bytes_is_read_as_utf8() -> None:
    assert body_of(single("Grüße".encode(), "text/plain; charset=us-ascii")) == "Grüße"


def test_missing_charset_is_utf8_then_latin1() -> None:
    assert body_of(single("Grüße".encode())) == "Grüße"
    assert body_of(single("Grüße".encode("latin-1"))) == "Grüße"


@pytest.mark.parametrize(
    "charset", ["x-unknown", "hex", "rot13", "base64", "zlib", "idna", "punycode", "undefined", "a" * 500]
)
def test_unknown_or_non_text_charset_falls_back(charset: str) -> None:
    assert body_of(single("Grüße".encode(), f"text/plain; charset={charset}")) == "Grüße"


def test_bad_bytes_in_declared_charset_become_replacement_characters() -> None:
    assert body_of(single(b"ok \xff\xfe end", "text/plain; charset=utf-8")) == "ok \ufffd\ufffd end"


def test_utf8_character_cut_at_the_end_of_a_prefix_is_dropped() -> None:
    assert decode_bytes("ab€".encode()[:-1], None, cut=True) == "ab"


def test_latin1_text_ending_in_a_high_byte_is_not_mistaken_for_cut_utf8() -> None:
    assert decode_bytes("café".encode("latin-1"), None) == "café"


def test_a_text_part_cut_inside_a_utf8_character_loses_only_that_character() -> None:
    # 300 KB of three-byte characters: the 256 KiB prefix ends inside one.
    assert body_of(single("€".encode() * 100_000, "text/plain")) == "€" * (64 * 1024)


# -- transfer encodings -----------------------------------------------------------------------------------


def test_quoted_printable_body_is_decoded() -> None:
    assert body_of(single(b"Gr=C3=BC=C3=9Fe, a long=\r\n line", "text/plain; charset=utf-8", "quoted-printable")) == (
        "Grüße, a long line"
    )


def test_base64_body_is_decoded() -> None:
    assert body_of(single(base64.encodebytes("Grüße".encode()), "text/plain; charset=utf-8", "base64")) == "Grüße"


def test_invalid_base64_does_not_raise() -> None:
    assert isinstance(body_of(single(b"!!!$$$%%%\r\n====abc=d", "text/plain", "base64")), str)


def test_base64_without_padding_is_decoded() -> None:
    assert b64decode_lenient(b"SGVsbG8") == b"Hello"


def test_base64_padded_per_line_is_decoded() -> None:
    assert b64decode_lenient(b"SGk=\r\nIHRoZXJl\r\n") == b"Hi there"


def test_base64_with_junk_characters_is_decoded() -> None:
    assert b64decode_lenient(b"SGV*sb G8\x00") == b"Hello"


def test_unknown_transfer_encoding_is_taken_as_it_is() -> None:
    assert body_of(single(b"plain", "text/plain", "x-custom")) == "plain"


def test_format_flowed_delsp_joins_soft_breaks_without_a_space() -> None:
    raw = single("日本語の \r\n文章です".encode(), "text/plain; charset=utf-8; format=flowed; delsp=yes")
    assert body_of(raw) == "日本語の文章です"


# -- which parts are text ------------------------------------------------------------------------------------


def test_alternative_prefers_plain_text() -> None:
    raw = multipart("alternative", part(b"plain"), part(b"<p>html</p>", "text/html"))
    assert body_of(raw) == "plain"


def test_alternative_with_blank_plain_text_uses_html() -> None:
    raw = multipart("alternative", part(b"  \r\n"), part(b"<p>html</p>", "text/html"))
    assert body_of(raw) == "html"


def test_html_only_mail_is_turned_into_text() -> None:
    assert body_of(single(b"<html><body><p>Hello</p><p>world</p></body></html>", "text/html")) == "Hello world"


def test_mixed_concatenates_its_text_parts() -> None:
    raw = multipart("mixed", part(b"one"), part(b"img", "image/png"), part(b"two"))
    composed = compose(raw, BODY_ONLY)
    assert composed.text == "one two"
    assert composed.attachments == ("image/png",)


def test_nested_alternative_inside_mixed_with_attachment() -> None:
    inner = multipart("alternative", part(b"plain"), part(b"<b>html</b>", "text/html"), boundary="inner")
    inner = inner.partition(b"Subject: s\r\n")[2]
    raw = multipart("mixed", inner, part(b"%PDF", "application/pdf", "Content-Disposition: attachment; filename=a.pdf"))
    composed = compose(raw, BODY_ONLY)
    assert (composed.text, composed.attachments) == ("plain", ("a.pdf",))


def test_text_part_with_a_file_name_is_an_attachment() -> None:
    raw = multipart("mixed", part(b"body"), part(b"notes", "text/plain", "Content-Disposition: inline; filename=n.txt"))
    composed = compose(raw, BODY_ONLY)
    assert (composed.text, composed.attachments) == ("body", ("n.txt",))


def test_single_part_attachment_disposition_is_not_text() -> None:
    raw = single(b"data", "text/plain").replace(b"\r\n\r\n", b"\r\nContent-Disposition: attachment\r\n\r\n", 1)
    composed = compose(raw, BODY_ONLY)
    assert (composed.text, composed.attachments) == ("", ("text/plain",))


def test_attachment_names_are_cleaned_and_capped() -> None:
    raw = multipart(
        "mixed",
        part(b"x", "application/octet-stream", 'Content-Disposition: attachment; filename="a\tb' + "c" * 300 + '"'),
    )
    (name,) = compose(raw, BODY_ONLY).attachments
    assert name.startswith("a bccc")
    assert len(name) == 255


def test_forwarded_message_part_is_an_attachment() -> None:
    raw = multipart("mixed", part(b"see below"), part(b"Subject: old\r\n\r\nold text", "message/rfc822"))
    composed = compose(raw, BODY_ONLY)
    assert (composed.text, composed.attachments) == ("see below", ("message/rfc822",))


def test_signed_mail_lists_the_signature_as_an_attachment() -> None:
    raw = multipart("signed", part(b"signed text"), part(b"sig", "application/pgp-signature; name=signature.asc"))
    composed = compose(raw, BODY_ONLY)
    assert (composed.text, composed.attachments) == ("signed text", ("signature.asc",))


def test_boundary_that_prefixes_another_line_is_not_a_delimiter() -> None:
    raw = multipart("mixed", part(b"--bb is not a delimiter\r\n--b-x neither"))
    assert body_of(raw) == "--bb is not a delimiter --b-x neither"


def test_missing_close_delimiter_ends_the_last_part_at_the_end() -> None:
    assert body_of(multipart("mixed", part(b"one"), part(b"two"), close=False)) == "one two"


def test_empty_parts_and_parts_without_headers_are_accepted() -> None:
    raw = multipart("mixed", b"", b"\r\nheaderless text")
    assert body_of(raw) == "headerless text"


# -- bad input: every case gets an answer ------------------------------------------------------------------------


def test_boundary_that_never_appears_gives_no_body() -> None:
    raw = multipart("mixed", part(b"text"), boundary="b").replace(b'boundary="b"', b'boundary="other"')
    assert compose(raw, ComposeConfig()).text == "s"


def test_multipart_without_boundary_gives_no_body() -> None:
    raw = b"Subject: s\r\nContent-Type: multipart/mixed\r\n\r\n--b\r\n\r\ntext\r\n--b--\r\n"
    assert compose(raw, ComposeConfig()).text == "s"


def test_nesting_deeper_than_the_limit_is_not_followed() -> None:
    raw = part(b"deep")
    for level in range(20):
        raw = part(b"--n%d\r\n" % level + raw + b"\r\n--n%d--" % level, f"multipart/mixed; boundary=n{level}")
    composed = compose(b"Subject: s\r\n" + raw, BODY_ONLY)
    assert composed.text == ""
    assert composed.attachments == ("multipart/mixed",)


def test_thousands_of_parts_are_walked_up_to_the_limit() -> None:
    raw = multipart("mixed", *[part(b"img", "image/png")] * 5000)
    assert len(compose(raw, BODY_ONLY).attachments) < 100


def test_nul_bytes_make_a_text_part_binary() -> None:
    composed = compose(single(b"MZ\x00\x00\x90binary"), BODY_ONLY)
    assert (composed.text, composed.attachments) == ("", ("text/plain",))


def test_random_binary_body_does_not_raise() -> None:
    body = bytes(range(256)) * 64
    assert isinstance(compose(single(body, "application/octet-stream"), ComposeConfig()).text, str)
    assert isinstance(compose(single(body.replace(b"\x00", b"")), ComposeConfig()).text, str)


def test_a_50mb_plain_body_is_cut_to_the_text_limit() -> None:
    raw = single(b"word " * (10 * 1024 * 1024))
    assert len(body_of(raw)) <= 64 * 1024


def test_a_50mb_attachment_costs_only_its_boundary_scan() -> None:
    raw = multipart("mixed", part(b"Report attached."), part(b"A" * (50 * 1024 * 1024), "application/zip; name=r.zip"))
    composed = compose(raw, BODY_ONLY)
    assert (composed.text, composed.attachments) == ("Report attached.", ("r.zip",))


def test_a_50mb_base64_text_part_decodes_only_a_prefix() -> None:
    raw = single(base64.encodebytes(b"long text " * (5 * 1024 * 1024)), "text/plain", "base64")
    assert body_of(raw).startswith("long text long text")
