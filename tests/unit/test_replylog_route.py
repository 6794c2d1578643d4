"""Where an incoming SMS goes: #email# tag, one live link, several, expired, none."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.config import AddressConfig
from replylog.links import ReplyLink
from replylog.route import decide, find_tag, local_domain_set, reply_number, valid_mailbox

LOCAL = local_domain_set(["mail.example.test", "Corp.Example.COM"])
NOW = 1_700_000_000.0
KEEP = 10080 * 60.0


def link(mailbox: str, age: float = 60.0, message_id: str = "<m@x.test>") -> ReplyLink:
    return ReplyLink("+15551234567", mailbox, "outbox", message_id, "Lunch?", NOW - age)


def route_of(text: str, *links: ReplyLink, unmatched: str = "") -> tuple[str, str, str]:
    found = decide(text, links, now=NOW, keep_seconds=KEEP, local_domains=LOCAL, unmatched=unmatched)
    return found.kind, found.recipient, found.text


def test_one_live_link_routes_to_its_sender_with_the_link_for_threading() -> None:
    found = decide("Yes", [link("alice@mail.example.test")], now=NOW, keep_seconds=KEEP, local_domains=LOCAL)
    assert (found.kind, found.recipient, found.text, found.links) == ("reply", "alice@mail.example.test", "Yes", 1)
    assert found.link is not None and found.link.message_id == "<m@x.test>"


def test_several_live_links_are_a_conflict_that_goes_to_the_unmatched_recipient() -> None:
    links = (link("alice@mail.example.test"), link("bob@mail.example.test"))
    assert route_of("Yes", *links, unmatched="pm@mail.example.test") == ("conflict", "pm@mail.example.test", "Yes")
    assert route_of("Yes", *links) == ("conflict", "", "Yes")


def test_expired_links_do_not_count() -> None:
    assert route_of("Yes", link("alice@mail.example.test", age=KEEP + 1)) == ("drop", "", "Yes")
    expired_and_live = (link("alice@mail.example.test", age=KEEP + 1), link("bob@mail.example.test"))
    assert route_of("Yes", *expired_and_live) == ("reply", "bob@mail.example.test", "Yes")


def test_no_link_goes_to_the_unmatched_recipient_or_nowhere() -> None:
    assert route_of("Yes", unmatched="pm@mail.example.test") == ("unmatched", "pm@mail.example.test", "Yes")
    assert route_of("Yes") == ("drop", "", "Yes")


def test_a_local_tag_wins_over_the_reply_log_and_is_removed() -> None:
    links = (link("alice@mail.example.test"), link("bob@mail.example.test"))
    assert route_of("#carol@mail.example.test# see you", *links) == ("tag", "carol@mail.example.test", "see you")
    assert route_of("see #carol@mail.example.test# you") == ("tag", "carol@mail.example.test", "see you")
    assert route_of("see you #carol@mail.example.test#") == ("tag", "carol@mail.example.test", "see you")
    assert route_of("line one\n#carol@mail.example.test#\nline two")[2] == "line one\nline two"


def test_a_tag_domain_matches_without_regard_to_case() -> None:
    assert route_of("#Carol@CORP.example.com# hi")[:2] == ("tag", "Carol@corp.example.com")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("#mallory@evil.example# hi", "tag at evil.example is not in inbound.local_domains"),
        ("#not an address# hi", None),
        ("#hashtag# hi", None),
        ("#bad..dots@mail.example.test# hi", "tag at mail.example.test is not a valid address"),
        ("#@mail.example.test# hi", "tag at mail.example.test is not a valid address"),
    ],
)
def test_tags_that_are_not_local_addresses_are_left_in_the_text(text: str, why: str | None) -> None:
    found = decide(text, [link("alice@mail.example.test")], now=NOW, keep_seconds=KEEP, local_domains=LOCAL)
    assert (found.kind, found.recipient, found.text) == ("reply", "alice@mail.example.test", text)
    assert found.ignored_tags == ((why,) if why else ())


def test_the_first_usable_tag_wins_after_unusable_ones() -> None:
    tag, ignored = find_tag("#x@evil.example# #bob@mail.example.test# #carol@mail.example.test# hi", LOCAL)
    assert tag is not None and tag.address == "bob@mail.example.test"
    assert tag.text == "#x@evil.example# #carol@mail.example.test# hi"
    assert ignored == ("tag at evil.example is not in inbound.local_domains",)


def test_without_local_domains_no_tag_ever_routes() -> None:
    found = decide("#bob@mail.example.test# hi", [], now=NOW, keep_seconds=KEEP, local_domains=frozenset())
    assert found.kind == "drop"


def test_a_local_special_use_domain_is_allowed_when_declared() -> None:
    assert valid_mailbox("bob@mail.local", frozenset({"mail.local"})) == "bob@mail.local"
    assert valid_mailbox("bob@mail.local") is None
    assert valid_mailbox("bob smith@mail.local", frozenset({"mail.local"})) is None


@given(st.text(max_size=200))
def test_any_text_gets_a_route_and_a_tag_only_for_a_local_domain(text: str) -> None:
    found = decide(text, [], now=NOW, keep_seconds=KEEP, local_domains=LOCAL, unmatched="pm@mail.example.test")
    assert found.kind in ("tag", "unmatched")
    if found.kind == "tag":
        assert found.recipient.rpartition("@")[2] in LOCAL


@pytest.mark.parametrize(
    ("sender", "number"),
    [
        ("+15551234567", "+15551234567"),
        ("15551234567", "+15551234567"),
        ("0015551234567", "+15551234567"),
        ("+1 (555) 123-4567", "+15551234567"),
        ("MyBank", None),
        ("", None),
        ("+1555\r\n1234567", None),
    ],
)
def test_the_sender_number_is_read_as_queue_numbers_are_written(sender: str, number: str | None) -> None:
    assert reply_number(sender, AddressConfig()) == number


def test_national_numbers_need_the_default_region_and_strict_checks_do_not_apply() -> None:
    assert reply_number("030 1234567", AddressConfig()) is None
    assert reply_number("030 1234567", AddressConfig(default_region="DE")) == "+49301234567"
    assert reply_number("+15551234567", AddressConfig(strict_numbers=True)) == "+15551234567"
