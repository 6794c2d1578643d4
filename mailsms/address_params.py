"""The parameters of an ``sms:`` address: IceWarp's "Available Parameters" and RFC 5724's ``body``.

``sms:+15551234567?user=alice&pass=s3cret&maxmsgs=3``: the query is split on
``&`` and then on the first ``=``; each value is percent-decoded on its own,
and ``+`` stays ``+`` (``parse_qsl`` would turn it into a space and break
``sender=+1555...``).  Names are case-insensitive.  An unknown, repeated or
malformed parameter is an error, never ignored.

Error reasons name the parameter and the rule, never the value, and never a
name that may be a piece of a password (an unencoded ``&`` inside ``pass=``).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from mailsms.errors import BadAddressSyntax

MAXMSGS_CAP = 128
"""IceWarp's maximum for ``maxmsgs``."""

REDACTED = "(set)"


class Secret:
    """A password: compares by value, but its ``repr`` and ``str`` are ``(set)``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The password itself, for the one place that checks it."""
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # only authentication compares secrets; keep it off the RCPT path

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True)
class SmsParams:
    """The parameters that were given; ``None`` (or ``()`` for ``values``) means absent."""

    user: str | None = None
    password: Secret | None = None
    maxmsgs: int | None = None
    binary: bool | None = None
    udh: str | None = None
    """Upper-case hex."""
    pid: int | None = None
    dcs: int | None = None
    sender: str | None = None
    authenticated: bool | None = None
    """Given by the address; it counts only for a trusted source (``SmsAddress.skip_authentication``)."""
    reply: str | None = None
    """Normalised e-mail address that replies go to instead of the envelope sender."""
    gateway_id: str | None = None
    values: tuple[str, ...] = ()
    """Extra parameters for an HTTP gateway's template, in the order given."""
    flash: bool | None = None
    body: str | None = None
    at: float | None = None
    """A scheduled send: when (seconds since the epoch) the message may go, from ISO 8601."""

    def given(self) -> dict[str, object]:
        """The given parameters by their address names, JSON-ready; ``pass`` shows as ``(set)``."""
        result: dict[str, object] = {}
        for name, field_name in PARAM_ORDER:
            value = getattr(self, field_name)
            if value is None or value == ():
                continue
            if isinstance(value, Secret):
                value = REDACTED
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, float):
                value = iso_time(value)
            result[name] = value
        return result


class _Invalid(Exception):
    """A value breaks its parameter's rule; the reason never quotes the value."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BYTE = re.compile(r"[0-9]{1,3}|0[xX][0-9A-Fa-f]{1,2}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){1,140}")
_GATEWAY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")  # the rule for [[gateway]] ids in config.py

# GSM 03.38 default alphabet without LF, CR and ESC: what an alphanumeric sender may hold.
GSM_SENDER_CHARS = frozenset(
    "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _text(value: str) -> str:
    if not value:
        raise _Invalid("empty value")
    if _CONTROL.search(value):
        raise _Invalid("control characters are not allowed")
    return value


def _secret(value: str) -> Secret:
    return Secret(_text(value))


def _maxmsgs(value: str) -> int:
    if value.isascii() and value.isdigit() and len(value) <= 3 and 1 <= int(value) <= MAXMSGS_CAP:
        return int(value)
    raise _Invalid(f"must be an integer 1..{MAXMSGS_CAP}")


def _flag(value: str) -> bool:
    if value in ("0", "1"):
        return value == "1"
    raise _Invalid("must be 0 or 1")


def _byte(value: str) -> int:
    if _BYTE.fullmatch(value):
        number = int(value, 0) if value[1:2] in ("x", "X") else int(value)
        if number <= 255:
            return number
    raise _Invalid("must be a byte: 0..255, decimal or 0x hex")


def _udh(value: str) -> str:
    if _HEX.fullmatch(value):
        return value.upper()
    raise _Invalid("must be hex digits, two per byte, at most 140 bytes")


def _sender(value: str) -> str:
    digits = value[1:] if value.startswith("+") else value
    if value.startswith("+"):
        if digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15 and digits[0] != "0":
            return value
        raise _Invalid("a numeric sender is '+' and 7 to 15 digits, or a short code")
    if value.isascii() and value.isdigit():
        if 3 <= len(value) <= 15:
            return value
        raise _Invalid("a numeric sender has 3 to 15 digits")
    if not value or len(value) > 11:
        raise _Invalid("an alphanumeric sender has 1 to 11 characters")
    if not GSM_SENDER_CHARS.issuperset(value):
        raise _Invalid("an alphanumeric sender takes only letters, digits, space and GSM punctuation")
    if value.strip(" ") != value:
        raise _Invalid("an alphanumeric sender cannot start or end with a space")
    return value


def _reply(value: str) -> str:
    _text(value)
    from email_validator import EmailNotValidError, validate_email  # only when reply= is given

    try:
        checked = validate_email(value, check_deliverability=False, allow_quoted_local=True)
    except EmailNotValidError as exc:
        raise _Invalid(f"not an e-mail address: {show(str(exc), 100)}") from None
    return str(checked.normalized)


def _gateway_id(value: str) -> str:
    if _GATEWAY_ID.fullmatch(value):
        return value
    raise _Invalid("a gateway id is letters, digits, '.', '_' or '-' (at most 64)")


def iso_time(seconds: float) -> str:
    """``at=``'s canonical form: UTC, ISO 8601, to the second."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(value: str) -> float:
    """ISO 8601 with a zone (``2026-12-24T18:00+01:00``, ``...Z``); without one it is UTC."""
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid("expected an ISO 8601 time such as 2026-12-24T18:00:00+01:00 or ...Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def _body(value: str) -> str:
    if _BODY_CONTROL.search(value):
        raise _Invalid("control characters other than tab and line breaks are not allowed")
    return value


def _value(value: str) -> str:
    if not value:
        raise _Invalid("empty value (pass gateway parameters percent-encoded: value=%26unicode%3D1)")
    return _text(value)


# address name -> (SmsParams field, parser)
_PARAMS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "user": ("user", _text),
    "pass": ("password", _secret),
    "maxmsgs": ("maxmsgs", _maxmsgs),
    "maxmsg": ("maxmsgs", _maxmsgs),  # the spelling in IceWarp's table
    "binary": ("binary", _flag),
    "udh": ("udh", _udh),
    "pid": ("pid", _byte),
    "dcs": ("dcs", _byte),
    "sender": ("sender", _sender),
    "authenticated": ("authenticated", _flag),
    "reply": ("reply", _reply),
    "id": ("gateway_id", _gateway_id),
    "value": ("values", _value),
    "flash": ("flash", _flag),
    "body": ("body", _body),
    "at": ("at", _at),
}

