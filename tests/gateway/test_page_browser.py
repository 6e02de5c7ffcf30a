"""The upload page in headless Chromium against the real gateway and the fake TorchServe:
several photos at once, the comparison slider, the 100% view, the mask overlay and its
correction sent with "clean again", the downloads, keyboard-only use and a phone's width.
Screenshots go to var/screenshots/."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import zipfile
from pathlib import Path

import numpy as np
from playwright.async_api import Browser, Locator, Page

from gateway.settings import Settings
from tests.gateway.browser import (
    AiohttpServer,
    PageProblems,
    chromium,
    decoded,
    open_page,
    public,
    screenshot,
    upload,
    wait_for_cards,
    write_photos,
)
from tests.gateway.conftest import FakeTorchServe

PHOTO_SIZE = (280, 210)  # under the suite's 300 x 300 pixel cap
LARGE_PHOTO = (740, 500)  # wider than a card on a phone or a narrow window
LARGE_PHOTO_NAMES = ("skimage-motorcycle_left",)  # a photo that size, not a tiled one
PHONE_WIDTH = 360
MAX_TABS = 30  # more than the page has controls


async def test_several_photos_are_cleaned_with_the_proof_of_work_solved_by_the_page(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    photos = write_photos(tmp_path, PHOTO_SIZE, 3)
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        await upload(page, photos)
        await wait_for_cards(page, 3)
        links = await page.locator("a.download").all_text_contents()
        await screenshot(page, "several-photos")

    assert sorted(links) == [f"Download photo{n}-clearmark.jpg" for n in range(3)]
    # Each upload reached the model with a proof of work of its own (each is accepted once).
    assert [p.task for p in fake_torchserve.received] == ["remove"] * 3
    assert sorted(p.image for p in fake_torchserve.received) == sorted(
        p.read_bytes() for p in photos
    )
    assert problems.none(), problems


async def test_dragging_the_slider_moves_the_divider_between_original_and_cleaned(
    aiohttp_server: AiohttpServer, settings: Settings, tmp_path: Path
) -> None:
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        await upload(page, write_photos(tmp_path, PHOTO_SIZE, 1))
        await wait_for_cards(page, 1)
        slider = page.locator("input.split")
        await slider.scroll_into_view_if_needed()
        box = await slider.bounding_box()
        assert box is not None
        middle_y = box["y"] + box["height"] / 2
        await page.mouse.move(box["x"] + box["width"] / 2, middle_y)
        await page.mouse.down()
        await page.mouse.move(box["x"] + box["width"] * 0.25, middle_y, steps=8)
        await page.mouse.up()
        value = int(await slider.input_value())
        split = await page.locator(".stage").evaluate("s => s.style.getPropertyValue('--split')")
        clip = await page.locator("img.after").evaluate("i => getComputedStyle(i).clipPath")
        spoken = await slider.get_attribute("aria-valuetext")
        await screenshot(page, "slider-dragged")

    assert 22 <= value <= 28, value
    assert split == f"{value:.2f}%"
    assert clip == f"inset(0px 0px 0px {value}%)"
    assert spoken == f"{value}% original, {100 - value}% cleaned"
    assert problems.none(), problems


async def test_the_mask_toggle_shows_what_detect_found(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        await upload(page, write_photos(tmp_path, PHOTO_SIZE, 1))
        await wait_for_cards(page, 1)
        toggle = page.get_by_role("button", name="Show mask")
        await toggle.click()
        await page.wait_for_selector("button.show-mask[aria-pressed=true]")
        mask = page.locator("canvas.mask")
        shown = await mask.is_visible()
        # The fake's mask is the left half of the photo: alpha of the tint at a quarter and
        # at three quarters of the width, half way down.
        alphas = await mask.evaluate(
            """c => [0.25, 0.75].map(x => c.getContext('2d')
                 .getImageData(Math.floor(c.width * x), c.height >> 1, 1, 1).data[3])"""
        )
        size = await mask.evaluate("c => [c.width, c.height]")
        await screenshot(page, "mask-shown")
        await toggle.click()
        hidden_after = await mask.is_hidden()

    assert [p.task for p in fake_torchserve.received] == ["remove", "detect_unsure"]
    assert shown and hidden_after
    assert size == list(PHOTO_SIZE)
    assert alphas == [255, 0]
    assert problems.none(), problems


async def open_editor(
    browser: Browser, aiohttp_server: AiohttpServer, settings: Settings, tmp_path: Path
) -> tuple[Page, PageProblems, Locator]:
    """The page with one photo cleaned and its mask editor open: the page, its problems and
    the editing canvas."""
    page, problems = await open_page(browser, aiohttp_server, public(settings))
    await upload(page, write_photos(tmp_path, PHOTO_SIZE, 1))
    await wait_for_cards(page, 1)
    await page.get_by_role("button", name="Correct mask").click()
    canvas = page.locator("canvas.mask.editing")
    await canvas.wait_for()
    return page, problems, canvas


async def stroke(page: Page, canvas: Locator, points: list[tuple[float, float]]) -> None:
    """A pointer drag through points given as shares of the canvas's width and height."""
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    assert box is not None
    where = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    await page.mouse.move(*where[0])
    await page.mouse.down()
    for point in where[1:]:
        await page.mouse.move(*point, steps=6)
    await page.mouse.up()


