"""Fields of an HTTP request (query string, form or JSON body), decoded strictly (pure).

Values stay bytes until a caller decodes them, because an incoming SMS may
name its own charset.  ``+`` is a space, as in every HTML form, except at
the start of a number: IceWarp's examples write ``number=+15551234567`` and
many gateways send ``from=+4915...`` unencoded, so in the fields listed in
``keep_plus`` a leading ``+`` stays a ``+`` (``parse_qsl`` would make it a
space, see INTEROP.md).  A stray ``%`` is an error, not a literal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from mailsms.errors import BadRequest

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NUMBER_FIELDS = frozenset({"number", "sender", "from", "to"})


def _unquote(raw: str, what: str) -> bytes:
    if _BAD_ESCAPE.search(raw):
        raise BadRequest(f"bad percent-encoding in {what}: '%' must start two hex digits (write % as %25)")
    return unquote_to_bytes(raw)


def parse_urlencoded(raw: str, keep_plus: frozenset[str] = NUMBER_FIELDS) -> list[tuple[str, bytes]]:
    """``a=1&b=2`` to (name, value) pairs; names are lower case; BadRequest when malformed."""
    pairs: list[tuple[str, bytes]] = []
    for item in raw.split("&"):
        if not item:
            continue
        raw_name, _, raw_value = item.partition("=")
        try:
            name = _unquote(raw_name.replace("+", " "), "a field name").decode("utf-8").strip().lower()
        except UnicodeDecodeError:
            raise BadRequest("a field name is not UTF-8") from None
        if not name:
            raise BadRequest("a field without a name")
        if name in keep_plus and raw_value.startswith("+"):
            raw_value = "%2B" + raw_value[1:]
        pairs.append((name, _unquote(raw_value.replace("+", " "), f"field '{name}'")))
    return pairs


def json_pairs(document: object) -> list[tuple[str, bytes]]:
    """A JSON object of scalars (or lists of scalars) to (name, value) pairs."""
    if not isinstance(document, dict):
        raise BadRequest("a JSON body must be an object of fields")
    pairs: list[tuple[str, bytes]] = []
    for name, value in document.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if not isinstance(item, str | int | float):
                raise BadRequest(f"field '{name}' must be a string or a number")
            text = str(int(item)) if isinstance(item, bool) else str(item)
            pairs.append((name.strip().lower(), text.encode("utf-8")))
    return pairs


class FormFields:
    """The fields of one request; each getter raises BadRequest naming the field at fault."""

    def __init__(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        self._values: dict[str, list[bytes]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def names(self) -> set[str]:
        return set(self._values)

    def raw(self, name: str) -> bytes | None:
        """The one value of ``name`` as bytes, or None when absent; given twice is an error."""
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise BadRequest(f"field '{name}' given twice")
        return values[0]

    def text(self, name: str, *, required: bool = False, max_length: int = 1000) -> str | None:
        """The value of ``name`` as UTF-8 text without control characters."""
        value = self.raw(name)
        if value is None:
            if required:
                raise BadRequest(f"missing field '{name}'")
            return None
        return check_line(decode_utf8(value, name), name, max_length)

    def all_text(self, name: str, max_length: int = 1000) -> list[str]:
        """Every value of a repeatable field."""
        return [check_line(decode_utf8(v, name), name, max_length) for v in self._values.get(name, [])]

    def first_of(self, names: Iterable[str]) -> tuple[str, str] | None:
        """(name, value) of the first of ``names`` that is given: aliases such as id / msgid."""
        for name in names:
            value = self.text(name)
            if value is not None:
                return name, value
        return None


def decode_utf8(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"field '{name}' is not UTF-8") from None


def check_line(value: str, name: str, max_length: int = 1000) -> str:
    """``value`` if it is one line of at most ``max_length`` characters."""
    if _CONTROL.search(value):
        raise BadRequest(f"field '{name}' holds control characters")
    if len(value) > max_length:
        raise BadRequest(f"field '{name}' is longer than {max_length} characters")
    return value
