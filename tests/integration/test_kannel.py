"""A real Kannel (bearerbox + smsbox + fakesmsc) between mailsms and the "SMSC".

Mail goes in over LMTP, mailsms sends each part to Kannel's sendsms with its
own UDH, and fakesmsc shows what an SMSC would have received.  Kannel's
delivery reports come back to ``/dlr/kannel`` and MOs typed into fakesmsc
arrive at ``/inbound/kannel`` through the sms-service's get-url.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from mailsms.segment import split_text
from tests.integration.conftest import MailsmsProcess, MailsmsStarter
from tests.support.kannel import KannelInstance, MtLine
from tests.support.lmtp import LmtpClient
from tests.support.proc import free_port, run_cli
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration
T = TypeVar("T")

SENDER = "alice@client.example.test"
NUMBER = "+15551234567"
# 400 characters of GSM text; "€" and braces take two septets each, so a splitter that counts
# characters instead of septets would overfill a part and Kannel would split it again.
GSM_400 = ("Dear team, the release {v2} costs 10€ per seat. " * 9)[:400]
# A UCS-2 cut after 67 units would fall inside the 33rd emoji (its surrogate pair).
EMOJI = "OK" + "\U0001f600" * 40 + " bye"


@dataclass
class Setup:
    kannel: KannelInstance
    mailsms: MailsmsProcess

    def cli(self, *args: str) -> Any:
        """Run ``mailsms ARGS --json`` against this instance's state; the parsed output."""
        config = self.mailsms.state.with_suffix(".cli.toml")
        config.write_text(f'[state]\ndir = "{self.mailsms.state}"\n[store]\nurl = "{self.mailsms.store_url}"\n')
        result = run_cli([*args, "--json", "--config", str(config)])
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def start_pair(start_mailsms: MailsmsStarter, secret: str = "") -> Iterator[Setup]:
    """Kannel whose get-url points at mailsms, and mailsms whose kannel gateway points at Kannel."""
    http_port = free_port()
    inbound = f"http://127.0.0.1:{http_port}/inbound/kannel" + (f"?secret={secret}" if secret else "")
    with KannelInstance(inbound_url=inbound) as kannel:
        config = f'[web]\npublic_url = "http://127.0.0.1:{http_port}"\n\n{kannel.gateway_toml("kannel")}'
        if secret:
            config += f'webhook_secret = "{secret}"\n'
        yield Setup(kannel, start_mailsms(config=config, http_port=http_port))


@pytest.fixture
def kannel_setup(start_mailsms: MailsmsStarter) -> Iterator[Setup]:
    yield from start_pair(start_mailsms)


@pytest.fixture
def kannel_setup_with_secret(start_mailsms: MailsmsStarter) -> Iterator[Setup]:
    yield from start_pair(start_mailsms, secret="s3cr3t-for-webhooks")


def mail(text: str, recipient: str) -> bytes:
    return (
        f"From: Alice <{SENDER}>\r\nTo: {recipient}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
    ).encode()


async def send_mail(setup: Setup, text: str, maxmsgs: int) -> str:
    """Deliver one mail over LMTP; returns mailsms's queue id."""
    recipient = f'"sms:{NUMBER}?maxmsgs={maxmsgs}"@sms.example.test'
    client = await LmtpClient.connect("127.0.0.1", setup.mailsms.lmtp_port)
    try:
        assert (await client.command("LHLO client.example.test")).code == 250
        _, rcpts, replies = await client.send(SENDER, [recipient], mail(text, recipient))
    finally:
        await client.close()
    assert [r.code for r in rcpts] == [250]
    [reply] = replies
    match = re.search(r"(\S+) queued as SMS", reply.text)
    assert reply.code == 250 and match, reply
    return match.group(1)


def assert_concatenated(lines: list[MtLine], text: str, encoding: Literal["gsm7", "ucs2"]) -> None:
    """The lines are one concatenated SMS: same 8-bit reference, seq 1..n, parts adding up to ``text``."""
    total = len(lines)
    references = {line.udh[3] for line in lines}
    assert len(references) == 1
    for seq, line in enumerate(lines, start=1):
        assert line.kind == "udh"
        assert line.receiver == NUMBER  # "+" arrived as "+", not as a space
        assert line.udh == bytes([0x05, 0x00, 0x03, line.udh[3], total, seq])
    assert "".join(line.text(encoding) for line in lines) == text
    # The parts are exactly the ones mailsms's own segmenter made.
    expected = split_text(text, encoding=encoding, maxmsgs=total)
    assert [line.text(encoding) for line in lines] == [part.text for part in expected.parts]


def poll(setup: Setup, fetch: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = 20.0) -> T:
    """Call ``fetch`` until ``done`` holds for its answer; the last answer and smsbox's log on failure."""
    seen: list[T] = []

    def holds() -> bool:
        seen[:] = [fetch()]
        return done(seen[0])

    try:
        wait_until(holds, timeout=timeout, interval=0.1, what=what)
    except AssertionError as exc:
        last = seen[0] if seen else None
        raise AssertionError(f"{exc}\nlast: {last}\n--- smsbox ---\n{setup.kannel.log_tail('smsbox')}") from None
    return seen[0]


