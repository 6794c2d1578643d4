"""Cleaning a mail body into SMS text: quoted replies, signatures, footers, whitespace.

The rules work on lines (an HTML body is first turned into lines by
:mod:`mailsms.compose_html`) and are all linear in the text length.

Quotes
    * A reply header drops everything from it to the end: Outlook's
      ``-----Original Message-----`` (and localized forms), and a header block
      ``From: ...`` followed within a few lines by ``Sent:``/``Date:`` and
      ``To:``/``Subject:`` (also ``Von:/Gesendet:``, ``De :/Envoyé :`` ...),
      unless it belongs to a forwarded message.
    * An attribution ``On <date>, <name> wrote:`` (wrapped over up to three
      lines; also ``Am ... schrieb ...:``, ``Le ... a écrit :``, ``El ... escribió:``
      and others) drops everything below it, except when the quote below is
      ``>``-prefixed: then only the attribution and the ``>`` lines go, so
      answers written between quoted lines survive.
    * Every line starting with ``>`` is dropped.

Signatures
    * A line ``-- `` (or ``--`` with any trailing blanks) and everything below it.
    * Mobile and client footers at the end: ``Sent from my iPhone``,
      ``Get Outlook for Android``, ``Sent from Mail for Windows``,
      ``Von meinem iPhone gesendet`` ...
"""

from __future__ import annotations

import re

MAX_TEXT_CHARS = 64 * 1024

# C0/C1 controls (but tab and newline) become spaces; invisible characters that only
# cost SMS space (and force UCS-2) are removed.
_TRANSLATION: dict[int, str | None] = dict.fromkeys((*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)), " ")
_TRANSLATION.update(dict.fromkeys(map(ord, "\u00ad\u034f\u180e\u200b\u2060\u2061\u2062\u2063\u2064\ufeff"), None))
_UNWANTED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u034f\u180e\u200b\u2060-\u2064\ufeff]")
# Joiners that are meaningful inside words but are padding when they stand alone.
_JOINERS = "\u200c\u200d"

