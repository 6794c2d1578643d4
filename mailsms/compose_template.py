"""The SMS template (``compose.template``): placeholders with fallback chains.

Syntax
    ``{name}`` is a placeholder; ``{a|b|'text'}`` is a fallback chain that takes
    the first non-empty alternative, where an alternative is a name or a quoted
    literal (``'...'`` or ``"..."``).  Names: ``subject``, ``body``, ``from``
    (display name, else address), ``from_addr``, ``to``.  Everything else is
    literal text; ``{{`` and ``}}`` are literal braces.

Empty placeholders vanish together with the literal text that would hang off them
    * Literal text between two placeholders is a separator.  Between two
      non-empty placeholders exactly one separator is written: the one right after
      the earlier of them.  So with ``{subject}: {body}`` a mail without subject
      gives just the body, and one without body just the subject; with
      ``{from}: {subject} - {body}`` and no subject, ``from: body``.
    * Text before the first placeholder is written only when that placeholder is
      non-empty, and text after the last only when the last is non-empty.
    * To write a text whatever happens, make it a placeholder: ``{'SMS'}: {body}``.
    * A template without placeholders is written as it is.

A bad template (unbalanced brace, unknown name, empty alternative, unterminated
quote) is reported by :func:`check_template`; composing then uses the default.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

NAMES = ("subject", "body", "from", "from_addr", "to")
DEFAULT_TEMPLATE = "{subject}: {body}"
MAX_TEMPLATE_CHARS = 2000

# An alternative: (True, literal text) or (False, name).
Alternative = tuple[bool, str]


@dataclass(frozen=True)
class Template:
    """A parsed template: ``prefix``, then each placeholder with the literal text after it."""

    prefix: str
    slots: tuple[tuple[tuple[Alternative, ...], str], ...]

    def render(self, values: Mapping[str, str]) -> str:
        """The template filled with ``values`` (see the module docstring for the rules)."""
        if not self.slots:
            return self.prefix
        out: list[str] = []
        previous: int | None = None
        for index, (alternatives, _) in enumerate(self.slots):
            value = _first_non_empty(alternatives, values)
            if not value:
                continue
            if previous is not None:
                out.append(self.slots[previous][1])
            elif index == 0:
                out.append(self.prefix)
            out.append(value)
            previous = index
        if previous == len(self.slots) - 1:
            out.append(self.slots[previous][1])
        return "".join(out)


def _first_non_empty(alternatives: tuple[Alternative, ...], values: Mapping[str, str]) -> str:
    for literal, text in alternatives:
        value = text if literal else values.get(text, "")
        if value.strip():
            return value.strip()
    return ""


def check_template(template: str) -> str | None:
    """Why ``template`` is not a valid ``compose.template``, or None when it is."""
    parsed = parse_template(template)
    return parsed if isinstance(parsed, str) else None


@functools.lru_cache(maxsize=32)
def parse_template(template: str) -> Template | str:
    """The parsed template, or the error message (with a 1-based column) when it is bad."""
    if len(template) > MAX_TEMPLATE_CHARS:
        return f"template is longer than {MAX_TEMPLATE_CHARS} characters"
    prefix: str | None = None
    slots: list[tuple[tuple[Alternative, ...], str]] = []
    pending: tuple[Alternative, ...] | None = None
    literal: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char in "{}" and template.startswith(char * 2, index):
            literal.append(char)
            index += 2
        elif char == "}":
            return f"unbalanced '}}' at column {index + 1}: write '}}}}' for a literal brace"
        elif char == "{":
            result = _placeholder(template, index + 1)
            if isinstance(result, str):
                return result
            alternatives, index = result
            if pending is None:
                prefix = "".join(literal)
            else:
                slots.append((pending, "".join(literal)))
            pending, literal = alternatives, []
        else:
            literal.append(char)
            index += 1
    if pending is None:
        return Template("".join(literal), ())
    slots.append((pending, "".join(literal)))
    return Template(prefix or "", tuple(slots))


def _placeholder(template: str, index: int) -> tuple[tuple[Alternative, ...], int] | str:
    """The alternatives of a placeholder whose ``{`` is just before ``index``, and the index after its ``}``."""
    unclosed = f"unbalanced '{{' at column {index}: no closing '}}'"
    alternatives: list[Alternative] = []
    while True:
        index = _skip_blanks(template, index)
        if index >= len(template):
            return unclosed
        result = _alternative(template, index)
        if isinstance(result, str):
            return result
        alternatives.append(result[0])
        index = _skip_blanks(template, result[1])
        if index >= len(template):
            return unclosed
        if template[index] == "}":
            return tuple(alternatives), index + 1
        if template[index] != "|":
            return f"expected '|' or '}}' at column {index + 1}"
        index += 1


def _alternative(template: str, index: int) -> tuple[Alternative, int] | str:
    """One alternative starting at ``index`` (a quoted literal or a name) and the index after it."""
    char = template[index]
    if char in "'\"":
        close = template.find(char, index + 1)
        if close < 0:
            return f"unterminated quote at column {index + 1}"
        return (True, template[index + 1 : close]), close + 1
    start = index
    while index < len(template) and template[index] not in "|}{ \t'\"":
        index += 1
    name = template[start:index]
    if not name:
        return f"empty alternative at column {start + 1}"
    if name not in NAMES:
        return f"unknown name {name!r} at column {start + 1}: use one of {', '.join(NAMES)}"
    return (False, name), index


def _skip_blanks(template: str, index: int) -> int:
    while index < len(template) and template[index] in " \t":
        index += 1
    return index
