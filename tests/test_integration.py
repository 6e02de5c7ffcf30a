"""The whole path: the committed checkpoint archived, a real TorchServe, the gateway in front."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket

import numpy as np
import pytest
import yaml
from aiohttp import ClientSession, FormData
from PIL import Image

from gateway.app import create_app
from gateway.settings import Settings
from gateway.torchserve_client import UNSURE_LEVEL
from handler.archive import MODEL_NAME, build_archive
from serving.torchserve import REPO, Ports, TorchServe
from tests.images import decode, encode
from training.examples import validation_examples
from training.fonts import matplotlib_fonts
from training.metrics import psnr
from training.photos import is_validation, library_photos
from training.synth import MarkAssets

pytestmark = pytest.mark.integration
EXAMPLES = 8  # the first validation examples of the evaluate stage
MIN_GAIN_DB = 3.0
# The committed model's measured gain, so the xfail reason below stays true when it changes.
EVALUATED_GAIN_DB = json.loads((REPO / "metrics" / "eval.json").read_text())["protocol_256"][
    "psnr_gain"
]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def torchserve(tmp_path_factory):
    store = tmp_path_factory.mktemp("model_store")
    build_archive(REPO / "model" / "clearmark.pt", store, restorer=REPO / "model" / "restorer.pt")
    server = TorchServe(store, f"{MODEL_NAME}.mar", tmp_path_factory.mktemp("run"),
                        Ports(*free_ports(5)))  # fmt: skip
    with server:
        server.wait_until_ready(MODEL_NAME, timeout_s=240)
        yield server
    assert server.process is None


@pytest.fixture
async def client(aiohttp_client, torchserve):
    # The model through the stack, not the anti-spam (tested in tests/gateway and test_soak).
    settings = Settings(
        torchserve_url=f"http://127.0.0.1:{torchserve.ports.inference}",
        proof_of_work=False,
        rate_limit_per_minute=0,
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture(scope="module")
def validation_set():
    """Examples made as the evaluate stage makes them, on the held-out library photos (the
    Debian wallpapers and fonts need the assets stage, which tests do not run)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    prep, ev = params["prepare"], params["evaluate"]
    held_out = [load() for name, load in sorted(library_photos().items())
                if is_validation(name, prep["val_fraction"], prep["seed"])]  # fmt: skip
    assets = MarkAssets(tuple(matplotlib_fonts()))
    return validation_examples(held_out, assets, EXAMPLES, ev["crop_size"], ev["seed"])


async def clean_through_gateway(client, example) -> np.ndarray:
    """POST the watermarked example as a PNG upload; check what comes back; return its pixels."""
    form = FormData()
    form.add_field("image", encode(example.watermarked, "PNG"), filename="wm.png",
                   content_type="image/png")  # fmt: skip
    response = await client.post("/api/v1/remove", data=form)
    assert response.status == 200, await response.text()
    assert response.content_type == "image/png"
    out = decode(await response.read())
    assert out.format == "PNG" and out.mode == "RGB"
    assert out.size == example.watermarked.shape[1::-1]
    return np.asarray(out)


async def detect_through_gateway(client, example, unsure: bool = False) -> np.ndarray:
    """POST the watermarked example to /api/v1/detect; check the PNG mask; return it as bool
    (with ``unsure``: its grey levels, 0, UNSURE_LEVEL and 255)."""
    form = FormData()
    form.add_field("image", encode(example.watermarked, "PNG"), filename="wm.png",
                   content_type="image/png")  # fmt: skip
    query = "?unsure=true" if unsure else ""
    response = await client.post(f"/api/v1/detect{query}", data=form)
    assert response.status == 200, await response.text()
    mask = decode(await response.read())
    assert mask.format == "PNG" and mask.mode == "L"
    assert mask.size == example.watermarked.shape[1::-1]
    values = np.asarray(mask)
    if unsure:
        assert set(np.unique(values)) <= {0, UNSURE_LEVEL, 255}
        return values
    assert set(np.unique(values)) <= {0, 255}
    return values == 255


async def test_only_the_detected_mask_changes(client, validation_set):
    """Through the real TorchServe (multipart, both tasks): every pixel outside the mask that
    /api/v1/detect answers comes back bit-identical from /api/v1/remove, and the service finds
    and changes something on these marked images."""
    changed = 0
    for example in validation_set:
        out = await clean_through_gateway(client, example)
        mask = await detect_through_gateway(client, example)
        assert np.array_equal(out[~mask], example.watermarked[~mask])
        changed += int(not np.array_equal(out, example.watermarked))
    assert changed > 0


