"""Debian's Chromium driven by Playwright through the upload page, against the real gateway.

Chromium is a system package (`apt-get install -y chromium`; .ci/run installs it), never
Playwright's own download: a machine without it fails these tests with that command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from gateway.app import create_app
from gateway.settings import Settings
from tests.images import encode, photo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INSTALL = "apt-get install -y chromium"
# Where the tests leave what the page looked like (git-ignored, looked at by people).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
TIMEOUT_MS = 30_000  # the slowest step: a few uploads with their proofs of work on 2 CPUs
PHOTO_NAMES = ("sklearn-china", "skimage-coffee", "skimage-chelsea")

AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium, or a failure that says how to install it (never a skip)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): {INSTALL}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            for context in browser.contexts:
                for page in context.pages:
                    await settle(page)
            await browser.close()


async def settle(page: Page) -> None:
    """Until the proof-of-work widget holds its next solution: it fetches its worker script
    for every solve, and a browser closed mid-fetch leaves the gateway's static file open
    (a ResourceWarning, an error in this suite)."""
    await page.wait_for_function(
        "() => { const w = document.querySelector('altcha-widget');"
        " return !w || w.getState() === 'verified'; }"
    )


@dataclasses.dataclass
class PageProblems:
    """What went wrong in the page: uncaught exceptions and Content-Security-Policy refusals."""

    exceptions: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    def none(self) -> bool:
        return not self.exceptions and not self.refused


async def open_page(
    browser: Browser,
    aiohttp_server: AiohttpServer,
    settings: Settings,
    *,
    width: int = 1100,
    height: int = 900,
) -> tuple[Page, PageProblems]:
    """The gateway built from settings, served on loopback, open in a fresh browser context."""
    server = await aiohttp_server(create_app(settings))
    context = await browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    problems = PageProblems()
    page.on("pageerror", lambda error: problems.exceptions.append(str(error)))
    page.on("console", problems.console)
    await page.goto(str(server.make_url("/")))
    return page, problems


def public(settings: Settings) -> Settings:
    """The proof of work on at the shipped cost, as a visitor meets it; per-client limits off
    (the suite's uploads come from one address, fast)."""
    return dataclasses.replace(
        settings, proof_of_work=True, proof_of_work_cost=Settings().proof_of_work_cost
    )


def write_photos(
    folder: Path, size: tuple[int, int], count: int, names: tuple[str, ...] = PHOTO_NAMES
) -> list[Path]:
    """count real photographs cropped to width x height (from names in turn), as JPEG files
    photo0.jpg, photo1.jpg, ..."""
    width, height = size
    paths = []
    for n in range(count):
        path = folder / f"photo{n}.jpg"
        path.write_bytes(encode(photo(height, width, names[n % len(names)]), "JPEG"))
        paths.append(path)
    return paths


def decoded(data: bytes) -> np.ndarray:
    """Encoded image bytes as an array (greyscale masks as (H, W) uint8)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


async def upload(page: Page, paths: list[Path]) -> None:
    await page.set_input_files("#image-input", [str(p) for p in paths])


async def wait_for_cards(page: Page, count: int, state: str = "done") -> None:
    """Until count cards are in state (done, error, busy, rate-limited)."""
    await page.wait_for_function(
        "([n, state]) => document.querySelectorAll(`.card[data-state=${state}]`).length >= n",
        arg=[count, state],
    )


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
