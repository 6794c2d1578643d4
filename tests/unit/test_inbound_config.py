"""[inbound], [replylog] and mailout.dkim_*: defaults, and every problem named with its key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsms import config
from mailsms.config import ConfigInvalid, InboundConfig, ReplylogConfig

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        config.parse(text, "f.toml")
    return [p.render("f.toml") for p in info.value.problems]


def test_defaults_follow_icewarp() -> None:
    loaded = config.parse("")
    assert loaded.replylog == ReplylogConfig()
    assert (loaded.replylog.record, loaded.replylog.keep_minutes) == ("all", 10080)
    assert loaded.inbound.from_template == "sms:%s@sms.example.com"
    assert loaded.inbound.local_domains == () and loaded.inbound.unmatched_recipient == ""
    assert loaded.inbound.reassembly_timeout == 300.0


def test_the_default_conflict_message_fits_one_sms_and_the_example_file_says_the_same() -> None:
    from mailsms.segment import split_with_config

    message = ReplylogConfig().conflict_message
    assert not split_with_config(message, config.SegmentConfig(), maxmsgs=1, reference=0).truncated
    assert config.load(ROOT / "conf" / "mailsms.toml").replylog.conflict_message == message
    assert config.load(ROOT / "conf" / "mailsms.toml").inbound == InboundConfig()


def test_a_full_section_is_read() -> None:
    loaded = config.parse(
        "[inbound]\nlocal_domains = ['mail.example.test']\nunmatched_recipient = 'pm@mail.example.test'\n"
        "from_template = 'sms:%s@sms.example.test'\nreassembly_timeout = '2m'\n"
        "[replylog]\nrecord = 'authenticated'\nkeep_minutes = 60\nconflict_message = 'Use #email#'\n"
    )
    assert loaded.inbound.local_domains == ("mail.example.test",)
    assert loaded.inbound.reassembly_timeout == 120.0
    assert (loaded.replylog.record, loaded.replylog.keep_minutes) == ("authenticated", 60)


def test_bad_values_are_named_with_their_key_and_line() -> None:
    assert problems(
        "[inbound]\n"
        "local_domains = ['mail example']\n"
        "unmatched_recipient = 'nobody'\n"
        "from_template = 'sms:%s'\n"
        "subject_template = 'SMS {sender}'\n"
        "[replylog]\n"
        "record = 'some'\n"
        "conflict_message = ''\n"
    ) == [
        "f.toml:7: replylog.record: expected one of 'all', 'authenticated', 'off', got 'some'",
        "f.toml:2: inbound.local_domains: 'mail example' is not a domain name",
        "f.toml:3: inbound.unmatched_recipient: 'nobody' is not a valid mail address",
        "f.toml:4: inbound.from_template: must render to local@domain in ASCII",
        "f.toml:5: inbound.subject_template: unknown placeholder {sender}: use {from}, {to}, {gateway}, {text}, "
        "{subject}",
        "f.toml:8: replylog.conflict_message: must not be empty: the replier needs to know what to do",
    ]


def test_from_template_needs_exactly_one_number() -> None:
    assert problems("[inbound]\nfrom_template = 'sms@sms.example.test'\n") == [
        "f.toml:2: inbound.from_template: must hold %s (the number) once, as in sms:%s@sms.example.com"
    ]


def test_dkim_keys_go_together() -> None:
    assert problems("[mailout]\ndkim_selector = 'sms'\n") == [
        "f.toml:1: mailout.dkim_domain: required when any mailout.dkim_* key is set",
        "f.toml:1: mailout.dkim_key_file: required when any mailout.dkim_* key is set",
    ]
