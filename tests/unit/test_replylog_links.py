"""What a submitted message records in the reply log, and whether its sender was authenticated."""

from __future__ import annotations

import json

import pytest

from replylog.links import ReplyLink, clean_message_id, link_for, mailbox_key
from replylog.origin import authenticated_sender, first_received

HEADERS = json.dumps([["From", "Alice <alice@example.com>"], ["Subject", "Lunch?"], ["Message-ID", "<m1@example.com>"]])


def made(
    sender: str = "alice@example.com", params: str = "{}", headers: str = HEADERS, **kw: object
) -> ReplyLink | None:
    options: dict[str, object] = {"authenticated": False, "record": "all", **kw}
    return link_for(number="+15551234567", gateway="outbox", sender=sender, params=params, headers=headers,
                    now=100.0, queue_id="Q1", **options)  # type: ignore[arg-type]  # fmt: skip


def test_a_submitted_message_links_its_sender_with_the_mails_id_and_subject() -> None:
    assert made() == ReplyLink("+15551234567", "alice@example.com", "outbox", "<m1@example.com>", "Lunch?", 100.0, "Q1")


def test_the_reply_parameter_wins_over_the_envelope_sender() -> None:
    found = made(params=json.dumps({"reply": "team@example.com"}))
    assert found is not None and found.mailbox == "team@example.com"


def test_no_sender_no_link() -> None:
    assert made(sender="") is None
    assert made(sender="", params=json.dumps({"reply": "not a mailbox"})) is None


@pytest.mark.parametrize(("record", "authenticated", "kept"), [
    ("all", False, True), ("authenticated", False, False), ("authenticated", True, True), ("off", True, False),
])  # fmt: skip
def test_record_decides_which_senders_make_links(record: str, authenticated: bool, kept: bool) -> None:
    assert (made(record=record, authenticated=authenticated) is not None) is kept


def test_a_mail_without_headers_still_links() -> None:
    found = made(headers="[]")
    assert found is not None and (found.message_id, found.subject) == ("", "")
    assert made(headers="not json") is not None


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("<m1@example.com>", "<m1@example.com>"),
        ("  <m1@example.com> (comment)", "<m1@example.com>"),
        ("m1@example.com", ""),
        ("<m1@example.com\r\nBcc: x@y>", ""),
        ("<a b@example.com>", ""),
        ("", ""),
    ],
)
def test_message_ids_are_kept_only_when_they_are_one_clean_id(value: str, cleaned: str) -> None:
    assert clean_message_id(value) == cleaned


def test_mailboxes_are_kept_with_the_domain_in_lower_case() -> None:
    assert mailbox_key("<Alice@Example.COM>") == "Alice@example.com"
    assert mailbox_key("alice") == mailbox_key("alice@") == mailbox_key("a@b\r\nBcc: c") == ""


# -- origin: did the MTA authenticate the sender? ----------------------------------------------

POSTFIX_SASL = (
    b"Received: from client.example.com (client.example.com [192.0.2.1])\r\n"
    b"\t(Authenticated sender: alice)\r\n\tby mx.example.com (Postfix) with ESMTPSA id 4Xy;\r\n"
    b"\tMon, 1 Jan 2024 00:00:00 +0000 (UTC)\r\n"
)


@pytest.mark.parametrize("protocol", ["ESMTPA", "ESMTPSA", "LMTPA", "LMTPSA", "UTF8SMTPSA", "esmtpsa"])
def test_the_first_received_header_with_an_authenticated_protocol_counts(protocol: str) -> None:
    head = f"Received: from c by mx with {protocol} id 1;\r\n".encode()
    assert authenticated_sender(head + b"Subject: x\r\n\r\nbody", {})


@pytest.mark.parametrize("protocol", ["ESMTP", "ESMTPS", "SMTP", "LMTP", "ESMTPSAX"])
def test_other_protocols_do_not(protocol: str) -> None:
    head = f"Received: from c by mx with {protocol} id 1;\r\n".encode()
    assert not authenticated_sender(head + b"\r\nbody", {})


def test_a_folded_postfix_header_counts() -> None:
    assert authenticated_sender(POSTFIX_SASL + b"Subject: x\r\n\r\n", {})


def test_a_forged_received_header_below_the_mtas_own_does_not_count() -> None:
    own = b"Received: from c by mx.example.com (Postfix) with ESMTP id 5;\r\n"
    assert not authenticated_sender(own + POSTFIX_SASL + b"\r\n", {})


def test_a_received_header_in_the_body_does_not_count() -> None:
    assert not authenticated_sender(b"Subject: x\r\n\r\n" + POSTFIX_SASL, {})
    assert first_received(b"Subject: x\n\nReceived: y\n") is None


@pytest.mark.parametrize(("auth", "counts"), [("alice@example.com", True), ("<>", False), ("", False)])
def test_mail_from_auth_counts_when_it_names_someone(auth: str, counts: bool) -> None:
    assert authenticated_sender(b"Subject: x\r\n\r\n", {"AUTH": auth}) is counts
