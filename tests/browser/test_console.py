"""The console in Debian's chromium against a real gateway, consumers, nats-server and the simulated router."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from services.dev.fake_router import FakeRouter, expected_text
from services.settings import Settings
from tests.browser.conftest import PHONE
from tests.browser.console_page import open_screen, sign_in
from tests.integration.console import ADMIN_KEY, console

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENS = ["Status", "Consumers", "Models and strategy", "Keys and spend", "Live requests", "Playground"]
READY = {
    "Status": "#token-status dd",
    "Consumers": "#consumers-table tbody tr",
    "Models and strategy": "#defaults-table tbody tr",
    "Keys and spend": "#keys-table tbody tr",
    "Live requests": "#tail-table tbody tr",
    "Playground": "#play-model option",
}
"""What each screen shows once its data has arrived."""


async def test_sign_in_refuses_a_wrong_key_and_works_from_the_keyboard(
    settings: Settings, page: Page, shots: Path
) -> None:
    async with console(settings) as stack:
        await page.goto(f"{stack.url}/console")
        await expect(page.get_by_label("Admin key")).to_be_focused()
        await page.keyboard.type("not-the-admin-key-at-all")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("alert")).to_have_text("Wrong admin key.")
        await expect(page.get_by_role("navigation", name="Screens")).to_be_hidden()
        await page.screenshot(path=shots / "sign-in.png")

        await page.get_by_label("Admin key").fill(ADMIN_KEY)
        await page.keyboard.press("Enter")
        await expect(page.get_by_text("hfbus-demo", exact=False)).to_be_visible()
        await expect(page.locator("#nats-status")).to_contain_text("connected to")
        await expect(page.locator("#nats-status")).to_contain_text("on")
        await page.screenshot(path=shots / "status.png", full_page=True)

        # Every screen is reachable with Tab and Enter alone.
        for name in SCREENS[1:]:
            link = page.get_by_role("link", name=name, exact=True)
            await link.focus()
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", level=2, name=name, exact=True)).to_be_visible()
            await expect(link).to_have_attribute("aria-current", "page")

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Admin key")).to_be_visible()


async def test_consumers_are_listed_live(settings: Settings, page: Page, shots: Path) -> None:
    async with console(settings) as stack:
        await sign_in(page, stack)
        await open_screen(page, "Consumers")
        await expect(page.locator("#consumers-count")).to_have_text("1 consumer process")
        chat_row = page.locator("#consumers-table tbody tr", has_text="chat").first
        await expect(chat_row.locator("td").nth(3)).to_have_text("0")

        client = stack.gateways.client()
        await client.chat.completions.create(model="deepseek-r1", messages=[{"role": "user", "content": "hi"}])
        await client.close()
        # Refreshed without a reload: the request shows up in the counters.
        await expect(chat_row.locator("td").nth(3)).to_have_text("1")
        await page.screenshot(path=shots / "consumers.png", full_page=True)


async def test_a_strategy_change_in_the_console_reaches_a_consumer(
    settings: Settings, router: FakeRouter, page: Page, shots: Path
) -> None:
    async with console(settings) as stack:
        await sign_in(page, stack)
        await open_screen(page, "Models and strategy")
        await page.get_by_label("Strategy for chat").select_option("cheapest")
        await page.get_by_role("button", name="Save chat defaults").click()
        await expect(page.locator("#applied-chat")).to_have_text("1 of 1 consumers")

        client = stack.gateways.client()
        await client.chat.completions.create(model="deepseek-r1", messages=[{"role": "user", "content": "hi"}])
        await client.close()
        assert router.requests[-1].json()["model"] == "deepseek-ai/DeepSeek-R1:cheapest"

        await page.get_by_label("HF model id").fill("black-forest-labs/FLUX.1-dev")
        await page.get_by_role("button", name="Look up").click()
        mapping = page.get_by_role("table", name="Hub provider mapping of black-forest-labs/FLUX.1-dev")
        await expect(mapping.get_by_role("row", name="fal-ai")).to_contain_text("live")
        await expect(page.locator("#lookup-result")).to_contain_text("per image")
        await page.screenshot(path=shots / "models.png", full_page=True)


async def test_a_key_is_created_shown_once_and_revoked(settings: Settings, page: Page, shots: Path) -> None:
    async with console(settings) as stack:
        client = stack.gateways.client()
        await client.chat.completions.create(model="deepseek-r1", messages=[{"role": "user", "content": "hi"}])
        await client.close()
        await sign_in(page, stack)
        await open_screen(page, "Keys and spend")
        await page.get_by_label("Name", exact=True).fill("browser-team")
        await page.get_by_label("Requests per minute").fill("30")
        await page.get_by_label("Budget (USD)").fill("2.50")
        await page.get_by_role("button", name="Create key").click()
        new_key = await page.locator("#new-key-value").inner_text()
        assert new_key.startswith("hfb-")
        row = page.get_by_role("row", name="browser-team")
        await expect(row).to_contain_text("30 rpm · budget $2.50")
        await expect(page.get_by_role("img", name="Spend per day by key")).to_be_visible()
        await expect(page.locator("#activity")).to_contain_text("chat")
        await page.screenshot(path=shots / "keys.png", full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())
        await row.get_by_role("button", name="Revoke key browser-team").click()
        await expect(row.get_by_role("cell", name="revoked")).to_be_visible()
        assert new_key not in await page.locator("#keys-table").inner_text()
        assert await stack.gateways.keys.lookup(new_key) is None


async def test_the_playground_streams_a_chat_renders_an_image_and_the_tail_shows_them(
    settings: Settings, router: FakeRouter, page: Page, shots: Path
) -> None:
    router.pace_s = 0.02  # tokens one by one, so the answer arrives as several chunks
    async with console(settings) as stack:
        await sign_in(page, stack)
        await open_screen(page, "Playground")
        await page.get_by_label("Model", exact=True).select_option("deepseek-r1")
        await page.get_by_label("Prompt", exact=True).fill("Tell me about NATS")
        await page.get_by_role("button", name="Send").click()
        await expect(page.locator("#play-meta")).to_contain_text("provider")
        answer = expected_text([{"role": "user", "content": "Tell me about NATS"}], router.default_tokens)
        await expect(page.locator("#play-text")).to_have_text(answer)
        chunks = int(await page.locator("#play-output").get_attribute("data-chunks") or 0)
        assert chunks > 1, "the answer arrived as one piece: not streamed"
        await expect(page.locator("#play-meta")).to_contain_text("completion tokens")
        await expect(page.locator("#play-meta")).to_contain_text("cost $")
        await page.screenshot(path=shots / "playground-chat.png", full_page=True)

        await page.get_by_label("Model", exact=True).select_option("flux.1-dev")
        await page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
        await page.get_by_role("button", name="Send").click()
        image = page.get_by_role("img", name="Generated image: a lighthouse at dusk")
        await expect(image).to_be_visible()
        assert await image.evaluate("img => img.complete && img.naturalWidth > 0")
        await page.screenshot(path=shots / "playground.png", full_page=True)

        await open_screen(page, "Live requests")
        rows = page.locator("#tail-table tbody tr")
        await expect(rows.filter(has_text="text2pic")).to_have_count(1)
        await expect(rows.filter(has_text="chat").filter(has_text="ok")).to_have_count(1)
        await page.screenshot(path=shots / "requests.png", full_page=True)


async def test_every_control_is_labelled_and_every_screen_fits_a_phone(
    settings: Settings, browser: Browser, page: Page, shots: Path
) -> None:
    unlabelled = """() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter(el => !el.closest('[hidden]'))
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
        .map(el => el.outerHTML)"""
    async with console(settings) as stack:
        await sign_in(page, stack)
        for name in SCREENS:
            await open_screen(page, name)
            await expect(page.locator(READY[name]).first).to_be_attached()
            assert await page.evaluate(unlabelled) == [], name

        phone = await browser.new_page(viewport=PHONE)
        await sign_in(phone, stack)
        for name in SCREENS:
            await open_screen(phone, name)
            # Wide tables scroll inside their own box; the page itself never scrolls sideways.
            assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        await open_screen(phone, "Models and strategy")
        await phone.screenshot(path=shots / "phone-models.png", full_page=True)
        await phone.close()


async def test_the_playground_shows_a_video_after_its_progress_and_plays_speech(
    settings: Settings, page: Page, shots: Path
) -> None:
    async with console(settings) as stack:
        await sign_in(page, stack)
        await open_screen(page, "Playground")
        await page.get_by_label("Model", exact=True).select_option("hunyuanvideo")
        await page.get_by_label("Prompt", exact=True).fill("waves on a beach")
        await page.get_by_role("button", name="Send").click()
        video = page.locator("#play-video")
        await expect(video).to_be_visible(timeout=30_000)
        assert (await video.get_attribute("src") or "").startswith("blob:")
        assert await page.locator("#play-output").get_attribute("data-progress-shown") == "true"
        assert await page.locator("#play-progress").get_attribute("value") == "100"

        await page.get_by_label("Model", exact=True).select_option("kokoro-82m")
        await page.get_by_label("Prompt", exact=True).fill("hello from the console")
        await page.get_by_role("button", name="Send").click()
        audio = page.get_by_label("Spoken answer")
        await expect(audio).to_be_visible()
        assert (await audio.get_attribute("src") or "").startswith("blob:")
        await page.screenshot(path=shots / "playground-speech.png", full_page=True)
