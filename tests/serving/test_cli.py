"""`clearmark clean` (serving/clean.py, serving/cli.py) against the real gateway app with the
proof of work on, in front of the fake TorchServe (tests/gateway/conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

import gateway.client_limits
import gateway.middleware
from gateway.app import create_app
from gateway.settings import Settings
from serving.clean import FAILED, SKIPPED, Outcome, cleaned_path, find_mask, plan
from serving.cli import main
from tests.gateway.conftest import BUSY_503, SUCCESS, FakeTorchServe, encode

# 20 photos in three formats, some in subfolders, each its own size: relative path, format,
# size. The fake gives every image back unchanged, so each cleaned copy is its photo's bytes.
PHOTOS = [
    (f"{folder}{name}{i}.{suffix}", image_format, (40 + 3 * i, 30 + 2 * i))
    for i in range(20)
    for folder, name, suffix, image_format in [
        [
            ("", "beach", "jpg", "JPEG"),
            ("2024/", "park", "png", "PNG"),
            ("2024/june/", "lake", "webp", "WEBP"),
            ("2025/", "dune", "jpeg", "JPEG"),
        ][i % 4]
    ]
]
# A JPEG cut short inside its header: the gateway answers 422.
CORRUPT = "2024/broken.jpg"
CORRUPT_MESSAGE = "422 could not read the JPEG header: the image file is corrupt"


async def live_gateway(aiohttp_server, settings: Settings) -> str:
    guarded = dataclasses.replace(settings, proof_of_work=True, proof_of_work_cost=1)
    server = await aiohttp_server(create_app(guarded))
    return str(server.make_url("")).rstrip("/")


def make_folder(root: Path) -> dict[str, bytes]:
    photos = {}
    for relative, image_format, size in PHOTOS:
        photos[relative] = encode("RGB", size, image_format)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(photos[relative])
    (root / "notes.txt").write_text("not a photo")
    (root / CORRUPT).write_bytes(encode("RGB", (60, 40), "JPEG")[:400])
    return photos


def cleaned_name(relative: str) -> str:
    stem, suffix = relative.rsplit(".", 1)
    return f"{stem}-clearmark.{'jpg' if suffix == 'jpeg' else suffix}"


async def clean(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    status = await asyncio.to_thread(main, ["clean", *args])
    return status, capsys.readouterr().out


async def test_a_folder_of_20_mixed_photos_is_cleaned_skipped_when_done_and_redone(
    aiohttp_server,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = await live_gateway(aiohttp_server, settings)
    root, out = tmp_path / "photos", tmp_path / "cleaned"
    photos = make_folder(root)
    args = (str(root), "--out", str(out), "--url", url)

    status, printed = await clean(capsys, *args)

    assert status == 1  # the corrupt photo
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(cleaned_name(relative) for relative in photos)
    for relative, image_format, size in PHOTOS:
        cleaned = out / cleaned_name(relative)
        assert cleaned.read_bytes() == photos[relative]
        with Image.open(cleaned) as img:
            assert (img.format, img.size) == (image_format, size)
    assert len(fake_torchserve.received) == 20
    assert printed.splitlines() == [
        "cleaned 20, skipped 1, failed 1",
        f"failed {root / CORRUPT}: {CORRUPT_MESSAGE}",
        f"skipped {root / 'notes.txt'}: not a PNG, JPEG or WebP file name",
    ]

    status, printed = await clean(capsys, *args)

    assert status == 1
    assert len(fake_torchserve.received) == 20
    assert printed.splitlines() == [
        "cleaned 0, skipped 21, failed 1",
        "skipped 20 already cleaned (--overwrite to redo)",
        f"failed {root / CORRUPT}: {CORRUPT_MESSAGE}",
        f"skipped {root / 'notes.txt'}: not a PNG, JPEG or WebP file name",
    ]

    (root / CORRUPT).unlink()
    (out / cleaned_name(PHOTOS[0][0])).write_bytes(b"stale")
    status, printed = await clean(capsys, *args, "--overwrite", "--jobs", "4")

    assert status == 0
    assert len(fake_torchserve.received) == 40
    assert (out / cleaned_name(PHOTOS[0][0])).read_bytes() == photos[PHOTOS[0][0]]
    assert printed.splitlines()[0] == "cleaned 20, skipped 1, failed 0"


async def test_a_busy_503_is_waited_out_as_its_retry_after_says(
    aiohttp_server,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.middleware, "RETRY_AFTER_S", 1)
    url = await live_gateway(aiohttp_server, settings)
    photo = tmp_path / "busy.png"
    photo.write_bytes(encode("RGB", (50, 40), "PNG"))
    fake_torchserve.mode = BUSY_503

    async def free_after_the_first_try() -> None:
        while not fake_torchserve.received:
            await asyncio.sleep(0.01)
        fake_torchserve.mode = SUCCESS

    freed = asyncio.create_task(free_after_the_first_try())
    started = time.monotonic()
    status, printed = await clean(capsys, str(photo), "--url", url)
    await freed

    assert status == 0
    assert time.monotonic() - started >= 1.0
    assert len(fake_torchserve.received) == 2
    assert (tmp_path / "busy-clearmark.png").read_bytes() == photo.read_bytes()
    assert printed.splitlines() == ["cleaned 1, skipped 0, failed 0"]


async def test_more_jobs_than_the_per_client_limit_wait_out_their_429s(
    aiohttp_server,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.client_limits, "CONCURRENCY_RETRY_AFTER_S", 1)
    fake = FakeTorchServe()

    async def slow_predictions(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)  # each upload holds its slot a while: the others meet a 429
        return await fake.predictions(request)

    torchserve = web.Application()
    torchserve.router.add_post("/predictions/{model_name}", slow_predictions)
    torchserve_url = str((await aiohttp_server(torchserve)).make_url("")).rstrip("/")
    limited = dataclasses.replace(
        settings,
        torchserve_url=torchserve_url,
        proof_of_work=True,
        proof_of_work_cost=1,
        rate_limit_per_minute=600,
        rate_limit_burst=100,
        max_uploads_per_client=1,
    )
    app = create_app(limited)
    statuses: list[int] = []

    @web.middleware
    async def record(request: web.Request, handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/api/v1/remove":
            statuses.append(response.status)
        return response

    app.middlewares.insert(0, record)
    url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    for i in range(4):
        (tmp_path / f"p{i}.png").write_bytes(encode("RGB", (20 + i, 20), "PNG"))

    status, printed = await clean(
        capsys, str(tmp_path), "--out", str(tmp_path / "out"), "--jobs", "3", "--url", url
    )

    assert status == 0, printed
    assert printed.splitlines() == ["cleaned 4, skipped 0, failed 0"]
    assert statuses.count(200) == 4 and 429 in statuses
    assert len(fake.received) == 4


async def test_mask_dir_sends_each_photos_mask_paired_by_relative_path(
    aiohttp_server,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = await live_gateway(aiohttp_server, settings)
    root, masks = tmp_path / "photos", tmp_path / "masks"
    (root / "a").mkdir(parents=True)
    (masks / "a").mkdir(parents=True)
    masked = encode("RGB", (64, 48), "JPEG")
    (root / "a" / "b.jpg").write_bytes(masked)
    (root / "c.png").write_bytes(encode("RGB", (32, 24), "PNG"))
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 20, 10))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    (masks / "a" / "b.png").write_bytes(buffer.getvalue())

    status, printed = await clean(
        capsys, str(root), "--out", str(tmp_path / "out"), "--mask-dir", str(masks), "--url", url
    )

    assert status == 0, printed
    by_image = {p.image: p for p in fake_torchserve.received}
    assert by_image[masked].mask == buffer.getvalue()
    assert by_image[masked].mask_mime == "image/png"
    assert by_image[(root / "c.png").read_bytes()].mask is None
    assert (tmp_path / "out" / "a" / "b-clearmark.jpg").read_bytes() == masked


def test_masks_pair_by_relative_stem_png_first(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.webp").write_bytes(b"")
    assert find_mask(tmp_path, Path("a/b.jpg")) == tmp_path / "a" / "b.webp"
    (tmp_path / "a" / "b.png").write_bytes(b"")
    assert find_mask(tmp_path, Path("a/b.jpg")) == tmp_path / "a" / "b.png"
    assert find_mask(tmp_path, Path("b.jpg")) is None
    assert cleaned_path(Path("out"), Path("x/y.z.jpeg"), "JPEG") == Path("out/x/y.z-clearmark.jpg")


def test_without_out_copies_go_beside_and_a_rerun_leaves_them_and_twins_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    for name in ("b.jpg", "b.jpeg", "c.png"):
        (tmp_path / "a" / name).write_bytes(
            encode("RGB", (8, 8), "PNG" if name == "c.png" else "JPEG")
        )
    (tmp_path / "a" / "c-clearmark.png").write_bytes(b"done before")

    photos, left = plan([tmp_path], None, None, overwrite=False)

    assert [(p.source.name, p.cleaned) for p in photos] == [
        ("b.jpeg", tmp_path / "a" / "b-clearmark.jpg")
    ]
    assert left == [
        Outcome(
            tmp_path / "a" / "b.jpg", FAILED, f"its cleaned copy would be {photos[0].source}'s"
        ),
        Outcome(tmp_path / "a" / "c-clearmark.png", SKIPPED, "a cleaned copy"),
        Outcome(tmp_path / "a" / "c.png", SKIPPED, "already cleaned (--overwrite to redo)"),
    ]


async def test_an_unreachable_gateway_and_a_missing_path_fail_with_their_reasons(
    closed_port_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(encode("RGB", (20, 20), "PNG"))

    status, printed = await clean(
        capsys, str(photo), str(tmp_path / "gone.jpg"), "--url", closed_port_url
    )

    assert status == 1
    lines = printed.splitlines()
    assert lines[0] == "cleaned 0, skipped 0, failed 2"
    assert lines[1:] == [
        f"failed {tmp_path / 'gone.jpg'}: no such file or folder",
        f"failed {photo}: cannot reach the gateway at {closed_port_url}: "
        "[Errno 111] Connection refused",
    ]
    assert not (tmp_path / "p-clearmark.png").exists()


async def test_the_installed_clearmark_script_cleans_against_the_live_gateway(
    aiohttp_server, settings: Settings, tmp_path: Path
) -> None:
    url = await live_gateway(aiohttp_server, settings)
    photo = tmp_path / "snap.webp"
    photo.write_bytes(encode("RGB", (30, 20), "WEBP"))
    script = Path(sys.executable).parent / "clearmark"

    process = await asyncio.create_subprocess_exec(
        str(script), "clean", str(photo), "--out", str(tmp_path / "out"), "--url", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().splitlines() == ["cleaned 1, skipped 0, failed 0"]
    assert "1/1" in stderr.decode()  # tqdm's bar
    assert (tmp_path / "out" / "snap-clearmark.webp").read_bytes() == photo.read_bytes()
