"""``/inbound/<gateway>`` and ``/dlr/<gateway>``: incoming SMS are committed once, reports settle parts."""

from __future__ import annotations

import dataclasses
import logging

import aiohttp
import pytest

from mailsms.config import Config, GatewayConfig, QueueConfig
from mailsms.daemon import Daemon
from mailsms.store import NewMessage, NewPart
from tests.support.wait import async_wait_until
from tests.support.web import call, outbox_gateway, rows, with_gateways, with_web
from transports import fake


def stored(config: Config) -> list[tuple[object, ...]]:
    return rows(
        config,
        "SELECT gateway, sender, recipient, text, udh, coding, smsc_id, state FROM inbound ORDER BY received, id",
    )


def message(config: Config, queue_id: str) -> tuple[object, ...]:
    return rows(config, "SELECT state, reason, dsn_code FROM message WHERE id = ?", queue_id)[0]


@pytest.fixture
async def guarded(config: Config) -> Daemon:
    """Gateway "open" takes calls from anyone; "secret" needs secret=s3; "far" only from 192.0.2.0/24."""
    gateways = (
        outbox_gateway("open"),
        outbox_gateway("secret", secret="s3"),
        outbox_gateway("far", allow=["192.0.2.0/24"]),
    )
    running = Daemon(with_gateways(config, *gateways))
    await running.start()
    yield running  # type: ignore[misc]
    await running.stop()


# -- /inbound ---------------------------------------------------------------------------


async def test_inbound_sms_is_committed_before_200(daemon: Daemon, config: Config) -> None:
    answer = await call(daemon, "/inbound/outbox?from=+4915112345678&to=12345&text=Hall%C3%B6+Welt&smsc_id=a1")
    assert answer.status == 200
    assert answer.body == {"id": answer.body["id"], "duplicate": False}
    (row,) = stored(config)
    assert row[:7] == ("outbox", "+4915112345678", "12345", "Hallö Welt", b"", 0, "a1")
    assert row[7] in ("received", "dropped")  # the inbound pipeline may have routed it (nowhere to go) already


async def test_the_same_mo_delivered_twice_is_stored_once(daemon: Daemon, config: Config) -> None:
    form = {"from": "+4915112345678", "to": "12345", "text": "hi", "smsc_id": "kannel-77"}
    first = await call(daemon, "/inbound/outbox", method="POST", data=form)
    again = await call(daemon, "/inbound/outbox", method="POST", data=form)
    assert (first.status, again.status) == (200, 200)
    assert again.body == {"id": first.body["id"], "duplicate": True}
    assert len(stored(config)) == 1
    # without an SMSC id nothing tells two deliveries apart: both are kept
    form.pop("smsc_id")
    await call(daemon, "/inbound/outbox", method="POST", data=form)
    await call(daemon, "/inbound/outbox", method="POST", data=form)
    assert len(stored(config)) == 3


async def test_concatenated_part_is_stored_with_its_udh_and_a_json_body_works(daemon: Daemon, config: Config) -> None:
    body = {"from": "+4915112345678", "text": "part one", "udh": "050003A70201", "coding": 0}
    answer = await call(daemon, "/inbound/outbox", method="POST", json_body=body)
    assert answer.status == 200
    assert stored(config)[0][4] == bytes.fromhex("050003A70201")


async def test_ucs2_text_in_utf16_with_its_charset_is_decoded(daemon: Daemon, config: Config) -> None:
    """Kannel without mo-recode hands UCS-2 text on as raw UTF-16BE; charset says so."""
    raw = "".join(f"%{b:02X}" for b in "Привет 👋".encode("utf-16-be"))
    answer = await call(daemon, f"/inbound/outbox?from=%2B79161234567&text={raw}&coding=2&charset=UTF-16BE")
    assert answer.status == 200
    assert stored(config)[0][3] == "Привет 👋"


@pytest.mark.parametrize(
    ("query", "enhanced", "words"),
    [
        ("text=hi", "5.5.4", "missing field 'from'"),
        ("from=+4915112345678", "5.5.4", "missing field 'text'"),
        ("from=&text=hi", "5.5.4", "field 'from' is empty"),
        ("from=+4915112345678&text=%FF%FE", "5.6.0", "text is not valid utf-8"),
        ("from=+4915112345678&text=hi&charset=klingon", "5.5.4", "unknown charset"),
        ("from=+4915112345678&text=hi&udh=0600030A0201", "5.6.0", "length byte"),
        ("from=+4915112345678&text=hi&udh=050003A70203", "5.6.0", "part 3 of 2"),
        ("from=+4915112345678&text=hi&udh=05000", "5.6.0", "hex"),
        ("from=+4915112345678&text=hi&coding=7", "5.5.4", "coding"),
        ("from=+4915112345678&text=hi&text=again", "5.5.4", "given twice"),
        ("from=%0A&text=hi", "5.5.4", "control characters"),
        ("from=+4915112345678&text=50%", "5.5.4", "percent-encoding"),
    ],
)
async def test_bad_mo_gets_400_and_nothing_is_stored(
    daemon: Daemon, config: Config, query: str, enhanced: str, words: str
) -> None:
    answer = await call(daemon, f"/inbound/outbox?{query}")
    assert answer.status == 400
    assert answer.body["status"] == enhanced
    assert words in answer.body["error"]
    assert stored(config) == []


