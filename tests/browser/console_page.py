"""Driving the console like a person: sign in, open a screen, wait for what it shows."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.integration.console import ADMIN_KEY, ConsoleStack


async def sign_in(page: Page, stack: ConsoleStack, key: str = ADMIN_KEY) -> None:
    await page.goto(f"{stack.url}/console")
    await page.get_by_label("Admin key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


async def open_screen(page: Page, name: str) -> None:
    await page.get_by_role("navigation", name="Screens").get_by_role("link", name=name, exact=True).click()
    await expect(page.get_by_role("heading", level=2, name=name, exact=True)).to_be_visible()
