"""Operations endpoints of the HTTP listener: ``/metrics``, ``/readyz`` and ``/status``.

* ``/metrics``: Prometheus text format, for clients in ``web.trusted_networks``
  or with the admin's HTTP Basic credentials;
* ``/readyz``: 200 when the queue takes a write and at least one gateway is
  usable (started, breaker not open, not down), else 503; the JSON body
  names what is wrong;
* ``/status``: the status page (``mailsms.status_page``), always behind HTTP
  Basic auth with ``web.admin_user`` / ``web.admin_password``; with no admin
  configured it answers 403.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

from aiohttp import BasicAuth, hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from mailsms import __version__
from mailsms.accounts import month_of, rolled, today_of
from mailsms.config import Config
from mailsms.metrics import Metrics, Running, breaker_states, gateway_problem, signal_dbm
from mailsms.recent import RecentEvents
from mailsms.status_page import AccountView, GatewayView, LinkView, StatusView, render
from mailsms.store.accounts import list_accounts
from mailsms.store.conn import Conn
from mailsms.store.queue import QueueStore
from mailsms.store.status import oldest_waiting, search, state_counts
from mailsms.values import in_networks
from mailsms.web_base import HttpError, check_rate
from replylog.store import list_links

# Seconds /readyz waits for the queue's writer to take a transaction.
READY_WRITE_TIMEOUT = 2.0
EVENTS_SHOWN = 50
LINKS_SHOWN = 20
_REALM = 'Basic realm="mailsms admin", charset="UTF-8"'


@dataclass
class StatusServices:
    """What the operations endpoints read of the running daemon."""

    config: Config
    metrics: Metrics
    events: RecentEvents
    running: Running  # its store, scheduler and transports exist once the queue is started


STATUS = web.AppKey("status", StatusServices)


def add_routes(app: web.Application, status: StatusServices) -> None:
    app[STATUS] = status
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status_page)


# -- access ---------------------------------------------------------------------


def admin_configured(config: Config) -> bool:
    return bool(config.web.admin_user and config.web.admin_password)


def admin_ok(config: Config, authorization: str | None) -> bool:
    """Whether ``authorization`` carries the admin's Basic credentials (compared in constant time)."""
    if not authorization or not admin_configured(config):
        return False
    try:
        given = BasicAuth.decode(authorization, encoding="utf-8")
    except ValueError:
        return False
    user_ok = hmac.compare_digest(given.login.encode("utf-8"), config.web.admin_user.encode("utf-8"))
    password_ok = hmac.compare_digest(given.password.encode("utf-8"), config.web.admin_password.encode("utf-8"))
    return user_ok and password_ok


def _challenge() -> HttpError:
    return HttpError(401, "5.7.8", "authentication required: the admin's user and password (HTTP Basic)",
                     {"WWW-Authenticate": _REALM})  # fmt: skip


def require_admin(request: web.Request, config: Config) -> None:
    """401 without the admin's credentials; 403 when no admin is configured at all."""
    if not admin_configured(config):
        raise HttpError(403, "5.7.1", "the status page is off: set web.admin_user and web.admin_password")
    check_rate(request)  # slows down guessing; trusted networks are not limited
    if not admin_ok(config, request.headers.get(hdrs.AUTHORIZATION)):
        raise _challenge()


# -- /metrics and /readyz -----------------------------------------------------------


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: trusted networks, or the admin's Basic credentials."""
    found = request.app[STATUS]
    config = found.config
    if not in_networks(request.remote, config.web.trusted_networks):
        if not admin_configured(config):
            raise HttpError(403, "5.7.1", "metrics are for web.trusted_networks (or set web.admin_user)")
        check_rate(request)
        if not admin_ok(config, request.headers.get(hdrs.AUTHORIZATION)):
            raise _challenge()
    return web.Response(body=found.metrics.exposition(), headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})


async def store_problem(store: QueueStore | None, timeout: float) -> str | None:
    """Why the queue cannot be written now, or None: an empty transaction through its writer
    (``BEGIN IMMEDIATE`` takes the write lock, then ``COMMIT``) within ``timeout`` seconds."""
    if store is None:
        return "the queue is not open"
    try:
        await asyncio.wait_for(store.write(_nothing), timeout)
    except TimeoutError:
        return f"the queue's writer did not get the write lock within {timeout:g}s"
    except Exception as exc:
        return f"the queue cannot be written: {exc}"
    return None


