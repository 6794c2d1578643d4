"""Properties of compose on generated mails: never raises, clean output, fast path equals full path."""

from __future__ import annotations

import base64
import email
import quopri
from email import policy
from email.header import Header

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsms import compose as compose_module
from mailsms.compose import Composed
from mailsms.compose_headers import parse_head
from mailsms.compose_mime import extract
from mailsms.config import ComposeConfig

configs = st.builds(
    ComposeConfig,
    template=st.sampled_from(["{subject}: {body}", "{from}: {subject|body|'(no text)'}", "{body", "{to} {from_addr}"]),
    strip_quotes=st.booleans(),
    strip_signature=st.booleans(),
)
CHARSETS = [
    "utf-8",
    "iso-8859-1",
    "iso-8859-2",
    "shift_jis",
    "koi8-r",
    "us-ascii",
    "utf-16",
    "utf-7",
    "x-unknown",
    "hex",
]
charsets = st.sampled_from(CHARSETS)
transfer_encodings = st.sampled_from(["", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode"])
content_types = st.sampled_from(
    ["text/plain", "text/html", "application/pdf", "image/png", "message/rfc822", "text/calendar", "", "bogus"]
)
header_names = st.sampled_from(
    ["Subject", "From", "To", "Cc", "Date", "Message-ID", "In-Reply-To", "References", "Auto-Submitted", "X-Any"]
)
header_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["=?utf-8?B?w7w=?=", "=?bogus?Q?=FF?=", "=?utf-8?Q?a", '"Doe, J" <j@x>', "<a@b>", "auto-replied"]),
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


def check(result: Composed) -> None:
    """What every result looks like, whatever came in."""
    assert result.text == result.text.strip()
    assert "  " not in result.text
    assert not any(char in result.text for char in "\x00\r\n\t\x1b\u200b\ufeff")
    assert len(result.text) <= 64 * 1024
    assert all(len(value) <= 998 for _, value in result.original_headers)
    assert all(0 < len(name) <= 255 for name in result.attachments)


def encode_body(text: str, charset: str, transfer: str) -> bytes:
    try:
        data = text.encode(charset)
    except (LookupError, UnicodeError):
        data = text.encode("utf-8")
    if transfer == "base64":
        return base64.encodebytes(data)
    if transfer == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def leaves(draw: st.DrawFn) -> bytes:
    ctype = draw(content_types)
    charset = draw(charsets)
    transfer = draw(transfer_encodings)
    lines = [f"Content-Type: {ctype}; charset={charset}" if ctype else ""]
    if transfer:
        lines.append(f"Content-Transfer-Encoding: {transfer}")
    disposition = draw(st.sampled_from(["", "inline", "attachment", "attachment; filename*=utf-8''%E2%82%AC.txt"]))
    if disposition:
        lines.append(f"Content-Disposition: {disposition}")
    body = draw(st.one_of(texts.map(lambda text: encode_body(text, charset, transfer)), st.binary(max_size=200)))
    return "\r\n".join(line for line in lines if line).encode() + b"\r\n\r\n" + body


def entities(depth: int = 0) -> st.SearchStrategy[bytes]:
    if depth >= 3:
        return leaves()
    return st.one_of(leaves(), multiparts(depth))


@st.composite
def multiparts(draw: st.DrawFn, depth: int) -> bytes:
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "signed"]))
    boundary = draw(st.text(alphabet="abc'()+_,-./:=? ", min_size=0, max_size=12))
    children = draw(st.lists(entities(depth + 1), max_size=4))
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\n" + child + b"\r\n" for child in children)
    if draw(st.booleans()):
        body += delimiter + b"--\r\n"
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    return head + draw(st.sampled_from([b"", b"preamble\r\n"])) + body


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=6))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("utf-8", "surrogatepass")
    raw = head + draw(entities())
    # Damage: cut somewhere, or splice in junk.
    damage = draw(st.sampled_from(["none", "cut", "junk", "lf"]))
    if damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "junk":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=20)) + raw[at:]
    elif damage == "lf":
        raw = raw.replace(b"\r\n", b"\n")
    return raw


