"""Gateway types and where their option classes live.

``mailsms`` reaches concrete transports only through this registry, and
imports a transport module only when a gateway of that type is configured.
"""

from __future__ import annotations

import importlib

GATEWAY_TYPES: tuple[str, ...] = ("outbox", "http", "kannel", "modem", "smstools", "gammu", "smpp", "fake")

# type -> "module:OptionsClass"; types that have not landed yet are absent.
_OPTIONS: dict[str, str] = {
    "outbox": "transports.outbox:OutboxOptions",
}


def options_class(type_name: str) -> type | None:
    """The frozen dataclass holding a gateway type's own keys, or None if not built in."""
    target = _OPTIONS.get(type_name)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    cls: type = getattr(importlib.import_module(module_name), attr)
    return cls
