"""STARTTLS on the SMTP listener: the server's certificate and key, read once at start."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

from mailsms.config import ServerConfig
from mailsms.errors import ConfigError


def check_tls(server: ServerConfig) -> Iterator[tuple[str, str]]:
    """Problems of ``server.tls_cert``/``server.tls_key`` as (key, message), for ``mailsms check``."""
    if not (server.tls_cert or server.tls_key):
        return
    for key, path in (("server.tls_cert", server.tls_cert), ("server.tls_key", server.tls_key)):
        if not path:
            other = "tls_key" if key.endswith("cert") else "tls_cert"
            yield key, f"required with server.{other}: give both PEM files or neither"
            return
    for key, path in (("server.tls_cert", server.tls_cert), ("server.tls_key", server.tls_key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            yield key, f"cannot read {path}: {exc.strerror or exc}"
            return
    try:
        _context(server.tls_cert, server.tls_key)
    except (ssl.SSLError, ValueError) as exc:
        yield "server.tls_cert", f"{server.tls_cert} and {server.tls_key} are no PEM certificate and key pair: {exc}"


def server_context(server: ServerConfig) -> ssl.SSLContext | None:
    """The context for the SMTP listener's STARTTLS; None when no certificate is configured."""
    if not server.tls_cert:
        return None
    problem = next(check_tls(server), None)
    if problem is not None:
        raise ConfigError(f"{problem[0]}: {problem[1]}")
    return _context(server.tls_cert, server.tls_key)


def _context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # no client certificates asked for
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
