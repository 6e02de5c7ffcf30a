"""/api/docs in Debian's Chromium: Swagger UI renders every operation of the document, with
nothing refused by the Content-Security-Policy and no request leaving the gateway."""

from __future__ import annotations

from playwright.async_api import Request

from gateway.app import create_app
from gateway.openapi import api_document
from gateway.settings import Settings
from tests.gateway.browser import TIMEOUT_MS, AiohttpServer, PageProblems, chromium, screenshot


async def test_the_docs_render_every_operation_from_this_server_alone(
    aiohttp_server: AiohttpServer, settings: Settings
) -> None:
    server = await aiohttp_server(create_app(settings))
    origin = str(server.make_url("")).rstrip("/")
    requested: list[str] = []
    problems = PageProblems()
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: problems.exceptions.append(str(error)))
        page.on("console", problems.console)

        def record(request: Request) -> None:
            requested.append(request.url)

        page.on("request", record)
        await page.goto(origin + "/api/docs")
        await page.wait_for_selector(".opblock")
        await page.click("#operations-images-removeWatermark .opblock-summary-control")
        await page.wait_for_selector("#operations-images-removeWatermark .responses-table")
        shown = await page.eval_on_selector_all(
            ".opblock-summary-path", "nodes => nodes.map(node => node.dataset.path)"
        )
        statuses = await page.eval_on_selector_all(
            "#operations-images-removeWatermark .responses-table .response-col_status",
            "nodes => nodes.map(node => node.textContent.trim())",
        )
        await screenshot(page, "api-docs")
        await page.close()

    assert problems.none(), (problems.exceptions, problems.refused)
    assert sorted(shown) == sorted(api_document(settings)["paths"])
    documented = api_document(settings)["paths"]["/api/v1/remove"]["post"]["responses"]
    assert [status for status in statuses if status.isdigit()] == list(documented)
    assert requested and all(url.startswith(origin) for url in requested), requested
