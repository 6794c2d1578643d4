"""A milter session judges sms: recipients with the LMTP server's own Handler, and scrubs pass= at end."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

from mailsms.accounts import Account
from mailsms.config import Config, PolicyConfig
from mailsms.server import Handler
from milter import protocol as p
from milter.server import MilterSession, is_sms_recipient, start_milter

OPTNEG = p.encode(p.SMFIC_OPTNEG, b"\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff")


def handler() -> Handler:
    return Handler(Config(), None, lambda: None)


def rcpt(address: str) -> p.Packet:
    return p.Packet(p.SMFIC_RCPT, f"<{address}>\0".encode())


async def session_after_mail(macros: bytes = b"{client_addr}\x00127.0.0.1\x00") -> MilterSession:
    session = MilterSession(handler())
    await session.handle(p.Packet(p.SMFIC_MACRO, b"C" + macros))
    assert await session.handle(p.Packet(p.SMFIC_MAIL, b"<bob@example.test>\x00")) == [p.continue_()]
    return session


@pytest.mark.parametrize("address", ['"sms:+15551234567"@sms.example.test', "SMS:+15551234567@x.test", '<"sms:1"@x>'])
def test_sms_local_part_is_judged(address):
    assert is_sms_recipient(address, Config())


def test_other_recipients_are_not_judged():
    assert not is_sms_recipient("<bob@example.test>", Config())


async def test_bad_maxmsgs_gets_553_5_1_3_as_replycode():
    session = await session_after_mail()
    [reply] = await session.handle(rcpt('"sms:+15551234567?maxmsgs=abc"@sms.example.test'))
    assert reply.startswith(b"\x00\x00\x00") and reply[4:15] == b"y553 5.1.3 "


async def test_premium_number_gets_550_5_7_1():
    session = await session_after_mail()
    [reply] = await session.handle(rcpt('"sms:+19005550123"@sms.example.test'))
    assert reply[4:15] == b"y550 5.7.1 "


async def test_good_and_plain_recipients_continue():
    session = await session_after_mail()
    assert await session.handle(rcpt('"sms:+15551234567?maxmsgs=2"@sms.example.test')) == [p.continue_()]
    assert await session.handle(rcpt("bob@example.test")) == [p.continue_()]


class WithAccounts(Handler):
    """The real Handler with accounts from a dict instead of the store."""

    def __init__(self, config: Config, accounts: dict[str, Account]) -> None:
        super().__init__(config, None, lambda: None)
        self.accounts = accounts

    def account(self, user: str) -> Account | None:
        return self.accounts.get(user)


async def judged(checker: Handler, macros: bytes, address: str = '"sms:+15551234567"@sms.example.test') -> bytes:
    session = MilterSession(checker)
    await session.handle(p.Packet(p.SMFIC_MACRO, b"M" + macros))
    await session.handle(p.Packet(p.SMFIC_MAIL, b"<bob@example.test>\x00"))
    [reply] = await session.handle(rcpt(address))
    return reply


async def test_smtp_auth_identity_reaches_the_policy():
    strict = dataclasses.replace(Config(), policy=PolicyConfig(require_auth=True))
    accounts = {"alice": Account("alice", ""), "carol": Account("carol", "", inactive=True)}
    assert await judged(WithAccounts(strict, accounts), b"{auth_authen}\x00alice\x00") == p.continue_()
    disabled = await judged(WithAccounts(strict, accounts), b"{auth_authen}\x00carol\x00")
    assert disabled[4:15] == b"y550 5.7.1 "
    nobody = await judged(WithAccounts(strict, accounts), b"")
    assert nobody[4:15] == b"y530 5.7.0 "


async def test_a_login_without_a_mailsms_account_counts_as_not_authenticated():
    lenient = WithAccounts(Config(), {})
    assert await judged(lenient, b"{auth_authen}\x00mailuser\x00") == p.continue_()
    strict = WithAccounts(dataclasses.replace(Config(), policy=PolicyConfig(require_auth=True)), {})
    assert (await judged(strict, b"{auth_authen}\x00mailuser\x00"))[4:15] == b"y530 5.7.0 "


async def test_end_of_message_removes_pass_values_from_to_only():
    session = await session_after_mail()
    to = '"sms:+15551234567?user=al&pass=s3cret"@sms.example.test'
    for name, value in (("Subject", "pass=keep"), ("To", "a@b.test"), ("To", to)):
        await session.handle(p.Packet(p.SMFIC_HEADER, f"{name}\0{value}\0".encode()))
    replies = await session.handle(p.Packet(p.SMFIC_BODYEOB, b""))
    assert replies is not None
    [change, done] = replies
    assert done == p.continue_()
    assert change == p.chgheader("To", 2, to.replace("s3cret", "(set)"))


def header(name: str, value: str) -> p.Packet:
    return p.Packet(p.SMFIC_HEADER, f"{name}\0{value}\0".encode())


async def end_of_message(session: MilterSession, headers: list[tuple[str, str]]) -> list[bytes]:
    for name, value in headers:
        assert await session.handle(header(name, value)) == [p.continue_()]
    replies = await session.handle(p.Packet(p.SMFIC_BODYEOB, b""))
    assert replies is not None and replies[-1] == p.continue_()
    return replies[:-1]


async def test_authenticated_client_gets_our_x_mailsms_auth_and_foreign_copies_are_deleted_last_first():
    session = await session_after_mail(b"{auth_authen}\x00alice\x00")
    forged = [("X-Mailsms-Auth", "mallory"), ("Subject", "hi"), ("x-mailsms-auth", "eve")]
    changes = await end_of_message(session, forged)
    assert changes == [
        p.chgheader("X-Mailsms-Auth", 2, ""),
        p.chgheader("X-Mailsms-Auth", 1, ""),
        p.addheader("X-Mailsms-Auth", "alice"),
    ]


async def test_unauthenticated_client_only_loses_its_forged_x_mailsms_auth():
    session = await session_after_mail()
    changes = await end_of_message(session, [("X-Mailsms-Auth", "alice"), ("To", "bob@example.test")])
    assert changes == [p.chgheader("X-Mailsms-Auth", 1, "")]


async def test_no_auth_no_header_no_changes():
    session = await session_after_mail()
    assert await end_of_message(session, [("To", "bob@example.test"), ("Subject", "X-Mailsms-Auth: x")]) == []


async def test_auth_of_one_transaction_does_not_carry_into_the_next():
    session = await session_after_mail(b"{auth_authen}\x00alice\x00")
    assert await end_of_message(session, []) == [p.addheader("X-Mailsms-Auth", "alice")]
    await session.handle(p.Packet(p.SMFIC_MACRO, b"M" + b"i\x00ABC123\x00"))  # the next MAIL's macros: no auth
    await session.handle(p.Packet(p.SMFIC_MAIL, b"<bob@example.test>\x00"))
    assert await end_of_message(session, []) == []


async def test_a_login_cannot_inject_a_header_line():
    session = await session_after_mail(b"{auth_authen}\x00alice\r\nBcc: x@y\x00")
    [added] = await end_of_message(session, [])
    assert added == p.addheader("X-Mailsms-Auth", "aliceBcc: x@y")


async def test_the_milter_asks_for_header_changes_and_headers():
    session = MilterSession(handler())
    [reply] = await session.handle(p.Packet(p.SMFIC_OPTNEG, OPTNEG[5:])) or [b""]
    options = p.parse_optneg(reply[5:])
    assert options.actions & p.SMFIF_ADDHDRS and options.actions & p.SMFIF_CHGHDRS
    assert not options.protocol & p.SMFIP_NOHDRS


async def test_quit_closes_and_unknown_command_is_a_protocol_error():
    session = MilterSession(handler())
    assert await session.handle(p.Packet(p.SMFIC_ABORT, b"")) == []
    assert await session.handle(p.Packet(p.SMFIC_QUIT, b"")) is None
    with pytest.raises(p.MilterProtocolError):
        await session.handle(p.Packet(b"Z", b""))


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(1024), 5)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return answer


async def test_a_client_vanishing_mid_packet_leaves_others_served():
    server = await start_milter(handler(), "inet:127.0.0.1:0")
    port = server.sockets[0].getsockname()[1]
    try:
        _, broken = await asyncio.open_connection("127.0.0.1", port)
        broken.write(OPTNEG[:6])
        broken.close()
        assert await exchange(port, b"\x7f\xff\xff\xffO") == b""  # oversized: closed, no reply
        answer = await exchange(port, OPTNEG)
        assert answer[:5] == b"\x00\x00\x00\x0dO"
    finally:
        server.close()
        await server.wait_closed()


def test_milter_listen_is_checked_when_the_configuration_is_read():
    from mailsms.config import ConfigInvalid, parse

    assert parse('[milter]\nlisten = "unix:/run/mailsms/milter"\n').milter.listen == "unix:/run/mailsms/milter"
    with pytest.raises(ConfigInvalid, match=r"milter\.listen"):
        parse('[milter]\nlisten = "127.0.0.1:8891"\n')


def test_mailsms_milter_without_a_socket_is_a_usage_error(capsys):
    from mailsms.cli import main

    assert main(["milter"]) == 64
    assert "--listen" in capsys.readouterr().out
