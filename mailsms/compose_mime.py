"""The MIME structure of a mail for :mod:`mailsms.compose`: which parts are text, which are attachments.

A bounded walker of our own instead of the ``email`` package, whose parser reads
every line of every part in Python (a 5 MB attachment costs it ~0.2 s): here part
boundaries are found with ``bytes.find``, an attachment costs only its headers, and
only a bounded prefix of each text part is ever decoded.

* A single-part ``text/plain`` mail (no Content-Disposition, no file name) takes
  the fast path: its body is decoded directly.  Every other mail is walked; the
  results are the same for a mail that could take either path.
* ``multipart/alternative`` contributes one alternative: the first with non-blank
  plain text, else the last with HTML.  Other multiparts contribute all children.
* Inline ``text/plain`` and ``text/html`` parts without a file name are text;
  every other leaf is an attachment, listed by file name (else content type).
  A text part that decodes to NUL characters is binary: an attachment too.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

from mailsms.compose_clean import MAX_TEXT_CHARS
from mailsms.compose_headers import Fields, b64decode_lenient, decode_bytes, get_param, parse_head, parse_params

MAX_PART_BYTES = 256 * 1024  # raw bytes of one text part that are decoded
MAX_HTML_SOURCE_CHARS = 256 * 1024  # decoded markup of one HTML part (compose_html cuts further)
MAX_PARTS = 100  # MIME entities walked per mail
MAX_DEPTH = 8  # multipart nesting
MAX_BOUNDARY_CANDIDATES = 1000  # "--boundary" look-alikes examined per multipart
MAX_NAME_CHARS = 255

_TEXT_TYPES = ("", "text/plain", "text/html")
# Content-Type parameters a fast-path text/plain body may have (others, like name=, need the walker).
_FAST_PARAMS = frozenset({"charset", "format", "delsp", "reply-type"})


@dataclass
class Extracted:
    """Texts and attachment names found in a mail, in order."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)

    def add(self, other: Extracted) -> None:
        self.plain += other.plain
        self.html += other.html
        self.attachments += other.attachments

    @property
    def has_plain(self) -> bool:
        return any(not text.isspace() for text in self.plain if text)


def content_type(fields: Fields) -> tuple[str, dict[str, str]]:
    """``(type/subtype, params)`` of an entity; ``""`` when missing or invalid (meaning text/plain)."""
    raw = fields.get(b"content-type")
    if raw is None:
        return "", {}
    ctype, params = parse_params(raw.decode("latin-1"))
    return (ctype if "/" in ctype else ""), params


def extract(raw: bytes, fields: Fields, body_start: int, *, fast: bool = True) -> Extracted:
    """Texts and attachments of the mail ``raw`` whose top-level header fields are ``fields``."""
    ctype, params = content_type(fields)
    simple = ctype in ("", "text/plain") and _FAST_PARAMS.issuperset(params) and b"content-disposition" not in fields
    if fast and simple:
        text = decode_part(raw, fields, params, body_start, len(raw), limit=MAX_TEXT_CHARS)
        if text is not None:
            return Extracted(plain=[text])
    return _Walker(raw).entity(fields, body_start, len(raw), 0, (ctype, params))


def decode_part(buf: bytes, fields: Fields, params: dict[str, str], start: int, end: int, *, limit: int) -> str | None:
    """Up to ``limit`` characters of a text part's body, or None when it is binary."""
    cut = end - start > MAX_PART_BYTES
    data = buf[start : start + MAX_PART_BYTES] if cut else buf[start:end]
    encoding = fields.get(b"content-transfer-encoding", b"").strip().lower()
    if encoding == b"base64":
        data = b64decode_lenient(data)
    elif encoding == b"quoted-printable":
        data = binascii.a2b_qp(data)
    text = decode_bytes(data, params.get("charset"), cut=cut)
    if "\x00" in text:
        return None
    text = text[:limit]
    if params.get("format", "").lower() == "flowed" and params.get("delsp", "").lower() == "yes":
        text = _undo_delsp(text)
    return text


def _undo_delsp(text: str) -> str:
    # RFC 3676 DelSp=yes: the space before a soft line break was added and is removed
    # (matters for languages written without spaces); "-- " stays a signature line.
    out: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        soft = line.endswith(" ") and line != "-- " and not line.startswith(">")
        out.append(line[:-1] if soft else line + "\n")
    joined = "".join(out)
    return joined[:-1] if joined.endswith("\n") else joined


