"""systemd's readiness protocol (``Type=notify``): a datagram to ``$NOTIFY_SOCKET``, no dependency.

``READY=1`` once the daemon serves, ``STOPPING=1`` when it begins to stop.
Without ``$NOTIFY_SOCKET`` (not started by systemd) nothing is sent.  A
name starting with ``@`` is in the abstract namespace (a leading NUL byte).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("mailsms.master")


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (``KEY=value`` lines) to the service manager; True when it was sent."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log.warning("NOTIFY_SOCKET %r is not a unix socket path: systemd is not told %s", address[:100], state)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("cannot tell systemd %s: %s", state.split("\n", 1)[0], exc.strerror or exc)
        return False
    return True


def ready(status: str = "") -> bool:
    """The daemon accepts mail now."""
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def stopping() -> bool:
    """The daemon is stopping: systemd waits for it to exit (up to TimeoutStopSec)."""
    return notify("STOPPING=1")
