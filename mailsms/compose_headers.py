"""Header fields and byte decoding for :mod:`mailsms.compose`: bounded, lenient, never raising.

A header section is read straight from the bytes (no ``email`` package): names are
lower-cased, folded values unfolded, the first occurrence of a name wins.  Every
size is capped so that absurd input costs a bounded amount of work.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from itertools import islice

from mailsms.compose_clean import collapse_whitespace

MAX_HEAD_BYTES = 256 * 1024  # header section looked at, per MIME entity
MAX_HEADER_FIELDS = 256  # header fields read, per MIME entity
MAX_VALUE_BYTES = 16 * 1024  # raw bytes of one header value that are decoded
MAX_PARAMS = 32  # parameters read from one Content-Type / Content-Disposition

# A field of an unfolded header section: ftext name, colon, value (RFC 5322 2.2).
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)", re.MULTILINE)
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([QqBb])\?([^?\s]*)\?=")
_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_RFC2231_SECTION = re.compile(r"^(.+?)\*(\d{1,2})(\*?)$")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
_QUOTED_PAIR = re.compile(r"\\(.)")

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_MAX_B64_CHUNKS = 1000

# Labels that mailers use for text that is really in a superset (as browsers do, WHATWG).
_SUPERSETS = {"iso8859-1": "cp1252", "shift_jis": "cp932", "euc_kr": "cp949", "gb2312": "gb18030", "gbk": "gb18030"}
# Text codecs that cannot decode leniently; ascii is so often a lie that 8-bit data is guessed instead.
_REFUSED = frozenset({"ascii", "idna", "punycode", "undefined"})

Fields = dict[bytes, bytes]  # lower-cased name: raw value


def parse_head(buf: bytes, start: int, end: int) -> tuple[Fields, int]:
    """The header fields of the entity in ``buf[start:end]`` and the offset where its body starts.

    ``start`` must be 0 or just after a newline.  An entity whose first line is not a
    header field has no header section: all of it is body.
    """
    if buf.startswith(b"\n", start, end) or buf.startswith(b"\r\n", start, end):
        return {}, buf.index(b"\n", start) + 1
    head_limit = min(end, start + MAX_HEAD_BYTES)
    if not _FIELD.match(buf, start, head_limit) and not buf.startswith(b"From ", start):
        return {}, start
    # The first empty line, CRLF or LF; bytes.find is ~20 times faster than a regex here.
    crlf = buf.find(b"\n\r\n", start, head_limit)
    lf = buf.find(b"\n\n", start, crlf + 2 if crlf >= 0 else head_limit)
    if lf >= 0:
        head_end, body_start = lf, lf + 2
    elif crlf >= 0:
        head_end, body_start = crlf, crlf + 3
    else:
        # No empty line within the limit: all headers and no body, or absurd headers.
        head_end, body_start = head_limit, end
    head = buf[start:head_end]
    if b"\n " in head or b"\n\t" in head:  # unfold: a line break before white space goes
        head = head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t").replace(b"\n ", b" ").replace(b"\n\t", b"\t")
    pairs = _FIELD.findall(head)[:MAX_HEADER_FIELDS]
    # Reversed, so that the first occurrence of a name wins.
    fields = {name.lower(): value[:MAX_VALUE_BYTES].strip() for name, value in reversed(pairs)}
    return fields, body_start


def header_text(raw: bytes) -> str:
    """Decoded text of a raw header value: RFC 2047 words, UTF-8 or 8-bit bytes, whitespace collapsed."""
    text = raw.decode("ascii") if raw.isascii() else decode_bytes(raw, None)
    if "=?" in text:
        text = decode_words(text)
    return collapse_whitespace(text)


def plain_text(raw: bytes) -> str:
    """A structured header value (ids, tokens) as text, without RFC 2047 decoding."""
    return collapse_whitespace(raw.decode("ascii") if raw.isascii() else decode_bytes(raw, None))


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words; whitespace between adjacent words goes, as the RFC says.

    Adjacent words in one charset are joined as bytes before decoding, since some
    mailers split a multi-byte character across two words.
    """
    out: list[str] = []
    pending = b""
    pending_charset: str | None = None
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        joins = pending_charset is not None and (not gap or gap.isspace())
        if pending_charset is not None and not (joins and data is not None and charset == pending_charset):
            out.append(decode_bytes(pending, pending_charset))
            pending, pending_charset = b"", None
        if not joins:
            out.append(gap)
        if data is None:
            out.append(match.group(0))
        else:
            pending += data
            pending_charset = charset
        pos = match.end()
    if pending_charset is not None:
        out.append(decode_bytes(pending, pending_charset))
    out.append(text[pos:])
    return "".join(out)


