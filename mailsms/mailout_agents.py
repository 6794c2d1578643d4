"""Delivery agents of the mail-out queue: a local Maildir, an SMTP relay, an LMTP server.

Each agent takes one mail (envelope and bytes) and answers one result per
recipient: accepted, a temporary failure (tried again later) or a permanent
one.  Agents never raise for a delivery problem; the queue decides what
happens next (``mailsms.mailout``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from mailsms.config import MailoutConfig

Outcome = Literal["accepted", "temporary", "permanent"]
_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
_NEWLINE = re.compile(rb"\r?\n")


@dataclass(frozen=True)
class RecipientResult:
    recipient: str
    outcome: Outcome
    dsn: str  # RFC 3463, e.g. "2.0.0"
    reply: str  # the server's reply, or what went wrong, for the log


class Agent(Protocol):
    relay: str  # for the log line: relay=...

    async def deliver(self, sender: str, recipients: Sequence[str], message: bytes) -> list[RecipientResult]: ...


def _all(recipients: Sequence[str], outcome: Outcome, dsn: str, reply: str) -> list[RecipientResult]:
    return [RecipientResult(r, outcome, dsn, reply) for r in recipients]


def from_reply(recipient: str, code: int, message: str) -> RecipientResult:
    """A server's reply as a result: 2xx accepted, 4xx temporary, anything else permanent."""
    text = " ".join(message.split())
    found = _ENHANCED.match(text)
    first = str(code)[:1]
    dsn = found.group(1) if found and found.group(1)[0] == first else f"{first if first in '245' else '5'}.0.0"
    reply = f"{code} {text}".strip()
    if first == "2":
        return RecipientResult(recipient, "accepted", dsn, reply)
    if first == "4":
        return RecipientResult(recipient, "temporary", dsn, reply)
    return RecipientResult(recipient, "permanent", dsn, reply)


# -- Maildir -------------------------------------------------------------------------------------

_UNSAFE_MAILBOX = re.compile(r"[/\x00-\x1f\x7f]")


def mailbox_name(recipient: str) -> str:
    """The directory of ``recipient`` under the Maildir root; ValueError when it cannot be one."""
    address = recipient.strip().strip("<>")
    local, at, domain = address.rpartition("@")
    name = f"{local}@{domain.lower()}" if at else address
    if not name or name.startswith(".") or _UNSAFE_MAILBOX.search(name) or len(name.encode()) > 255:
        raise ValueError(f"no Maildir can be named after {recipient!r}")
    return name


