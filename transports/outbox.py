"""The embedded default transport: each SMS part becomes a file in a directory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutboxOptions:
    """``[[gateway]] type = "outbox"``: ``dir`` defaults to ``<state.dir>/outbox``."""

    dir: str = ""
