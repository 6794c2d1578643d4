"""DKIM: keys made here sign mail that verifies against the DNS record printed for them (offline)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dkim
import pytest

from mailsms.config import MailoutConfig
from mailsms.dkim_sign import DkimSigner, dkim_problems, generate_key, load_signer
from mailsms.errors import ConfigError

MAIL = (
    b'From: +15551234567 <"sms:+15551234567"@sms.example.test>\r\nTo: alice@mail.example.test\r\n'
    b"Subject: SMS from +15551234567\r\nMessage-ID: <1@gw.example.test>\r\n\r\nYes, at noon\r\n"
)


def verifies(signed: bytes, txt: str, name: bytes = b"sms._domainkey.sms.example.test.") -> bool:
    return bool(dkim.verify(signed, dnsfunc=lambda asked, timeout=5: txt.encode() if asked == name else None))


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_a_generated_key_signs_and_its_record_verifies(algorithm: str) -> None:
    if algorithm == "rsa" and shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed for RSA keys (apt-get install openssl)")
    key = generate_key(algorithm, bits=1024)
    signed = DkimSigner("sms", "sms.example.test", key.private, algorithm).sign(MAIL)
    assert signed.startswith(b"DKIM-Signature: v=1; a=" + (b"ed25519" if algorithm == "ed25519" else b"rsa"))
    assert signed.endswith(MAIL)
    assert verifies(signed, key.txt_value())
    assert not verifies(signed.replace(b"Yes, at noon", b"No, never"), key.txt_value())


def test_headers_that_matter_are_signed_even_when_absent() -> None:
    key = generate_key("ed25519")
    signed = DkimSigner("sms", "sms.example.test", key.private, "ed25519").sign(MAIL)
    injected = signed.replace(b"\r\n\r\n", b"\r\nReply-To: mallory@evil.example\r\n\r\n", 1)
    assert not verifies(injected, key.txt_value())


def test_the_dns_record_is_cut_into_255_character_strings() -> None:
    key = generate_key("rsa", bits=2048)
    record = key.dns_record("sms", "sms.example.test")
    assert record.startswith('sms._domainkey.sms.example.test. IN TXT ( "v=DKIM1; k=rsa; p=')
    strings = record.split('"')[1::2]
    assert all(len(s) <= 255 for s in strings) and "".join(strings) == key.txt_value()


def test_dkim_keys_go_together() -> None:
    assert dkim_problems(MailoutConfig()) == []
    assert dkim_problems(MailoutConfig(dkim_selector="sms")) == [
        ("mailout.dkim_domain", "required when any mailout.dkim_* key is set"),
        ("mailout.dkim_key_file", "required when any mailout.dkim_* key is set"),
    ]
    bad = MailoutConfig(dkim_selector="a b", dkim_domain="-x", dkim_key_file="/k")
    assert [key for key, _ in dkim_problems(bad)] == ["mailout.dkim_selector", "mailout.dkim_domain"]


def test_load_signer_names_the_key_that_cannot_be_used(tmp_path: Path) -> None:
    assert load_signer(MailoutConfig()) is None
    missing = MailoutConfig(dkim_selector="s", dkim_domain="d.example", dkim_key_file=str(tmp_path / "none"))
    with pytest.raises(ConfigError, match=r"cannot read .*mailout\.dkim_key_file"):
        load_signer(missing)
    ed_key = tmp_path / "ed.key"
    ed_key.write_bytes(generate_key("ed25519").private)
    wrong_type = MailoutConfig(dkim_selector="s", dkim_domain="d.example", dkim_key_file=str(ed_key))
    with pytest.raises(ConfigError, match="is not a PEM RSA private key"):
        load_signer(wrong_type)
    signer = load_signer(MailoutConfig(dkim_selector="s", dkim_domain="d.example", dkim_key_file=str(ed_key),
                                       dkim_algorithm="ed25519"))  # fmt: skip
    assert signer is not None and signer.algorithm == "ed25519"