class MaildirAgent:
    """Files in ``<root>/<recipient>/new``: written to ``tmp``, fsynced, renamed (the Maildir protocol)."""

    def __init__(self, root: Path, hostname: str) -> None:
        self.root = root
        self.relay = "maildir"
        self._host = hostname.replace("/", r"\057").replace(":", r"\072")
        self._counter = itertools.count(1)

    async def deliver(self, sender: str, recipients: Sequence[str], message: bytes) -> list[RecipientResult]:
        results = []
        for recipient in recipients:
            try:
                name = mailbox_name(recipient)
            except ValueError as exc:
                results.append(RecipientResult(recipient, "permanent", "5.1.3", str(exc)))
                continue
            try:
                path = await asyncio.to_thread(self._write, name, recipient, sender, message)
            except OSError as exc:
                full = exc.errno == 28  # ENOSPC
                reason = f"cannot write to the Maildir of {name}: {exc.strerror or exc}"
                results.append(RecipientResult(recipient, "temporary", "4.3.1" if full else "4.2.0", reason))
                continue
            results.append(RecipientResult(recipient, "accepted", "2.0.0", f"delivered to maildir ({path.name})"))
        return results

    def _unique(self) -> str:
        now = time.time()
        seconds, micros = int(now), int((now % 1) * 1_000_000)
        return f"{seconds}.M{micros}P{os.getpid()}Q{next(self._counter)}.{self._host}"

    def _write(self, name: str, recipient: str, sender: str, message: bytes) -> Path:
        folder = self.root / name
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        unique = self._unique()
        tmp, new = folder / "tmp" / unique, folder / "new" / unique
        head = f"Return-Path: <{sender}>\nDelivered-To: {recipient}\n".encode()
        data = head + _NEWLINE.sub(b"\n", message)  # a Maildir file has plain LF line ends
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, new)
        directory = os.open(folder / "new", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return new


# -- SMTP and LMTP ---------------------------------------------------------------------------------


class SmtpAgent:
    """One connection per mail, to ``mailout.relay``: EHLO (LHLO), STARTTLS, AUTH, then the transaction(s).

    LMTP answers once per recipient after DATA; aiosmtplib reads one reply,
    so an LMTP mail goes one recipient per transaction.
    """

    def __init__(self, config: MailoutConfig, hostname: str, *, lmtp: bool) -> None:
        self.config = config
        self.hostname = hostname
        self.lmtp = lmtp
        target = config.relay_target()
        self._host: str | None = None
        self._port: int | None = None
        self._path: str | None = None
        if isinstance(target, str):
            self._path = self.relay = target
        else:
            self._host, self._port = target
            self.relay = f"{self._host}:{self._port}"

    async def deliver(self, sender: str, recipients: Sequence[str], message: bytes) -> list[RecipientResult]:
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            socket_path=self._path,
            local_hostname=self.hostname,
            timeout=self.config.timeout,
            start_tls=False,
            validate_certs=self.config.tls_verify,
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _all(recipients, "temporary", "4.4.1", f"connect to {self.relay}: {exc}")
        done: dict[str, RecipientResult] = {}
        try:
            refusal = await self._open(smtp)
            if refusal is not None:
                return _all(recipients, refusal.outcome, refusal.dsn, refusal.reply)
            batches = [[r] for r in recipients] if self.lmtp else [list(recipients)]
            for batch in batches:
                for result in await self._transaction(smtp, sender, batch, message):
                    done[result.recipient] = result
            await smtp.quit()
        except aiosmtplib.SMTPResponseException as exc:
            rest = [r for r in recipients if r not in done]
            done.update({r.recipient: r for r in (from_reply(x, exc.code, exc.message) for x in rest)})
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            rest = [r for r in recipients if r not in done]
            reason = f"lost connection with {self.relay}: {exc}"
            done.update({r.recipient: r for r in _all(rest, "temporary", "4.4.2", reason)})
        finally:
            smtp.close()
        return [done[r] for r in recipients]

    async def _hello(self, smtp: aiosmtplib.SMTP) -> None:
        if not self.lmtp:
            await smtp.ehlo()
            return
        reply = await smtp.execute_command(b"LHLO", self.hostname.encode("ascii", "replace"))
        if reply.code != 250:
            raise aiosmtplib.SMTPResponseException(reply.code, reply.message)
        smtp.last_ehlo_response = reply  # so that aiosmtplib knows the extensions and sends no EHLO

    async def _open(self, smtp: aiosmtplib.SMTP) -> RecipientResult | None:
        """Greeting done: say hello, start TLS, log in; a refusal for every recipient, or None."""
        await self._hello(smtp)
        if self.config.starttls:
            if not smtp.supports_extension("starttls"):
                return RecipientResult("", "temporary", "4.7.0", f"{self.relay} offers no STARTTLS (mailout.starttls)")
            context = ssl.create_default_context()
            if not self.config.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            await smtp.starttls(tls_context=context)
            await self._hello(smtp)
        if self.config.username:
            try:
                await smtp.login(self.config.username, self.config.password)
            except aiosmtplib.SMTPAuthenticationError as exc:
                return RecipientResult("", "temporary", "4.7.8", f"{self.relay} refused the login: {exc.code}")
        return None

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, sender: str, recipients: Sequence[str], message: bytes
    ) -> list[RecipientResult]:
        utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        options = []
        if not message.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if utf8:
            if not smtp.supports_extension("smtputf8"):
                return _all(recipients, "permanent", "5.6.7", f"{self.relay} does not support SMTPUTF8")
            options.append("SMTPUTF8")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            await smtp.mail(sender, options=options, encoding=encoding)
        except aiosmtplib.SMTPSenderRefused as exc:
            await smtp.rset()
            return [from_reply(r, exc.code, exc.message) for r in recipients]
        results: dict[str, RecipientResult] = {}
        accepted = []
        for recipient in recipients:
            try:
                await smtp.rcpt(recipient, encoding=encoding)
                accepted.append(recipient)
            except aiosmtplib.SMTPRecipientRefused as exc:
                results[recipient] = from_reply(recipient, exc.code, exc.message)
        if not accepted:
            await smtp.rset()
            return [results[r] for r in recipients]
        try:
            reply = await smtp.data(message)
            results.update({r: from_reply(r, reply.code, reply.message) for r in accepted})
        except aiosmtplib.SMTPDataError as exc:
            results.update({r: from_reply(r, exc.code, exc.message) for r in accepted})
        return [results[r] for r in recipients]


def make_agent(config: MailoutConfig, hostname: str, default_maildir: Path) -> Agent:
    """The agent for ``mailout.mode``."""
    if config.mode == "maildir":
        return MaildirAgent(Path(config.maildir) if config.maildir else default_maildir, hostname)
    return SmtpAgent(config, hostname, lmtp=config.mode == "lmtp")
