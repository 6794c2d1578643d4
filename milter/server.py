"""The milter service: one asyncio session per MTA connection, recipients checked by mailsms's own Handler.

The policy is not here: an ``sms:`` recipient goes through ``Handler.check_rcpt``,
the very check the LMTP and SMTP listeners use, and its reply (``553 5.1.3 ...``)
goes back to the MTA as SMFIR_REPLYCODE.  Other recipients pass untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from typing import Protocol

from mailsms.accounts import Account
from mailsms.config import Config
from mailsms.log import redact as redact_text
from mailsms.smtpproto import SmsEnvelope
from milter import protocol as p

log = logging.getLogger("mailsms.milter")

# Headers that carry sms: recipients, and so may carry pass= values.
SCRUBBED_HEADERS = frozenset({"to", "cc"})
# The SMTP AUTH identity for mailsms's LMTP server (trusted from server.trusted_mta only):
# every copy that came with the mail is deleted, ours is added when the client authenticated.
AUTH_HEADER = "X-Mailsms-Auth"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ACTIONS = p.SMFIF_CHGHDRS | p.SMFIF_ADDHDRS
PROTOCOL = p.SMFIP_NOBODY  # the body is not needed to decide anything
KEPT_MACROS = ("{auth_authen}", "{client_addr}", "i", "{rcpt_addr}")
_READ_SIZE = 65536


class RcptChecker(Protocol):
    """What a session needs from mailsms.server.Handler."""

    config: Config

    def account(self, user: str) -> Account | None: ...

    async def check_rcpt(
        self, envelope: SmsEnvelope, address: str, params: dict[str, str], *, take_tokens: bool = True
    ) -> str: ...


def is_sms_recipient(address: str, config: Config) -> bool:
    """An ``sms:`` local part, or a domain in address.sms_domains: the recipients mailsms judges."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if text.lstrip('"')[:4].lower() == "sms:":
        return True
    domain = text.rpartition("@")[2].lower().rstrip(".")
    return bool(domain) and domain in {d.lower().rstrip(".") for d in config.address.sms_domains}


