"""The upload page's error cards in headless Chromium against the real gateway: too big
(in the browser and at the server), unsupported, busy with a countdown to the next try,
rate-limited with a countdown, and a refused proof of work. Screenshots in var/screenshots/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from playwright.async_api import Route

from gateway.middleware import RETRY_AFTER_S
from gateway.settings import Settings
from tests.gateway.browser import (
    AiohttpServer,
    chromium,
    open_page,
    public,
    screenshot,
    upload,
    wait_for_cards,
    write_photos,
)
from tests.gateway.conftest import BUSY_503, MAX_UPLOAD_BYTES, SUCCESS, FakeTorchServe, encode


async def test_an_oversized_file_gets_an_error_card_and_is_never_sent(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(encode("RGB", (300, 300), "PNG"))  # noise: 270 kB, over the 200 kB cap
    assert big.stat().st_size > MAX_UPLOAD_BYTES
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        await upload(page, [big])
        await wait_for_cards(page, 1, "error")
        alert = await page.get_by_role("alert").inner_text()
        await screenshot(page, "error-too-big")

    assert alert.splitlines() == [
        "Too big",
        f"This file is {big.stat().st_size / 2**20:.1f} MB.",
        "The limit is 0.191 MB and 0.09 megapixels per image.",
    ]
    assert fake_torchserve.received == []
    assert problems.none(), problems


async def test_the_servers_413_and_415_get_cards_with_its_message(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    wide = tmp_path / "wide.png"
    wide.write_bytes(encode("L", (400, 300), "JPEG"))  # 120,000 pixels in few bytes
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        await upload(page, [wide, text])
        await wait_for_cards(page, 2, "error")
        cards = {
            await card.locator(".card-title").inner_text(): await card.get_by_role(
                "alert"
            ).inner_text()
            for card in await page.locator(".card").all()
        }
        await screenshot(page, "error-413-415")

    assert cards["wide.png"].splitlines() == [
        "Too big",
        "Image is 400x300 = 120,000 pixels; the limit is 90,000 pixels.",
        "The limit is 0.191 MB and 0.09 megapixels per image.",
    ]
    assert cards["notes.png"].splitlines() == [
        "Unsupported file type",
        "Unsupported image format; supported formats are PNG, JPEG, WebP.",
        "Choose a PNG, JPEG or WebP image.",
    ]
    assert fake_torchserve.received == []
    assert problems.none(), problems


async def test_a_busy_server_gets_a_countdown_then_the_photo_is_cleaned(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    fake_torchserve.mode = BUSY_503
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        await upload(page, write_photos(tmp_path, (200, 150), 1))
        await wait_for_cards(page, 1, "busy")
        status = page.locator(".card-status")
        first = await status.inner_text()
        await page.wait_for_selector(
            f".card-status:text('trying again in {RETRY_AFTER_S - 1} s')", timeout=3000
        )
        await screenshot(page, "busy-countdown")
        fake_torchserve.mode = SUCCESS
        await wait_for_cards(page, 1, "done")

    assert first == f"The server is busy \u2014 trying again in {RETRY_AFTER_S} s"
    assert [p.task for p in fake_torchserve.received] == ["remove", "remove"]
    assert problems.none(), problems


async def test_a_rate_limited_upload_gets_a_countdown(
    aiohttp_server: AiohttpServer, settings: Settings, tmp_path: Path
) -> None:
    # One upload a minute: the second photo waits for the first one's minute to pass.
    limited = dataclasses.replace(public(settings), rate_limit_per_minute=1, rate_limit_burst=1)
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, limited)
        await upload(page, write_photos(tmp_path, (200, 150), 2))
        await wait_for_cards(page, 1, "done")
        await wait_for_cards(page, 1, "rate-limited")
        status = await page.locator(".card[data-state=rate-limited] .card-status").inner_text()
        await screenshot(page, "rate-limited-countdown")

    prefix = "Too many uploads: rate-limited \u2014 trying again in "
    assert status.startswith(prefix), status
    # Retry-After says up to a minute; the page waits at most 30 s a try (retry.js).
    assert 1 <= int(status.removeprefix(prefix).removesuffix(" s")) <= 30
    assert problems.none(), problems


async def test_a_refused_proof_of_work_gets_an_error_card(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    async def without_solution(route: Route) -> None:
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "x-altcha"}
        await route.continue_(headers=headers)

    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        # As if the solution had been lost on the way: the gateway answers 403 "missing".
        await page.route("**/api/v1/remove", without_solution)
        await upload(page, write_photos(tmp_path, (200, 150), 1))
        await wait_for_cards(page, 1, "error")
        alert = await page.get_by_role("alert").inner_text()
        status = await page.locator(".card").get_attribute("data-status")

    assert status == "403"
    assert alert.splitlines()[0] == "The proof of work was refused"
    assert alert.splitlines()[-1].startswith("Your browser solves a small puzzle")
    assert fake_torchserve.received == []
    assert problems.none(), problems
