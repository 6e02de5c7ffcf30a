"""Fonts, icons and the Debian packages they come from, on files the tests make."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import assets
from training.fonts import font_family, has_glyphs, matplotlib_fonts, split_fonts
from training.logos import icon_files, is_held_out, split_logos
from training.photos import photo_source
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