def _nothing(_conn: object) -> None:
    """The write probe: the writer wraps it in BEGIN IMMEDIATE ... COMMIT."""


def gateway_problems(running: Running, config: Config) -> dict[str, str | None]:
    """Every configured gateway with why it is not usable (None: usable)."""
    states = breaker_states(running.scheduler)
    return {g.id: gateway_problem(running.transports.get(g.id), states.get(g.id, "closed")) for g in config.gateways}


async def readyz(request: web.Request) -> web.Response:
    """200 when the queue is writable and a gateway is usable; else 503 naming what is wrong."""
    found = request.app[STATUS]
    problems: dict[str, str] = {}
    store = await store_problem(found.running.store, READY_WRITE_TIMEOUT)
    if store is not None:
        problems["store"] = store
    gateways = gateway_problems(found.running, found.config)
    if not any(why is None for why in gateways.values()):
        problems["gateways"] = "no gateway is usable"
    body = {
        "status": "ready" if not problems else "not ready",
        "problems": problems,
        "gateways": {gateway: why or "usable" for gateway, why in gateways.items()},
    }
    return web.json_response(body, status=503 if problems else 200, headers={"Cache-Control": "no-store"})


# -- /status ---------------------------------------------------------------------------


async def status_page(request: web.Request) -> web.Response:
    found = request.app[STATUS]
    require_admin(request, found.config)
    query = request.query.get("q", "")[:200]
    number = request.query.get("number", "")[:64]
    view = gather(found, query.strip(), number.strip(), time.time())
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return web.Response(text=render(view), content_type="text/html", charset="utf-8", headers=headers)


def gather(found: StatusServices, query: str, number: str, now: float) -> StatusView:
    """Everything the page shows, read now."""
    running, config, metrics_ = found.running, found.config, found.metrics
    store = running.store
    conn = store.conn if store is not None else None
    counts = state_counts(conn) if conn is not None else {}
    since = oldest_waiting(conn) if conn is not None else None
    states = breaker_states(running.scheduler)
    gateways = []
    for g in config.gateways:
        transport = running.transports.get(g.id)
        breaker = states.get(g.id, "closed")
        gateways.append(
            GatewayView(
                g.id, g.type, gateway_problem(transport, breaker), breaker, signal_dbm(transport),
                metrics_.count(metrics_.parts_submitted, g.id), metrics_.count(metrics_.parts_delivered, g.id),
                metrics_.count(metrics_.parts_failed, g.id), metrics_.throughput(g.id, 300),
                metrics_.throughput(g.id, 3600),
            )
        )  # fmt: skip
    links = None
    if number and conn is not None:
        keep = config.replylog.keep_minutes * 60.0
        links = [
            LinkView(k.number, k.mailbox, k.gateway, k.created, k.queue_id, k.live(now, keep))
            for form in number_forms(number)
            for k in list_links(conn, number=form, limit=LINKS_SHOWN)
        ]
    return StatusView(
        version=__version__,
        now=now,
        counts=counts,
        oldest_age=max(now - since, 0.0) if since is not None else None,
        query=query,
        found=(search(conn, query) if conn is not None else []) if query else None,
        gateways=gateways,
        number=number,
        links=links,
        accounts=accounts(conn, now) if conn is not None else [],
        events=found.events.newest(EVENTS_SHOWN),
    )


def number_forms(typed: str) -> list[str]:
    """The number as typed, without spaces, dashes, dots or brackets; digits alone also with a ``+``."""
    cleaned = "".join(ch for ch in typed if ch not in " -.()/")
    if cleaned.isdigit():
        return [cleaned, "+" + cleaned]
    return [cleaned] if cleaned else []


def accounts(conn: Conn, now: float) -> list[AccountView]:
    """Every account with the messages counted in this month (UTC)."""
    month, today = month_of(now), today_of(now)
    views = []
    for account in list_accounts(conn):
        current = rolled(account, month)
        status = "disabled" if account.inactive else "expired" if account.expired(today) else "active"
        views.append(AccountView(account.user, account.gateway, current.sent, account.maxsend, status))
    return views
