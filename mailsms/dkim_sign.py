"""DKIM signatures on the mail mailsms makes (dkimpy), and keys for them.

``mailout.dkim_selector``, ``dkim_domain`` and ``dkim_key_file`` together
turn signing on; ``dkim_algorithm`` is ``rsa`` (rsa-sha256; the key file is
a PEM RSA private key) or ``ed25519`` (ed25519-sha256, RFC 8463; the key
file holds the base64 seed, as dkimpy's ``dknewkey`` writes it; needs
pynacl).  A mail is signed before it enters the mail-out queue, with
relaxed/simple canonicalisation, and the headers that matter are signed
even when absent, so that nobody can add them later.

``generate_key`` makes a key and the DNS TXT record for it: ed25519 with
pynacl, RSA with the ``openssl`` command (as ``dknewkey`` does).
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailsms.errors import ConfigError

if TYPE_CHECKING:
    from mailsms.config import MailoutConfig

SIGNED_HEADERS = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references", b"reply-to",
    b"mime-version", b"content-type", b"content-transfer-encoding",
)  # fmt: skip
ALGORITHMS = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
OPENSSL = "openssl"


@dataclass(frozen=True)
class DkimSigner:
    selector: str
    domain: str
    key: bytes
    algorithm: str  # "rsa" or "ed25519"

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line ends) with a DKIM-Signature header in front."""
        import dkim

        signature: bytes = dkim.sign(
            message,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.key,
            include_headers=list(SIGNED_HEADERS),
            signature_algorithm=ALGORITHMS[self.algorithm],
            linesep=b"\r\n",
        )
        return signature + message


def dkim_problems(settings: MailoutConfig) -> list[tuple[str, str]]:
    """(key, problem) for ``mailout.dkim_*`` keys that do not go together (no file is read)."""
    from replylog.route import is_domain

    given = {k: v for k, v in (("dkim_selector", settings.dkim_selector), ("dkim_domain", settings.dkim_domain),
                               ("dkim_key_file", settings.dkim_key_file)) if v}  # fmt: skip
    if not given:
        return []
    problems = [
        (f"mailout.{key}", "required when any mailout.dkim_* key is set")
        for key in ("dkim_selector", "dkim_domain", "dkim_key_file")
        if key not in given
    ]
    if settings.dkim_selector and not is_domain(settings.dkim_selector):
        problems.append(("mailout.dkim_selector", "must be letters, digits, '-' and '.'"))
    if settings.dkim_domain and not is_domain(settings.dkim_domain):
        problems.append(("mailout.dkim_domain", "must be a domain name such as sms.example.com"))
    return problems


def load_signer(settings: MailoutConfig) -> DkimSigner | None:
    """The signer ``mailout.dkim_*`` asks for, or None; ConfigError when the key cannot be used."""
    if not settings.dkim_key_file:
        return None
    path = Path(settings.dkim_key_file)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path} (mailout.dkim_key_file): {exc.strerror or exc}") from None
    signer = DkimSigner(settings.dkim_selector, settings.dkim_domain, key.strip() + b"\n", settings.dkim_algorithm)
    probe = b"From: a@example.com\r\nSubject: probe\r\n\r\nprobe\r\n"
    try:
        signer.sign(probe)
    except Exception as exc:
        what = "an ed25519 key (base64 seed)" if settings.dkim_algorithm == "ed25519" else "a PEM RSA private key"
        raise ConfigError(
            f"{path} (mailout.dkim_key_file) is not {what} for mailout.dkim_algorithm: {type(exc).__name__}"
        ) from None
    return signer


@dataclass(frozen=True)
class GeneratedKey:
    private: bytes  # the key file's content
    public: str  # base64, the p= of the DNS record
    algorithm: str

    def txt_value(self) -> str:
        return f"v=DKIM1; k={self.algorithm}; p={self.public}"

    def dns_record(self, selector: str, domain: str) -> str:
        """The TXT record in zone-file form, cut into strings of at most 255 characters."""
        value = self.txt_value()
        chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"


def generate_key(algorithm: str, bits: int = 2048) -> GeneratedKey:
    """A new private key and its public half; RuntimeError when the tools for it are missing."""
    if algorithm == "ed25519":
        try:
            from nacl.signing import SigningKey
        except ImportError:
            raise RuntimeError("ed25519 keys need pynacl (pip install pynacl)") from None
        seed = SigningKey.generate()
        private = base64.b64encode(bytes(seed)) + b"\n"
        return GeneratedKey(private, base64.b64encode(bytes(seed.verify_key)).decode("ascii"), "ed25519")
    private = _openssl(["genrsa", "-traditional", str(bits)], b"")
    public_der = _openssl(["rsa", "-pubout", "-outform", "DER"], private)
    return GeneratedKey(private, base64.b64encode(public_der).decode("ascii"), "rsa")


def _openssl(args: list[str], stdin: bytes) -> bytes:
    try:
        done = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, timeout=120, check=False)  # noqa: S603
    except FileNotFoundError:
        raise RuntimeError("RSA keys need the openssl command (apt-get install openssl)") from None
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace').strip()[:200]}")
    return done.stdout