async def test_detect_with_unsure_adds_what_was_left_and_keeps_the_mask(client, validation_set):
    """Through the real TorchServe: the 255 part of ?unsure=true is the plain mask, and on these
    marked images the network saw some marked pixels it did not keep."""
    unsure_on_marks = 0
    for example in validation_set:
        mask = await detect_through_gateway(client, example)
        levels = await detect_through_gateway(client, example, unsure=True)
        assert np.array_equal(levels == 255, mask)
        unsure_on_marks += int(np.count_nonzero((levels == UNSURE_LEVEL) & example.mask))
    assert unsure_on_marks > 0


async def test_a_given_mask_is_restored_better_than_the_input(client, validation_set):
    for example in validation_set[:3]:
        form = FormData()
        form.add_field("image", encode(example.watermarked, "PNG"), filename="wm.png",
                       content_type="image/png")  # fmt: skip
        buffer = io.BytesIO()
        Image.fromarray(example.mask.astype(np.uint8) * 255, "L").save(buffer, format="PNG")
        form.add_field("mask", buffer.getvalue(), filename="mask.png", content_type="image/png")
        response = await client.post("/api/v1/remove", data=form)
        assert response.status == 200, await response.text()
        out = np.asarray(decode(await response.read()))
        assert np.array_equal(out[~example.mask], example.watermarked[~example.mask])
        assert psnr(out, example.clean) > psnr(example.watermarked, example.clean) + 3


# Issue 2's target, on the first 8 crops of the evaluation's kind. The detector served since
# 2026-12-06, at the gate the crop and off-mark rules allow (gate_search.max_crop_loss_db,
# max_outside_pixels), gains +0.37 dB on them in process (it changes 2 of the 8); the one
# before at its gate, +2.46; the one before that, with a gate that left a held-out crop 16 dB
# below its input, +3.45.
@pytest.mark.xfail(
    strict=True,
    reason=f"issue 2 target not met: the served gate gains {EVALUATED_GAIN_DB:+.2f} dB at 256 on "
    "metrics/eval.json (+0.37 on these 8 crops), not +3 dB",
)
async def test_psnr_gain_meets_the_target(client, validation_set):
    gains = []
    for example in validation_set:
        out = await clean_through_gateway(client, example)
        gains.append(psnr(out, example.clean) - psnr(example.watermarked, example.clean))
    assert np.mean(gains) >= MIN_GAIN_DB, f"PSNR gains per example: {np.round(gains, 2)}"


async def test_jpeg_raw_body_comes_back_as_jpeg(client, validation_set):
    data = encode(validation_set[0].watermarked, "JPEG", quality=92)
    response = await client.post("/api/v1/remove", data=data,
                                 headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert decode(await response.read()).size == (256, 256)


async def test_ready_once_the_model_answers(client):
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["status"] == "ready"


async def test_a_bad_item_fails_alone_in_a_torchserve_batch(torchserve, validation_set):
    """Sent straight to TorchServe at once, so that dynamic batching can group them."""
    good = encode(validation_set[1].watermarked, "PNG")
    url = f"http://127.0.0.1:{torchserve.ports.inference}/predictions/{MODEL_NAME}"

    async with ClientSession() as session:

        async def post(body: bytes) -> tuple[int, bytes]:
            async with session.post(url, data=body, headers={"Content-Type": "image/png"}) as r:
                return r.status, await r.read()

        results = await asyncio.gather(post(good), post(good[:300]), post(good))
    assert [status for status, _ in results] == [200, 422, 200]
    assert Image.open(io.BytesIO(results[0][1])).size == (256, 256)
    assert b"decode" in results[1][1]


def test_stopping_leaves_no_process_behind(tmp_path):
    store = tmp_path / "store"
    build_archive(REPO / "model" / "clearmark.pt", store, restorer=REPO / "model" / "restorer.pt")
    server = TorchServe(store, f"{MODEL_NAME}.mar", tmp_path / "run", Ports(*free_ports(5)))
    server.start()
    assert server.process is not None
    group = server.process.pid
    server.wait_until_ready(MODEL_NAME, timeout_s=240)
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
