"""Gateway types: where their options and their transports live.

``mailsms`` reaches concrete transports only through this registry, and
imports a transport module only when a gateway of that type is configured.
Each transport module defines ``Options`` (a frozen dataclass of the type's
own ``[[gateway]]`` keys) and ``create(options, context) -> Transport``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from transports.base import Transport, TransportContext

GATEWAY_TYPES: tuple[str, ...] = ("outbox", "http", "kannel", "modem", "smstools", "gammu", "smpp", "fake")

# Types that have landed; the others are reported as "not available in this version".
_MODULES: dict[str, str] = {
    "outbox": "transports.outbox",
    "fake": "transports.fake",
    "http": "transports.http",
    "kannel": "transports.kannel",
    "modem": "transports.modem",
    "smstools": "transports.smstools",
    "gammu": "transports.gammu",
    "smpp": "transports.smpp",
}


def _module(type_name: str) -> ModuleType | None:
    name = _MODULES.get(type_name)
    return importlib.import_module(name) if name else None


def options_class(type_name: str) -> type | None:
    """The frozen dataclass holding a gateway type's own keys, or None if not built in."""
    module = _module(type_name)
    return cast(type, module.Options) if module else None


def create(type_name: str, options: object, context: TransportContext) -> Transport:
    """Build the transport for one configured gateway."""
    module = _module(type_name)
    if module is None:
        raise ValueError(f"gateway type {type_name!r} is not available")
    return cast("Transport", module.create(options, context))