# -- never raises ------------------------------------------------------------------------------------------


@given(st.binary(max_size=2000), configs)
def test_compose_never_raises_on_arbitrary_bytes(raw: bytes, config: ComposeConfig) -> None:
    check(compose_module._compose(raw, config))


@given(mails(), configs)
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_compose_never_raises_on_arbitrary_message_structures(raw: bytes, config: ComposeConfig) -> None:
    check(compose_module._compose(raw, config))


@given(mails())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_walker_never_raises_on_arbitrary_message_structures(raw: bytes) -> None:
    fields, body_start = parse_head(raw, 0, len(raw))
    extracted = extract(raw, fields, body_start, fast=False)
    assert all(isinstance(text, str) for text in extracted.plain + extracted.html)


# -- the fast path is the full path, only faster ---------------------------------------------------------------


@st.composite
def simple_mails(draw: st.DrawFn) -> bytes:
    """Single-part text/plain mails as they arrive most of the time, some with parameters only the walker takes."""
    charset = draw(st.sampled_from(["utf-8", "iso-8859-1", "iso-8859-2", "us-ascii", "x-unknown", ""]))
    transfer = draw(st.sampled_from(["", "7bit", "8bit", "base64", "quoted-printable"]))
    subject = draw(texts)
    lines = [f"Subject: {Header(subject, 'utf-8').encode()}", "From: =?utf-8?Q?J=C3=B6rg?= <j@example.de>"]
    params = f"; charset={charset}" if charset else ""
    params += draw(st.sampled_from(["", "; format=flowed", "; format=flowed; delsp=yes", "; name=x.txt"]))
    if draw(st.booleans()):
        lines.append(f"Content-Type: text/plain{params}")
    if transfer:
        lines.append(f"Content-Transfer-Encoding: {transfer}")
    lines += draw(st.sampled_from([[], ["Content-Disposition: inline"], ["Content-Disposition: attachment"]]))
    body = draw(st.lists(st.sampled_from(["Hello", "> quoted", "-- ", "Sent from my iPhone", "", "\x00"]) | texts))
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + encode_body("\r\n".join(body), charset or "utf-8", transfer)


@given(simple_mails(), configs)
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_fast_path_and_full_path_give_the_same_result(raw: bytes, config: ComposeConfig) -> None:
    assert compose_module._compose(raw, config, fast=True) == compose_module._compose(raw, config, fast=False)


@given(
    texts, st.sampled_from(["utf-8", "iso-8859-2", "koi8-r"]), st.sampled_from(["8bit", "base64", "quoted-printable"])
)
def test_body_decodes_as_the_email_package_decodes_it(text: str, charset: str, transfer: str) -> None:
    text = "".join(char for char in text if (char.isprintable() and not char.isspace()) or char == " ").strip()
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        text = "plain words"
    raw = (
        f"Subject: s\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {transfer}\r\n\r\n"
    ).encode() + encode_body(text, charset, transfer)
    message = email.message_from_bytes(raw, policy=policy.compat32)
    expected = " ".join(message.get_payload(decode=True).decode(charset).split())  # type: ignore[union-attr]
    ours = compose_module._compose(raw, ComposeConfig(template="{body}", strip_quotes=False, strip_signature=False))
    assert ours.text == expected


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), max_size=60))
def test_subject_decodes_as_the_email_package_decodes_it(subject: str) -> None:
    raw = f"Subject: {Header(subject, 'utf-8').encode()}\r\n\r\n".encode()
    expected = " ".join(str(email.message_from_bytes(raw, policy=policy.default)["Subject"]).split())
    assert compose_module._compose(raw, ComposeConfig()).subject == expected
