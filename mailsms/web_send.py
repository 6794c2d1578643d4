"""``GET|POST /sms/``: IceWarp's HTTP send API, into the same queue as mail.

``/sms/?number=+15551234567&data=hello&user=john&pass=secret`` (query string
or form body) takes the parameters of an ``sms:`` address (``maxmsgs``,
``sender``, ``id``, ``binary``, ``udh``, ``pid``, ``dcs``, ``flash``,
``reply``, ``value``, ``authenticated``) with the same rules, so a request is
checked exactly as a recipient would be at RCPT.  Like IceWarp, the text is
not limited to one part: ``maxmsgs`` defaults to its maximum, 128.

Answers: ``200 {"queue_id": ..., "parts": N}`` once the message is
committed; 400 for a bad request (the address rules' codes, 5.1.3 for a
missing or malformed parameter); 401 for wrong or missing credentials (a
client in ``web.trusted_networks`` needs none); 503 with Retry-After when the
queue cannot take it (disk or database full).
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import re
from collections.abc import Callable

from aiohttp import web

from mailsms.accounts import Account
from mailsms.address import SmsAddress, number_address
from mailsms.address_params import MAXMSGS_CAP, encode
from mailsms.errors import AuthFailed, BadAddressSyntax, BadContent, BadRequest
from mailsms.form import FormFields, decode_utf8
from mailsms.ingest import Recipient
from mailsms.log import event
from mailsms.policy import Request, Verdict
from mailsms.server import Handler
from mailsms.store import NewMessage
from mailsms.web_base import check_rate, read_fields, services

log = logging.getLogger("mailsms.web")

# Fields taken as they are by the sms: address parser (parameters of mailsms.address_params).
ADDRESS_PARAMS = (
    "user", "maxmsgs", "maxmsg", "binary", "udh", "pid", "dcs", "sender", "authenticated", "reply", "id", "value",
    "flash",
)  # fmt: skip
KNOWN_FIELDS = frozenset({"number", "data", "pass", *ADDRESS_PARAMS})
MAX_DATA = 100_000  # characters; 128 UCS-2 parts hold 8,576
_DATA_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


async def send(request: web.Request) -> web.Response:
    found = services(request)
    check_rate(request)
    try:
        fields = await read_fields(request)
    except BadRequest as exc:
        raise BadAddressSyntax(exc.reason) from None
    handler = found.handler
    engine = handler.policy
    trusted = engine.trusted(request.remote, found.config.web.trusted_networks)
    user, given = _credentials(fields)
    # Accounts first; web.api_users (the stopgap before accounts) for names that are no account.
    vouched = False
    if user and handler.account(user) is None:
        vouched = _legacy_user(found.config.web.api_password, user, given)
    # Credentials are checked before the request is judged: without them a client learns nothing.
    pre = Request("http", request.remote, "", "", user=user, password=given, vouched=vouched, trusted=trusted)
    verdict, account = await engine.identify(pre)
    try:
        number, text, query = _request(fields)
    except BadRequest as exc:  # a parameter given twice, not UTF-8, ...: the address rules' code
        raise BadAddressSyntax(exc.reason) from None
    address = number_address(number, query, found.config.address, default_maxmsgs=MAXMSGS_CAP, trusted=trusted)
    recipient, row = await prepare_text(handler, pre, verdict, account, address, text=text, vouched=vouched)
    await handler.commit([row], recipients=[recipient])
    user = verdict.account or (user if vouched else "")
    log.info(event(row.id, sender="", to=recipient.shown, relay=row.gateway, parts=len(row.parts), size=len(text),
                   client=request.remote, user=user or "-", status="queued"))  # fmt: skip
    return web.json_response({"queue_id": row.id, "parts": len(row.parts)})


async def prepare_text(
    handler: Handler, pre: Request, verdict: Verdict, account: Account | None, address: SmsAddress,
    *, text: str, vouched: bool, already: int = 0, rate_limits: bool = True,
) -> tuple[Recipient, NewMessage]:  # fmt: skip
    """The checks after authentication and the queue row for ``text`` to ``address``, not yet committed.

    Shared by ``/sms/`` and ``mailsms send``: gateway id, destination rules, the account's state and
    limit (``already``: rows for the same account not yet committed), ``intercept.mt``, segmentation.
    """
    check_text(text)
    engine = handler.policy
    handler.check_gateway(address)
    engine.admit(dataclasses.replace(pre, number=address.number), verdict, account, already=already, take=rate_limits)
    handler.check_account_gateway(verdict)
    # A request with a valid user and pass vouches for reply=, as SMTP AUTH does (replylog.record).
    authenticated = bool(verdict.account) or vouched
    recipient = Recipient(address=address, shown=address.redacted(), account=verdict.account,
                          gateway=verdict.gateway, authenticated=authenticated)  # fmt: skip
    recipient, text = await handler.intercepted(recipient, "", text)
    row = handler.new_message(recipient, "", text, handler.clock(), authenticated=authenticated)
    if rate_limits:
        engine.charge_parts(f"[{pre.client}]", verdict, len(row.parts))
    return recipient, row


def _credentials(fields: FormFields) -> tuple[str, str | None]:
    """(user, pass) of a request; unreadable credentials are wrong credentials."""
    try:
        user = fields.text("user", max_length=256) or ""
        given = fields.text("pass", max_length=1024)
    except BadRequest:
        return "\0", "\0"
    return user, given


def _legacy_user(password_of: Callable[[str], str | None], user: str, given: str | None) -> bool:
    """True for a user of ``web.api_users`` with the right password (compared in constant time);
    AuthFailed for a wrong one."""
    expected = password_of(user)
    if expected is None:
        return False
    if not hmac.compare_digest(expected.encode(), (given or "").encode()):
        raise AuthFailed(f"authentication failed for user {user[:64]!r}: wrong user or pass")
    return True


def _request(fields: FormFields) -> tuple[str, str, str]:
    """(number, text, address parameters) of a send request."""
    unknown = sorted(fields.names() - KNOWN_FIELDS)
    if unknown:
        raise BadAddressSyntax(f"unknown parameter {unknown[0][:40]!r}")
    number = fields.text("number", max_length=64)
    if not number:
        raise BadAddressSyntax("missing parameter 'number'")
    return number, _data(fields), _address_query(fields)


def _data(fields: FormFields) -> str:
    raw = fields.raw("data")
    if raw is None:
        raise BadAddressSyntax("missing parameter 'data'")
    text = decode_utf8(raw, "data")
    check_text(text)
    return text


def check_text(text: str) -> None:
    """BadContent for control characters other than tab and line breaks, or more than MAX_DATA characters."""
    if _DATA_CONTROL.search(text):
        raise BadContent("data holds control characters other than tab and line breaks")
    if len(text) > MAX_DATA:
        raise BadContent(f"data longer than {MAX_DATA} characters")


def _address_query(fields: FormFields) -> str:
    """The address parameters as after ``sms:NUMBER?``: each value percent-encoded again."""
    items: list[str] = []
    for name in ADDRESS_PARAMS:
        values = fields.all_text(name) if name == "value" else [fields.text(name, max_length=4096)]
        items.extend(f"{name}={encode(v)}" for v in values if v is not None)
    return "&".join(items)
