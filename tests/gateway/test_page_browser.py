"""The upload page in a real headless Chromium with the proof of work on: the ALTCHA widget
solves a challenge for every upload and the cleaned images come back, under the page's CSP.

Needs Chromium and its driver (Debian: `apt-get install -y chromium chromium-driver`; .ci/run
installs them) and selenium (a dev dependency); skipped with that message without them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.conftest import FakeTorchServe, encode

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium: apt-get install -y chromium chromium-driver (.ci/run does)",
)
PHOTOS = 3


def upload_through_the_page(url: str, photos: list[Path], profile: Path) -> dict[str, Any]:
    """Open the page, choose the photos, wait for every download link; what the page showed."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                     f"--disk-cache-dir={profile / 'cache'}"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(url)
        chooser = driver.find_element(By.ID, "image-input")
        chooser.send_keys("\n".join(str(photo) for photo in photos))
        WebDriverWait(driver, 60).until(
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "a.download"))
                + len(d.find_elements(By.CSS_SELECTOR, ".error"))
                >= len(photos)
            )
        )
        return {
            "links": sorted(a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.download")),
            "errors": [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".error")],
            "console": [entry["message"] for entry in driver.get_log("browser")],
        }
    finally:
        driver.quit()


async def test_the_page_uploads_through_the_widget_with_the_proof_of_work_on(
    aiohttp_server: Any, settings: Settings, fake_torchserve: FakeTorchServe, tmp_path: Path
) -> None:
    # The shipped cost and the default per-client limits: what a visitor meets.
    defaults = Settings()
    public = dataclasses.replace(
        settings,
        proof_of_work=True,
        proof_of_work_cost=defaults.proof_of_work_cost,
        rate_limit_per_minute=defaults.rate_limit_per_minute,
    )
    server = await aiohttp_server(create_app(public))
    photos = []
    for n in range(PHOTOS):
        photo = tmp_path / f"photo{n}.png"
        photo.write_bytes(encode("RGB", (64 + n, 48), "PNG"))
        photos.append(photo)

    shown = await asyncio.to_thread(
        upload_through_the_page, str(server.make_url("/")), photos, tmp_path / "profile"
    )

    assert shown["errors"] == [], shown
    assert shown["links"] == [f"Download photo{n}-clearmark.png" for n in range(PHOTOS)]
    # Every upload reached the model, each with a solution of its own (each is accepted once).
    assert len(fake_torchserve.received) == PHOTOS
    assert not [line for line in shown["console"] if "Content Security Policy" in line]
