"""A milter session judges sms: recipients with the LMTP server's own Handler, and scrubs pass= at end."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mailsms.config import Config
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


async def test_smtp_auth_identity_reaches_the_policy():
    session = await session_after_mail(b"{auth_authen}\x00alice\x00")
    [reply] = await session.handle(rcpt('"sms:+15551234567"@sms.example.test'))
    assert reply[4:15] == b"y535 5.7.8 "  # no account store here: the account is unknown


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