def wait_for_part_states(setup: Setup, queue_id: str, state: str) -> dict[str, Any]:
    def reached(message: dict[str, Any]) -> bool:
        return bool(message["parts"]) and all(p["state"] == state for p in message["parts"])

    return poll(setup, lambda: setup.cli("queue", "show", queue_id), reached, f"every part of {queue_id} {state}")


def wait_for_inbound(setup: Setup, count: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = poll(
        setup, lambda: setup.cli("inbound", "list"), lambda found: len(found) >= count, f"{count} MO(s) stored"
    )
    return entries


async def test_a_400_character_text_reaches_the_smsc_as_three_concatenated_gsm_parts(kannel_setup: Setup) -> None:
    queue_id = await send_mail(kannel_setup, GSM_400, maxmsgs=3)

    lines = kannel_setup.kannel.wait_for_mt(3)

    assert len(lines) == 3
    assert_concatenated(lines, GSM_400, "gsm7")
    # The parts' ids are mailsms's own: that is what the dlr-url carries back.
    # ... recorded once Kannel's answers are back, a moment after fakesmsc has the parts.
    message = poll(
        kannel_setup,
        lambda: kannel_setup.cli("queue", "show", queue_id),
        lambda found: len(found["parts"]) == 3 and all(p["gateway_id"] for p in found["parts"]),
        "the parts' gateway ids recorded",
    )
    assert [p["gateway_id"] for p in message["parts"]] == [f"{queue_id}.{seq}" for seq in (1, 2, 3)]


async def test_an_emoji_text_goes_as_ucs2_parts_that_never_split_an_emoji(kannel_setup: Setup) -> None:
    await send_mail(kannel_setup, EMOJI, maxmsgs=3)

    lines = kannel_setup.kannel.wait_for_mt(2)

    assert len(lines) == 2
    assert_concatenated(lines, EMOJI, "ucs2")  # strict UTF-16 decoding: a half emoji fails here


async def test_delivery_reports_from_the_smsc_mark_every_part_delivered(kannel_setup: Setup) -> None:
    queue_id = await send_mail(kannel_setup, GSM_400, maxmsgs=3)
    kannel_setup.kannel.wait_for_mt(3)

    message = wait_for_part_states(kannel_setup, queue_id, "delivered")

    assert message["state"] == "delivered"


async def test_an_mo_at_the_smsc_arrives_through_kannels_get_url_and_is_committed(kannel_setup: Setup) -> None:
    kannel_setup.kannel.inject_mo("+15557654321", "12345", "Running late, start without me")

    [entry] = wait_for_inbound(kannel_setup, 1)

    assert entry["gateway"] == "kannel"
    assert entry["from"] == "+15557654321"
    assert entry["to"] == "12345"
    assert entry["text"] == "Running late, start without me"


async def test_a_ucs2_mo_with_an_emoji_arrives_as_the_same_text(kannel_setup: Setup) -> None:
    kannel_setup.kannel.inject_mo("+15557654321", "12345", "Grüße \U0001f600 bis gleich")

    [entry] = wait_for_inbound(kannel_setup, 1)

    assert entry["text"] == "Grüße \U0001f600 bis gleich"  # mo-recode: UTF-8, not U+FFFD


async def test_with_a_webhook_secret_reports_and_mos_still_come_home(kannel_setup_with_secret: Setup) -> None:
    setup = kannel_setup_with_secret
    queue_id = await send_mail(setup, "Short one", maxmsgs=1)
    setup.kannel.inject_mo("+15557654321", "12345", "Got it")

    assert wait_for_part_states(setup, queue_id, "delivered")["state"] == "delivered"  # the dlr-url carried it
    [entry] = wait_for_inbound(setup, 1)
    assert entry["text"] == "Got it"
    log = setup.mailsms.stop()
    assert "s3cr3t-for-webhooks" not in log


def test_the_harness_sees_what_kannel_sends_without_mailsms() -> None:
    """The capture itself: a part sent straight to sendsms comes out of fakesmsc byte for byte."""
    import urllib.request

    with KannelInstance() as kannel:
        query = (
            f"username={kannel.username}&password={kannel.password}&to=%2B15551234567"
            "&text=%00h%00i%00+%D8%3D%DE%00&coding=2&charset=UTF-16BE&udh=%05%00%03%2A%02%01"
        )
        with urllib.request.urlopen(f"{kannel.sendsms_url}?{query}", timeout=10) as response:
            assert response.status == 202
            assert response.read() == b"0: Accepted for delivery"
        [line] = kannel.wait_for_mt(1)

    assert line == MtLine("12345", NUMBER, "udh", bytes.fromhex("0500032a0201"), "hi \U0001f600".encode("utf-16-be"))


def test_a_missing_kannel_binary_fails_the_test_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support import kannel as harness

    missing = Path("/nonexistent/fakesmsc")
    monkeypatch.setattr(harness, "PACKAGES", {**harness.PACKAGES, missing: "kannel-extras"})

    with pytest.raises(harness.KannelError, match="install kannel-extras"):
        KannelInstance().start()
