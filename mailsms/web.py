"""The HTTP listener: health endpoint now, the send API and webhooks later.

Every error answer is JSON: ``{"error": {"status": 404, "message": "..."}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from mailsms import __version__

log = logging.getLogger("mailsms.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(status: int, message: str) -> dict[str, object]:
    return {"error": {"status": status, "message": message}}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every HTTP error, and anything unexpected, into a JSON body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return web.json_response(error_body(exc.status, exc.reason), status=exc.status, headers=headers)
    except Exception:
        log.exception("internal error answering %s %s", request.method, request.path)
        return web.json_response(error_body(500, "internal error"), status=500)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process runs and its event loop answers."""
    return web.json_response({"status": "ok", "version": __version__})


def make_app() -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=1024**2)
    app.router.add_get("/healthz", healthz)
    return app