PARAM_NAMES = frozenset(_PARAMS)

PARAM_ORDER: tuple[tuple[str, str], ...] = tuple(
    (name, field_name) for name, (field_name, _) in _PARAMS.items() if name != "maxmsg"
)
"""(address name, field) in canonical order: IceWarp's, then ``flash`` and ``body``."""


def show(text: str, limit: int = 40) -> str:
    """``text`` quoted for an error reason: one line of ASCII, shortened past ``limit``."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return ascii(text)


def decode(value: str) -> str:
    """Percent-decode strictly: a stray ``%`` or bytes that are not UTF-8 raise ``ValueError``."""
    if "%" not in value:
        return value
    if _BAD_ESCAPE.search(value):
        raise ValueError("'%' must start an escape of two hex digits (write a literal % as %25)")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise ValueError("percent-encoded bytes are not UTF-8") from None


def parse_params(query: str) -> SmsParams:
    """Parse the part after ``?``; raises BadAddressSyntax naming the parameter at fault."""
    found: dict[str, Any] = {}
    values: list[str] = []
    after_pass = False
    for item in query.split("&"):
        if not item:
            continue  # "?&a=1&" from templates that join with '&'
        raw_name, has_value, raw_value = item.partition("=")
        name = raw_name.lower()
        entry = _PARAMS.get(name)
        if after_pass and (entry is None or not has_value):
            # this "name" may be the rest of a password that held an unencoded '&'
            raise BadAddressSyntax("bad parameter after 'pass' (write '&' in a password as %26)")
        if entry is None:
            raise BadAddressSyntax(f"unknown parameter {show(raw_name)}" if raw_name else "parameter with no name")
        if not has_value:
            raise BadAddressSyntax(f"parameter '{name}' has no value")
        field_name, parse = entry
        if field_name in found:
            alias = " (maxmsg and maxmsgs are one parameter)" if field_name == "maxmsgs" else ""
            raise BadAddressSyntax(f"parameter '{name}' given twice{alias}")
        try:
            parsed = parse(decode(raw_value))
        except (ValueError, _Invalid) as exc:
            raise BadAddressSyntax(f"bad parameter '{name}': {exc}") from None
        if field_name == "values":
            values.append(parsed)
        else:
            found[field_name] = parsed
        after_pass = after_pass or name == "pass"
    return SmsParams(values=tuple(values), **found)


# Characters left as they are in a rendered value; all of them are plain text inside a quoted
# local part, and none is '&', '=', '%', '"', '\\', '@', '?' or a space.
_SAFE = "+:/,;!*'()~$"


def encode(value: str) -> str:
    """Percent-encode a value for the canonical form (``@`` as ``%40``, as IceWarp asks)."""
    return quote(value, safe=_SAFE)


def render_params(params: SmsParams, *, redact: bool = False) -> str:
    """The query in canonical order and spelling, without the ``?``; ``redact`` shows ``pass=(set)``."""
    items: list[str] = []
    for name, field_name in PARAM_ORDER:
        value = getattr(params, field_name)
        if value is None:
            continue
        if isinstance(value, tuple):
            items.extend(f"{name}={encode(each)}" for each in value)
        elif isinstance(value, Secret):
            items.append(f"{name}={REDACTED if redact else encode(value.reveal())}")
        elif isinstance(value, bool):
            items.append(f"{name}={int(value)}")
        elif isinstance(value, int):
            items.append(f"{name}={value}")
        elif isinstance(value, float):
            items.append(f"{name}={encode(iso_time(value))}")
        else:
            items.append(f"{name}={encode(value)}")
    return "&".join(items)
