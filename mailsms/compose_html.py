"""HTML bodies to lines of text, with Beautiful Soup (imported only when a mail has HTML).

Only what a reader sees is kept: text and link text, one line per block element;
``<head>``, ``<script>``, ``<style>``, comments and the like are dropped.  With
``strip_quotes`` the quoting that mail clients mark in HTML goes too
(``<blockquote>``, Gmail's ``gmail_quote``, Thunderbird's ``moz-cite-prefix``,
Yahoo's ``yahoo_quoted``), and Outlook's reply header (``divRplyFwdMsg``,
``appendonsend``) ends the text; with ``strip_signature``, Gmail's and
Thunderbird's signature blocks go.  The line rules of
:mod:`mailsms.compose_clean` run on the result afterwards.
"""

from __future__ import annotations

import html as html_lib
import re
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bs4.element import Tag

MAX_HTML_CHARS = 32 * 1024  # of markup, counted from <body>: ~0.25 s of parsing at worst, text enough for SMS

_BODY = re.compile(r"<body\b", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
_UNCLOSED = re.compile(r"<(?![^<>]*>)")
_LINE = "\ue000"  # a private-use character marks line breaks through whitespace collapsing
_BLOCK_TAGS = (
    "address article aside blockquote br caption dd details div dl dt fieldset figcaption figure footer form"
    " h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody td tfoot th thead tr ul"
)
_SKIP_TAGS = "head script style title template noscript svg object iframe select button"
_BLOCK = frozenset(_BLOCK_TAGS.split())
_SKIP = frozenset(_SKIP_TAGS.split())
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_attr", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature"})
# Outlook's reply header and the containers it puts the quoted original in: the text ends there.
_END_IDS = frozenset(
    {"divRplyFwdMsg", "appendonsend", "OLK_SRC_BODY_SECTION", "mail-editor-reference-message-container"}
)


def html_to_text(markup: str, *, strip_quotes: bool, strip_signature: bool) -> str:
    """Readable text of an HTML body, one line per block; never raises."""
    body = _BODY.search(markup)
    markup = _defuse(markup[body.start() if body else 0 :][:MAX_HTML_CHARS])
    try:
        return _convert(markup, strip_quotes=strip_quotes, strip_signature=strip_signature)
    except Exception:  # a parser bug must not cost the message: strip the tags instead
        return html_lib.unescape(_TAG.sub(" ", markup))


def _defuse(markup: str) -> str:
    """Markup without comments and with every ``<`` that opens no complete tag escaped.

    CPython's html.parser takes quadratic time on runs of unclosed constructs
    (``<a<a<a...``, ``<!--<!--...``; CVE-2025-6069, fixed in later Python releases);
    after this linear pass every ``<`` is closed by a ``>`` before the next one.
    """
    out: list[str] = []
    position = 0
    while (start := markup.find("<!--", position)) >= 0:
        out.append(markup[position:start])
        end = markup.find("-->", start + 4)
        position = len(markup) if end < 0 else end + 3  # an unclosed comment hides the rest, as in browsers
    out.append(markup[position:])
    return _UNCLOSED.sub("&lt;", "".join(out))


def _convert(markup: str, *, strip_quotes: bool, strip_signature: bool) -> str:
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, PreformattedString, Script, Stylesheet, Tag, TemplateString

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MarkupResemblesLocatorWarning and friends are noise here
        soup = BeautifulSoup(markup, "html.parser")
    out: list[str] = []
    end_block = object()
    stack: list[Any] = [soup]
    while stack:
        node = stack.pop()
        if node is end_block:
            out.append(_LINE)
        elif isinstance(node, NavigableString):
            if not isinstance(node, (PreformattedString, Script, Stylesheet, TemplateString)):
                out.append(str(node))
        elif isinstance(node, Tag):
            if node.name in _SKIP:
                continue
            if strip_quotes or strip_signature:
                action = _quoting(node, strip_quotes=strip_quotes, strip_signature=strip_signature)
                if action == "end":
                    break
                if action == "skip":
                    continue
            if node.name in _BLOCK:
                out.append(_LINE)
                stack.append(end_block)
            stack.extend(reversed(node.contents))
    words = " ".join("".join(out).split())
    return "\n".join(line.strip() for line in words.split(_LINE))


def _quoting(node: Tag, *, strip_quotes: bool, strip_signature: bool) -> str:
    """``"end"``, ``"skip"`` or ``""`` for a tag, by the quoting marks mail clients leave."""
    value = node.get("class")
    classes = value.split() if isinstance(value, str) else (value or ())
    if strip_quotes:
        ident = node.get("id")
        if isinstance(ident, str) and ident in _END_IDS:
            return "end"
        if node.name == "blockquote" or not _QUOTE_CLASSES.isdisjoint(classes):
            return "skip"
    if strip_signature and not _SIGNATURE_CLASSES.isdisjoint(classes):
        return "skip"
    return ""
