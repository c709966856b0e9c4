"""Debian's Chromium driven by Playwright (never `playwright install`), and screenshots.

Screenshots go to `test-artifacts/` (or $MESHMON_ARTIFACTS): CI keeps them, people look.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
ARTIFACTS = Path(
    os.environ.get("MESHMON_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for one test; closed afterwards."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def console_errors(page: Page) -> list[str]:
    """Collects the page's console errors and uncaught exceptions (assert it stays empty)."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


async def wait_for_js(page: Page, expression: str, timeout: float = 30_000,
                     poll_ms: float = 50) -> None:
    """Wait until the JavaScript `expression` is truthy in `page` (times in ms).

    Playwright's `wait_for_function` compiles its predicate with eval inside the page,
    which the pages' Content-Security-Policy refuses (no 'unsafe-eval', rightly); here
    each check is one `page.evaluate`, which the policy does not govern."""
    deadline = time.monotonic() + timeout / 1000
    while not await page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression!r} still false after {timeout / 1000:g} s")
        await asyncio.sleep(poll_ms / 1000)
