"""Realistic mails from common clients (tests/data/compose_*.eml) and the SMS text each becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsms import compose as compose_module
from mailsms.compose import Composed, compose
from mailsms.config import ComposeConfig

DATA = Path(__file__).resolve().parent.parent / "data"
DEFAULTS = ComposeConfig()


def sample(name: str) -> bytes:
    return (DATA / f"compose_{name}.eml").read_bytes()


def composed(name: str, config: ComposeConfig = DEFAULTS) -> Composed:
    return compose(sample(name), config)


def test_thunderbird_plain_reply_loses_quote_and_signature() -> None:
    mail = composed("thunderbird_plain")
    assert mail.text == (
        "Re: Server room temperature: The air conditioning in room B is fixed, temperature is back to 21 °C. "
        "No need to come in tonight."
    )
    assert mail.from_header == "Anna Berger <anna.berger@example.org>"
    assert mail.message_id == "<7d3c1f2a-5b6e-4c1d-9a8b-0e2f3a4b5c6d@example.org>"
    assert mail.in_reply_to == mail.references == "<a1b2c3d4@monitor.example.org>"
    assert not mail.auto_submitted


def test_outlook_reply_loses_the_original_message() -> None:
    assert composed("outlook_html_reply").text == (
        "RE: Delivery for order 4711: Thanks, I will call the customer at 3 pm and confirm the delivery date. Peter"
    )


def test_outlook_reply_html_alone_gives_the_same_text() -> None:
    raw = sample("outlook_html_reply")
    newline = b"\r\n" if b"\r\n" in raw else b"\n"  # whatever a checkout made of the line ends
    boundary = b"--_000_AM0PR04MB1234567890ABCDEF_" + newline
    preamble, plain, html = raw.split(boundary)
    assert b"text/plain" in plain
    assert compose(preamble + boundary + html, DEFAULTS).text == composed("outlook_html_reply").text


def test_outlook_reply_keeps_the_original_when_quotes_are_kept() -> None:
    assert "the customer asks when order 4711 will be delivered" in (
        composed("outlook_html_reply", ComposeConfig(strip_quotes=False)).text
    )


def test_iphone_reply_loses_footer_and_quote() -> None:
    assert composed("iphone_footer").text == "Re: Dinner: Running late, I\u2019ll be there at 8 \U0001f642"


@pytest.mark.parametrize(
    ("name", "subject", "sender", "body"),
    [
        (
            "subject_utf8",
            "Grüße – Übergabe um 14 Uhr ✔",
            "Jürgen Müller",
            "Bitte den Schlüssel an der Rezeption abgeben.",
        ),
        ("subject_iso8859_2", "Příjezd zítra v 9:00", "Jiří Dvořák", "Dobrý den, přijedeme zítra v devět. Děkuji."),
        (
            "subject_shift_jis",
            "会議の時間変更について",
            "山田 太郎",
            "明日の会議は午後三時に変更になりました。よろしくお願いします。",
        ),
    ],
)
def test_rfc2047_subjects_and_bodies_in_their_charsets(name: str, subject: str, sender: str, body: str) -> None:
    mail = composed(name)
    assert mail.subject == subject
    assert mail.text == f"{subject}: {body}"
    assert compose(sample(name), ComposeConfig(template="{from}")).text == sender


def test_bounce_report_is_automatic_and_lists_its_report_parts() -> None:
    mail = composed("bounce_report")
    assert mail.auto_submitted
    assert mail.text.startswith("Undelivered Mail Returned to Sender: This is the mail system at host")
    assert mail.attachments == ("message/delivery-status", "text/rfc822-headers")
    assert mail.from_header == "MAILER-DAEMON@sms-gw.example.net (Mail Delivery System)"


def test_attachment_only_mail_gives_the_subject_and_lists_the_file() -> None:
    mail = composed("attachment_only")
    assert mail.text == "Scan from MFP-3"
    assert mail.attachments == ("scan_0042.pdf",)


@pytest.mark.parametrize("path", sorted(DATA.glob("compose_*.eml")), ids=lambda path: path.stem)
def test_every_sample_gives_the_same_result_by_the_fast_and_the_full_path(path: Path) -> None:
    raw = path.read_bytes()
    assert compose_module._compose(raw, DEFAULTS, fast=True) == compose_module._compose(raw, DEFAULTS, fast=False)


@pytest.mark.parametrize("path", sorted(DATA.glob("compose_*.eml")), ids=lambda path: path.stem)
def test_every_sample_keeps_its_original_headers_for_reports(path: Path) -> None:
    names = [name for name, _ in compose(path.read_bytes(), DEFAULTS).original_headers]
    assert names == ["From", "To", "Subject", "Date", "Message-ID"]