async def test_unknown_gateway_gets_404(daemon: Daemon) -> None:
    for hook in ("inbound", "dlr"):
        answer = await call(daemon, f"/{hook}/kannel?from=1&text=hi&id=1&status=1")
        assert answer.status == 404
        assert answer.body == {"error": "no gateway 'kannel' here", "status": "5.5.1"}


async def test_secret_and_source_address_are_enforced_per_gateway(guarded: Daemon, config: Config) -> None:
    mo = "from=%2B4915112345678&text=hi"
    assert (await call(guarded, f"/inbound/open?{mo}")).status == 200
    for query in (mo, f"{mo}&secret=wrong", f"{mo}&secret=s3x"):
        answer = await call(guarded, f"/inbound/secret?{query}")
        assert answer.status == 403
        assert answer.body == {"error": "gateway secret: wrong or missing secret", "status": "5.7.1"}
    assert (await call(guarded, f"/inbound/secret?{mo}&secret=s3")).status == 200
    answer = await call(guarded, f"/inbound/far?{mo}")
    assert answer.status == 403
    assert "not allowed (webhook_allow)" in answer.body["error"]
    assert (await call(guarded, "/dlr/far?id=x&status=1")).status == 403
    assert (await call(guarded, "/dlr/secret?id=x&status=1")).status == 403
    assert [r[0] for r in stored(config)] == ["open", "secret"]


async def test_a_flood_of_webhook_calls_gets_429(config: Config) -> None:
    daemon = Daemon(with_web(config, trusted_networks=[], rate_limit=1, rate_burst=3))
    await daemon.start()
    try:
        answers = [await call(daemon, f"/inbound/outbox?from=%2B4915112345678&text=n{i}") for i in range(5)]
    finally:
        await daemon.stop()
    assert [a.status for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].headers["Retry-After"] == "1"
    assert len(stored(config)) == 3


async def test_a_gateways_own_addresses_are_not_rate_limited(config: Config) -> None:
    gateway = outbox_gateway(allow=["127.0.0.0/8"])
    daemon = Daemon(with_gateways(with_web(config, trusted_networks=[], rate_limit=1, rate_burst=1), gateway))
    await daemon.start()
    try:
        answers = [await call(daemon, f"/inbound/outbox?from=%2B4915112345678&text=n{i}") for i in range(5)]
    finally:
        await daemon.stop()
    assert {a.status for a in answers} == {200}


# -- /dlr --------------------------------------------------------------------------------


async def sent_through_outbox(daemon: Daemon, config: Config, data: str = "hello") -> str:
    """Send one SMS through the API and wait until the outbox took it; its queue id."""
    queue_id = str((await call(daemon, f"/sms/?number=%2B15551234567&data={data}")).body["queue_id"])
    await async_wait_until(lambda: message(config, queue_id)[0] == "submitted", what="the part submitted")
    return queue_id


async def test_delivered_report_marks_the_part_and_message_delivered(daemon: Daemon, config: Config) -> None:
    queue_id = await sent_through_outbox(daemon, config)
    answer = await call(daemon, f"/dlr/outbox?id={queue_id}.1&status=delivered")
    assert (answer.status, answer.body) == (200, {"queue_id": queue_id, "state": "delivered"})
    assert message(config, queue_id)[0] == "delivered"
    assert rows(config, "SELECT state FROM part WHERE message_id = ?", queue_id) == [("delivered",)]


async def test_failed_report_fails_the_message_with_the_smsc_reason(daemon: Daemon, config: Config) -> None:
    queue_id = await sent_through_outbox(daemon, config)
    answer = await call(daemon, f"/dlr/outbox?msgid={queue_id}.1&status=16&reason=NACK%2F0x0b%2FInvalid+destination")
    assert (answer.status, answer.body) == (200, {"queue_id": queue_id, "state": "failed"})
    assert message(config, queue_id) == ("failed", "NACK/0x0b/Invalid destination", "5.0.0")


async def test_expired_report_without_reason_gets_4_4_7(daemon: Daemon, config: Config) -> None:
    queue_id = await sent_through_outbox(daemon, config)
    answer = await call(
        daemon, "/dlr/outbox", method="POST", json_body={"messageId": f"{queue_id}.1", "status": "EXPIRED"}
    )
    assert answer.status == 200
    assert message(config, queue_id) == ("failed", "delivery report: expired", "4.4.7")


