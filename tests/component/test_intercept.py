"""Interception scripts (seed 003) through LMTP, /sms/ and the inbound pipeline."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsms.config import Config, InterceptConfig
from mailsms.daemon import Daemon
from tests.component.test_ingest import lmtp, mail, outbox_files
from tests.support.replies import inject, mo_state, wait_mail, wait_settled, with_replies
from tests.support.wait import async_wait_until
from tests.support.web import call, outbox_gateway

NUMBER = "+15551234567"
POSTMASTER = "postmaster@mail.example.test"

MT_SCRIPT = """
import threading

def intercept(message):
    if message.number == "+15550000001":
        raise Reject(554, "5.7.9", "no credit left", http=402)
    if message.number == "+15550000002":
        raise RuntimeError("the billing service is down")
    if message.number == "+15550000003":
        threading.Event().wait(5)  # hangs well past the 0.5 s limit
    if message.number == "+15550000004":
        message.number = "+19005550123"  # premium: the policy judges the new number too
    if "rewrite" in message.text:
        message.number = "+15557654321"
        message.sender = "ACME"
        message.text = message.text.upper()
        message.route = "gw2"
"""

MO_SCRIPT = """
def intercept(message):
    if "STOP" in message.text:
        raise Reject(550, "5.7.1", "opt-out handled elsewhere")
    if "boom" in message.text:
        return 42
    message.text = "[checked] " + message.text
"""


def with_scripts(config: Config, tmp_path: Path, *, mt: str = "", mo: str = "", timeout: float = 0.5) -> Config:
    paths = {}
    for kind, source in (("mt", mt), ("mo", mo)):
        if source:
            path = tmp_path / f"{kind}.py"
            path.write_text(source)
            paths[kind] = str(path)
    return dataclasses.replace(config, intercept=InterceptConfig(timeout=timeout, **paths))


@pytest.fixture
async def mt_daemon(config: Config, tmp_path: Path) -> AsyncIterator[Daemon]:
    changed = dataclasses.replace(
        with_scripts(config, tmp_path, mt=MT_SCRIPT), gateways=(outbox_gateway("outbox"), outbox_gateway("gw2"))
    )
    running = Daemon(changed)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def rcpt(number: str) -> str:
    return f'"sms:{number}"@sms.example.com'


async def test_mt_script_rewrites_number_sender_text_and_route(mt_daemon: Daemon, state_dir: Path) -> None:
    client = await lmtp(mt_daemon)
    try:
        _, rcpts, data = await client.send("alice@example.com", [rcpt(NUMBER)], mail("rewrite me", subject="s"))
    finally:
        await client.close()
    assert [r.code for r in rcpts] == [250] and [r.code for r in data] == [250]
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    sms = outbox_files(state_dir)[0]
    assert (sms["to"], sms["sender"], sms["gateway"]) == ("+15557654321", "ACME", "gw2")
    assert sms["parts"][0]["text"] == "S: REWRITE ME"  # type: ignore[index]


async def test_mt_reject_exception_and_hang_get_their_replies_per_recipient(
    mt_daemon: Daemon, state_dir: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    ours = logging.getLogger("mailsms")  # log.setup (run by other tests) stops propagation
    ours.addHandler(caplog.handler)
    request.addfinalizer(lambda: ours.removeHandler(caplog.handler))
    client = await lmtp(mt_daemon)
    numbers = ["+15550000001", "+15550000002", "+15550000003", "+15550000004", NUMBER, "+15550000002"]
    try:
        started = time.monotonic()
        _, rcpts, data = await client.send("alice@example.com", [rcpt(n) for n in numbers], mail("hello"))
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert [r.code for r in rcpts] == [250] * 6  # scripts run after DATA, per recipient, before the commit
    assert [(r.code, r.enhanced) for r in data] == [
        (554, "5.7.9"),
        (451, "4.3.5"),
        (451, "4.3.5"),  # the hang: within the 0.5 s limit, the daemon carries on
        (550, "5.7.1"),
        (250, "2.0.0"),
        (451, "4.3.5"),
    ]
    assert "no credit left" in data[0].text
    assert elapsed < 3.0
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the one outbox file")
    assert outbox_files(state_dir)[0]["to"] == NUMBER
    failures = {r.getMessage() for r in caplog.records if r.name == "mailsms.intercept" and r.levelno >= logging.ERROR}
    assert len(failures) == 1 and "the billing service is down" in failures.pop()  # once per load


async def test_mt_script_applies_to_the_http_api_with_its_chosen_status(mt_daemon: Daemon) -> None:
    refused = await call(mt_daemon, "/sms/?number=%2B15550000001&data=hi")
    failed = await call(mt_daemon, "/sms/?number=%2B15550000002&data=hi")
    ok = await call(mt_daemon, "/sms/?number=%2B15551234567&data=hi")
    assert (refused.status, refused.body["status"], refused.body["error"]) == (402, "5.7.9", "no credit left")
    assert (failed.status, failed.body["status"]) == (500, "4.3.5")
    assert ok.status == 200


async def test_mo_script_rewrites_rejects_and_holds_back_on_failure(
    config: Config, tmp_path: Path, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    changed = with_scripts(with_replies(config, unmatched_recipient=POSTMASTER), tmp_path, mo=MO_SCRIPT)
    daemon = Daemon(changed)
    await daemon.start()
    try:
        stop = await inject(daemon, text="STOP")
        assert await wait_settled(daemon, stop) == ("dropped", "")
        await inject(daemon, text="hello")
        (delivered,) = await wait_mail(state_dir, POSTMASTER)
        body = delivered.get_body(("plain",))
        assert body is not None and "[checked] hello" in body.get_content()
        broken = await inject(daemon, text="boom")
        await async_wait_until(lambda: mo_state(daemon, broken)[0] == "received", what="the MO stored")
        await async_wait_until(
            lambda: any(r.name == "mailsms.intercept" and r.levelno >= logging.ERROR for r in caplog.records),
            what="the script's failure on the MO",
        )
        assert mo_state(daemon, broken)[0] == "received"  # a temporary failure: kept, tried again later
    finally:
        await daemon.stop()
