"""Fonts, icons and the Debian packages they come from, on files the tests make."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import assets
from training.fonts import font_family, has_glyphs, matplotlib_fonts, split_fonts
from training.logos import icon_files, is_held_out, split_logos
from training.photos import (
    edj_picture,
    landscape_files,
    opaque_band,
    photo_source,
    release_wallpaper_files,
)
from training.synth import ALPHABET


def test_font_families():
    assert font_family(Path("OpenSans-CondBold.ttf")) == "OpenSans"
    assert font_family(Path("FreeSerifBoldItalic.ttf")) == "FreeSerif"
    assert font_family(Path("DejaVuSansMono-Bold.ttf")) == "DejaVuSansMono"
    assert font_family(Path("EBGaramond12-Regular.otf")) == "EBGaramond"
    assert font_family(Path("NotoSansDisplay-Italic.ttf")) == "NotoSansDisplay"
    assert font_family(Path("NotoSansThai-Bold.ttf")) is None, "a script, not Latin"
    assert font_family(Path("Cantarell-Regular.otf")) is None


def test_split_holds_out_whole_families():
    fonts = [Path(n) for n in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf")]
    train, val = split_fonts(fonts, ["DejaVuSerif"])
    assert train == fonts[:2] and val == fonts[2:]


def test_glyph_check_reads_the_font():
    dejavu = matplotlib_fonts()[0]
    assert has_glyphs(dejavu, ALPHABET)
    assert not has_glyphs(dejavu, "\U0001f600\u4e2d")  # emoji and CJK: not in DejaVu Sans


def _icon(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 4), 200, np.uint8), "RGBA").save(path)


def test_icons_keep_the_largest_png_of_each_name(tmp_path):
    base = tmp_path / "usr/share/icons"
    _icon(base / "Adwaita/96x96/apps/camera.png", 96)
    _icon(base / "Adwaita/512x512/apps/camera.png", 512)
    _icon(base / "Adwaita/96x96/actions/go-up-symbolic.symbolic.png", 96)
    _icon(base / "Adwaita/16x16/apps/tiny.png", 16)  # too small to be a logo
    _icon(base / "Tango/32x32/apps/camera.png", 32)
    (base / "Tango/scalable/apps").mkdir(parents=True)
    (base / "Tango/scalable/apps/camera.svg").write_text("<svg/>")
    icons = icon_files(tmp_path)
    assert set(icons) == {"Adwaita/camera", "Adwaita/go-up-symbolic", "Tango/camera"}
    assert icons["Adwaita/camera"].parent.parent.name == "512x512"
    # One icon name falls on one side in both themes.
    assert is_held_out("Adwaita/camera", 0.5, 0) == is_held_out("Tango/camera", 0.5, 0)
    train, val = split_logos(icons, 0.5, 0)
    assert sorted(train + val) == sorted(icons.values())
    names = [f"Adwaita/icon-{i}" for i in range(400)]
    assert 60 < sum(is_held_out(n, 0.25, 0) for n in names) < 140


def test_assets_stage_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(assets.shutil, "which", lambda tool: None)
    with pytest.raises(assets.AptMissing, match="apt-get not found"):
        assets.fetch_packages(["mate-backgrounds"], tmp_path)
    with pytest.raises(assets.AptMissing, match="apt-get not found: the folder packages"):
        assets.fetch_package_folders({"stellarium-data": "usr/share"}, tmp_path)
    with pytest.raises(assets.AptMissing, match="dpkg-deb not found: other releases"):
        assets.fetch_release_debs(assets.RELEASE_DEBS, tmp_path)
    # Only the missing tool is named.
    monkeypatch.setattr(assets.shutil, "which", lambda tool: None if tool == "dpkg-deb" else tool)
    with pytest.raises(assets.AptMissing, match=r"^dpkg-deb not found"):
        assets.fetch_package_folders({"stellarium-data": "usr/share"}, tmp_path)


def test_assets_stage_reports_apt_failures(tmp_path, monkeypatch):
    """A fake apt-get that fails as apt does without package lists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(
        "#!/bin/sh\necho 'E: Unable to locate package mate-backgrounds' >&2\nexit 100\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(assets.AptMissing, match="Unable to locate package"):
        assets.fetch_packages(["mate-backgrounds"], tmp_path / "out")


def test_assets_stage_unpacks_each_package_once(tmp_path, monkeypatch):
    """Fake apt-get and dpkg: apt-get writes a .deb per package, dpkg -x makes a file and a
    dangling link (as fontconfig's conf.d links are)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "apt-get $*" >> {log}\nshift\n'
        'for p in "$@"; do touch "${p}_1.0_all.deb"; done\n'
    )
    (bin_dir / "dpkg").write_text(
        '#!/bin/sh\nmkdir -p "$3/usr/share/x" && touch "$3/usr/share/x/$(basename $2).txt"\n'
        'ln -sf /nonexistent/conf "$3/usr/share/x/dangling"\n'
    )
    for tool in ("apt-get", "dpkg"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = assets.fetch_packages(["pkg-a", "pkg-b"], tmp_path / "out")
    assert sorted(p.name for p in (root / "usr/share/x").iterdir()) == [
        "pkg-a_1.0_all.deb.txt",
        "pkg-b_1.0_all.deb.txt",
    ]
    assets.fetch_packages(["pkg-a", "pkg-b", "pkg-c"], tmp_path / "out")
    assert log.read_text().splitlines() == [
        "apt-get download pkg-a pkg-b",
        "apt-get download pkg-c",
    ]


def test_cifar_source_is_wired_to_its_loader(tmp_path, monkeypatch):
    """The loader itself is tested in test_cifar.py; here only that params reach it (and that no
    test downloads 160 MB where a network exists)."""
    calls = []
    monkeypatch.setattr(
        "training.cifar.cifar100_photos", lambda root, download: calls.append((root, download))
    )
    photo_source("cifar100", folder=str(tmp_path / "cifar"))
    photo_source("cifar100")
    assert calls == [(tmp_path / "cifar", True), (Path("data/cifar100"), True)]


def _deb(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A real .deb (dpkg-deb --build) holding ``files`` (path: content)."""
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: pics\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test pictures\n"
    )
    for name, content in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(content)
    deb = tmp_path / "archive/pool/main/p/pics_1.0-1_all.deb"
    deb.parent.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def test_other_releases_debs_are_checked_and_only_their_folder_unpacked(tmp_path):
    deb = _deb(tmp_path, {"usr/share/pics/a.jpg": b"a", "usr/share/pics-extra/b.jpg": b"b",
                          "usr/share/doc/pics/copyright": b"c"})  # fmt: skip
    wanted = assets.ReleaseDeb(
        "pool/main/p/pics_1.0-1_all.deb", hashlib.sha256(deb.read_bytes()).hexdigest(),
        "usr/share/pics",
    )  # fmt: skip
    archive = (tmp_path / "archive").as_uri()
    root = assets.fetch_release_debs((wanted,), tmp_path / "out", archive)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["pics_1.0-1/usr/share/pics/a.jpg"]
    deb.unlink()  # unpacked once: not fetched again
    assert assets.fetch_release_debs((wanted,), tmp_path / "out", archive) == root
    with pytest.raises(assets.AptMissing, match="cannot download"):
        assets.fetch_release_debs((wanted,), tmp_path / "elsewhere", archive)


