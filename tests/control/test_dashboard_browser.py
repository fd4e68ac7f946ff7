"""The dashboard in a real headless Chromium (Debian's ``chromium`` + ``chromedriver``,
driven by Selenium) while a sandbox campaign runs.

In CI (``CI=true``) a missing browser is a failure: ``.ci/run`` installs it. Elsewhere
the test is skipped with the reason. Set ``DISPATCH_DASHBOARD_SCREENSHOT=docs/dashboard.png``
to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.hub import RetryPolicy
from dispatch.reasons import Reason
from dispatch.records import Record
from tests.control.conftest import CAMPAIGN, Stack, control_stack

pytestmark = pytest.mark.anyio

TOKEN = "browser-test-token"
N = 80
RATE = 150
#: a no-answer is redialled in 10 minutes (deferred), a busy line is not (failed)
RETRY = RetryPolicy(delays_s={Reason.NO_ANSWER: 600.0}, max_attempts=2)


def mixed_records() -> list[Record]:
    """Mostly answered; every fifth callee rings out, every seventh is busy."""
    out = []
    for i in range(N):
        tail = 60 + i % 15 if i % 5 == 4 else 75 + i % 10 if i % 7 == 6 else i % 60
        out.append(Record(id=f"m{i}", phone=f"+1557{i:05d}{tail:02d}"))
    return out
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _need_browser() -> None:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (the dev extra)")
    if missing:
        reason = (f"{', '.join(missing)} not installed (apt-get install chromium "
                  "chromium-driver; pip install -e '.[dev]')")
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)


def new_driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


class Page:
    """Blocking Selenium calls, each run in a worker thread (the loop keeps serving)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    def _field(self, name: str) -> str:
        from selenium.webdriver.common.by import By

        selector = f'section[data-campaign="{CAMPAIGN}"] [data-field="{name}"]'
        text: str = self.driver.find_element(By.CSS_SELECTOR, selector).text
        return text

    async def field(self, name: str) -> str:
        return str(await self.run(self._field, name))

    async def number(self, name: str) -> int:
        return int(await self.field(name))

    async def updates(self) -> int:
        value = await self.run(self.driver.execute_script,
                               "return Number(document.body.dataset.updates || 0)")
        return int(value)

    async def wait_updates(self, more: int = 2, timeout_s: float = 15.0) -> None:
        start = await self.updates()
        with anyio.fail_after(timeout_s):
            while await self.updates() < start + more:  # noqa: ASYNC110 - the page polls
                await anyio.sleep(0.1)

    def _click(self, action: str) -> None:
        from selenium.webdriver.common.by import By

        selector = f'section[data-campaign="{CAMPAIGN}"] button[data-action="{action}"]'
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    async def click(self, action: str) -> None:
        await self.run(self._click, action)

    def _enter_token(self, token: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        box = self.driver.find_element(By.ID, "token")
        box.send_keys(token, Keys.TAB)  # the change event stores it and polls at once


async def page_counts(page: Page) -> dict[str, int]:
    return {name: await page.number(name)
            for name in ("completed", "failed", "skipped", "pending", "total_records")}


def api_counts(view: dict[str, Any]) -> dict[str, int]:
    records = view["records"]
    return {"completed": records.get("completed", 0), "failed": records.get("failed", 0),
            "skipped": records.get("skipped", 0), "pending": records.get("pending", 0),
            "total_records": view["total_records"]}


async def test_dashboard_shows_the_campaign_and_pauses_it(tmp_path: Path) -> None:
    _need_browser()
    async with control_stack(tmp_path, mixed_records(), token=TOKEN, max_concurrent=3,
                             max_calls_per_minute=RATE, retry_policy=RETRY) as stack:
        await stack.wait_for(lambda: stack.dials() >= 2, what="first dials")
        driver = await anyio.to_thread.run_sync(new_driver)
        page = Page(driver)
        try:
            await page.run(driver.get, stack.url + "/")
            await page.run(page._enter_token, TOKEN)
            await page.wait_updates(2)
            await running_numbers_match(stack, page)
            await save_screenshot(page, tmp_path)
            await pause_from_the_page(stack, page)
        finally:
            await anyio.to_thread.run_sync(driver.quit)


async def running_numbers_match(stack: Stack, page: Page) -> None:
    """While calls complete, each page figure lies between the API's before and after."""
    assert await page.field("state") == "running"
    assert await page.number("total_records") == N
    for _ in range(3):
        before = api_counts(await stack.campaign())
        await page.wait_updates(1)
        shown = await page_counts(page)
        after = api_counts(await stack.campaign())
        for name in ("completed", "total_records"):
            assert before[name] <= shown[name] <= after[name], (name, before, shown, after)
        assert after["pending"] <= shown["pending"] <= before["pending"]
    assert after["completed"] > 0 and after["pending"] > 0  # the campaign really runs
    assert await page.field("max_per_minute") == str(RATE)


async def save_screenshot(page: Page, tmp_path: Path) -> None:
    await page.wait_updates(3)  # a few samples in the charts
    target = Path(os.environ.get("DISPATCH_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
    assert await page.run(page.driver.save_screenshot, str(target))
    assert (await anyio.Path(target).stat()).st_size > 10_000


async def pause_from_the_page(stack: Stack, page: Page) -> None:
    before = stack.dials()
    await anyio.sleep(2.0)
    assert stack.dials() > before  # positive control: this span holds dials while running
    await page.click("pause")
    await stack.wait_acked("paused")
    await stack.wait_for(lambda: stack.hub.statistics().dialing == 0, what="claims leave")
    await anyio.sleep(0.5)
    paused_at = stack.dials()
    await stack.wait_for(lambda: stack.hub.statistics().live_calls == 0, what="calls end")
    await page.wait_updates(2)
    assert stack.dials() == paused_at  # no new dial while paused
    assert await page.field("state") == "paused"
    assert "paused" in await page.field("waiting_on")
    # settled: the page shows exactly what the API says
    assert await page_counts(page) == api_counts(await stack.campaign())
    assert await page.number("live_calls") == 0
    assert await page.number("deferred") == (await stack.campaign())["deferred"]
