"""A real browser for the console tests: Debian's chromium (never a downloaded one) driven by Playwright.

`make test` installs chromium with apt when /usr/bin/chromium is missing. Screenshots go to the directory
HFBUS_CONSOLE_SCREENSHOTS names (`make screenshots` points it at docs/console/), else to the test's tmp dir.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
# Headless, no sandbox (CI runs as root), and nothing that reaches for the network on its own: this machine's
# network is closed, and Chromium's background connections would only fail, many at a time.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def chromium() -> str:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A desktop-sized page that fails the test on any script error or console error (a CSP refusal, say)."""
    context = await browser.new_context(viewport=DESKTOP)
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
    )
    opened.set_default_timeout(15_000)  # every wait in these tests has this deadline unless it names its own
    yield opened
    await context.close()
    # Expected: the wrong-key test's refused sign-in (a 401), and the screens' refresh loops failing to connect
    # once the test has stopped the gateway while the page was still open.
    expected = ("status of 401", "ERR_CONNECTION_REFUSED")
    assert [p for p in problems if not any(e in p for e in expected)] == []


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("HFBUS_CONSOLE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target