def test_other_releases_debs_with_another_checksum_are_refused(tmp_path):
    _deb(tmp_path, {"usr/share/pics/a.jpg": b"a"})
    wrong = assets.ReleaseDeb("pool/main/p/pics_1.0-1_all.deb", "0" * 64, "usr/share/pics")
    with pytest.raises(assets.AptMissing, match="SHA-256"):
        assets.fetch_release_debs((wrong,), tmp_path / "out", (tmp_path / "archive").as_uri())
    assert not (tmp_path / "out/releases").exists()


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_edj_picture_is_its_largest_colour_jpeg(tmp_path):
    """An Eet file stores a picture at several sizes, and an image's alpha as a greyscale JPEG
    of the same size; the bytes between them are Eet's own."""
    small = np.full((6, 8, 3), (200, 30, 30), np.uint8)
    large = np.full((30, 40, 3), (30, 60, 200), np.uint8)
    alpha = np.full((30, 40), 255, np.uint8)
    edj = tmp_path / "Photo.edj"
    edj.write_bytes(b"\x1e\xe7\x0fB" + bytes(50) + _jpeg(small) + bytes(9) + _jpeg(alpha)
                    + bytes(7) + _jpeg(large) + b"\xff\xd8\xff" + bytes(20))  # fmt: skip
    picture = edj_picture(edj)
    assert picture.shape == (30, 40, 3)
    assert np.abs(picture.astype(int) - (30, 60, 200)).max() <= 3
    (tmp_path / "Empty.edj").write_bytes(bytes(100))
    with pytest.raises(ValueError, match="no JPEG"):
        edj_picture(tmp_path / "Empty.edj")