async def test_intermediate_reports_are_answered_and_change_nothing(daemon: Daemon, config: Config) -> None:
    queue_id = await sent_through_outbox(daemon, config)
    for status in ("8", "4", "buffered", "accepted", "submitted"):
        answer = await call(daemon, f"/dlr/outbox?id={queue_id}.1&status={status}")
        assert (answer.status, answer.body) == (200, {"state": "intermediate"})
    assert message(config, queue_id)[0] == "submitted"


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("status=1", 400, "missing field 'id'"),
        ("id=X.1", 400, "missing field 'status'"),
        ("id=X.1&status=lost", 400, "unknown status 'lost'"),
        ("id=X.1&status=64", 400, "not a Kannel DLR type"),
        ("id=X.1&status=1", 404, "no submitted part of gateway outbox has id 'X.1'"),
    ],
)
async def test_bad_or_unknown_reports_get_a_clear_4xx(daemon: Daemon, query: str, status: int, words: str) -> None:
    answer = await call(daemon, f"/dlr/outbox?{query}")
    assert answer.status == status
    assert words in answer.body["error"]


async def test_a_report_that_overtakes_the_submit_commit_is_kept_and_applied_by_it(config: Config) -> None:
    """A fast gateway can report before the part's gateway id is committed: the report is
    answered at once, kept, and applied by the commit that records the submission."""
    hanging = GatewayConfig(id="fake", type="fake", options=fake.Options(hang=r"^\+1555"))
    daemon = Daemon(dataclasses.replace(with_gateways(config, hanging), queue=QueueConfig(stop_grace_time=0.1)))
    await daemon.start()
    try:
        assert daemon.store is not None and daemon.scheduler is not None
        queue_id = await sent_into_hanging_submit(daemon, config)
        answer = await call(daemon, f"/dlr/fake?id=fake-{queue_id}-1&status=1")
        assert (answer.status, answer.body) == (200, {"state": "pending"})
        assert rows(config, "SELECT state FROM part WHERE message_id = ?", queue_id) == [("sending",)]
        early = await daemon.store.record_submitted(queue_id, [(1, f"fake-{queue_id}-1")], now=0.0)
        assert [(e.gateway_msgid, e.delivered) for e in early] == [(f"fake-{queue_id}-1", True)]
        assert rows(config, "SELECT state FROM part WHERE message_id = ?", queue_id) == [("delivered",)]
        assert rows(config, "SELECT count(*) FROM early_report") == [(0,)]
    finally:
        await daemon.stop()


async def test_a_report_for_an_unknown_id_with_nothing_sending_is_404(daemon: Daemon, config: Config) -> None:
    answer = await call(daemon, "/dlr/outbox?id=NOPE.1&status=1")
    assert answer.status == 404
    assert rows(config, "SELECT count(*) FROM early_report") == [(0,)]


async def sent_into_hanging_submit(daemon: Daemon, config: Config) -> str:
    queue_id = str((await call(daemon, "/sms/?number=%2B15551234567&data=hi")).body["queue_id"])
    await async_wait_until(
        lambda: rows(config, "SELECT state FROM part WHERE message_id = ?", queue_id) == [("sending",)],
        what="the part in sending",
    )
    return queue_id


async def test_a_report_for_a_queue_row_of_another_gateway_is_not_applied(daemon: Daemon, config: Config) -> None:
    assert daemon.store is not None
    await daemon.store.enqueue(
        [NewMessage(id="OTHER0000001", created=0.0, sender="", recipient="x", number="+15551234567", gateway="kannel",
                    encoding="gsm7", text="x", parts=(NewPart(1, "x"),))]
    )  # fmt: skip
    await daemon.store.record_submitted("OTHER0000001", [(1, "OTHER0000001.1")], now=0.0)
    assert (await call(daemon, "/dlr/outbox?id=OTHER0000001.1&status=1")).status == 404


async def test_a_multipart_form_works_and_a_file_in_it_is_refused(daemon: Daemon, config: Config) -> None:
    form = aiohttp.FormData({"from": "+4915112345678", "text": "multi"}, default_to_multipart=True)
    assert (await call(daemon, "/inbound/outbox", method="POST", data=form)).status == 200
    with_file = aiohttp.FormData({"from": "+4915112345678"})
    with_file.add_field("text", b"bytes", filename="t.txt")
    answer = await call(daemon, "/inbound/outbox", method="POST", data=with_file)
    assert answer.status == 400
    assert answer.body == {"error": "field 'text' is a file: send fields only", "status": "5.5.4"}
    assert [r[3] for r in stored(config)] == ["multi"]


async def test_a_path_with_a_line_break_cannot_forge_a_log_line(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsms")
    answer = await call(daemon, "/inbound/x%0Aforged?from=1&text=hi")
    assert answer.status == 404
    assert "\nforged" not in caplog.text and "/inbound/x%0Aforged" in caplog.text