_ORIGINAL_MESSAGE = re.compile(
    r"^-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|originalmeddelande|mensagem original"
    r"|wiadomość oryginalna|původní zpráva)\s*-{2,}$",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^\*?(?:from|von|de|van|da|från|od|fra)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_SENT = re.compile(
    r"^\*?(?:sent|date|gesendet|datum|envoyé|enviado|verzonden|inviato|data|skickat|wysłano|odesláno|sendt)\s*:",
    re.IGNORECASE,
)
_HEADER_TO = re.compile(
    r"^\*?(?:to|subject|an|betreff|à|a|objet|para|asunto|aan|onderwerp|oggetto|till|ämne|do|temat|komu|předmět|til|emne)"
    r"\s*:",
    re.IGNORECASE,
)
_FORWARDED = re.compile(r"forwarded message|begin forwarded message|weitergeleitete nachricht|message transféré", re.I)
_ATTRIBUTION_START = re.compile(r"^(?:on|am|le|el|il|op|em|w dniu|den|dne|på)\s", re.IGNORECASE)
_WROTE = r"(?:wrote|writes|schrieb|a\s+écrit|escribió|ha\s+scritto|schreef|pisze|escreveu|skrev|napsal)"
_ATTRIBUTION = re.compile(r"^.{0,300}?\b" + _WROTE + r"\b[^:]{0,120}:$", re.IGNORECASE | re.DOTALL)
_SEPARATOR = re.compile(r"^(?:[_\-=*]{5,}|-{2,}\s*forwarded.*)$", re.IGNORECASE)
_FOOTER = re.compile(
    r"^(?:sent (?:from|with|via|using) .{1,60}"
    r"|get outlook for (?:ios|android).*"
    r"|envoy[ée] (?:de|depuis) mon .{1,40}"
    r"|von meinem .{1,40} gesendet\.?"
    r"|gesendet (?:von|mit) .{1,40}"
    r"|enviado (?:desde|do|de) (?:mi|meu) .{1,40}"
    r"|inviato da .{1,40}"
    r"|verzonden (?:met|vanaf|van) .{1,40}"
    r"|wysłane z .{1,40}"
    r"|skickat från .{1,40}"
    r"|odesláno z .{1,40})$",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"^[ \t]*>")
# Quick tests for "might any quote rule apply?": most bodies fail them and skip the line loop.
_DASHES = re.compile(r"--[^\S\n]*\w")
_COLON_AT_LINE_END = re.compile(r":[^\S\n]*$", re.MULTILINE)
_FROM_LINE = re.compile(r"^[^\S\n]*\*?(?:from|von|de|van|da|från|od|fra)[^\S\n]*:", re.IGNORECASE | re.MULTILINE)


def normalize(text: str) -> str:
    """Newlines as ``\\n``, control characters as spaces, invisible padding removed."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.translate(_TRANSLATION) if _unwanted(text) else text


def _unwanted(text: str) -> bool:
    # isprintable() is a fast pre-check: every unwanted character is unprintable.
    return not text.isprintable() and _UNWANTED.search(text) is not None


def collapse_whitespace(text: str) -> str:
    """One space for every run of whitespace (newlines too); stand-alone joiners dropped."""
    words = (text.translate(_TRANSLATION) if _unwanted(text) else text).split()
    if _JOINERS[0] in text or _JOINERS[1] in text:
        words = [word for word in words if word.strip(_JOINERS)]
    return " ".join(words)


def clean_body(text: str, *, strip_quotes: bool, strip_signature: bool) -> str:
    """The SMS-worthy part of a body, whitespace collapsed."""
    text = normalize(text[:MAX_TEXT_CHARS])
    quotes = strip_quotes and _may_have_quotes(text)
    if quotes or strip_signature:
        lines = text.split("\n")
        if quotes:
            lines = drop_quotes(lines)
        if strip_signature:
            lines = drop_signature(lines)
        text = "\n".join(lines)
    return collapse_whitespace(text)


def _may_have_quotes(text: str) -> bool:
    """False only when no quote rule can apply: each needs a ``>``, dashes, or a colon in the right place."""
    if ">" in text or ("--" in text and _DASHES.search(text)):
        return True
    if ":" not in text:
        return False
    # An attribution ends a line with a colon; a header block has at least three colons.
    return bool(_COLON_AT_LINE_END.search(text) or (text.count(":") >= 3 and _FROM_LINE.search(text)))


def drop_quotes(lines: list[str]) -> list[str]:
    """Lines without quoted replies (see the module docstring)."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        text = line.strip()
        if text and text[0] != ">":
            if _ORIGINAL_MESSAGE.match(text) or (_HEADER_FROM.match(text) and _is_header_block(lines, index)):
                break
            if _ATTRIBUTION_START.match(text) or text.endswith(":"):
                end = _attribution_end(lines, index)
                if end is not None:
                    if not _QUOTED.match(_next_text(lines, end)):
                        break
                    index = end  # only the attribution goes; its > lines go below
                    continue
        if not _QUOTED.match(line):
            kept.append(line)
        index += 1
    return _trim_end(kept)


def drop_signature(lines: list[str]) -> list[str]:
    """Lines without the ``-- `` signature and without client footers at the end."""
    for index, line in enumerate(lines):
        if line.rstrip() == "--":
            lines = lines[:index]
            break
    end = len(lines)
    while end and (not lines[end - 1].strip() or _FOOTER.match(lines[end - 1].strip())):
        end -= 1
    return lines[:end]


def _is_header_block(lines: list[str], index: int) -> bool:
    block = [line.strip() for line in lines[index + 1 : index + 8]]
    if not any(_HEADER_SENT.match(line) for line in block) or not any(_HEADER_TO.match(line) for line in block):
        return False
    above = " ".join(lines[max(0, index - 3) : index])
    return not _FORWARDED.search(above)


def _attribution_end(lines: list[str], index: int) -> int | None:
    """Index after the attribution starting at ``index`` (up to three wrapped lines), or None."""
    starts = bool(_ATTRIBUTION_START.match(lines[index].strip()))
    joined = ""
    for end in range(index, min(index + 3, len(lines))):
        joined = f"{joined} {lines[end].strip()}".strip()
        if len(joined) > 500 or (end > index and not lines[end].strip()):
            return None
        if joined.endswith(":") and _ATTRIBUTION.match(joined):
            if starts:
                return end + 1
            # "Name <addr> wrote:" without "On ...": only when a > quote follows.
            return end + 1 if _QUOTED.match(_next_text(lines, end + 1)) else None
        if not starts:
            return None
    return None


def _next_text(lines: list[str], start: int) -> str:
    """The first non-blank line from ``start`` (looking a bounded distance ahead)."""
    for index in range(start, min(len(lines), start + 50)):
        if lines[index].strip():
            return lines[index]
    return ""


def _trim_end(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and (not lines[end - 1].strip() or _SEPARATOR.match(lines[end - 1].strip())):
        end -= 1
    return lines[:end]