def test_other_releases_wallpapers_are_named_by_package_and_filtered(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)  # > 100 kB as a PNG
    folder = tmp_path / "releases/gnome-backgrounds_3.38.0-1/usr/share/backgrounds/gnome"
    folder.mkdir(parents=True)
    Image.fromarray(noise).save(folder / "Road.png")
    Image.fromarray(noise).save(folder / "Symbolics-1.png")  # the held-out wallpaper's sibling
    Image.fromarray(noise[:8, :8]).save(folder / "VNC.png")  # a fill, not a picture
    e17 = tmp_path / "releases/enlightenment-data_0.27.1-1/backgrounds"
    e17.mkdir(parents=True)
    (e17 / "Peaks.edj").write_bytes(_jpeg(noise) + bytes(100_000))
    loaders = release_wallpaper_files(tmp_path / "releases")
    assert sorted(loaders) == [
        "wallpaper-enlightenment-data-Peaks",
        "wallpaper-gnome-backgrounds-Road",
    ]
    assert np.array_equal(loaders["wallpaper-gnome-backgrounds-Road"](), noise)
    assert loaders["wallpaper-enlightenment-data-Peaks"]().shape == (200, 200, 3)


def test_package_folders_are_fetched_with_apt_and_only_their_folder_unpacked(tmp_path, monkeypatch):
    """A fake apt-get that hands out a real .deb; the rest of the package stays packed."""
    deb = _deb(tmp_path, {"usr/share/pics/land/a.png": b"a", "usr/share/pics/stars.dat": b"s"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "apt-get $*" >> {log}\ncp {deb} .\n')
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = assets.fetch_package_folders({"pics": "usr/share/pics/land"}, tmp_path / "out")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["usr/share/pics/land/a.png"]
    assets.fetch_package_folders({"pics": "usr/share/pics/land"}, tmp_path / "out")
    assert log.read_text().splitlines() == ["apt-get download pics"]
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho 'E: Unable to locate package' >&2\n")
    with pytest.raises(assets.AptMissing, match="Unable to locate package"):
        assets.fetch_package_folders({"other": "usr/share/x"}, tmp_path / "out")


def test_opaque_band_is_the_longest_run_of_fully_opaque_rows():
    rgba = np.zeros((60, 5, 4), np.uint8)
    rgba[..., :3] = np.arange(60, dtype=np.uint8)[:, None, None]
    rgba[10:50, :, 3] = 255
    rgba[52:60, :, 3] = 255
    rgba[30, 2, 3] = 254  # one pixel not quite opaque cuts the run: 10-29 and 31-49
    band = opaque_band(rgba)
    assert band.shape == (20, 5, 3) and band[0, 0, 0] == 10 and band[-1, 0, 0] == 29
    assert opaque_band(np.zeros((8, 5, 4), np.uint8)).shape == (0, 5, 3)


def test_landscapes_keep_the_ground_of_their_pictures(tmp_path):
    folder = tmp_path / "usr/share/stellarium/landscapes/field"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (300, 400, 4), dtype=np.uint8)
    tile[:80, :, 3] = 0  # the sky
    tile[80:, :, 3] = 255
    Image.fromarray(tile).save(folder / "field1.png")
    low = tile.copy()
    low[:150, :, 3] = 0  # 150 rows of ground: under MIN_TEXTURE_SIDE
    Image.fromarray(low).save(folder / "field2.png")
    flat = np.full((300, 400, 4), 255, np.uint8)
    Image.fromarray(flat).save(folder / "flat.png")
    Image.fromarray(tile[..., 0]).save(folder / "fogridge.png")  # a fog mask
    Image.fromarray(tile).save(folder / "ocean1.png")  # a render
    loaders = landscape_files(tmp_path)
    assert list(loaders) == ["landscape-field-field1"]
    assert np.array_equal(loaders["landscape-field-field1"](), tile[80:, :, :3])
