"""``/readyz`` and ``/status``: readiness names what is wrong; the page is for the admin and shows no text."""

from __future__ import annotations

import base64
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Mapping
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailsms import web_status
from mailsms.accounts import Account, month_of
from mailsms.config import Config
from mailsms.daemon import Daemon
from mailsms.metrics import Metrics
from mailsms.recent import RecentEvent
from mailsms.status_page import AccountView, GatewayView, LinkView, StatusView, age, render
from mailsms.store import NewMessage, NewPart
from mailsms.store.accounts import put_account
from mailsms.store.status import Found
from tests.support.replies import ALICE, NUMBER, send_mail, with_replies
from tests.support.wait import async_wait_until
from tests.support.web import call, rows, with_web

ADMIN = ("ops", "Tr0ub4dor&3")
HOSTILE = '<script>alert("x")</script>'


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def page(
    daemon: Daemon, query: str = "", headers: Mapping[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    addr = daemon.bound["http"]
    url = f"http://{addr.host}:{addr.port}/status{query}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def admin_page(daemon: Daemon, query: str = "") -> str:
    status, text, headers = await page(daemon, query, basic(*ADMIN))
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/html")
    return text


@pytest.fixture
async def admin(config: Config) -> AsyncIterator[Daemon]:
    """A daemon with the reply log on and an admin, ops / Tr0ub4dor&3."""
    running = Daemon(with_web(with_replies(config), admin_user=ADMIN[0], admin_password=ADMIN[1]))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


# -- /readyz -----------------------------------------------------------------------------


async def test_readyz_is_200_when_the_queue_is_writable_and_a_gateway_usable(daemon: Daemon) -> None:
    answer = await call(daemon, "/readyz")
    assert answer.status == 200
    assert answer.body == {"status": "ready", "problems": {}, "gateways": {"outbox": "usable"}}


@pytest.mark.parametrize("store_url", [""], ids=["sqlite"])  # SQLite's one write lock; PostgreSQL has no such lock
async def test_readyz_is_503_while_another_process_holds_the_write_lock(
    daemon: Daemon, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_status, "READY_WRITE_TIMEOUT", 0.3)
    other = sqlite3.connect(state_dir / "queue.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        answer = await call(daemon, "/readyz")
        assert answer.status == 503
        assert answer.body["status"] == "not ready"
        assert "write lock within 0.3s" in answer.body["problems"]["store"]
        assert "gateways" not in answer.body["problems"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await call(daemon, "/readyz")).status == 200


async def test_readyz_is_503_when_every_gateway_breaker_is_open(daemon: Daemon) -> None:
    assert daemon.scheduler is not None
    daemon.scheduler.breaker_states = lambda: {"outbox": "open"}  # type: ignore[method-assign]
    answer = await call(daemon, "/readyz")
    assert answer.status == 503
    assert answer.body["problems"] == {"gateways": "no gateway is usable"}
    assert answer.body["gateways"] == {"outbox": "circuit breaker open"}
    daemon.scheduler.breaker_states = lambda: {"outbox": "half-open"}  # type: ignore[method-assign]
    assert (await call(daemon, "/readyz")).status == 200


# -- /status: access -------------------------------------------------------------------------


async def test_status_is_off_without_an_admin(daemon: Daemon) -> None:
    status, text, _ = await page(daemon, headers=basic(*ADMIN))
    assert status == 403
    assert "web.admin_user" in text


async def test_status_needs_the_admin_credentials_even_from_loopback(admin: Daemon) -> None:
    status, _, headers = await page(admin)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic realm=")
    assert (await page(admin, headers=basic(ADMIN[0], "wrong")))[0] == 401
    assert (await page(admin, headers=basic("root", ADMIN[1])))[0] == 401
    assert (await page(admin, headers={"Authorization": "Basic !!!not-base64"}))[0] == 401
    assert (await page(admin, headers=basic(*ADMIN)))[0] == 200


def test_admin_password_is_not_in_the_configuration_repr(config: Config) -> None:
    configured = with_web(config, admin_user="ops", admin_password="s3cret-admin")
    assert "s3cret-admin" not in repr(configured)


# -- /status: content ------------------------------------------------------------------------


async def test_status_shows_the_queue_and_search_finds_by_id_number_and_sender(admin: Daemon, config: Config) -> None:
    queue_id = await send_mail(admin, ALICE, subject="Lunch", message_id="<m1@example.test>")
    other = await send_mail(admin, "carol@example.test", "+15550002222", subject="x", message_id="<m2@example.test>")
    await async_wait_until(
        lambda: rows(config, "SELECT COUNT(*) FROM message WHERE state = 'submitted'")[0][0] == 2,
        what="both submitted",
    )
    text = await admin_page(admin)
    assert '<meta name="viewport"' in text
    assert '<td data-label="state">submitted</td><td data-label="messages" class=n>2</td>' in text
    for term in (queue_id, queue_id.lower(), NUMBER, ALICE, ALICE.upper()):
        found = await admin_page(admin, f"?q={term.replace('+', '%2B')}")
        assert "1 message for" in found, term
        results = found.split('<section id="events">')[0]  # recent log events may name any message
        assert queue_id in results and other not in results
    assert "0 messages for" in await admin_page(admin, "?q=nobody%40example.test")


async def test_status_never_shows_message_text_or_passwords(admin: Daemon, config: Config) -> None:
    secret_text = "SECRET-BODY-4711"
    answer = await call(admin, f"/sms/?number=%2B15551234567&data={secret_text}")
    assert answer.status == 200, answer.body
    logging.getLogger("mailsms.test").warning("a careless line with pass=hunter2x in it")
    text = await admin_page(admin, "?q=%2B15551234567")
    assert answer.body["queue_id"] in text  # the search found it
    assert secret_text not in text
    assert "hunter2x" not in text
    assert "pass=(set)" in text  # the careless line, redacted


async def test_status_escapes_hostile_values(admin: Daemon, config: Config) -> None:
    assert admin.store is not None
    now = 1_700_000_000.0
    hostile = NewMessage(
        id="00000000000000AA", created=now, sender=f"{HOSTILE}@example.test", recipient="sms:+15550003333",
        number="+15550003333", gateway=HOSTILE, encoding="gsm7", text="x", parts=(NewPart(1, "x"),),
    )  # fmt: skip
    await admin.store.enqueue([hostile])
    await admin.store.write(functools.partial(put_account, account=Account(user=HOSTILE, gateway=HOSTILE)))
    logging.getLogger("mailsms.test").warning("event with %s", HOSTILE)
    text = await admin_page(admin, "?q=%2B15550003333&number=" + "%3Cscript%3E")
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert 'value="&lt;script&gt;"' in text  # the lookup form echoes what was typed, escaped


async def test_status_lists_accounts_with_this_months_usage(admin: Daemon) -> None:
    assert admin.store is not None
    import time

    month = month_of(time.time())
    accounts = [
        Account(user="shop", maxsend=100, sent=7, month=month),
        Account(user="old", sent=50, month="2001-01"),  # counted in a month long gone: 0 this month
        Account(user="off", inactive=True),
    ]
    for account in accounts:
        await admin.store.write(functools.partial(put_account, account=account))
    text = await admin_page(admin)
    assert (
        '<td data-label="account">shop</td><td data-label="gateway">(default)</td>'
        '<td data-label="sent this month" class=n>7</td><td data-label="monthly limit">100</td>'
        '<td data-label="status">active</td>'
    ) in text
    old = '<td data-label="account">old</td><td data-label="gateway">(default)</td>'
    assert old + '<td data-label="sent this month" class=n>0</td>' in text
    assert '<td data-label="status">disabled</td>' in text


async def test_status_reply_log_lookup_by_number(admin: Daemon, config: Config) -> None:
    await send_mail(admin, ALICE, subject="Lunch", message_id="<m1@example.test>")
    await async_wait_until(lambda: rows(config, "SELECT COUNT(*) FROM reply_link")[0][0] == 1, what="the link")
    for typed in ("%2B15551234567", "15551234567", "%2B1+555+123-4567"):
        text = await admin_page(admin, f"?number={typed}")
        assert f'<td data-label="replies go to">{ALICE}</td>' in text, typed
    text = await admin_page(admin, "?number=%2B15550009999")
    assert ALICE not in text.split('id="replylog"')[1].split("</section>")[0]


async def test_status_shows_gateway_health_counts_and_recent_events(
    admin: Daemon, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailsms")
    queue_id = await send_mail(admin, ALICE, subject="Lunch", message_id="<m1@example.test>")
    await async_wait_until(
        lambda: rows(config, "SELECT state FROM message")[0][0] == "submitted", what="the part submitted"
    )
    # The counters move just after the commit.
    await async_wait_until(lambda: Metrics.count(admin.metrics.parts_submitted, "outbox") == 1, what="part counted")
    text = await admin_page(admin)
    gateways = text.split('id="gateways"')[1].split("</section>")[0]
    assert '<td data-label="gateway">outbox</td>' in gateways
    assert '<span class="ok">usable</span>' in gateways
    assert '<td data-label="submitted" class=n>1</td>' in gateways
    assert '<td data-label="last 5 min" class=n>1</td>' in gateways
    events = text.split('id="events"')[1]
    assert f"{queue_id}: " in events and "status=queued" in events


def test_age_is_short_and_readable() -> None:
    assert [age(None), age(12), age(303), age(7500), age(3 * 86400 + 7200)] == ["-", "12s", "5m 3s", "2h 5m", "3d 2h"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def _tags(view: StatusView) -> list[str]:
    parser = _Tags()
    parser.feed(render(view))
    return parser.tags


def _view(value: str) -> StatusView:
    found = Found(value, 0.0, value, value, value, value, 1, 0, 0, 0.0, value)
    gateway = GatewayView(value, value, value, value, None, 0, 0, 0, 0, 0)
    return StatusView(
        version=value, now=0.0, counts={value: 1}, oldest_age=None, query=value, found=[found], gateways=[gateway],
        number=value, links=[LinkView(value, value, value, 0.0, value, True)],
        accounts=[AccountView(value, value, 0, 0, value)], events=[RecentEvent(0.0, value, value, value)],
    )  # fmt: skip


@given(st.text(max_size=40))
@example('"><img src=x onerror=alert(1)><b>')
@example("</td></tr></table><script>")
def test_no_value_can_add_or_remove_an_html_element(value: str) -> None:
    assert _tags(_view(value)) == _tags(_view("x"))
