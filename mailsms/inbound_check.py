"""Checks of ``[inbound]``, ``[replylog]`` and ``mailout.dkim_*`` that types alone cannot express.

Called by the configuration parser (and so by ``mailsms check``); returns
(dotted key, problem) pairs and reads no file.
"""

from __future__ import annotations

import re

from mailsms.config import InboundConfig, MailoutConfig, ReplylogConfig

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Problems = list[tuple[str, str]]


def check_inbound(inbound: InboundConfig, replylog: ReplylogConfig, mailout: MailoutConfig) -> Problems:
    from mailsms.dkim_sign import dkim_problems

    problems = _addresses(inbound)
    problems += _templates(inbound)
    if not replylog.conflict_message.strip():
        problems.append(("replylog.conflict_message", "must not be empty: the replier needs to know what to do"))
    elif _CONTROL.search(replylog.conflict_message):
        problems.append(("replylog.conflict_message", "control characters other than line breaks are not allowed"))
    problems += dkim_problems(mailout)
    return problems


def _addresses(inbound: InboundConfig) -> Problems:
    from replylog.route import is_domain, local_domain_set, valid_mailbox

    problems: Problems = [
        ("inbound.local_domains", f"{domain[:80]!r} is not a domain name")
        for domain in inbound.local_domains
        if not is_domain(domain.strip().rstrip("."))
    ]
    local = local_domain_set(inbound.local_domains)
    for key, value in (("unmatched_recipient", inbound.unmatched_recipient),
                       ("envelope_sender", inbound.envelope_sender)):  # fmt: skip
        if value and valid_mailbox(value, local) is None:
            problems.append((f"inbound.{key}", f"{value[:80]!r} is not a valid mail address"))
    return problems


def _templates(inbound: InboundConfig) -> Problems:
    from mailsms.inbound_mail import from_address, subject_problem
    from replylog.route import is_domain

    problems: Problems = []
    key = "inbound.from_template"
    if inbound.from_template.count("%s") != 1:
        problems.append((key, "must hold %s (the number) once, as in sms:%s@sms.example.com"))
    else:
        try:
            address = from_address(inbound.from_template, "+15551234567")
        except ValueError as exc:
            problems.append((key, str(exc).removeprefix(key + " ")))
        else:
            if not is_domain(address.domain):
                problems.append((key, f"{address.domain[:80]!r} after @ is not a domain name"))
    for name in ("subject_template", "reply_subject_template"):
        problem = subject_problem(getattr(inbound, name))
        if problem:
            problems.append((f"inbound.{name}", problem))
    if _CONTROL.search(inbound.incomplete_marker):
        problems.append(("inbound.incomplete_marker", "control characters are not allowed"))
    return problems