async def test_a_corrected_mask_is_sent_with_clean_again(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    async with chromium() as browser:
        page, problems, canvas = await open_editor(browser, aiohttp_server, settings, tmp_path)
        # Brush across the right half at a quarter of the height (the model missed it)...
        await stroke(page, canvas, [(0.6, 0.25), (0.9, 0.25)])
        # ...the eraser through the model's left half at three quarters...
        await page.get_by_label("Eraser: remove from it").check()
        await stroke(page, canvas, [(0.1, 0.75), (0.4, 0.75)])
        # ...and a brush stroke half way down, then undone.
        await page.get_by_label("Brush: add to the mask").check()
        await stroke(page, canvas, [(0.6, 0.5), (0.9, 0.5)])
        await page.get_by_role("button", name="Undo").click()
        await screenshot(page, "mask-corrected")
        await page.get_by_role("button", name="Clean again").click()
        await page.wait_for_selector(".card-status:text('Cleaned again with your mask')")

    sent = fake_torchserve.received[-1]
    assert [p.task for p in fake_torchserve.received] == ["remove", "detect_unsure", "remove"]
    assert sent.mask is not None and sent.mask_mime == "image/png"
    mask = decoded(sent.mask)
    width, height = PHOTO_SIZE
    assert mask.shape[:2] == (height, width)  # the photo's full size
    grey = mask[..., 0] if mask.ndim == 3 else mask

    def at(x: float, y: float) -> int:
        return int(grey[int(height * y), int(width * x)])

    assert at(0.75, 0.25) == 255  # painted
    assert at(0.25, 0.75) == 0  # erased from what the model found
    assert at(0.25, 0.25) == 255  # found by the model, kept
    assert at(0.75, 0.5) == 0  # painted, then undone
    assert at(0.75, 0.9) == 0  # never painted
    assert problems.none(), problems


async def test_what_the_model_left_is_shown_apart_and_added_by_a_pick_or_all_at_once(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    """The fake's unsure regions: two bands across the right half (60-70% and 85-95% of the
    height). Shown in their own tint, sent only once a person adds them."""
    async with chromium() as browser:
        page, problems, canvas = await open_editor(browser, aiohttp_server, settings, tmp_path)
        shown = page.locator("canvas.unsure-regions")
        tinted = await shown.evaluate(
            """c => [0.65, 0.9, 0.8].map(y => c.getContext('2d')
                 .getImageData(Math.floor(c.width * 0.75), Math.floor(c.height * y), 1, 1)
                 .data[3])"""
        )
        # A click just above the upper band, within the brush's reach, picks that band.
        await page.get_by_label("Pick: add a part it was unsure of").check()
        await stroke(page, canvas, [(0.75, 0.58)])
        after_pick = await shown.evaluate(
            """c => c.getContext('2d').getImageData(Math.floor(c.width * 0.75),
                 Math.floor(c.height * 0.65), 1, 1).data[3]"""
        )
        await screenshot(page, "mask-unsure-picked")
        await page.get_by_role("button", name="Clean again").click()
        await page.wait_for_selector(".card-status:text('Cleaned again with your mask')")
        picked = decoded(fake_torchserve.received[-1].mask or b"")
        # Undone, then every unsure region at once.
        await page.get_by_role("button", name="Undo").click()
        await page.get_by_role("button", name="Add all it was unsure of").click()
        await page.get_by_role("button", name="Clean again").click()
        await page.wait_for_selector(".card-status:text('Cleaned again with your mask') >> nth=0")
        await page.wait_for_function("document.querySelectorAll('.card').length === 1")
        await asyncio.sleep(0.2)
        both = decoded(fake_torchserve.received[-1].mask or b"")

    assert [p.task for p in fake_torchserve.received] == [
        "remove", "detect_unsure", "remove", "remove"
    ]  # fmt: skip
    assert tinted == [255, 255, 0]
    assert after_pick == 0  # under the mask now: no longer shown as unsure
    width, height = PHOTO_SIZE

    def at(grey: np.ndarray, x: float, y: float) -> int:
        grey = grey[..., 0] if grey.ndim == 3 else grey
        return int(grey[int(height * y), int(width * x)])

    assert (at(picked, 0.75, 0.65), at(picked, 0.75, 0.9), at(picked, 0.25, 0.5)) == (255, 0, 255)
    assert (at(both, 0.75, 0.65), at(both, 0.75, 0.9), at(both, 0.75, 0.8)) == (255, 255, 0)
    assert problems.none(), problems


async def test_an_unsure_region_is_picked_with_the_keyboard(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    """The keyboard brush starts in the middle; two steps down and two right (a step is the
    brush's radius) it is on the fake's upper unsure band, and Space picks that band."""
    async with chromium() as browser:
        page, problems, canvas = await open_editor(browser, aiohttp_server, settings, tmp_path)
        await page.get_by_label("Pick: add a part it was unsure of").check()
        await canvas.focus()
        for key in ("ArrowDown", "ArrowDown", "ArrowRight", "ArrowRight", "Space"):
            await page.keyboard.press(key)
        await page.get_by_role("button", name="Clean again").click()
        await page.wait_for_selector(".card-status:text('Cleaned again with your mask')")

    sent = decoded(fake_torchserve.received[-1].mask or b"")
    grey = sent[..., 0] if sent.ndim == 3 else sent
    width, height = PHOTO_SIZE
    upper = grey[int(height * 0.6) : int(height * 0.7), width // 2 + 4 : width - 4]
    lower = grey[int(height * 0.85) : int(height * 0.95), width // 2 + 4 : width - 4]
    assert (upper == 255).all() and (lower == 0).all()
    assert problems.none(), problems


async def test_each_result_and_all_of_them_as_a_zip_download_under_the_servers_names(
    aiohttp_server: AiohttpServer, settings: Settings, tmp_path: Path
) -> None:
    photos = write_photos(tmp_path, PHOTO_SIZE, 3)
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        await upload(page, photos)
        await wait_for_cards(page, 3)
        async with page.expect_download() as one:
            await page.get_by_role("link", name="Download photo1-clearmark.jpg").click()
        single = await one.value
        single_path = tmp_path / "single"
        await single.save_as(single_path)
        async with page.expect_download() as everything:
            await page.get_by_role("button", name="Download all (3) as .zip").click()
        archive = await everything.value
        archive_path = tmp_path / "all.zip"
        await archive.save_as(archive_path)

    assert single.suggested_filename == "photo1-clearmark.jpg"
    # The fake model gives a JPEG back unchanged: the results are the photos' own bytes.
    assert single_path.read_bytes() == photos[1].read_bytes()
    assert archive.suggested_filename == "clearmark-results.zip"
    with zipfile.ZipFile(archive_path) as zipped:
        assert zipped.testzip() is None
        assert sorted(zipped.namelist()) == [f"photo{n}-clearmark.jpg" for n in range(3)]
        for n, photo in enumerate(photos):
            assert zipped.read(f"photo{n}-clearmark.jpg") == photo.read_bytes()
    assert problems.none(), problems


async def test_photos_dropped_on_the_page_are_cleaned(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    photos = write_photos(tmp_path, PHOTO_SIZE, 2)
    async with chromium() as browser:
        page, problems = await open_page(browser, aiohttp_server, public(settings))
        dropped = await page.evaluate_handle(
            """files => {
                 const transfer = new DataTransfer();
                 for (const [name, bytes] of files) {
                   const data = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
                   transfer.items.add(new File([data], name, { type: "image/jpeg" }));
                 }
                 return transfer;
               }""",
            [[p.name, base64.b64encode(p.read_bytes()).decode()] for p in photos],
        )
        await page.dispatch_event("#drop-zone", "drop", {"dataTransfer": dropped})
        await wait_for_cards(page, 2)
        titles = await page.locator(".card-title").all_text_contents()

    assert titles == ["photo0.jpg", "photo1.jpg"]  # in the order dropped
    assert len(fake_torchserve.received) == 2
    assert problems.none(), problems


def larger_photos(settings: Settings) -> Settings:
    """The suite's settings with room for a photo larger than a card, to pan at 100%."""
    width, height = LARGE_PHOTO
    return dataclasses.replace(public(settings), max_pixels=width * height)


async def focus_by_tab(page: Page, selector: str, *, backwards: bool = False) -> int:
    """Press Tab (Shift+Tab backwards) until selector has the focus; how many presses."""
    for presses in range(1, MAX_TABS + 1):
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"{selector} not reached in {MAX_TABS} presses of Tab")


# What the focused element shows and is called, for the visible-focus and label checks.
FOCUSED = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  const labelled = (e.labels && e.labels.length > 0 && e.labels[0].textContent.trim()) ||
    e.getAttribute("aria-label") || e.textContent.trim();
  return { tag: e.tagName, name: labelled, outline: style.outlineStyle,
           width: parseFloat(style.outlineWidth), widget: !!e.closest("altcha-widget") };
}"""


async def test_keyboard_only(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
) -> None:
    photos = write_photos(tmp_path, LARGE_PHOTO, 1, LARGE_PHOTO_NAMES)
    async with chromium() as browser:
        page, problems = await open_page(
            browser, aiohttp_server, larger_photos(settings), width=600, height=800
        )
        await focus_by_tab(page, "#image-input")
        async with page.expect_file_chooser() as chooser:
            # Listening subscribes to the event by a task Playwright fires and forgets
            # (channel_owner._update_subscription): let it send, then make a round trip, so the
            # browser side has the subscription before the key opens the chooser (CI once lost
            # the event to this race).
            await asyncio.sleep(0)
            await page.evaluate("0")
            await page.keyboard.press("Space")
        await (await chooser.value).set_files([str(p) for p in photos])
        await wait_for_cards(page, 1)

        # Every control on the page in Tab order: labelled, with a visible focus ring.
        reached = []
        for _ in range(MAX_TABS):
            await page.keyboard.press("Tab")
            reached.append(await page.evaluate(FOCUSED))
        await focus_by_tab(page, "input.split")
        for _ in range(10):
            await page.keyboard.press("ArrowLeft")
        split = await page.locator("input.split").input_value()
        await focus_by_tab(page, "button.show-mask")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("button.show-mask[aria-pressed=true]")
        await focus_by_tab(page, "button.edit-mask")
        await page.keyboard.press("Space")
        await focus_by_tab(page, "button.zoom")
        await page.keyboard.press("Enter")
        viewport = page.locator(".viewport.zoomed")
        start = await viewport.evaluate("v => v.scrollLeft")
        await focus_by_tab(page, ".viewport.zoomed", backwards=True)
        await page.keyboard.press("ArrowRight")
        panned = await viewport.evaluate("v => v.scrollLeft")
        # Paint with the keys: a dot where the brush starts (the middle), then three steps
        # right with Shift held, painting as it goes.
        await focus_by_tab(page, "canvas.mask.editing")
        await page.keyboard.press("Space")
        for _ in range(3):
            await page.keyboard.press("Shift+ArrowRight")
        await screenshot(page, "keyboard-only")
        await focus_by_tab(page, "button.clean-again")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(".card-status:text('Cleaned again with your mask')")

    controls = [r for r in reached if r["tag"] in ("INPUT", "BUTTON", "A", "DIV", "CANVAS")]
    assert {r["name"] for r in controls} >= {
        "Divider between the original (left) and cleaned (right) photo0.jpg",
        "Download photo0-clearmark.jpg",
        "Show mask",
        "Correct mask",
        "100% view",
    }, reached
    for control in controls:
        assert control["name"], control
        assert control["outline"] != "none", control
        # Ours: style.css's 3 px ring; the ALTCHA widget's checkbox keeps the browser's own.
        assert control["widget"] or control["width"] >= 2, control
    assert split == "40"
    assert panned == start + 40
    sent = fake_torchserve.received[-1]
    assert sent.mask is not None
    mask = decoded(sent.mask)
    grey = mask[..., 0] if mask.ndim == 3 else mask
    width, height = LARGE_PHOTO
    # The fake model's mask is the left half; the keys painted right of the middle.
    assert grey[height // 2, width // 2 + 20] == 255
    assert grey[height // 2, width - 5] == 0
    assert grey[5, width - 5] == 0
    assert problems.none(), problems


async def test_a_phones_width_needs_no_sideways_scrolling(
    aiohttp_server: AiohttpServer, settings: Settings, tmp_path: Path
) -> None:
    async with chromium() as browser:
        page, problems = await open_page(
            browser, aiohttp_server, larger_photos(settings), width=PHONE_WIDTH, height=780
        )
        await upload(page, write_photos(tmp_path, LARGE_PHOTO, 1, LARGE_PHOTO_NAMES))
        await wait_for_cards(page, 1)
        await page.get_by_role("button", name="Correct mask").click()
        await page.wait_for_selector("canvas.mask.editing")
        fitted = await page.evaluate("() => document.documentElement.scrollWidth")
        await screenshot(page, "phone")
        await page.get_by_role("button", name="100% view").click()
        await page.get_by_role("button", name="Correct mask").click()  # drag pans, not paints
        viewport = page.locator(".viewport.zoomed")
        await viewport.scroll_into_view_if_needed()
        box = await viewport.bounding_box()
        assert box is not None
        start = await viewport.evaluate("v => v.scrollLeft")
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.move(x, y)
        await page.mouse.down()
        await page.mouse.move(x - 100, y, steps=5)
        await page.mouse.up()
        dragged = await viewport.evaluate("v => v.scrollLeft")
        zoomed = await page.evaluate("() => document.documentElement.scrollWidth")
        await screenshot(page, "phone-100-percent")

    assert fitted == PHONE_WIDTH
    assert zoomed == PHONE_WIDTH  # the 100% view scrolls inside its card, not the page
    assert dragged == start + 100
    assert problems.none(), problems
