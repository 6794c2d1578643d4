"""Parsers for the value kinds used in the configuration (pure functions)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)\s*$")
_SIZE_FACTOR = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration(value: object) -> float:
    """Seconds from a Postfix-style duration: ``300``, ``"300s"``, ``"5m"``, ``"4h"``, ``"5d"``.

    Raises ValueError with a user-facing reason.
    """
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 300, "5m" or "4h", got a boolean')
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"bad duration {value!r}: use a number of seconds or a number with s, m, h, d or w")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f'expected a duration such as 300, "5m" or "4h", got {type(value).__name__}')
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from ``10240000`` or ``"10M"`` (k, M, G are powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError("expected a size in bytes, got a boolean")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(f"bad size {value!r}: use bytes, or a number with k, M or G")
        size = int(match.group(1)) * _SIZE_FACTOR[match.group(2).lower()]
    else:
        raise ValueError(f"expected a size in bytes, got {type(value).__name__}")
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


@dataclass(frozen=True)
class ListenAddress:
    """A ``host:port`` to listen on; IPv6 hosts are written ``[::1]:2424``."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> ListenAddress | None:
    """``None`` for ``""`` (listener off), else the address; ValueError when malformed."""
    text = value.strip()
    if not text:
        return None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"bad listen address {value!r}: write IPv6 as [::1]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"bad listen address {value!r}: expected host:port")
    if not host:
        raise ValueError(f"bad listen address {value!r}: the host is missing")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad listen address {value!r}: the port must be 0..65535")
    return ListenAddress(host, int(port_text))


def parse_networks(value: object) -> tuple[Network, ...]:
    """CIDRs (``"127.0.0.0/8"``, ``"::1"``; a bare address is a /32 or /128); ValueError when malformed."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('expected an array of networks such as ["127.0.0.0/8", "::1/128"]')
    networks: list[Network] = []
    for text in value:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"bad network {text!r}: write an address or address/prefix") from None
    return tuple(networks)


def in_networks(address: str | None, networks: tuple[Network, ...]) -> bool:
    """True when ``address`` (as a peer gives it) lies in one of ``networks``; False if it is not an IP."""
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket is 127.0.0.1
    return any(ip in net for net in networks)


def parse_credentials(value: object) -> tuple[tuple[str, str], ...]:
    """A TOML table of user = "password" as (user, password) pairs; ValueError when malformed."""
    if not isinstance(value, dict):
        raise ValueError('expected a table of user = "password"')
    pairs: list[tuple[str, str]] = []
    for user, password in value.items():
        if not user or not isinstance(password, str) or not password:
            # never quote the value: it is a password
            raise ValueError(f"user {user!r}: the password must be a non-empty string")
        pairs.append((user, password))
    return tuple(pairs)