class MilterSession:
    """The state of one MTA connection; ``handle`` answers one packet (None: close the connection)."""

    def __init__(self, checker: RcptChecker) -> None:
        self.checker = checker
        self.macros: dict[str, str] = {}
        self.client: str | None = None
        self._new_message()

    def _new_message(self) -> None:
        self.envelope = SmsEnvelope()
        self.headers: list[tuple[str, str]] = []

    async def handle(self, packet: p.Packet) -> list[bytes] | None:
        command = packet.command
        if command == p.SMFIC_OPTNEG:
            offered = p.parse_optneg(packet.data)
            return [p.encode_optneg(p.negotiate(offered, ACTIONS, PROTOCOL))]
        if command == p.SMFIC_MACRO:
            stage, macros = p.parse_macros(packet.data)
            if stage == p.SMFIC_MAIL:  # a new transaction: its own {auth_authen}, or none
                self.macros.pop("{auth_authen}", None)
            self.macros.update((k, v) for k, v in macros.items() if k in KEPT_MACROS)
            return []
        if command == p.SMFIC_CONNECT:
            strings = packet.data.split(b"\0")
            if len(strings) >= 2 and len(strings[1]) > 3:  # family byte, 2-byte port, then the address
                self.client = strings[1][3:].decode("ascii", "replace")
            return [p.continue_()]
        if command == p.SMFIC_MAIL:
            self._new_message()
            sender, params = p.parse_address_args(packet.data)
            self.envelope.mail_from = sender.strip("<>")
            self.envelope.mail_params = params
            return [p.continue_()]
        if command == p.SMFIC_RCPT:
            return [await self._rcpt(packet.data)]
        if command == p.SMFIC_HEADER:
            name, value = p.parse_header(packet.data)
            if name.lower() in SCRUBBED_HEADERS or name.lower() == AUTH_HEADER.lower():
                self.headers.append((name, value))
            return [p.continue_()]
        if command == p.SMFIC_BODYEOB:
            login = self.macros.get("{auth_authen}", "")
            replies = [*self._scrub_headers(), *auth_header_changes(self.headers, login), p.continue_()]
            self._new_message()
            return replies
        if command in (p.SMFIC_HELO, p.SMFIC_DATA, p.SMFIC_EOH, p.SMFIC_BODY, p.SMFIC_UNKNOWN):
            return [p.continue_()]
        return self._control(command)

    def _control(self, command: bytes) -> list[bytes] | None:
        """ABORT, QUIT_NC and QUIT, which get no reply."""
        if command == p.SMFIC_ABORT:
            self._new_message()
            return []
        if command == p.SMFIC_QUIT_NC:  # a new SMTP connection over the same milter connection
            self.macros.clear()
            self.client = None
            self._new_message()
            return []
        if command == p.SMFIC_QUIT:
            return None
        raise p.MilterProtocolError(f"unknown command {command!r}")

    async def _rcpt(self, data: bytes) -> bytes:
        address, params = p.parse_address_args(data)
        config = self.checker.config
        if not is_sms_recipient(address, config):
            return p.continue_()
        envelope = self.envelope
        envelope.channel = "smtp"  # the mail reached the MTA over SMTP
        envelope.client = self.macros.get("{client_addr}") or self.client
        login = self.macros.get("{auth_authen}", "")
        # As the LMTP server will judge X-Mailsms-Auth: a login that names no mailsms account
        # (a mail user without SMS rights) is not authenticated here, rather than refused.
        envelope.auth_user = login if login and self.checker.account(login) is not None else ""
        try:
            rcpt = address.strip().removeprefix("<").removesuffix(">")
            # rate limits are counted once, by the LMTP delivery that follows
            reply = await self.checker.check_rcpt(envelope, rcpt, params, take_tokens=False)
        except Exception:  # a bug must not make the MTA accept: answer as milter_default_action = tempfail would
            log.exception("milter: checking a recipient failed")
            return p.tempfail()
        return p.continue_() if reply.startswith("2") else p.replycode(reply)

    def _scrub_headers(self) -> list[bytes]:
        replies: list[bytes] = []
        seen: dict[str, int] = {}
        for name, value in self.headers:
            index = seen[name.lower()] = seen.get(name.lower(), 0) + 1
            if name.lower() not in SCRUBBED_HEADERS:
                continue
            cleaned = redact_text(value)
            if cleaned != value:
                replies.append(p.chgheader(name, index, cleaned))
        return replies


def auth_header_changes(headers: list[tuple[str, str]], login: str) -> list[bytes]:
    """Delete every X-Mailsms-Auth the mail came with; add ours naming ``login`` ("" : not authenticated).

    Deleted last to first: whether an MTA still counts a deleted header in later
    indexes then does not matter (the index counts headers of that name, from 1).
    """
    foreign = sum(1 for name, _ in headers if name.lower() == AUTH_HEADER.lower())
    if foreign:
        log.info("milter: removing %d %s header(s) that came with the mail", foreign, AUTH_HEADER)
    replies = [p.chgheader(AUTH_HEADER, index, "") for index in range(foreign, 0, -1)]
    login = _CONTROL.sub("", login).strip()  # a login must not end the header or start another
    if login:
        replies.append(p.addheader(AUTH_HEADER, login))
    return replies


async def _serve_connection(checker: RcptChecker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    session = MilterSession(checker)
    packets = p.PacketReader()
    peer = writer.get_extra_info("peername")
    try:
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                packets.close()
                return
            for packet in packets.feed(data):
                replies = await session.handle(packet)
                if replies is None:
                    return
                writer.write(b"".join(replies))
            await writer.drain()
    except p.MilterProtocolError as exc:
        log.warning("milter: closing connection from %s: %s", peer, exc)
    except (ConnectionError, OSError) as exc:
        log.info("milter: connection from %s lost: %s", peer, exc)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def start_milter(checker: RcptChecker, spec: str, *, start_serving: bool = True) -> asyncio.Server:
    """Bind ``inet:HOST:PORT`` or ``unix:/path`` (and serve, unless told not to yet).

    OSError propagates for the caller to name the address.
    """
    kind, where, port = p.parse_socket(spec)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(checker, reader, writer)

    if kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where)  # a socket left by a previous run
        return await asyncio.start_unix_server(connected, path=where, start_serving=start_serving)
    return await asyncio.start_server(connected, where, port, start_serving=start_serving)
