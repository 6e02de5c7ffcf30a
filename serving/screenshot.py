"""docs/page.png: the upload page in Chromium with a result of the real model.

Against a running stack (`make run`, proof of work on), a held-out validation photo
(data/photos/val, from `dvc repro prepare`) gets a text mark in a held-out font from the
synthesizer, goes through the page's file picker like a person's upload, and the page is shot
once the card says it is cleaned, the slider at 45%. The defaults are the photo and seed of
the README's screenshot, one the model cleans; other choices show where it leaves the mark
(README: How good the model is). With --correct the mask editor is opened first: the mask in
pink and what the model saw and left in amber.

    .venv/bin/python -m serving.screenshot --out docs/page.png
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.async_api import async_playwright

from training.examples import load_marks, load_photo_folder
from training.synth import add_watermark

# Debian's Chromium (apt-get install -y chromium), as in the page's browser tests.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The longest side the photo is shown and uploaded at: a page-sized picture, not a wallpaper.
MAX_SIDE = 1200
CLEANING_TIMEOUT_MS = 120_000


def marked_photo(photos_dir: Path, index: int, seed: int) -> np.ndarray:
    """Validation photo `index`, at most MAX_SIDE pixels, with a text mark drawn from seed."""
    photo = load_photo_folder(photos_dir / "val")[index]
    height, width = photo.shape[:2]
    scale = min(1.0, MAX_SIDE / max(height, width))
    size = (round(width * scale), round(height * scale))
    photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    assets = load_marks(photos_dir / "marks.json", "val")
    return add_watermark(photo, np.random.default_rng(seed), assets, style="text").watermarked


async def shoot(url: str, upload: Path, out: Path, correct: bool = False) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1000, "height": 800})
        await page.goto(url)
        await page.set_input_files("#image-input", str(upload))
        await page.wait_for_selector(".card[data-state=done]", timeout=CLEANING_TIMEOUT_MS)
        split = page.locator("input.split")
        await split.fill("45")
        await split.dispatch_event("input")
        if correct:
            await page.get_by_role("button", name="Correct mask").click()
            await page.wait_for_selector("canvas.mask.editing", timeout=CLEANING_TIMEOUT_MS)
        # The widget solves the next upload's challenge after a result: shot once it settles.
        await page.wait_for_function(
            "() => document.querySelector('altcha-widget').getState() === 'verified'"
        )
        await page.screenshot(path=str(out), full_page=True)
        await browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/")
    parser.add_argument("--photos", type=Path, default=Path("data/photos"))
    parser.add_argument("--photo", type=int, default=4, help="index among the validation photos")
    parser.add_argument("--seed", type=int, default=104, help="the mark's random seed")
    parser.add_argument("--out", type=Path, default=Path("var/screenshots/page-result.png"))
    parser.add_argument(
        "--correct", action="store_true", help="open the mask editor (mask and unsure regions)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        upload = Path(scratch) / "photo.jpg"
        Image.fromarray(marked_photo(args.photos, args.photo, args.seed)).save(upload, quality=92)
        shot = Path(scratch) / "page.png"
        asyncio.run(shoot(args.url, upload, shot, args.correct))
        # 256 colours: a README picture of a few hundred KB, not megabytes.
        picture = Image.open(shot).convert("RGB")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        picture.quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
        ).save(args.out, optimize=True)
    print(f"{args.out}: {picture.size[0]}x{picture.size[1]}")


if __name__ == "__main__":
    main()
