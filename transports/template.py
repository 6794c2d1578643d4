"""Request templates of HTTP gateways, in the notation of IceWarp's "HTTP Request" gateway.

A template is text with expressions ``%variable;modifier;modifier=argument%``:
``https://sms.example.com/send?to=%number;interprefix=00%&text=%data%``.
``compile_template`` parses one once, at configuration time, for the place
its output goes (``url``, ``form``, ``json`` or ``header``) and raises
``TemplateError`` naming anything it does not know; ``Template.render`` then
fills it per request from ``Fields`` (pure, no I/O).

Rules that the seed leaves open, decided here:

* Values are escaped for their place: percent-encoded (UTF-8) in URLs and
  form bodies, JSON-string escaped in JSON bodies, as they are in headers.
  Text written in the template itself, and the text of ``;value=``, is
  copied unchanged.
* ``%udh%`` is the header without its length byte and, like binary
  ``%data%``, comes out as base64 unless ``;hex`` or ``;raw`` says otherwise
  (the seed's default).  Text turned into bytes by ``;unicode`` or
  ``;charset=`` is percent-encoded byte by byte in URLs; JSON and headers
  cannot carry bytes, so there they are base64.
* Conditions (``;isascii``, ``;isunicode``, ``;isbinary``) decide whether the
  whole expression is rendered: it is when the message's encoding is one of
  those named, wherever they stand.  ``;isset`` / ``;isempty`` (mailsms
  additions) require the variable's own value to be non-empty / empty.
* ``%`` followed by a name that is not closed by ``%`` or ``;`` is plain text,
  and so is ``%XX`` with two hex digits, so percent-escapes in a URL stay as
  they are; an unclosed *known* name (``%data&``) is an error.
"""

from __future__ import annotations

import base64
import codecs
import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, quote_from_bytes

from mailsms.errors import ConfigError

Context = Literal["url", "form", "json", "header"]
CONTEXTS: tuple[Context, ...] = ("url", "form", "json", "header")

VARIABLES: Mapping[str, str] = {
    "number": "the destination number, E.164 with its +",
    "data": "the text of the part (or of the whole message); binary messages: the payload",
    "udh": "the user data header without its length byte; empty for a single part",
    "binary": "1 for a binary message, else 0",
    "pid": "the protocol identifier; empty when not set",
    "dcs": "the data coding scheme: as set, else 0 (GSM), 8 (UCS-2) or 4 (binary), class 0 for flash",
    "sender": "the sender: the message's, else the gateway's sender; may be empty",
    "parts": "how many SMS the whole message takes",
    "condition": "always empty: carries conditions and ;value=",
    "msgid": "mailsms's id of the request: <queue id>.<seq> (whole text: <queue id>)",
    "dlr_url": "where the provider reports delivery: <web.public_url>/dlr/<gateway id>?id=<msgid>",
    "username": "the gateway's username",
    "password": "the gateway's password",
    "values": "the value= parameters of the sms: address, joined",
}

# Modifiers and whether they take an argument (``name=argument``).
_ARGUMENT: Mapping[str, bool] = {
    "hex": False,
    "b64": False,
    "len": False,
    "unicode": False,
    "raw": False,
    "isascii": False,
    "isunicode": False,
    "isbinary": False,
    "isset": False,
    "isempty": False,
    "value": True,
    "charset": True,
    "interprefix": True,
}
MODIFIERS: tuple[str, ...] = tuple(_ARGUMENT)

_ENCODING_CONDITIONS: Mapping[str, str] = {"isascii": "gsm7", "isunicode": "ucs2", "isbinary": "binary"}
_DERIVED_DCS: Mapping[str, int] = {"gsm7": 0x00, "ucs2": 0x08, "binary": 0x04}
_FLASH_CLASS = 0x10  # "message class 0" bit: shown at once, not stored

_EXPRESSION = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)((?:;[^;%]*)*)%")
_NAME_AFTER_PERCENT = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)")
_HEX_PAIR = re.compile(r"^[0-9A-Fa-f]{2}$")
_CHARSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
# Characters of ``value=`` parameters kept as they are in a URL: they are query syntax.
_VALUES_SAFE = "&=;,:+/@!$'()*"
MAX_LEN_PREFIX = 255


