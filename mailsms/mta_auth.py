"""X-Mailsms-Auth: the SMTP AUTH login that an MTA's milter vouches for.

The milter (milter.server) deletes every copy of the header a mail arrives
with and adds one naming the login when the client authenticated at the MTA.
The LMTP/SMTP server believes it only from the MTAs in ``server.trusted_mta``:
from them the header's account is used as if that user had done SMTP AUTH
at mailsms.  The header is only known after DATA while policy runs at RCPT,
so the recipients are judged again then (LMTP answers per recipient after
DATA, so a refusal still reaches the right one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mailsms.address import SmsAddress
from mailsms.errors import MailsmsError
from mailsms.ingest import Recipient
from mailsms.policy import PolicyEngine, Request, Verdict, charge
from mailsms.smtpproto import SmsEnvelope

AUTH_HEADER = "X-Mailsms-Auth"
_NAME = AUTH_HEADER.lower().encode() + b":"
_HEADER_LIMIT = 256 * 1024  # a header section longer than this is not looked into


def _header_lines(content: bytes) -> tuple[list[bytes], bytes]:
    """The header section as physical lines (each with its line end), and the rest (blank line and body)."""
    lines: list[bytes] = []
    position = 0
    while position < len(content):
        end = content.find(b"\n", position)
        end = len(content) if end < 0 else end + 1
        line = content[position:end]
        if line in (b"\n", b"\r\n") or position >= _HEADER_LIMIT:
            break
        lines.append(line)
        position = end
    return lines, content[position:]


def _fields(lines: list[bytes]) -> list[list[bytes]]:
    """Physical lines grouped into fields: a line starting with space or tab continues the one before."""
    fields: list[list[bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return fields


def _is_auth(field: list[bytes]) -> bool:
    return field[0][: len(_NAME)].lower() == _NAME


def auth_header_values(content: bytes) -> list[str]:
    """The unfolded, stripped values of every X-Mailsms-Auth header of ``content``, in order."""
    if _NAME[:-1] not in content[:_HEADER_LIMIT].lower():  # the usual case: no header, no parsing
        return []
    lines, _ = _header_lines(content)
    values = []
    for field in _fields(lines):
        if _is_auth(field):
            raw = b"".join(field)[len(_NAME) :]
            values.append(" ".join(raw.decode("utf-8", "replace").split()))
    return values


def strip_auth_header(content: bytes) -> bytes:
    """``content`` without any X-Mailsms-Auth header; everything else byte for byte."""
    if _NAME[:-1] not in content[:_HEADER_LIMIT].lower():
        return content
    lines, rest = _header_lines(content)
    kept = [line for field in _fields(lines) if not _is_auth(field) for line in field]
    return b"".join(kept) + rest


def policy_request(
    envelope: SmsEnvelope, address: SmsAddress, sender: str, *, trusted: bool, session_user: str
) -> Request:
    """What policy is asked about one recipient of a mail (at RCPT, and again after DATA)."""
    params = address.params
    return Request(
        envelope.channel,  # type: ignore[arg-type]
        envelope.client,
        sender,
        address.number,
        user=params.user or "",
        password=params.password.reveal() if params.password is not None else None,
        session_user=session_user,
        vouched=address.skip_authentication,
        trusted=trusted,
    )


async def rejudge(
    policy: PolicyEngine,
    envelope: SmsEnvelope,
    login: str,
    check_gateway: Callable[[Verdict], None],
) -> list[Recipient | MailsmsError]:
    """Every accepted recipient judged again with ``login`` ("" : none) as the session's account.

    Rate limits were taken at RCPT; a recipient that now counts against an
    account takes that account's message token.
    """
    sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
    trusted = policy.trusted(envelope.client)
    counted: dict[str, int] = {}
    judged: list[Recipient | MailsmsError] = []
    for recipient in envelope.accepted:
        request = policy_request(envelope, recipient.address, sender, trusted=trusted, session_user=login)
        try:
            verdict, account = await policy.identify(request)
            already = counted.get(verdict.account, 0)
            policy.admit(request, verdict, account, already=already, take=False)
            check_gateway(verdict)
            if verdict.account and verdict.account != recipient.account:
                charge([(policy.account_messages, verdict.account, 1)], "message")
        except MailsmsError as exc:
            judged.append(exc)
            continue
        if verdict.account:
            counted[verdict.account] = already + 1
        judged.append(
            dataclasses.replace(
                recipient, account=verdict.account, gateway=verdict.gateway, authenticated=verdict.authenticated
            )
        )
    return judged
