"""Where one incoming SMS goes: an ``#email#`` tag, the reply log, or nowhere (pure).

The order is IceWarp's: a valid ``#user@domain#`` tag anywhere in the text
wins (and is removed from it) when its domain is one of ``local_domains``,
so that mailsms never relays mail to the outside world; otherwise the reply
log decides: exactly one live link sends the SMS to that mailbox, several
are a conflict (the replier is asked for a tag; the SMS goes to the
unmatched recipient if there is one), none sends it to the unmatched
recipient, or drops it when there is none.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from replylog.links import ReplyLink

if TYPE_CHECKING:
    from mailsms.config import AddressConfig

RouteKind = Literal["tag", "reply", "conflict", "unmatched", "drop"]

_TAG = re.compile(r"#([^#\s]{3,254})#")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PLACEHOLDER_DOMAIN = "example.com"
_ROUTING = re.compile(r"[%!]")


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    recipient: str  # the mailbox the mail goes to; "" when none (drop, a conflict without unmatched)
    text: str  # the SMS text, without the tag that routed it
    link: ReplyLink | None = None  # the link that routed it (for In-Reply-To / References)
    links: int = 0  # live links found for the number
    ignored_tags: tuple[str, ...] = ()  # why tags were not used, for the log (no text, no local part)


@dataclass(frozen=True)
class Tag:
    address: str  # normalised by email-validator
    text: str  # the text without the tag


def is_domain(name: str) -> bool:
    """A host name such as ``mail.example.com`` (ASCII letters, digits, hyphens; no trailing dot)."""
    labels = name.lower().split(".")
    return len(name) <= 253 and all(_DOMAIN_LABEL.match(label) for label in labels)


def local_domain_set(domains: Iterable[str]) -> frozenset[str]:
    return frozenset(d.strip().lower().rstrip(".") for d in domains if d.strip())


def valid_mailbox(address: str, local_domains: frozenset[str] = frozenset()) -> str | None:
    """``address`` normalised by email-validator, or None when it is not a valid mailbox.

    A domain listed in ``local_domains`` is taken as it is, so that an
    intranet name such as ``mail.local`` (a special-use name email-validator
    refuses) still works for a mailbox the administrator declared local.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(address, check_deliverability=False, globally_deliverable=False,
                                test_environment=True)  # fmt: skip
        return str(result.normalized)
    except EmailNotValidError:
        pass
    local, at, domain = address.rpartition("@")
    if not at or domain.lower().rstrip(".") not in local_domains:
        return None
    try:
        result = validate_email(f"{local}@{_PLACEHOLDER_DOMAIN}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return f"{result.local_part}@{domain.lower().rstrip('.')}"


def find_tag(text: str, local_domains: frozenset[str]) -> tuple[Tag | None, tuple[str, ...]]:
    """The first ``#address#`` in ``text`` that may route it, and why other tags may not.

    A tag that is not an address, or whose domain is not local, is left in the
    text and only named (by its domain, never its local part) in the reasons.
    """
    ignored: list[str] = []
    for found in _TAG.finditer(text):
        candidate = found.group(1)
        if "@" not in candidate:
            continue  # a hashtag, not an address
        address = valid_mailbox(candidate, local_domains)
        domain = candidate.rpartition("@")[2].lower()
        if address is None:
            ignored.append(f"tag at {_shown(domain)} is not a valid address")
            continue
        if address.rpartition("@")[2].lower() not in local_domains:
            ignored.append(f"tag at {_shown(domain)} is not in inbound.local_domains")
            continue
        if _ROUTING.search(address.rpartition("@")[0]):
            # user%elsewhere@local and elsewhere!user@local: an MTA's percent hack or bang path relays them
            ignored.append(f"tag at {_shown(domain)} uses sender-specified routing (% or ! in the local part)")
            continue
        return Tag(address, _without(text, found.start(), found.end())), tuple(ignored)
    return None, tuple(ignored)


def decide(
    text: str,
    links: Sequence[ReplyLink],
    *,
    now: float,
    keep_seconds: float,
    local_domains: frozenset[str],
    unmatched: str = "",
) -> Route:
    """The route of one SMS from the number whose ``links`` are given (expired ones are ignored)."""
    tag, ignored = find_tag(text, local_domains)
    if tag is not None:
        return Route("tag", tag.address, tag.text, ignored_tags=ignored)
    live = sorted((link for link in links if link.live(now, keep_seconds)), key=lambda link: -link.created)
    if len(live) == 1:
        return Route("reply", live[0].mailbox, text, live[0], 1, ignored)
    if len(live) > 1:
        return Route("conflict", unmatched, text, None, len(live), ignored)
    if unmatched:
        return Route("unmatched", unmatched, text, ignored_tags=ignored)
    return Route("drop", "", text, ignored_tags=ignored)


def reply_number(sender: str, config: AddressConfig) -> str | None:
    """The number an SMS came from, as numbers are written in the queue (E.164), or None.

    None for an alphanumeric sender ("MyBank") or anything else that is no
    number: such a sender has no links and cannot be answered by SMS.  ``00``
    before the country code counts as ``+``.
    """
    from mailsms.address import number_address
    from mailsms.errors import MailsmsError

    text = sender.strip()
    if text.startswith("00") and text[2:].isdigit():
        text = "+" + text[2:]
    lenient = dataclasses.replace(config, strict_numbers=False)
    try:
        return number_address(text, "", lenient).number
    except (MailsmsError, ValueError):
        return None


def _without(text: str, start: int, end: int) -> str:
    before, after = text[:start].rstrip(" \t"), text[end:].lstrip(" \t")
    if before.endswith("\n") and after.startswith("\n"):  # a tag on a line of its own: the line goes
        after = after[1:]
    joiner = " " if before and after and not before.endswith("\n") and not after.startswith("\n") else ""
    return (before + joiner + after).strip()


def _shown(domain: str) -> str:
    """A domain for the log: printable ASCII only, bounded."""
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in domain)[:80] or "?"
