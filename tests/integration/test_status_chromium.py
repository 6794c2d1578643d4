"""The status page in a real headless Chromium: it loads behind Basic auth, search works, a phone can read it.

Debian's ``chromium`` and ``chromium-driver`` (Makefile DEBS) driven by
selenium; the daemon runs in this test's event loop on loopback, and every
blocking browser call runs in a thread so that the daemon keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from mailsms.config import Config
from mailsms.daemon import Daemon
from tests.support.replies import ALICE, send_mail, with_replies
from tests.support.wait import async_wait_until
from tests.support.web import rows, with_web

pytestmark = pytest.mark.integration

T = TypeVar("T")
ADMIN = ("ops", "chromium-test-pw")
# Without the background-networking flags Chromium hangs on this machine's closed network.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)  # fmt: skip


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"{' or '.join(names)} not found: install the Debian packages chromium and chromium-driver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(executable_path=_binary("chromedriver"), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    """A blocking browser call, in a thread: the daemon in this loop must keep answering it."""
    return await asyncio.to_thread(call, *args)


async def until_off_loop(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for a condition that asks the browser: each look runs in a thread, since the browser
    may itself be waiting for the daemon in this loop (a navigation in progress)."""
    await async_wait_until(lambda: off_loop(predicate), timeout=timeout, interval=0.05, what=what)


async def test_status_page_loads_searches_and_fits_a_phone(
    browser: webdriver.Chrome, config: Config, state_dir: Path, tmp_path: Path
) -> None:
    daemon = Daemon(with_web(with_replies(config), admin_user=ADMIN[0], admin_password=ADMIN[1]))
    await daemon.start()
    try:
        wanted = await send_mail(daemon, ALICE, "+15551234567", subject="a", message_id="<a@example.test>")
        others = [
            await send_mail(daemon, ALICE, f"+1555000{n:04d}", subject="b", message_id=f"<b{n}@example.test>")
            for n in range(3)
        ]
        await async_wait_until(
            lambda: rows(config, "SELECT COUNT(*) FROM message WHERE state = 'submitted'")[0][0] == 4,
            what="four messages submitted",
        )
        addr = daemon.bound["http"]
        base = f"http://{addr.host}:{addr.port}"

        # Without credentials the browser gets the 401 challenge, not the page.
        await off_loop(browser.get, f"{base}/status")
        assert "mailsms status" not in browser.title

        token = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
        await off_loop(browser.execute_cdp_cmd, "Network.enable", {})
        await off_loop(
            browser.execute_cdp_cmd, "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
        )
        await off_loop(browser.get, f"{base}/status")
        assert browser.title == "mailsms status"
        counts = await off_loop(browser.find_element, By.CSS_SELECTOR, "table.counts")
        assert "submitted\n4" in counts.text or "submitted 4" in counts.text

        box = await off_loop(browser.find_element, By.CSS_SELECTOR, "form#search input[name=q]")
        await off_loop(box.send_keys, "+15551234567")
        await off_loop(box.submit)
        await until_off_loop(lambda: "q=" in browser.current_url, what="the search page")
        found = await off_loop(browser.find_elements, By.CSS_SELECTOR, "table.found tbody tr")
        assert len(found) == 1
        assert wanted in found[0].text
        assert not any(other in found[0].text for other in others)

        await off_loop(browser.set_window_size, 390, 844)
        await off_loop(browser.get, f"{base}/status")
        width = await off_loop(browser.execute_script, "return window.innerWidth")
        assert width <= 400
        stacked = await off_loop(
            browser.execute_script, "return getComputedStyle(document.querySelector('table.counts td')).display"
        )
        assert stacked == "block"  # tables stack into labelled rows on a phone
        overflow = await off_loop(
            browser.execute_script, "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0  # nothing needs sideways scrolling
        shot = tmp_path / "status-phone.png"
        assert await off_loop(browser.get_screenshot_as_file, str(shot))
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000
    finally:
        await daemon.stop()