def _word_bytes(encoding: str, encoded: str) -> bytes | None:
    data = encoded.encode("utf-8")
    if encoding in "Bb":
        return b64decode_lenient(data)
    return binascii.a2b_qp(data, header=True)


def b64decode_lenient(data: bytes) -> bytes:
    """Base64 that never raises: junk characters are skipped, missing padding is assumed.

    Each ``=``-terminated chunk is decoded on its own, for mailers that pad every line.
    """
    out: list[bytes] = []
    for chunk in islice((c for c in data.split(b"=") if c), _MAX_B64_CHUNKS):
        clean = chunk.translate(None, _B64_JUNK)
        extra = len(clean) % 4
        if extra == 1:
            clean = clean[:-1]
        elif extra:
            clean += b"=" * (4 - extra)
        try:
            out.append(binascii.a2b_base64(clean))
        except binascii.Error:  # pragma: no cover - the input is made valid above
            break
    return b"".join(out)


@functools.lru_cache(maxsize=128)
def _codec(charset: str) -> str | None:
    name = charset.strip().strip("\"'").lower()
    if not name or len(name) > 40:
        return None
    try:
        codec = codecs.lookup(name).name
        b"-".decode(codec, "replace")  # LookupError for codecs that are not text encodings (hex, rot13, ...)
    except (LookupError, ValueError):
        return None
    if codec in _REFUSED:
        return None
    return _SUPERSETS.get(codec, codec)


def decode_bytes(data: bytes, charset: str | None, *, cut: bool = False) -> str:
    """Text from bytes: the declared charset if Python knows it, else UTF-8, else Windows-1252.

    Never raises: bad bytes in a declared charset become U+FFFD; undeclared or unknown
    charsets are tried as UTF-8 and, failing that, read as Latin-1 in its Windows-1252
    form.  ``cut`` says the data is a prefix: a UTF-8 character cut off at its end is dropped.
    """
    if data.isascii():
        return data.decode("ascii")
    codec = _codec(charset) if charset else None
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except (LookupError, ValueError):  # codecs that refuse some input even with "replace"
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if cut and error.reason == "unexpected end of data" and error.end == len(data):
            try:
                return data[: error.start].decode("utf-8")
            except UnicodeDecodeError:
                pass
    return data.decode("cp1252", "replace")


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """``(token, params)`` from a Content-Type or Content-Disposition value (token lower-cased)."""
    head, semicolon, _ = value.partition(";")
    params: dict[str, str] = {}
    if not semicolon:
        return head.strip().lower(), params
    for match in islice(_PARAM.finditer(value, len(head)), MAX_PARAMS):
        raw = match.group(2).strip()
        if raw.startswith('"'):
            raw = raw[1:-1] if len(raw) > 1 and raw.endswith('"') else raw[1:]
            if "\\" in raw:
                raw = _QUOTED_PAIR.sub(r"\1", raw)
        params.setdefault(match.group(1).lower(), raw)
    return head.strip().lower(), params


def get_param(params: dict[str, str], key: str) -> str:
    """A parameter's text, with RFC 2231 (``key*``, ``key*0*``) and RFC 2047 forms decoded."""
    if key in params:
        value = params[key]
        return _from_8bit(decode_words(value) if "=?" in value else value)
    if key + "*" in params:
        return _rfc2231([(params[key + "*"], True)])
    sections: list[tuple[str, bool]] = []
    for name, value in params.items():
        match = _RFC2231_SECTION.match(name)
        if match and match.group(1) == key and int(match.group(2)) == len(sections):
            sections.append((value, bool(match.group(3))))
    return _rfc2231(sections) if sections else ""


def _rfc2231(sections: list[tuple[str, bool]]) -> str:
    charset: str | None = None
    data = b""
    for index, (section, encoded) in enumerate(sections):
        value = section
        if encoded and index == 0 and value.count("'") >= 2:
            charset, _, value = value.split("'", 2)
        raw = value.encode("latin-1", "replace")
        data += _unpercent(raw) if encoded else raw
    return decode_bytes(data, charset)


def _unpercent(raw: bytes) -> bytes:
    return _PERCENT.sub(lambda match: bytes([int(match.group(1), 16)]), raw)


def _from_8bit(value: str) -> str:
    # Structured headers are read as Latin-1 (byte-exact); raw UTF-8 in them is undone here.
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
