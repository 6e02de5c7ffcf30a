"""The API and page on their happy paths, against the fake TorchServe."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from gateway.app import create_app
from gateway.middleware import CONTENT_SECURITY_POLICY
from gateway.settings import Settings
from gateway.torchserve_client import UNSURE_LEVEL
from tests.gateway.conftest import (
    BUSY_503,
    AiohttpClient,
    FakeTorchServe,
    GatewayClient,
    Prediction,
    encode,
    fake_mask,
    multipart,
    multipart_with_mask,
    rotated_jpeg,
)

IMAGES = [
    pytest.param("RGB", "PNG", "image/png", "png", id="png"),
    pytest.param("RGBA", "PNG", "image/png", "png", id="rgba-png"),
    pytest.param("RGB", "JPEG", "image/jpeg", "jpg", id="jpeg"),
    pytest.param("RGB", "WEBP", "image/webp", "webp", id="webp"),
]
SIZE = (64, 48)


def _decoded_size(data: bytes, image_format: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == image_format
        img.load()
        return img.size


@pytest.mark.parametrize(("mode", "image_format", "mime", "ext"), IMAGES)
async def test_multipart_upload_returns_cleaned_image(
    client: GatewayClient,
    fake_torchserve: FakeTorchServe,
    mode: str,
    image_format: str,
    mime: str,
    ext: str,
) -> None:
    image = encode(mode, SIZE, image_format)

    response = await client.post(
        "/api/v1/remove", data=multipart(image, f"holiday photo.{ext}", mime)
    )

    assert response.status == 200
    assert response.content_type == mime
    body = await response.read()
    assert _decoded_size(body, image_format) == SIZE
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="holiday_photo-clearmark.{ext}"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # TorchServe got exactly the uploaded bytes, labelled with their sniffed type.
    assert fake_torchserve.received == [Prediction("remove", mime, image)]


@pytest.mark.parametrize(("mode", "image_format", "mime", "ext"), IMAGES)
async def test_raw_body_upload_returns_cleaned_image(
    client: GatewayClient,
    fake_torchserve: FakeTorchServe,
    mode: str,
    image_format: str,
    mime: str,
    ext: str,
) -> None:
    image = encode(mode, SIZE, image_format)

    response = await client.post("/api/v1/remove", data=image, headers={"Content-Type": mime})

    assert response.status == 200
    assert response.content_type == mime
    assert _decoded_size(await response.read(), image_format) == SIZE
    assert (
        response.headers["Content-Disposition"] == f'attachment; filename="image-clearmark.{ext}"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert fake_torchserve.received == [Prediction("remove", mime, image)]


async def test_declared_type_does_not_override_sniffed_format(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    jpeg = encode("RGB", SIZE, "JPEG")

    response = await client.post("/api/v1/remove", data=jpeg, headers={"Content-Type": "image/png"})

    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert fake_torchserve.received == [Prediction("remove", "image/jpeg", jpeg)]


async def test_only_the_image_field_is_used(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    image = encode("RGB", SIZE, "PNG")
    form = multipart(image, "scan.png", "image/png")
    form.add_field("comment", "ignored")

    response = await client.post("/api/v1/remove", data=form)

    assert response.status == 200
    assert fake_torchserve.received == [Prediction("remove", "image/png", image)]


MASKS = [
    pytest.param("L", "PNG", "image/png", id="grey-png"),
    pytest.param("RGB", "JPEG", "image/jpeg", id="rgb-jpeg"),
    pytest.param("RGB", "WEBP", "image/webp", id="rgb-webp"),
]


@pytest.mark.parametrize("mask_first", [False, True], ids=["image-first", "mask-first"])
@pytest.mark.parametrize(("mask_mode", "mask_format", "mask_mime"), MASKS)
async def test_mask_is_forwarded_with_the_image(
    client: GatewayClient,
    fake_torchserve: FakeTorchServe,
    mask_first: bool,
    mask_mode: str,
    mask_format: str,
    mask_mime: str,
) -> None:
    image = encode("RGB", SIZE, "PNG")
    mask = encode(mask_mode, SIZE, mask_format)
    # The declared type is the client's word; the forwarded one is sniffed from the bytes.
    form = multipart_with_mask(image, mask, mask_first=mask_first, mask_type="image/png")

    response = await client.post("/api/v1/remove", data=form)

    assert response.status == 200
    assert response.content_type == "image/png"
    assert response.headers["Content-Disposition"] == 'attachment; filename="photo-clearmark.png"'
    assert fake_torchserve.received == [Prediction("remove", "image/png", image, mask_mime, mask)]


@pytest.mark.parametrize(("mode", "image_format", "mime", "ext"), IMAGES)
async def test_detect_returns_the_predicted_mask(
    client: GatewayClient,
    fake_torchserve: FakeTorchServe,
    mode: str,
    image_format: str,
    mime: str,
    ext: str,
) -> None:
    image = encode(mode, SIZE, image_format)

    response = await client.post(
        "/api/v1/detect", data=multipart(image, f"holiday photo.{ext}", mime)
    )

    assert response.status == 200
    assert response.content_type == "image/png"
    body = await response.read()
    assert body == fake_mask(SIZE)
    with Image.open(io.BytesIO(body)) as mask:
        assert (mask.format, mask.mode, mask.size) == ("PNG", "L", SIZE)
        assert mask.getextrema() == (0, 255)
    assert (
        response.headers["Content-Disposition"] == 'attachment; filename="holiday_photo-mask.png"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert fake_torchserve.received == [Prediction("detect", mime, image)]


async def test_detect_takes_a_raw_body(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    jpeg = encode("RGB", SIZE, "JPEG")

    response = await client.post("/api/v1/detect", data=jpeg, headers={"Content-Type": "image/png"})

    assert response.status == 200
    assert await response.read() == fake_mask(SIZE)
    assert response.headers["Content-Disposition"] == 'attachment; filename="image-mask.png"'
    assert fake_torchserve.received == [Prediction("detect", "image/jpeg", jpeg)]


@pytest.mark.parametrize(
    ("query", "task"),
    [("?unsure=true", "detect_unsure"), ("?unsure=false", "detect"), ("", "detect")],
)
async def test_detect_with_unsure_asks_the_model_for_what_it_left(
    client: GatewayClient, fake_torchserve: FakeTorchServe, query: str, task: str
) -> None:
    image = encode("RGB", SIZE, "PNG")

    response = await client.post(
        f"/api/v1/detect{query}", data=multipart(image, "a.png", "image/png")
    )

    assert response.status == 200
    body = await response.read()
    assert body == fake_mask(SIZE, unsure=task == "detect_unsure")
    with Image.open(io.BytesIO(body)) as mask:
        levels = set(np.unique(np.asarray(mask)).tolist())
    assert levels == ({0, UNSURE_LEVEL, 255} if task == "detect_unsure" else {0, 255})
    assert fake_torchserve.received == [Prediction(task, "image/png", image)]


@pytest.mark.parametrize("value", ["yes", "1", "TRUE", ""])
async def test_detect_refuses_an_unknown_unsure_value_before_reading_the_image(
    client: GatewayClient, fake_torchserve: FakeTorchServe, value: str
) -> None:
    image = encode("RGB", SIZE, "PNG")

    response = await client.post(
        f"/api/v1/detect?unsure={value}", data=multipart(image, "a.png", "image/png")
    )

    assert response.status == 400
    assert (await response.json())["error"] == f"unsure must be true or false, not {value!r}"
    assert fake_torchserve.received == []


def test_the_gateway_and_the_handler_agree_on_the_unsure_grey_and_task() -> None:
    from gateway.torchserve_client import TASK_DETECT, TASK_DETECT_UNSURE
    from handler.imaging import UNSURE_LEVEL as HANDLER_UNSURE_LEVEL
    from handler.jobs import DETECT_TASKS

    assert UNSURE_LEVEL == HANDLER_UNSURE_LEVEL
    assert (TASK_DETECT, TASK_DETECT_UNSURE) == DETECT_TASKS


async def test_detect_drops_a_mask_field(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    image = encode("RGB", SIZE, "PNG")
    form = multipart_with_mask(image, encode("L", SIZE, "PNG"))

    response = await client.post("/api/v1/detect", data=form)

    assert response.status == 200
    assert fake_torchserve.received == [Prediction("detect", "image/png", image)]


async def test_sizes_are_compared_as_displayed_after_exif_orientation(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    # A phone portrait: stored 64x48, shown (and cleaned by the handler) upright as 48x64.
    photo = rotated_jpeg(SIZE)
    upright_size = (SIZE[1], SIZE[0])
    mask = encode("L", upright_size, "PNG")

    cleaned = await client.post("/api/v1/remove", data=multipart_with_mask(photo, mask))
    detected = await client.post(
        "/api/v1/detect", data=photo, headers={"Content-Type": "image/jpeg"}
    )

    assert cleaned.status == 200
    assert _decoded_size(await cleaned.read(), "JPEG") == upright_size
    assert detected.status == 200
    assert await detected.read() == fake_mask(upright_size)
    assert [p.mask for p in fake_torchserve.received] == [mask, None]


async def test_healthz_does_not_call_torchserve(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    response = await client.get("/healthz")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert fake_torchserve.received == []


async def test_readyz_sends_a_real_image(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    response = await client.get("/readyz")

    assert response.status == 200
    assert await response.json() == {"status": "ready"}
    [probe] = fake_torchserve.received
    assert (probe.task, probe.image_mime, probe.mask) == ("remove", "image/png", None)
    assert _decoded_size(probe.image, "PNG") == (8, 8)


async def test_readyz_503_when_model_busy(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = BUSY_503

    response = await client.get("/readyz")

    assert response.status == 503
    assert (await response.json())["error"].startswith("model not ready: ")


async def test_readyz_503_when_torchserve_down(
    aiohttp_client: AiohttpClient, settings: Settings, closed_port_url: str
) -> None:
    app = create_app(dataclasses.replace(settings, torchserve_url=closed_port_url))
    down_client = await aiohttp_client(app)

    response = await down_client.get("/readyz")

    assert response.status == 503
    assert (await response.json())["error"].startswith("model not ready: ")


async def test_index_shows_form_and_limits(client: GatewayClient) -> None:
    response = await client.get("/")

    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert 'action="/api/v1/remove" method="post" enctype="multipart/form-data"' in html
    assert 'type="file" name="image"' in html
    assert 'accept="image/png,image/jpeg,image/webp" multiple' in html
    assert '<script src="/static/retry.js" defer></script>' in html
    assert '<script src="/static/app.js" type="module"></script>' in html
    # 200,000 bytes and 300 x 300 pixels, as set in conftest.
    assert "0.191 MB" in html
    assert "0.09 megapixels" in html
    assert "300 &times; 300" in html
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_index_has_no_inline_script_or_style(client: GatewayClient) -> None:
    html = await (await client.get("/")).text()

    # The CSP allows scripts and styles only from files on this origin.
    assert html.count("<script") == html.count('<script src="/static/') == 3
    assert "<style" not in html
    assert "style=" not in html


@pytest.mark.parametrize(
    ("path", "content_types"),
    [
        ("/static/app.js", {"application/javascript", "text/javascript"}),
        ("/static/retry.js", {"application/javascript", "text/javascript"}),
        ("/static/unsure.js", {"application/javascript", "text/javascript"}),
        ("/static/style.css", {"text/css"}),
    ],
)
async def test_static_files_served(
    client: GatewayClient, path: str, content_types: set[str]
) -> None:
    response = await client.get(path)

    assert response.status == 200
    assert response.content_type in content_types
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(await response.read()) > 500
