"""What every route of the HTTP listener shares: services, request fields, errors, the rate limit.

Every error answer, whatever raised it, is JSON of one shape:
``{"error": "<what went wrong>", "status": "<RFC 3463 enhanced code>"}``,
never a traceback.  Logs name the path as it was sent (percent-encoded, so
nothing in it can forge a log line) and never the query: it may hold a
password or a gateway's secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from mailsms.config import Config
from mailsms.errors import (
    AuthFailed,
    BadRequest,
    MailsmsError,
    NotAuthorized,
    NotReady,
    QueueFull,
    QuotaExceeded,
    RateLimited,
    TransportDown,
)
from mailsms.form import FormFields, json_pairs, parse_urlencoded
from mailsms.ratelimit import RateLimiter
from mailsms.server import Handler
from mailsms.values import Network, in_networks
from transports.base import DeliveryReport

log = logging.getLogger("mailsms.web")

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReportApplier = Callable[[DeliveryReport], Awaitable["str | None"]]

# Enhanced codes for errors aiohttp raises itself (routing, body size).
_HTTP_ENHANCED = {400: "5.5.2", 404: "5.5.1", 405: "5.5.1", 413: "5.3.4", 415: "5.6.1", 429: "4.7.1"}
# Seconds a client should wait after a temporary refusal.
_RETRY_AFTER: dict[type[MailsmsError], int] = {NotReady: 1, QueueFull: 30, TransportDown: 30}


class HttpError(Exception):
    """An answer that is about HTTP itself (no such route or gateway, unsupported body)."""

    def __init__(self, status: int, enhanced: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.enhanced = enhanced
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class WebServices:
    """What the HTTP side uses of the running daemon."""

    config: Config
    handler: Handler  # builds queue rows, commits them, wakes the scheduler; its store holds the inbound table
    report: ReportApplier  # applies a final delivery report; the queue id, or None when no part has that id
    limiter: RateLimiter


SERVICES = web.AppKey("services", WebServices)


def services(request: web.Request) -> WebServices:
    return request.app[SERVICES]


def error_response(status: int, message: str, enhanced: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """The one shape of every error answer."""
    return web.json_response({"error": message, "status": enhanced}, status=status, headers=headers)


def http_status(exc: MailsmsError) -> int:
    """The HTTP status for an error of the tree: 401/403 for access, 429/503 when later may work."""
    from mailsms.intercept import Rejected

    if isinstance(exc, Rejected) and exc.http:  # an interception script chose it
        return exc.http
    if isinstance(exc, AuthFailed):
        return 401
    if isinstance(exc, NotAuthorized):
        return 403
    if isinstance(exc, RateLimited | QuotaExceeded):
        return 429
    if isinstance(exc, QueueFull | NotReady | TransportDown):
        return 503
    return 400 if exc.permanent else 500


def _mailsms_error(request: web.Request, exc: MailsmsError) -> web.Response:
    status = http_status(exc)
    headers = {}
    if status in (429, 503):
        known = exc.retry_after
        headers["Retry-After"] = (
            RateLimiter.retry_after(known) if known is not None else str(_RETRY_AFTER.get(type(exc), 30))
        )
    level = logging.WARNING if status >= 500 else logging.INFO
    log.log(level, "reject: %s %s from %s: %d %s %s", request.method, request.rel_url.raw_path, request.remote, status,
            exc.enhanced, exc.reason)  # fmt: skip
    return error_response(status, exc.reason, exc.enhanced, headers)


@web.middleware
async def json_errors(request: web.Request, handler: RouteHandler) -> web.StreamResponse:
    """Turn every error, expected or not, into the JSON error shape."""
    try:
        return await handler(request)
    except HttpError as exc:
        log.info(
            "reject: %s %s from %s: %d %s",
            request.method,
            request.rel_url.raw_path,
            request.remote,
            exc.status,
            exc.message,
        )
        return error_response(exc.status, exc.message, exc.enhanced, exc.headers)
    except MailsmsError as exc:
        return _mailsms_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        enhanced = _HTTP_ENHANCED.get(exc.status, "5.5.0" if exc.status < 500 else "4.3.0")
        return error_response(exc.status, exc.reason, enhanced, headers)
    except Exception:
        log.exception("internal error answering %s %s", request.method, request.rel_url.raw_path)
        return error_response(500, "internal error", "4.3.0")


async def read_fields(request: web.Request) -> FormFields:
    """The query string's fields, then the body's (a form, multipart form or JSON object)."""
    pairs = parse_urlencoded(request.rel_url.raw_query_string)
    if request.method == "POST" and request.body_exists:
        pairs += await _body_pairs(request)
    return FormFields(pairs)


async def _body_pairs(request: web.Request) -> list[tuple[str, bytes]]:
    kind = request.content_type
    if kind == "multipart/form-data":
        return await _multipart_pairs(request)
    body = await request.read()
    if not body:
        return []
    if kind == "application/json":
        try:
            return json_pairs(json.loads(body))
        except (ValueError, RecursionError):
            raise BadRequest("the body is not valid JSON") from None
    if kind in ("application/x-www-form-urlencoded", "application/octet-stream", "text/plain"):
        # octet-stream is what aiohttp reports when a client sends no Content-Type
        try:
            return parse_urlencoded(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest("a form body must be ASCII (percent-encode the rest)") from None
    raise HttpError(415, "5.6.1", f"unsupported body type {kind}: send a form, JSON or a query string")


async def _multipart_pairs(request: web.Request) -> list[tuple[str, bytes]]:
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the multipart body cannot be read") from None
    pairs: list[tuple[str, bytes]] = []
    for name, value in form.items():
        if not isinstance(value, str):
            raise BadRequest(f"field {name.lower()!r} is a file: send fields only")
        pairs.append((name.strip().lower(), value.encode("utf-8")))
    return pairs


def check_rate(request: web.Request, exempt: tuple[Network, ...] = ()) -> None:
    """Raise 429 when the client has used up its requests; trusted networks and ``exempt`` are not limited."""
    found = services(request)
    if in_networks(request.remote, found.config.web.trusted_networks) or in_networks(request.remote, exempt):
        return
    wait = found.limiter.acquire(request.remote or "?")
    if wait > 0:
        raise HttpError(
            429,
            "4.7.1",
            "too many requests from this address, try again later",
            {"Retry-After": RateLimiter.retry_after(wait)},
        )
