"""The HTTP listener: the send API, the gateways' webhooks and the health endpoint.

* ``GET|POST /sms/``: send an SMS through the queue, IceWarp's HTTP API (``mailsms.web_send``);
* ``GET|POST /inbound/<gateway-id>``: an incoming SMS from a gateway (``mailsms.web_hooks``);
* ``GET|POST /dlr/<gateway-id>``: a delivery report from a gateway (``mailsms.web_hooks``);
* ``GET /healthz``;
* ``GET /metrics``, ``/readyz`` and ``/status`` (``mailsms.web_status``).

Every error answer is JSON: ``{"error": "<what went wrong>", "status": "<enhanced code>"}``
(``mailsms.web_base``).
"""

from __future__ import annotations

from aiohttp import web

from mailsms import __version__, web_hooks, web_send, web_status
from mailsms.config import Config
from mailsms.ratelimit import RateLimiter
from mailsms.server import Handler
from mailsms.web_base import SERVICES, ReportApplier, WebServices, json_errors


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process runs and its event loop answers."""
    return web.json_response({"status": "ok", "version": __version__})


def make_app(services: WebServices, status: web_status.StatusServices | None = None) -> web.Application:
    """The application for the daemon's HTTP listener."""
    app = web.Application(middlewares=[json_errors], client_max_size=1024**2)
    app[SERVICES] = services
    app.router.add_get("/healthz", healthz)
    for path in ("/sms/", "/sms"):
        app.router.add_get(path, web_send.send, allow_head=False)
        app.router.add_post(path, web_send.send)
    for path, handler in (("/inbound/{gateway}", web_hooks.inbound), ("/dlr/{gateway}", web_hooks.dlr)):
        app.router.add_get(path, handler, allow_head=False)
        app.router.add_post(path, handler)
    if status is not None:
        web_status.add_routes(app, status)
    return app


def web_services(config: Config, handler: Handler, report: ReportApplier) -> WebServices:
    """The services for ``make_app``, with the rate limiter the configuration asks for."""
    return WebServices(config, handler, report, RateLimiter(config.web.rate_limit, config.web.rate_burst))
