"""Open relay through ``#email#`` tags: an incoming SMS must never make mail to a domain not in inbound.local_domains.

The SMS text is the attacker's: anyone can send an SMS to the gateway's
number.  Each variant is stored as a transport stores an MO; the daemon
routes them and relays the mail to an SMTP sink, which records every RCPT:
only the local mailboxes (a tag for one, else the unmatched recipient)
may appear there.  The pure routing decision is checked for the same
variants first (fast, and it names the variant that fails).
"""

from __future__ import annotations

import pytest

from mailsms.config import Config
from replylog.route import decide, local_domain_set
from tests.security.support import POSTMASTER, route_through_sink
from tests.support.replies import BOB, LOCAL
from transports.base import IncomingSms

LOCAL_DOMAINS = local_domain_set([LOCAL])
# (tag text, why it is an attack); none of them may reach a mailbox outside mail.example.test
ATTACKS = [
    ("#victim@elsewhere.example# hi", "a foreign domain"),
    ("#VICTIM@ELSEWHERE.EXAMPLE# hi", "upper case"),
    ("#victim@Elsewhere.Example.# hi", "a trailing dot"),
    ("#victim@exämple.com# hi", "an IDN domain"),
    ("#victim@xn--exmple-cua.com# hi", "an IDN domain in punycode"),
    ("#bob@mаil.example.test# hi", "a homograph of the local domain (Cyrillic a)"),
    ("#bob@mail.example.test.elsewhere.example# hi", "the local domain as a prefix"),
    ("#bob@sub.mail.example.test# hi", "a subdomain of the local domain"),
    ('#"victim@elsewhere.example"@mail.example.test# hi', "a quoted local part holding an address"),
    ('#"victim"@elsewhere.example# hi', "a quoted local part"),
    ("#victim%elsewhere.example@mail.example.test# hi", "the percent hack"),
    ("#VICTIM%ELSEWHERE.EXAMPLE@MAIL.EXAMPLE.TEST# hi", "the percent hack in upper case"),
    ("#elsewhere.example!victim@mail.example.test# hi", "a bang path"),
    ("#@mail.example.test:victim@elsewhere.example# hi", "a source route"),
    ("#victim@elsewhere.example@mail.example.test# hi", "two @"),
    ("#victim@[192.0.2.1]# hi", "an address literal"),
    ("#victim@elsewhere.example(mail.example.test)# hi", "a comment"),
    ("#victim@elsewhere.example# #mallory@evil.example# hi", "several foreign tags"),
    ("#victim@elsewhere.example\r\n@mail.example.test# hi", "a tag broken by CR LF"),
    ("#victim@elsewhere.example\r\nBcc: x@mail.example.test# hi", "a header in a tag"),
    ("#bob@mail.example.test\r\nBcc: victim@elsewhere.example# hi", "a header after a local tag"),
    ("#victim@elsewhere.example\x00@mail.example.test# hi", "a NUL inside a tag"),
]
# Tags that do route, to a local mailbox: the test sees them too, so that it cannot pass by routing nothing.
LOCAL_TAGS = [
    ("#bob@MAIL.EXAMPLE.TEST.# hi", BOB),
    ("#victim@elsewhere.example# #bob@mail.example.test# hi", BOB),
]


def local(address: str) -> bool:
    local_part, _, domain = address.rpartition("@")
    return domain == LOCAL and not set(local_part) & set('%!@"\r\n\x00 ')


@pytest.mark.parametrize(("text", "why"), ATTACKS, ids=[why for _, why in ATTACKS])
def test_the_routing_decision_never_names_a_foreign_mailbox(text: str, why: str) -> None:
    route = decide(text, [], now=0.0, keep_seconds=60.0, local_domains=LOCAL_DOMAINS, unmatched=POSTMASTER)
    assert (route.kind, route.recipient) == ("unmatched", POSTMASTER) or local(route.recipient), why
    assert "victim" not in " ".join(route.ignored_tags)  # the log names domains, never local parts


@pytest.mark.parametrize(("text", "mailbox"), LOCAL_TAGS)
def test_a_local_tag_still_routes(text: str, mailbox: str) -> None:
    route = decide(text, [], now=0.0, keep_seconds=60.0, local_domains=LOCAL_DOMAINS, unmatched=POSTMASTER)
    assert (route.kind, route.recipient) == ("tag", mailbox)


async def test_no_variant_makes_mail_to_a_foreign_domain(config: Config) -> None:
    texts = [text for text, _ in ATTACKS] + [text for text, _ in LOCAL_TAGS]
    smses = [IncomingSms("outbox", f"+1555000{n:04d}", text, smsc_id=f"s{n}") for n, text in enumerate(texts)]
    ids, settled, sink = await route_through_sink(config, smses)
    routed = [settled[mo_id] for mo_id in ids]
    attacks, locals_ = routed[: len(ATTACKS)], routed[len(ATTACKS) :]
    for (state, routed_to), (_, why) in zip(attacks, ATTACKS, strict=True):
        assert (state, routed_to) == ("delivered", POSTMASTER), why
    assert locals_ == [("delivered", mailbox) for _, mailbox in LOCAL_TAGS]
    # What reached the MTA: every RCPT and every envelope, local only, and nothing to the victim.
    assert sink.rcpt_attempts and all(local(r) for r in sink.rcpt_attempts), sink.rcpt_attempts
    received = [r for mail in sink.received for r in mail.recipients]
    assert sorted(received) == sorted([POSTMASTER] * len(ATTACKS) + [m for _, m in LOCAL_TAGS])
    for mail in sink.received:
        head = mail.data.split(b"\r\n\r\n", 1)[0].lower()
        assert b"\nbcc:" not in head and b"elsewhere.example" not in head
