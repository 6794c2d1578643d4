"""Compose: the SMS text from a mail (pure; never raises, bounded work on any bytes).

How a mail becomes SMS text
    1. The body: the ``text/plain`` parts, else the ``text/html`` parts turned into
       text (:mod:`mailsms.compose_html`); in ``multipart/alternative`` one
       alternative.  Charsets and transfer encodings are decoded leniently
       (:mod:`mailsms.compose_headers`); attachments are skipped and listed by name
       in ``Composed.attachments`` for the log, never sent (:mod:`mailsms.compose_mime`).
    2. Quoted replies and signatures are dropped (``compose.strip_quotes``,
       ``compose.strip_signature``; rules in :mod:`mailsms.compose_clean`), control
       and invisible characters removed, and all whitespace collapsed to single spaces.
    3. ``compose.template`` puts the values together (:mod:`mailsms.compose_template`).

Template (``compose.template``, default ``{subject}: {body}``)
    * ``{name}`` is replaced by a value: ``subject``, ``body``, ``from`` (display
      name, else address), ``from_addr``, ``to``.  ``{a|b|'text'}`` is a fallback
      chain: the first non-empty alternative; ``'...'``/``"..."`` are literals.
      Other text is literal; ``{{`` and ``}}`` are braces.
    * Empty placeholders vanish with the text that would hang off them: between
      two non-empty placeholders exactly one separator is written (the one after
      the earlier), text before the first placeholder only when it is non-empty,
      text after the last only when that one is.  So no subject gives just the
      body, no body just the subject.  ``{'SMS'}: {body}`` always writes ``SMS``.
    * :func:`check_template` names the error of a bad template (unbalanced brace,
      unknown name, empty alternative, unterminated quote); compose then uses the
      default template instead of failing.

Bounces
    ``Composed.auto_submitted`` says whether the mail is an automatic one by its
    headers: ``Auto-Submitted`` other than ``no``, or ``Content-Type:
    multipart/report`` (delivery and read reports).  The server discards those
    (with the null reverse-path) unless ``compose.text_bounces``; compose only tells.

Bounds
    At most 256 KiB of raw bytes of a text part are decoded, at most 64 Ki
    characters of text kept (an SMS holds at most ~39,000), at most 100 MIME
    parts and 256 header fields per part are looked at, and header values are
    decoded from at most 16 KiB; HTML is parsed from at most 32 KiB of markup.  A 50 MB
    attachment costs one ``bytes.find`` scan for the next boundary.
"""

from __future__ import annotations

import datetime
import email.utils
from dataclasses import dataclass

from mailsms.compose_clean import MAX_TEXT_CHARS, clean_body
from mailsms.compose_headers import Fields, header_text, parse_head, plain_text
from mailsms.compose_mime import extract
from mailsms.compose_template import DEFAULT_TEMPLATE, Template, check_template, parse_template
from mailsms.config import ComposeConfig

__all__ = ["Composed", "check_template", "compose"]

MAX_HEADER_CHARS = 998  # RFC 5322 line limit, for the headers kept for reports
ORIGINAL_HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID")
_ORIGINAL_HEADERS = tuple((name, name.lower().encode("ascii")) for name in ORIGINAL_HEADERS)
_DECODED = tuple(key for _, key in _ORIGINAL_HEADERS)


@dataclass(frozen=True)
class Composed:
    """What compose makes of a mail: the SMS text and what the log and reports need."""

    text: str  # the SMS text after template, cleaned, whitespace collapsed
    subject: str  # decoded
    from_header: str  # decoded From: header value ('' when missing)
    message_id: str  # '' when missing
    in_reply_to: str
    references: str
    auto_submitted: bool  # auto-reply / bounce / report by its headers
    attachments: tuple[str, ...]  # file names (or content types) of skipped parts, for the log
    original_headers: tuple[tuple[str, str], ...]  # decoded From, To, Cc, Subject, Date, Message-ID, each <= 998 chars
    deferred_delivery: float | None = None  # the Deferred-Delivery header's time (RFC 4021), when valid


EMPTY = Composed("", "", "", "", "", "", False, (), ())


def compose(raw: bytes, config: ComposeConfig) -> Composed:
    """The SMS text and facts of the mail ``raw``; never raises (worst case: an empty result)."""
    try:
        return _compose(raw, config)
    except Exception:  # the listener must answer whatever arrives; the rules above never get here
        return EMPTY


def _compose(raw: bytes, config: ComposeConfig, *, fast: bool = True) -> Composed:
    fields, body_start = parse_head(raw, 0, len(raw))
    extracted = extract(raw, fields, body_start, fast=fast)
    options = {"strip_quotes": config.strip_quotes, "strip_signature": config.strip_signature}
    if extracted.has_plain:
        body = clean_body("\n\n".join(extracted.plain), **options)
    elif extracted.html:
        from mailsms.compose_html import html_to_text

        body = clean_body("\n\n".join(html_to_text(markup, **options) for markup in extracted.html), **options)
    else:
        body = ""
    decoded = {key: header_text(fields[key]) for key in _DECODED if key in fields}
    subject = decoded.get(b"subject", "")
    name, address = sender(fields.get(b"from", b""))
    values = {
        "subject": subject,
        "body": body,
        "from": name or address,
        "from_addr": address,
        "to": decoded.get(b"to", ""),
    }
    return Composed(
        text=_template(config.template).render(values)[:MAX_TEXT_CHARS],
        subject=subject,
        from_header=decoded.get(b"from", ""),
        message_id=plain_text(fields.get(b"message-id", b""))[:MAX_HEADER_CHARS],
        in_reply_to=plain_text(fields.get(b"in-reply-to", b""))[:MAX_HEADER_CHARS],
        references=plain_text(fields.get(b"references", b"")),
        auto_submitted=is_auto_submitted(fields),
        attachments=tuple(extracted.attachments),
        original_headers=tuple(
            (name, decoded[key][:MAX_HEADER_CHARS]) for name, key in _ORIGINAL_HEADERS if key in decoded
        ),
        deferred_delivery=header_time(fields.get(b"deferred-delivery", b"")),
    )


def header_time(value: bytes) -> float | None:
    """An RFC 5322 date-time header as seconds since the epoch; None when absent or not a date
    (a zone of -0000 or none is taken as UTC)."""
    text = plain_text(value).strip()
    if not text:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _template(template: str) -> Template:
    parsed = parse_template(template)
    if isinstance(parsed, str):
        parsed = parse_template(DEFAULT_TEMPLATE)
        assert isinstance(parsed, Template)
    return parsed


def is_auto_submitted(fields: Fields) -> bool:
    """An automatic mail by its headers: ``Auto-Submitted`` other than ``no``, or a ``multipart/report``."""
    auto = fields.get(b"auto-submitted", b"").split(b";", 1)[0].strip().lower()
    return auto not in (b"", b"no") or fields.get(b"content-type", b"").lstrip().lower().startswith(b"multipart/report")


def sender(raw: bytes) -> tuple[str, str]:
    """``(display name, address)`` of a From value, each decoded ('' when absent)."""
    text = raw.decode("latin-1")
    if "<" in text and ">" in text.rpartition("<")[2]:
        before, _, rest = text.rpartition("<")
        address = rest.partition(">")[0].strip()
        name = before.strip()
    elif "(" in text and text.rstrip().endswith(")"):
        address, _, comment = text.partition("(")
        name = comment.rstrip().removesuffix(")")
        address = address.strip()
    else:
        return "", header_text(raw)
    name = header_text(name.encode("latin-1")).strip().strip('"').strip()
    return name, header_text(address.encode("latin-1")).replace(" ", "")
