"""One exchange with an HTTP gateway, without the network: the request to make, the answer's meaning.

``build_request`` turns a part (or a whole message when the provider splits)
into a ``Request``; ``judge`` turns the provider's status and body into a
``Verdict``.  Both are pure, so every rule is unit-testable; the transport in
``transports.http`` only moves bytes.
"""

from __future__ import annotations

import base64
import email.utils
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from mailsms.log import redact
from transports.base import Outcome, OutgoingPart, OutgoingSms, TransportContext
from transports.http_settings import Settings
from transports.template import Fields

EXCERPT_LIMIT = 120
MAX_RETRY_AFTER = 3600.0  # a provider's Retry-After is honoured up to an hour
_CONTENT_TYPES = {"form": "application/x-www-form-urlencoded", "json": "application/json"}
_URL_QUERY = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s?'\"]*)\?[^\s'\"]*", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """What to send; ``secrets`` are strings no reason may quote (the text, the password, the webhook secret)."""

    method: str
    url: str = field(repr=False)  # fully encoded; may hold credentials and the text
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes | None = field(repr=False)
    message_id: str = ""  # mailsms's own id for it: <queue id>.<seq>, or <queue id> for a whole message
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""
    dsn: str = ""
    message_id: str = ""  # the provider's id when message_id_regex captured one
    retry_after: float | None = None


def part_id(queue_id: str, seq: int) -> str:
    """mailsms's id of one part, as delivery reports name it: ``<queue_id>.<seq>``."""
    return f"{queue_id}.{seq}"


def report_url(home: TransportContext, message_id: str) -> str:
    """Where a provider reports on ``message_id`` (``%dlr_url%``); "" when mailsms has no public URL."""
    if not home.public_url:
        return ""
    url = f"{home.public_url}/dlr/{quote(home.gateway_id, safe='')}?id={quote(message_id, safe='')}"
    return f"{url}&secret={quote(home.webhook_secret, safe='')}" if home.webhook_secret else url


def fields_for(settings: Settings, sms: OutgoingSms, parts: Sequence[OutgoingPart], home: TransportContext) -> Fields:
    """The template fields for one part, or for several parts sent as one text."""
    single = len(parts) == 1 and settings.split == "mailsms"
    message_id = part_id(sms.queue_id, parts[0].seq) if single else sms.queue_id
    binary = sms.encoding == "binary"
    return Fields(
        number=sms.to,
        encoding=sms.encoding,
        text="".join(p.text for p in parts),
        data=b"".join(p.data or b"" for p in parts) if binary else None,
        udh=parts[0].udh if single else b"",
        sender=sms.sender or settings.sender,
        pid=sms.pid,
        dcs=sms.dcs,
        flash=sms.flash,
        parts=sms.total,
        msgid=message_id,
        dlr_url=report_url(home, message_id),
        username=settings.username,
        password=settings.password,
        values=sms.values,
    )


def build_request(
    settings: Settings, sms: OutgoingSms, parts: Sequence[OutgoingPart], home: TransportContext
) -> Request:
    """The request for ``parts`` (one part, or all of them when the provider splits); RenderError if impossible.

    ``home`` is the gateway's context: its id, mailsms's public URL and the webhook secret for ``%dlr_url%``.
    """
    fields = fields_for(settings, sms, parts, home)
    url = settings.url.render(fields)
    query = ""
    if settings.builder == "kannel":
        query = _kannel_query(settings, sms, parts[0], home)
    elif settings.query is not None:
        query = settings.query.render(fields)
    if query:
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    headers: list[tuple[str, str]] = []
    body: bytes | None = None
    if settings.body is not None:
        body = settings.body.render(fields).encode("utf-8")
        headers.append(("Content-Type", _CONTENT_TYPES[settings.content_type]))
    own = [(name, template.render(fields)) for name, template in settings.headers]
    names = {name.lower() for name, _ in own}
    if settings.basic_auth and "authorization" not in names:
        headers.append(("Authorization", basic_auth(settings.username, settings.password)))
    headers = [h for h in headers if h[0].lower() not in names] + own
    secrets = tuple(s for s in (fields.text, settings.password, home.webhook_secret) if s)
    return Request(settings.method, url, tuple(headers), body, fields.msgid, secrets)


def basic_auth(username: str, password: str) -> str:
    """An ``Authorization`` value for HTTP basic authentication (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _kannel_query(settings: Settings, sms: OutgoingSms, part: OutgoingPart, home: TransportContext) -> str:
    """Kannel's sendsms query, built by transports.kannel so that both know its traps alike."""
    from transports import kannel

    options = kannel.Options(username=settings.username, password=settings.password, sender=settings.sender)
    message_id = part_id(sms.queue_id, part.seq)
    where = kannel.dlr_url(home.public_url, home.gateway_id, message_id, home.webhook_secret) if home.public_url else ""
    return kannel.sendsms_query(options, sms, part, where)


def excerpt(body: str, secrets: Sequence[str] = ()) -> str:
    """The start of a provider's answer for a reason: one line, short, without the text or the password."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < 3:
            if secret in body:
                return "(answer not shown: it may quote the message)"
            continue
        for form in (secret, quote(secret, safe=""), quote_plus(secret)):
            body = body.replace(form, "(redacted)")
    line = " ".join(body.split())
    if len(line) > EXCERPT_LIMIT:
        line = line[: EXCERPT_LIMIT - 3] + "..."
    return redact(line)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def judge(
    settings: Settings,
    status: int,
    phrase: str,
    body: str,
    *,
    retry_after_header: str | None = None,
    secrets: Sequence[str] = (),
) -> Verdict:
    """What the provider's answer means, by its status and then (for 2xx) by ``success_regex``."""
    kind = settings.statuses.classify(status)
    said = excerpt(body, secrets)
    answer = f"provider answered {status}{' ' + phrase if phrase else ''}"
    if kind == "success":
        if settings.success is not None and not settings.success.search(body):
            temporary = settings.temporary is not None and bool(settings.temporary.search(body))
            reason = f"{answer} without success_regex matching" + (f": {said}" if said else "")
            if temporary:
                return Verdict(Outcome.TEMPORARY, reason + " (temporary_regex)", "4.0.0")
            return Verdict(Outcome.PERMANENT, reason, "5.0.0")
        return Verdict(Outcome.SUBMITTED, message_id=_captured_id(settings, body))
    wait = retry_after(retry_after_header) if kind == "temporary" else None
    reason = answer + (f" (retry after {wait:.0f}s)" if wait is not None else "") + (f": {said}" if said else "")
    if kind == "permanent":
        return Verdict(Outcome.PERMANENT, reason, "5.0.0")
    dsn = "4.3.2" if status == 429 else "4.3.0" if status >= 500 else "4.0.0"
    return Verdict(Outcome.TEMPORARY, reason, dsn, retry_after=wait)


def _captured_id(settings: Settings, body: str) -> str:
    """The provider's id: group ``id``, else group 1, else the whole match; "" when none."""
    if settings.message_id is None:
        return ""
    match = settings.message_id.search(body)
    if match is None:
        return ""
    if "id" in settings.message_id.groupindex:
        return (match.group("id") or "").strip()
    return (match.group(1) if settings.message_id.groups else match.group(0)).strip()


def describe(exc: BaseException) -> str:
    """A client error for a reason: its type and message, with any URL query cut off (it holds secrets)."""
    text = _URL_QUERY.sub(r"\1?...", str(exc))
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return redact(" ".join(line.split())[:200])
