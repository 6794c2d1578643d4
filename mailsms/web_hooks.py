"""The gateways' webhooks: ``/inbound/<gateway-id>`` (incoming SMS) and ``/dlr/<gateway-id>`` (reports).

Both check, in this order: the rate limit (429), that the gateway exists
(404), its ``webhook_allow`` source addresses and ``webhook_secret`` (403),
then the fields (400).  Nothing is stored unless everything is right.

* ``/inbound``: see ``mailsms.mo`` for the fields.  ``200 {"id": ...,
  "duplicate": false}`` only after the SMS is committed; the same MO delivered
  again (same gateway and ``smsc_id``) answers 200 with the first row's id and
  ``"duplicate": true``.
* ``/dlr``: see ``mailsms.dlr`` for the fields.  A final report answers
  ``200 {"queue_id": ..., "state": "delivered"|"failed"}`` once the part's
  state is committed, or 404 when no submitted part of this gateway has that
  id; an intermediate one (buffered, submitted) is logged and answers
  ``200 {"state": "intermediate"}``.  A report that comes while its part's
  submission is still being committed answers ``200 {"state": "pending"}``
  and is applied by that commit.
"""

from __future__ import annotations

import functools
import hmac
import logging

from aiohttp import web

from mailsms.config import GatewayConfig
from mailsms.dlr import describe, parse_dlr
from mailsms.errors import NotAuthorized, NotReady
from mailsms.form import FormFields
from mailsms.mo import parse_mo
from mailsms.store.inbound import insert_inbound
from mailsms.store.queue import KEPT
from mailsms.values import in_networks
from mailsms.web_base import HttpError, check_rate, read_fields, services

log = logging.getLogger("mailsms.web")


async def inbound(request: web.Request) -> web.Response:
    gateway, fields = await _gateway_call(request)
    handler = services(request).handler
    mo = parse_mo(fields, gateway.id, id=handler.new_id(), received=handler.clock())
    if handler.store is None:
        raise NotReady()
    stored_id, repeated = await handler.store.write(functools.partial(insert_inbound, mo=mo))
    if not repeated:
        handler.inbound_wake()
    status = "duplicate, stored before" if repeated else "received"
    log.info("%s: from=<%s>, to=<%s>, relay=%s, smsc_id=%s, udh=%s, chars=%d, status=%s", stored_id, mo.sender,
             mo.to, gateway.id, mo.smsc_id or "-", mo.udh.hex() or "-", len(mo.text), status)  # fmt: skip
    return web.json_response({"id": stored_id, "duplicate": repeated})


async def dlr(request: web.Request) -> web.Response:
    gateway, fields = await _gateway_call(request)
    update = parse_dlr(fields)
    if not update.final:
        log.info("%s: relay=%s, dlr=%s, status=intermediate", update.message_id, gateway.id, describe(update.status))
        return web.json_response({"state": update.state})
    queue_id = await services(request).report(update.report(gateway.id))
    if queue_id is None:
        raise HttpError(404, "5.5.4", f"no submitted part of gateway {gateway.id} has id {update.message_id[:80]!r}")
    if queue_id == KEPT:  # its part is still being submitted: applied when that is committed
        return web.json_response({"state": "pending"})
    return web.json_response({"queue_id": queue_id, "state": update.state})


async def _gateway_call(request: web.Request) -> tuple[GatewayConfig, FormFields]:
    """The gateway a webhook call is for, and its fields, once the caller may make it."""
    config = services(request).config
    gateway_id = request.match_info["gateway"]
    gateway = next((g for g in config.gateways if g.id == gateway_id), None)
    check_rate(request, gateway.webhook_allow if gateway is not None else ())
    if gateway is None:
        raise HttpError(404, "5.5.1", f"no gateway {gateway_id[:64]!r} here")
    if gateway.webhook_allow and not in_networks(request.remote, gateway.webhook_allow):
        raise NotAuthorized(f"gateway {gateway.id}: calls from {request.remote} are not allowed (webhook_allow)")
    fields = await read_fields(request)
    if gateway.webhook_secret:
        given = fields.raw("secret") or b""
        if not hmac.compare_digest(given, gateway.webhook_secret.encode()):
            raise NotAuthorized(f"gateway {gateway.id}: wrong or missing secret")
    return gateway, fields
