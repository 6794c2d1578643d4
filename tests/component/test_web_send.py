"""``/sms/``: IceWarp's HTTP send API puts messages in the same queue as mail."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mailsms.config import Config
from mailsms.daemon import Daemon
from tests.component.test_ingest import accept_new_messages, outbox_files, refuse_new_messages
from tests.support.wait import async_wait_until
from tests.support.web import call, rows, with_web


@pytest.fixture
async def locked(config: Config) -> Daemon:
    """A daemon that trusts no network and knows one API user, john / s3cret."""
    running = Daemon(with_web(config, trusted_networks=[], api_users=(("john", "s3cret"),)))
    await running.start()
    yield running  # type: ignore[misc]
    await running.stop()


def queued(config: Config) -> int:
    return int(rows(config, "SELECT COUNT(*) FROM message")[0][0])


async def test_send_from_the_trusted_loopback_is_queued_and_reaches_the_outbox(daemon: Daemon, state_dir: Path) -> None:
    answer = await call(daemon, "/sms/?number=+15551234567&data=hello%20world")
    assert answer.status == 200
    assert set(answer.body) == {"queue_id", "parts"}
    assert answer.body["parts"] == 1
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    (sent,) = outbox_files(state_dir)
    assert sent["queue_id"] == answer.body["queue_id"]
    assert sent["to"] == "+15551234567"
    assert [p["text"] for p in sent["parts"]] == ["hello world"]  # type: ignore[attr-defined]


async def test_leading_plus_of_number_and_sender_stays_a_plus_other_plus_signs_are_spaces(
    daemon: Daemon, state_dir: Path
) -> None:
    answer = await call(daemon, "/sms/?number=+15551234567&sender=+15550001111&data=a+b+c")
    assert answer.status == 200
    await async_wait_until(lambda: len(outbox_files(state_dir)) == 1, what="the outbox file")
    (sent,) = outbox_files(state_dir)
    assert (sent["to"], sent["sender"]) == ("+15551234567", "+15550001111")
    assert sent["parts"][0]["text"] == "a b c"  # type: ignore[index]


async def test_post_form_with_credentials_is_accepted_from_an_untrusted_network(locked: Daemon) -> None:
    form = {"number": "+15551234567", "data": "hi", "user": "john", "pass": "s3cret", "maxmsgs": "2"}
    answer = await call(locked, "/sms/", method="POST", data=form)
    assert answer.status == 200, answer.body


async def test_long_text_is_not_cut_to_one_part_unless_maxmsgs_says_so(daemon: Daemon) -> None:
    long = "word%20" * 100  # 500 characters: 4 GSM parts
    assert (await call(daemon, f"/sms/?number=+15551234567&data={long}")).body["parts"] == 4
    assert (await call(daemon, f"/sms/?number=+15551234567&data={long}&maxmsgs=2")).body["parts"] == 2


@pytest.mark.parametrize(
    ("query", "enhanced", "words"),
    [
        ("data=hi", "5.1.3", "missing parameter 'number'"),
        ("number=+15551234567", "5.1.3", "missing parameter 'data'"),
        ("number=12&data=hi", "5.1.1", "bad number"),
        ("number=+15551234567&data=hi&maxmsgs=500", "5.1.3", "maxmsgs"),
        ("number=+15551234567&data=hi&colour=red", "5.1.3", "unknown parameter 'colour'"),
        ("number=+15551234567&data=hi&data=again", "5.1.3", "given twice"),
        ("number=+15551234567&data=%FF", "5.1.3", "not UTF-8"),
        ("number=+15551234567&data=100%", "5.1.3", "percent-encoding"),
        ("number=+15551234567&data=hi&id=nowhere", "5.1.1", "no gateway"),
        ("number=+15551234567&data=zz&binary=1", "5.6.0", "hex"),
    ],
)
async def test_bad_request_gets_400_with_error_and_status_and_queues_nothing(
    daemon: Daemon, config: Config, query: str, enhanced: str, words: str
) -> None:
    answer = await call(daemon, f"/sms/?{query}")
    assert answer.status == 400
    assert set(answer.body) == {"error", "status"}
    assert answer.body["status"] == enhanced
    assert words in answer.body["error"]
    assert queued(config) == 0


@pytest.mark.parametrize(
    "credentials", ["", "&user=john", "&user=john&pass=wrong", "&user=mallory&pass=s3cret", "&pass=s3cret"]
)
async def test_missing_or_wrong_credentials_get_401_and_queue_nothing(
    locked: Daemon, config: Config, credentials: str
) -> None:
    answer = await call(locked, f"/sms/?number=+15551234567&data=hi{credentials}")
    assert answer.status == 401
    assert answer.body["status"] == "5.7.8"
    assert queued(config) == 0


async def test_credentials_are_checked_before_the_request_is_judged(locked: Daemon) -> None:
    """An untrusted client learns nothing about its request without the password."""
    answer = await call(locked, "/sms/?number=12&data=hi")
    assert (answer.status, answer.body["status"]) == (401, "5.7.8")


async def test_password_never_reaches_the_log(locked: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mailsms")
    await call(locked, "/sms/?number=+15551234567&data=hi&user=john&pass=s3cret")
    await call(locked, "/sms/?number=+15551234567&data=hi&user=john&pass=guess3d")
    await call(locked, "/sms/?number=12&data=hi&user=john&pass=s3cret")
    assert "queued" in caplog.text and "authentication failed" in caplog.text
    assert "s3cret" not in caplog.text and "guess3d" not in caplog.text


async def test_database_full_gives_503_with_retry_after_and_recovers(daemon: Daemon, config: Config) -> None:
    assert daemon.store is not None
    assert (await call(daemon, "/sms/?number=+15551234567&data=first")).status == 200
    await refuse_new_messages(daemon.store, disk_full=True)
    big = "x" * 4000
    answer = await call(daemon, f"/sms/?number=+15551234567&data={big}")
    assert answer.status == 503
    where = "queue write error" if config.store.url else "queue file write error"
    assert answer.body == {"error": f"{where}: insufficient system storage", "status": "4.3.1"}
    assert int(answer.headers["Retry-After"]) > 0
    assert queued(config) == 1
    await accept_new_messages(daemon.store)
    assert (await call(daemon, f"/sms/?number=+15551234567&data={big}")).status == 200
    assert queued(config) == 2


async def test_a_flood_from_one_address_gets_429_with_retry_after(config: Config) -> None:
    daemon = Daemon(with_web(config, trusted_networks=[], api_users=(("john", "s3cret"),), rate_limit=1, rate_burst=2))
    await daemon.start()
    try:
        statuses = [(await call(daemon, "/sms/?number=+15551234567&data=hi&user=john&pass=s3cret")) for _ in range(3)]
    finally:
        await daemon.stop()
    assert [a.status for a in statuses] == [200, 200, 429]
    assert statuses[2].body == {"error": "too many requests from this address, try again later", "status": "4.7.1"}
    assert statuses[2].headers["Retry-After"] == "1"
    assert queued(config) == 2


async def test_a_broken_json_body_gets_400_and_an_unsupported_body_415(daemon: Daemon) -> None:
    answer = await call(daemon, "/sms/", method="POST", data=b"{", headers={"Content-Type": "application/json"})
    assert answer.status == 400
    assert answer.body == {"error": "the body is not valid JSON", "status": "5.1.3"}
    answer = await call(daemon, "/sms/", method="POST", data=b"x", headers={"Content-Type": "image/png"})
    assert answer.status == 415
    assert answer.body == {
        "error": "unsupported body type image/png: send a form, JSON or a query string",
        "status": "5.6.1",
    }


async def test_json_body_is_accepted(daemon: Daemon, config: Config) -> None:
    answer = await call(
        daemon, "/sms/", method="POST", json_body={"number": "+15551234567", "data": "über", "maxmsgs": 1}
    )
    assert answer.status == 200
    assert rows(config, "SELECT text, encoding FROM message") == [("über", "gsm7")]
