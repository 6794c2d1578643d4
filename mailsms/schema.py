"""Turn TOML tables into frozen dataclasses, collecting every problem.

A field's kind comes from its type (``bool``, ``int``, ``float``, ``str``,
``tuple[str, ...]``, ``Literal[...]``) or from ``metadata["kind"]`` for
values written in a special syntax (durations, sizes, listen addresses).
Nothing here raises on bad input: problems are collected so that a user
sees all of them at once.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from mailsms.values import parse_credentials, parse_duration, parse_listen, parse_networks, parse_size

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, named by its dotted key."""

    key: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.key}: {self.message}"


def duration(default: float | str) -> Any:
    """A dataclass field holding seconds, written like Postfix durations."""
    return dataclasses.field(default=parse_duration(default), metadata={"kind": "duration"})


def size(default: int) -> Any:
    """A dataclass field holding a byte count (``10240000`` or ``"10M"``)."""
    return dataclasses.field(default=default, metadata={"kind": "size"})


def listen(default: str) -> Any:
    """A dataclass field holding a ``ListenAddress`` or None (``""`` turns it off)."""
    return dataclasses.field(default=parse_listen(default), metadata={"kind": "listen"})


def networks(*default: str) -> Any:
    """A dataclass field holding IP networks, written as a list of CIDRs."""
    return dataclasses.field(default=parse_networks(list(default)), metadata={"kind": "networks"})


def credentials() -> Any:
    """A dataclass field holding (user, password) pairs from a TOML table; kept out of ``repr``."""
    return dataclasses.field(default=(), repr=False, metadata={"kind": "credentials"})


def bounded(default: int, low: int, high: int) -> Any:
    """An integer field limited to ``low..high``."""
    return dataclasses.field(default=default, metadata={"range": (low, high)})


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _convert_special(special: str, value: object) -> object:
    if special == "duration":
        return parse_duration(value)
    if special == "size":
        return parse_size(value)
    if special == "listen":
        if not isinstance(value, str):
            raise ValueError(f'expected a "host:port" string, got {_type_name(value)}')
        return parse_listen(value)
    if special == "networks":
        return parse_networks(value)
    if special == "credentials":
        return parse_credentials(value)
    raise TypeError(f"unknown field kind {special!r}")  # a bug, not user input


def _as_choice(kind: object, value: object) -> object:
    choices = typing.get_args(kind)
    if isinstance(value, bool) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"expected one of {listed}, got {value!r}")
    return value


def _as_bool(value: object, meta: Mapping[str, Any]) -> object:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_type_name(value)}")
    return value


def _as_int(value: object, meta: Mapping[str, Any]) -> object:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_type_name(value)}")
    low, high = meta.get("range", (value, value))
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}, got {value}")
    return value


def _as_float(value: object, meta: Mapping[str, Any]) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {_type_name(value)}")
    return float(value)


def _as_str(value: object, meta: Mapping[str, Any]) -> object:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_type_name(value)}")
    return value


def _as_strings(value: object) -> object:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected an array of strings, got {_type_name(value)}")
    return tuple(value)


_PLAIN: dict[object, Callable[[object, Mapping[str, Any]], object]] = {
    bool: _as_bool,
    int: _as_int,
    float: _as_float,
    str: _as_str,
}


def _convert(kind: object, meta: Mapping[str, Any], value: object) -> object:
    """Convert one TOML value; ValueError carries the user-facing reason."""
    if "kind" in meta:
        return _convert_special(meta["kind"], value)
    origin = typing.get_origin(kind)
    if origin is Literal:
        return _as_choice(kind, value)
    if origin is tuple:
        return _as_strings(value)
    converter = _PLAIN.get(kind)
    if converter is None:
        raise TypeError(f"unsupported configuration field type {kind!r}")  # a bug, not user input
    return converter(value, meta)


Locator = Callable[[str], "int | None"]


def build(
    cls: type[T],
    table: Mapping[str, object],
    prefix: str,
    problems: list[Problem],
    locate: Locator,
    *,
    skip: frozenset[str] = frozenset(),
) -> T:
    """Build ``cls`` from ``table``; bad or unknown keys are added to ``problems``."""
    hints = typing.get_type_hints(cls, include_extras=False)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, object] = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        if key in skip:
            continue
        if key not in fields:
            problems.append(Problem(dotted, "unknown key" + _suggest(key, fields), locate(dotted)))
            continue
        try:
            values[key] = _convert(hints[key], fields[key].metadata, value)
        except ValueError as exc:
            problems.append(Problem(dotted, str(exc), locate(dotted)))
    return cls(**values)


def _suggest(key: str, known: Mapping[str, object]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([\"']?)([A-Za-z0-9_\-]+)\1\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Map dotted keys (``server.lmtp_listen``, ``gateway[1].type``) to 1-based lines.

    Array-of-tables entries are numbered in order of appearance.  Tables
    themselves map too (``server``), so an unknown section can be located.
    """
    lines: dict[str, int] = {}
    counters: dict[str, int] = {}
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            name = header.group(2).replace('"', "").replace("'", "").strip()
            if header.group(1) == "[[":
                index = counters.get(name, 0)
                counters[name] = index + 1
                current = f"{name}[{index}]"
            else:
                current = name
            lines.setdefault(current, number)
            lines.setdefault(name, number)
            continue
        key = _KEY.match(raw)
        if key:
            dotted = f"{current}.{key.group(2)}" if current else key.group(2)
            lines.setdefault(dotted, number)
    return lines
