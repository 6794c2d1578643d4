"""X-Mailsms-Auth in a mail: found when folded or oddly cased, and stripped leaving every other byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailsms.mta_auth import auth_header_values, strip_auth_header

MAIL = b"From: a@example.test\r\nX-Mailsms-Auth: alice\r\nSubject: hi\r\n\r\nX-Mailsms-Auth: in the body\r\n"


def test_value_is_found_and_stripped_header_only():
    assert auth_header_values(MAIL) == ["alice"]
    assert strip_auth_header(MAIL) == b"From: a@example.test\r\nSubject: hi\r\n\r\nX-Mailsms-Auth: in the body\r\n"


def test_folded_lowercase_header_is_unfolded_and_stripped_with_its_continuation():
    mail = b"x-mailsms-auth:\n  alice\nTo: b\n\nbody\n"
    assert auth_header_values(mail) == ["alice"]
    assert strip_auth_header(mail) == b"To: b\n\nbody\n"


def test_a_mail_without_the_header_is_returned_unchanged():
    mail = b"Subject: X-Mailsms-Auth: alice\r\n\r\nbody"
    assert auth_header_values(mail) == []
    assert strip_auth_header(mail) == mail


def test_a_header_of_similar_name_is_not_ours():
    mail = b"X-Mailsms-Authority: bob\r\n\r\n"
    assert auth_header_values(mail) == []
    assert strip_auth_header(mail) == mail


_name = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True).filter(lambda n: n.lower() != "x-mailsms-auth")
_value = st.from_regex(r"[ -~]{0,40}", fullmatch=True)
_header = st.tuples(_name, _value)


@given(
    before=st.lists(_header, max_size=5),
    after=st.lists(_header, max_size=5),
    logins=st.lists(st.from_regex(r"[a-z0-9@.]{1,20}", fullmatch=True), max_size=3),
    body=st.binary(max_size=200),
    eol=st.sampled_from([b"\r\n", b"\n"]),
)
def test_strip_keeps_every_other_header_and_the_body_byte_for_byte(before, after, logins, body, eol):
    def lines(headers):
        return b"".join(f"{n}: {v}".encode() + eol for n, v in headers)

    ours = b"".join(b"X-Mailsms-Auth: " + login.encode() + eol for login in logins)
    mail = lines(before) + ours + lines(after) + eol + body
    assert auth_header_values(mail) == logins
    stripped = strip_auth_header(mail)
    assert stripped == lines(before) + lines(after) + eol + body
    assert auth_header_values(stripped) == []


def test_the_original_kept_for_reports_loses_the_header_and_pass_values():
    from mailsms.server import scrub_mail

    kept = scrub_mail(b'X-Mailsms-Auth: alice\r\nTo: "sms:+15551234567?pass=s3cret"@x.test\r\n\r\nbody\r\n')
    assert kept == b'To: "sms:+15551234567?pass=(set)"@x.test\r\n\r\nbody\r\n'
