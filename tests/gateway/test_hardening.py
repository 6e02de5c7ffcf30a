"""One test per way an upload or the model can fail: exact status and a specific message."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import ClientResponse

from gateway.app import create_app
from gateway.middleware import RETRY_AFTER_S
from gateway.settings import Settings
from gateway.torchserve_client import TorchServeClient
from gateway.upload import MULTIPART_OVERHEAD_BYTES, download_filename
from tests.gateway.conftest import (
    BUSY_503,
    FAIL_500,
    HANDLER_422_MESSAGE,
    JPEG_MASK,
    MAX_UPLOAD_BYTES,
    NOT_FOUND_404,
    REJECT_422,
    RGB_MASK,
    SLOW,
    SUCCESS,
    WRONG_SIZE,
    WRONG_TYPE,
    AiohttpClient,
    FakeTorchServe,
    GatewayClient,
    encode,
    multipart,
    multipart_with_mask,
    png_claiming_size,
)

REMOVE = "/api/v1/remove"
DETECT = "/api/v1/detect"
SIZE = (64, 48)


async def _error(response: ClientResponse, status: int) -> str:
    """Assert the status and the JSON error shape; return the message."""
    assert response.status == status
    assert response.content_type == "application/json"
    payload = await response.json()
    assert set(payload) == {"error"}
    message: str = payload["error"]
    return message


async def _post_png(client: GatewayClient, data: bytes) -> ClientResponse:
    return await client.post(REMOVE, data=multipart(data, "photo.png", "image/png"))


# --- the upload itself ---------------------------------------------------------------


async def test_form_without_image_field_is_400(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    png = encode("RGB", SIZE, "PNG")
    response = await client.post(REMOVE, data=multipart(png, "photo.png", "image/png", "file"))

    assert "no 'image' field" in await _error(response, 400)
    assert fake_torchserve.received == []


async def test_empty_image_field_is_400(client: GatewayClient) -> None:
    # What a browser sends when the form is submitted with no file chosen.
    response = await client.post(REMOVE, data=multipart(b"", "", "application/octet-stream"))

    assert "no image" in await _error(response, 400)


async def test_empty_raw_body_is_400(client: GatewayClient) -> None:
    response = await client.post(REMOVE, data=b"", headers={"Content-Type": "image/png"})

    assert "no image" in await _error(response, 400)


async def test_malformed_multipart_is_400(client: GatewayClient) -> None:
    response = await client.post(
        REMOVE, data=b"not a form", headers={"Content-Type": "multipart/form-data"}
    )

    assert "malformed multipart" in await _error(response, 400)


async def test_a_part_header_with_a_control_character_is_400(client: GatewayClient) -> None:
    """aiohttp refuses such a part header with its own exception, not ValueError; it was a
    500 until schemathesis sent one (tests/gateway/test_openapi.py)."""
    body = b'--b\r\nContent-Disposition: form-data; name="a\x0cb"\r\n\r\nx\r\n--b--\r\n'
    response = await client.post(
        REMOVE, data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )

    assert "malformed multipart" in await _error(response, 400)


async def test_text_plain_body_is_415(client: GatewayClient) -> None:
    response = await client.post(REMOVE, data=b"hello", headers={"Content-Type": "text/plain"})

    message = await _error(response, 415)
    assert "multipart/form-data" in message
    assert "text/plain" in message


async def test_gif_is_415(client: GatewayClient, fake_torchserve: FakeTorchServe) -> None:
    gif = encode("P", SIZE, "GIF")
    response = await client.post(REMOVE, data=multipart(gif, "anim.gif", "image/gif"))

    assert "supported formats are PNG, JPEG, WebP" in await _error(response, 415)
    assert fake_torchserve.received == []


async def test_garbage_labelled_png_is_415(client: GatewayClient) -> None:
    response = await client.post(
        REMOVE, data=b"this is not an image", headers={"Content-Type": "image/png"}
    )

    assert "unsupported image format" in await _error(response, 415)


async def test_multipart_declared_over_cap_is_413_before_reading(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    # remove takes an image and a mask: room for two files and the overhead.
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(2 * MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES)
    response = await _post_png(client, too_big)

    assert f"limit of {MAX_UPLOAD_BYTES:,} bytes" in await _error(response, 413)
    assert fake_torchserve.received == []


async def test_multipart_image_over_cap_is_413_while_reading(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    # Body fits the multipart allowance, so only counting the field's bytes catches it.
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES)
    response = await _post_png(client, too_big)

    assert f"limit of {MAX_UPLOAD_BYTES:,} bytes" in await _error(response, 413)
    assert fake_torchserve.received == []


async def test_raw_body_declared_over_cap_is_413(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES)
    response = await client.post(REMOVE, data=too_big, headers={"Content-Type": "image/png"})

    assert f"limit of {MAX_UPLOAD_BYTES:,} bytes" in await _error(response, 413)
    assert fake_torchserve.received == []


async def test_chunked_raw_body_over_cap_is_413(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the gateway must count while reading.
        for _ in range(MAX_UPLOAD_BYTES // 10_000 + 2):
            yield bytes(10_000)

    response = await client.post(REMOVE, data=chunks(), headers={"Content-Type": "image/png"})

    assert f"limit of {MAX_UPLOAD_BYTES:,} bytes" in await _error(response, 413)
    assert fake_torchserve.received == []


async def test_too_many_pixels_is_413(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    # A real 400 x 400 JPEG: under the byte cap, over the 300 x 300 pixel cap.
    jpeg = encode("RGB", (400, 400), "JPEG")
    assert len(jpeg) < MAX_UPLOAD_BYTES
    response = await client.post(REMOVE, data=jpeg, headers={"Content-Type": "image/jpeg"})

    message = await _error(response, 413)
    assert "400x400 = 160,000 pixels" in message
    assert "limit is 90,000 pixels" in message
    assert fake_torchserve.received == []


async def test_decompression_bomb_header_is_413(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    # A few hundred bytes claiming 20000 x 20000: Pillow's bomb guard stops it at open.
    response = await _post_png(client, png_claiming_size(20_000, 20_000))

    assert "limit is 90,000 pixels" in await _error(response, 413)
    assert fake_torchserve.received == []


@pytest.mark.parametrize(("image_format", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
async def test_truncated_image_is_422(
    client: GatewayClient, fake_torchserve: FakeTorchServe, image_format: str, mime: str
) -> None:
    image = encode("RGB", SIZE, image_format)
    response = await client.post(
        REMOVE, data=image[: len(image) // 2], headers={"Content-Type": mime}
    )

    assert f"could not decode the {image_format} image" in await _error(response, 422)
    assert fake_torchserve.received == []


async def test_corrupt_header_is_422(client: GatewayClient) -> None:
    corrupt = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\xff" * 40
    response = await _post_png(client, corrupt)

    assert "could not read the PNG header" in await _error(response, 422)


# --- the mask sent with an image to remove -------------------------------------------


async def _post_with_mask(client: GatewayClient, mask: bytes) -> ClientResponse:
    return await client.post(REMOVE, data=multipart_with_mask(encode("RGB", SIZE, "PNG"), mask))


async def test_mask_of_another_size_is_422(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    response = await _post_with_mask(client, encode("L", (100, 80), "PNG"))

    assert await _error(response, 422) == (
        "the mask is 100x80 but the image is 64x48; send a mask of the image's size"
    )
    assert fake_torchserve.received == []


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (encode("L", SIZE, "PNG")[:200], "could not decode the PNG mask"),
        (b"\x89PNG\r\n\x1a\n" + b"\xff" * 40, "could not read the PNG header: the mask file"),
    ],
    ids=["truncated", "corrupt-header"],
)
async def test_undecodable_mask_is_422(
    client: GatewayClient, fake_torchserve: FakeTorchServe, mask: bytes, message: str
) -> None:
    response = await _post_with_mask(client, mask)

    assert message in await _error(response, 422)
    assert fake_torchserve.received == []


async def test_gif_mask_is_415(client: GatewayClient, fake_torchserve: FakeTorchServe) -> None:
    response = await _post_with_mask(client, encode("P", SIZE, "GIF"))

    message = await _error(response, 415)
    assert message == "unsupported mask format; supported formats are PNG, JPEG, WebP"
    assert fake_torchserve.received == []


async def test_empty_mask_field_is_400(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    response = await _post_with_mask(client, b"")

    assert await _error(response, 400) == "no mask: the upload is empty"
    assert fake_torchserve.received == []


async def test_mask_over_cap_is_413(client: GatewayClient, fake_torchserve: FakeTorchServe) -> None:
    # Image and mask together fit the form's allowance: only counting the mask's bytes
    # catches it.
    response = await _post_with_mask(client, b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES))

    message = await _error(response, 413)
    assert message == f"mask is larger than the limit of {MAX_UPLOAD_BYTES:,} bytes"
    assert fake_torchserve.received == []


async def test_mask_with_too_many_pixels_is_413_before_its_size_is_compared(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    response = await _post_with_mask(client, encode("L", (400, 400), "JPEG"))

    assert "mask is 400x400 = 160,000 pixels" in await _error(response, 413)
    assert fake_torchserve.received == []


async def test_bad_image_is_reported_before_the_mask(client: GatewayClient) -> None:
    form = multipart_with_mask(encode("P", SIZE, "GIF"), encode("L", (100, 80), "PNG"))
    response = await client.post(REMOVE, data=form)

    assert "unsupported image format" in await _error(response, 415)


async def test_other_fields_share_the_overhead_allowance_or_400(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    form = multipart(encode("RGB", SIZE, "PNG"), "photo.png", "image/png")
    form.add_field("comment", "x" * (MULTIPART_OVERHEAD_BYTES // 2))
    form.add_field("notes", "x" * (MULTIPART_OVERHEAD_BYTES // 2 + 1))
    response = await client.post(REMOVE, data=form)

    assert await _error(response, 400) == (
        "the form's fields other than 'image' and 'mask' are larger than the limit of "
        f"{MULTIPART_OVERHEAD_BYTES:,} bytes"
    )
    assert fake_torchserve.received == []


async def test_mask_without_its_type_is_refused_by_the_client() -> None:
    async with aiohttp.ClientSession() as session:
        torchserve = TorchServeClient(
            session, "http://127.0.0.1:9", "clearmark", 0.5, 1_000_000, 120.0
        )
        with pytest.raises(ValueError, match="MIME type"):
            await torchserve.remove_watermark(b"image", "image/png", b"mask")


# --- detect refuses what remove refuses ----------------------------------------------


# (bytes, raw body's Content-Type or None for a form, form field, status)
BAD_UPLOADS = [
    pytest.param(encode("RGB", SIZE, "PNG"), None, "file", 400, id="no-image-field"),
    pytest.param(b"", None, "image", 400, id="empty-field"),
    pytest.param(b"", "image/png", None, 400, id="empty-body"),
    pytest.param(b"not a form", "multipart/form-data", None, 400, id="malformed-form"),
    pytest.param(b"hello", "text/plain", None, 415, id="text-body"),
    pytest.param(encode("P", SIZE, "GIF"), None, "image", 415, id="gif"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES), None, "image", 413, id="bytes"),
    pytest.param(encode("RGB", (400, 400), "JPEG"), "image/jpeg", None, 413, id="pixels"),
    pytest.param(encode("RGB", SIZE, "PNG")[:300], "image/png", None, 422, id="truncated"),
    pytest.param(png_claiming_size(64, 48)[:20], None, "image", 422, id="corrupt-header"),
]


@pytest.mark.parametrize(("data", "content_type", "field", "status"), BAD_UPLOADS)
async def test_detect_refuses_uploads_as_remove_does(
    client: GatewayClient,
    fake_torchserve: FakeTorchServe,
    data: bytes,
    content_type: str | None,
    field: str | None,
    status: int,
) -> None:
    async def post(path: str) -> ClientResponse:
        if field is None:
            return await client.post(path, data=data, headers={"Content-Type": str(content_type)})
        return await client.post(path, data=multipart(data, "photo.png", "image/png", field))

    removed = await post(REMOVE)
    detected = await post(DETECT)

    assert await _error(detected, status) == await _error(removed, status)
    assert fake_torchserve.received == []


# --- TorchServe failures -------------------------------------------------------------


async def test_torchserve_unreachable_is_503(
    aiohttp_client: AiohttpClient, settings: Settings, closed_port_url: str
) -> None:
    down = await aiohttp_client(
        create_app(dataclasses.replace(settings, torchserve_url=closed_port_url))
    )
    response = await _post_png(down, encode("RGB", SIZE, "PNG"))

    assert "unreachable" in await _error(response, 503)


async def test_torchserve_busy_is_503(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = BUSY_503
    response = await _post_png(client, encode("RGB", SIZE, "PNG"))

    assert "busy or not loaded" in await _error(response, 503)
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)


async def test_model_not_registered_is_503(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = NOT_FOUND_404
    response = await _post_png(client, encode("RGB", SIZE, "PNG"))

    assert "busy or not loaded" in await _error(response, 503)


async def test_uploads_past_the_in_flight_limit_are_503_at_once(
    aiohttp_client: AiohttpClient, settings: Settings, fake_torchserve: FakeTorchServe
) -> None:
    one = await aiohttp_client(create_app(dataclasses.replace(settings, max_in_flight=1)))
    fake_torchserve.mode = SLOW  # holds the first upload until the gateway's timeout (504)
    first = asyncio.create_task(_post_png(one, encode("RGB", SIZE, "PNG")))
    while not fake_torchserve.received:  # the first upload has reached the model
        await asyncio.sleep(0.01)

    second = await _post_png(one, encode("RGB", SIZE, "PNG"))

    assert "cleaning 1 images already" in await _error(second, 503)
    assert second.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert len(fake_torchserve.received) == 1  # the second was never forwarded
    assert (await first).status == 504
    # The slot is given back however the upload ended.
    fake_torchserve.mode = SUCCESS
    third = await _post_png(one, encode("RGB", SIZE, "PNG"))
    assert third.status == 200


async def test_torchserve_timeout_is_504(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = SLOW
    response = await _post_png(client, encode("RGB", SIZE, "PNG"))

    assert "took too long" in await _error(response, 504)


async def test_handler_rejection_passes_through(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = REJECT_422
    response = await _post_png(client, encode("RGB", SIZE, "PNG"))

    assert await _error(response, 422) == HANDLER_422_MESSAGE


async def test_worker_failure_is_502(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = FAIL_500
    response = await _post_png(client, encode("RGB", SIZE, "PNG"))

    assert "model failed on this image (500)" in await _error(response, 502)


async def test_wrong_size_answer_is_502(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = WRONG_SIZE
    response = await _post_png(client, encode("RGB", SIZE, "PNG"))

    assert "7x5 image, expected 64x48" in await _error(response, 502)


async def test_wrong_content_type_answer_is_502(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    fake_torchserve.mode = WRONG_TYPE
    response = await _post_png(client, encode("RGB", SIZE, "PNG"))

    assert "application/octet-stream, expected image/png" in await _error(response, 502)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (WRONG_SIZE, "model answered a 7x5 mask, expected 64x48"),
        (WRONG_TYPE, "model answered application/octet-stream, expected image/png"),
        (JPEG_MASK, "model answered an unreadable PNG mask"),
        (RGB_MASK, "model answered a RGB mask, expected mode L"),
    ],
)
async def test_detect_answer_that_is_not_a_mask_of_the_image_is_502(
    client: GatewayClient, fake_torchserve: FakeTorchServe, mode: str, message: str
) -> None:
    fake_torchserve.mode = mode
    response = await client.post(
        DETECT, data=multipart(encode("RGB", SIZE, "PNG"), "a.png", "image/png")
    )

    assert await _error(response, 502) == message


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [
        (REJECT_422, 422, HANDLER_422_MESSAGE),
        (BUSY_503, 503, "the model is busy or not loaded; try again shortly"),
        (FAIL_500, 502, "the model failed on this image (500)"),
    ],
)
async def test_detect_maps_torchserve_failures_as_remove_does(
    client: GatewayClient, fake_torchserve: FakeTorchServe, mode: str, status: int, message: str
) -> None:
    fake_torchserve.mode = mode
    response = await client.post(
        DETECT, data=encode("RGB", SIZE, "PNG"), headers={"Content-Type": "image/png"}
    )

    assert await _error(response, status) == message


async def test_detect_past_the_in_flight_limit_is_503_at_once(
    aiohttp_client: AiohttpClient, settings: Settings, fake_torchserve: FakeTorchServe
) -> None:
    one = await aiohttp_client(create_app(dataclasses.replace(settings, max_in_flight=1)))
    fake_torchserve.mode = SLOW
    first = asyncio.create_task(_post_png(one, encode("RGB", SIZE, "PNG")))
    while not fake_torchserve.received:
        await asyncio.sleep(0.01)

    detect = await one.post(
        DETECT, data=multipart(encode("RGB", SIZE, "PNG"), "a.png", "image/png")
    )

    assert "cleaning 1 images already" in await _error(detect, 503)
    assert detect.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert [p.task for p in fake_torchserve.received] == ["remove"]
    assert (await first).status == 504


async def test_unexpected_error_is_500_and_logs_no_image_bytes(
    client: GatewayClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(
        self: TorchServeClient,
        image: bytes,
        mime: str,
        mask: bytes | None = None,
        mask_mime: str | None = None,
    ) -> tuple[bytes, str]:
        raise RuntimeError(image.hex())

    monkeypatch.setattr(TorchServeClient, "remove_watermark", explode)
    png = encode("RGB", SIZE, "PNG")

    with caplog.at_level(logging.ERROR, logger="gateway"):
        response = await _post_png(client, png)

    assert await _error(response, 500) == "internal error"
    assert "POST /api/v1/remove: unexpected RuntimeError" in caplog.text
    # The exception's message held the upload; only its type and stack are logged.
    assert png[:16].hex() not in caplog.text


# --- what the download is called -----------------------------------------------------


@pytest.mark.parametrize(
    ("client_filename", "image_format", "expected"),
    [
        ("photo.png", "PNG", "photo-clearmark.png"),
        ("IMG 0042.JPG", "JPEG", "IMG_0042-clearmark.jpg"),
        ('evil"; filename="x.exe', "WEBP", "evil_filename_x-clearmark.webp"),
        ("../../etc/passwd", "PNG", "passwd-clearmark.png"),
        ("C:\\Users\\me\\cat.webp", "WEBP", "cat-clearmark.webp"),
        (".hidden.png", "PNG", "hidden-clearmark.png"),
        ("фото.jpg", "JPEG", "image-clearmark.jpg"),
        (None, "PNG", "image-clearmark.png"),
    ],
)
def test_download_filename_is_safe(
    client_filename: str | None, image_format: str, expected: str
) -> None:
    assert download_filename(client_filename, image_format, "clearmark") == expected