class _Walker:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.budget = MAX_PARTS
        self.text_left = MAX_TEXT_CHARS

    def entity(
        self, fields: Fields, body_start: int, end: int, depth: int, parsed: tuple[str, dict[str, str]] | None = None
    ) -> Extracted:
        self.budget -= 1
        ctype, params = parsed or content_type(fields)
        if not ctype.startswith("multipart/") or depth >= MAX_DEPTH:
            return self.leaf(fields, ctype, params, body_start, end)
        children: list[Extracted] = []
        boundary = params.get("boundary", "").encode("latin-1", "replace")
        for part_start, part_end in split_multipart(self.buf, body_start, end, boundary):
            if self.budget <= 0:
                break
            part_fields, part_body = parse_head(self.buf, part_start, part_end)
            children.append(self.entity(part_fields, part_body, part_end, depth + 1))
        if ctype == "multipart/alternative":
            return _choose_alternative(children)
        merged = Extracted()
        for child in children:
            merged.add(child)
        return merged

    def leaf(self, fields: Fields, ctype: str, params: dict[str, str], start: int, end: int) -> Extracted:
        disposition, name = "", ""
        if b"content-disposition" in fields:
            disposition, disposition_params = parse_params(fields[b"content-disposition"].decode("latin-1"))
            name = get_param(disposition_params, "filename")
        name = name or get_param(params, "name")
        if ctype in _TEXT_TYPES and disposition != "attachment" and not name:
            html = ctype == "text/html"
            limit = MAX_HTML_SOURCE_CHARS if html else self.text_left
            text = decode_part(self.buf, fields, params, start, end, limit=limit)
            if text is not None:
                if not html:
                    self.text_left = max(0, self.text_left - len(text))
                return Extracted(html=[text]) if html else Extracted(plain=[text])
        return Extracted(attachments=[_attachment_name(name, ctype)])


def _attachment_name(name: str, ctype: str) -> str:
    label = " ".join(name.replace("\x00", " ").split()) or ctype or "text/plain"
    return label[:MAX_NAME_CHARS]


def _choose_alternative(children: list[Extracted]) -> Extracted:
    for child in children:
        if child.has_plain:
            return child
    for child in reversed(children):
        if child.html:
            return child
    merged = Extracted()
    for child in children:
        merged.add(child)
    return merged


def split_multipart(buf: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each body part between ``--boundary`` lines in ``buf[start:end]``.

    A missing close delimiter ends the last part at ``end``; no delimiter at all gives no parts.
    """
    if not boundary or len(boundary) > 200:
        return []
    delimiter = b"--" + boundary
    spans: list[tuple[int, int]] = []
    budget = [MAX_BOUNDARY_CANDIDATES]
    position = _find_delimiter(buf, delimiter, start, end, budget, at_start=True)
    while position >= 0 and len(spans) < MAX_PARTS:
        after = position + len(delimiter)
        if buf.startswith(b"--", after, end):
            break
        line_end = buf.find(b"\n", after, end)
        if line_end < 0:
            break
        part_start = line_end + 1
        position = _find_delimiter(buf, delimiter, part_start, end, budget, at_start=True)
        if position < 0:
            spans.append((part_start, end))
            break
        part_end = position - 1  # the newline before the delimiter belongs to it
        if part_end > part_start and buf[part_end - 1] == 0x0D:
            part_end -= 1
        spans.append((part_start, max(part_start, part_end)))
    return spans


def _find_delimiter(buf: bytes, delimiter: bytes, start: int, end: int, budget: list[int], *, at_start: bool) -> int:
    """Offset of the next ``delimiter`` at a line start in ``buf[start:end]``, or -1."""
    if at_start and buf.startswith(delimiter, start, end) and _ends_delimiter(buf, start + len(delimiter), end):
        return start
    needle = b"\n" + delimiter
    search = start
    while budget[0] > 0:
        budget[0] -= 1
        found = buf.find(needle, search, end)
        if found < 0:
            return -1
        if _ends_delimiter(buf, found + len(needle), end):
            return found + 1
        search = found + 1
    return -1


def _ends_delimiter(buf: bytes, after: int, end: int) -> bool:
    # "--b" must not match "--bb": the delimiter is followed by the line end, padding or "--".
    return after >= end or buf[after] in b"\r\n \t" or buf.startswith(b"--", after, end)