class TemplateError(ConfigError):
    """A template that cannot be used; ``problem`` says why without naming the key."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


class RenderError(ValueError):
    """A message that this template cannot express (e.g. ``;len`` over 255 bytes)."""


@dataclass(frozen=True)
class Fields:
    """What one request is made of: one part, or the whole message when the provider splits."""

    number: str
    encoding: str  # "gsm7", "ucs2" or "binary"
    text: str = field(default="", repr=False)
    data: bytes | None = field(default=None, repr=False)
    udh: bytes = b""  # the complete UDH, its length byte included, as parts carry it
    sender: str = ""
    pid: int | None = None
    dcs: int | None = None
    flash: bool = False
    parts: int = 1
    msgid: str = ""
    dlr_url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    values: tuple[str, ...] = ()


# -- values on their way through the modifiers ---------------------------------------


@dataclass(frozen=True)
class _Octets:
    """Bytes; ``raw`` ones are percent-encoded as they are in URLs, the others are base64."""

    data: bytes
    raw: bool


class _Verbatim(str):
    """Template text (``;value=``): copied unchanged."""

    __slots__ = ()


class _Query(str):
    """``value=`` parameters of the address: query syntax, so ``&`` and ``=`` stay."""

    __slots__ = ()


_Value = str | _Octets


def _as_bytes(value: _Value) -> bytes:
    return value.data if isinstance(value, _Octets) else value.encode("utf-8")


def _is_empty(value: _Value) -> bool:
    return not (value.data if isinstance(value, _Octets) else value)


def _variable(name: str, fields: Fields) -> _Value:
    binary = fields.encoding == "binary"
    if name == "number":
        return fields.number
    if name == "data":
        return _Octets(fields.data or b"", raw=False) if binary else fields.text
    if name == "udh":
        return _Octets(fields.udh[1:], raw=False)
    if name == "binary":
        return "1" if binary else "0"
    if name == "pid":
        return "" if fields.pid is None else str(fields.pid)
    if name == "dcs":
        return str(fields.dcs if fields.dcs is not None else derived_dcs(fields.encoding, fields.flash))
    if name == "parts":
        return str(fields.parts)
    if name == "condition":
        return ""
    if name == "values":
        return _Query("".join(fields.values))
    value = getattr(fields, name)
    assert isinstance(value, str)
    return value


def derived_dcs(encoding: str, flash: bool) -> int:
    """The DCS that says what the user data is: 0 GSM 7-bit, 8 UCS-2, 4 8-bit; class 0 when flash."""
    dcs = _DERIVED_DCS.get(encoding, 0)
    return dcs | _FLASH_CLASS if flash else dcs


def _len_prefix(value: _Value) -> _Octets:
    data = _as_bytes(value)
    if len(data) > MAX_LEN_PREFIX:
        raise RenderError(f";len: the value is {len(data)} bytes, a length byte holds at most {MAX_LEN_PREFIX}")
    return _Octets(bytes((len(data),)) + data, raw=value.raw if isinstance(value, _Octets) else True)


def _charset(value: _Value, charset: str) -> _Value:
    if isinstance(value, _Octets):
        return value
    try:
        return _Octets(value.encode(charset, "replace"), raw=True)
    except (UnicodeError, LookupError, ValueError, TypeError) as exc:
        raise RenderError(f";charset={charset}: cannot encode the value: {type(exc).__name__}") from None


def _interprefix(value: _Value, prefix: str) -> _Value:
    if isinstance(value, (_Octets, _Verbatim)) or not value.startswith("+"):
        return value
    return type(value)(prefix + value[1:])


_TRANSFORMS: Mapping[str, Callable[[_Value, str], _Value]] = {
    "hex": lambda v, _: _as_bytes(v).hex().upper(),
    "b64": lambda v, _: base64.b64encode(_as_bytes(v)).decode("ascii"),
    "len": lambda v, _: _len_prefix(v),
    "unicode": lambda v, _: v if isinstance(v, _Octets) else _Octets(v.encode("utf-16-be"), raw=True),
    "raw": lambda v, _: _Octets(v.data, raw=True) if isinstance(v, _Octets) else v,
    "charset": _charset,
    "interprefix": _interprefix,
    "value": lambda _, text: _Verbatim(text),
}


def _finish(value: _Value, context: Context) -> str:
    """The value as it goes into the output at its place."""
    if isinstance(value, _Octets):
        if value.raw and context in ("url", "form"):
            return quote_from_bytes(value.data, safe="")
        value = base64.b64encode(value.data).decode("ascii")  # "+", "/" and "=" are escaped below
    if isinstance(value, _Verbatim):
        return str.__str__(value)
    if context == "json":
        return json.dumps(str.__str__(value), ensure_ascii=False)[1:-1]
    if context == "header":
        return str.__str__(value)
    return quote(value, safe=_VALUES_SAFE if isinstance(value, _Query) else "")


# -- the compiled form ---------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """``%variable;...%`` after parsing: its conditions apart, its transforms in order."""

    variable: str
    transforms: tuple[tuple[str, str], ...] = ()
    encodings: frozenset[str] = frozenset()  # render only for these; empty: always
    presence: Literal["", "set", "empty"] = ""

    def render(self, fields: Fields, context: Context) -> str:
        if self.encodings and fields.encoding not in self.encodings:
            return ""
        value = _variable(self.variable, fields)
        if (self.presence == "set" and _is_empty(value)) or (self.presence == "empty" and not _is_empty(value)):
            return ""
        for name, argument in self.transforms:
            value = _TRANSFORMS[name](value, argument)
        return _finish(value, context)


@dataclass(frozen=True)
class Template:
    """A parsed template for one place; ``render`` fills it for one request."""

    source: str
    context: Context
    pieces: tuple[str | Expression, ...] = ()

    @property
    def variables(self) -> frozenset[str]:
        """The variables the template uses."""
        return frozenset(p.variable for p in self.pieces if isinstance(p, Expression))

    def render(self, fields: Fields) -> str:
        """The output for one request; RenderError when the message cannot be expressed."""
        out = "".join(p if isinstance(p, str) else p.render(fields, self.context) for p in self.pieces)
        if self.context == "header" and any(c in out for c in "\r\n\0"):
            raise RenderError("a header value would contain a line break")
        return out


def compile_template(source: str, context: Context) -> Template:
    """Parse ``source`` for ``context``; TemplateError names the first problem."""
    if context not in CONTEXTS:
        raise ValueError(f"unknown template context {context!r}")  # a bug, not user input
    pieces: list[str | Expression] = []
    literal: list[str] = []
    position = 0
    while position < len(source):
        percent = source.find("%", position)
        if percent < 0:
            literal.append(source[position:])
            break
        literal.append(source[position:percent])
        match = _EXPRESSION.match(source, percent)
        if match and not (_HEX_PAIR.match(match.group(1)) and not match.group(2)):
            if "".join(literal):
                pieces.append("".join(literal))
            literal = []
            pieces.append(_expression(match.group(1), match.group(2)))
            position = match.end()
            continue
        _check_not_unclosed(source, percent)
        literal.append("%")
        position = percent + 1
    if "".join(literal):
        pieces.append("".join(literal))
    return Template(source, context, tuple(pieces))


def template_problem(source: str, context: Context) -> str:
    """Why ``source`` is not a usable template, or "" when it is."""
    try:
        compile_template(source, context)
    except TemplateError as exc:
        return exc.problem
    return ""


def _check_not_unclosed(source: str, percent: int) -> None:
    name = _NAME_AFTER_PERCENT.match(source, percent)
    if name and name.group(1) in VARIABLES:
        raise TemplateError(f"%{name.group(1)} is not closed: write %{name.group(1)}% (or %25 for a literal %)")


def _suggest(word: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word.lower(), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _expression(variable: str, modifiers: str) -> Expression:
    if variable not in VARIABLES:
        known = ", ".join(VARIABLES)
        raise TemplateError(f"unknown variable %{variable}%{_suggest(variable, list(VARIABLES))}; known: {known}")
    transforms: list[tuple[str, str]] = []
    encodings: set[str] = set()
    presence: set[Literal["set", "empty"]] = set()
    for item in modifiers.split(";")[1:]:
        name, has_argument, argument = item.partition("=")
        where = f"%{variable};{item}%"
        if name not in _ARGUMENT:
            raise TemplateError(
                f"unknown modifier ;{name} in {where}{_suggest(name, MODIFIERS)}; known: {', '.join(MODIFIERS)}"
            )
        if _ARGUMENT[name] and not has_argument:
            raise TemplateError(f";{name} needs an argument in {where}: write ;{name}=...")
        if not _ARGUMENT[name] and has_argument:
            raise TemplateError(f";{name} takes no argument in {where}")
        if name in _ENCODING_CONDITIONS:
            encodings.add(_ENCODING_CONDITIONS[name])
        elif name in ("isset", "isempty"):
            presence.add("set" if name == "isset" else "empty")
        else:
            if name == "charset":
                _check_charset(argument, where)
            transforms.append((name, argument))
    if len(presence) > 1:
        raise TemplateError(f";isset and ;isempty together in %{variable}{modifiers}% never render")
    return Expression(variable, tuple(transforms), frozenset(encodings), presence.pop() if presence else "")


def _check_charset(name: str, where: str) -> None:
    if not _CHARSET_NAME.match(name):
        raise TemplateError(f";charset= needs a character set name in {where}")
    try:
        codecs.lookup(name)
        "a".encode(name)
    except (LookupError, ValueError, TypeError, UnicodeError):
        raise TemplateError(f"unknown character set {name!r} in {where}") from None
