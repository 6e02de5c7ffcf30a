"""The prepare stage: gather background photos, fonts and logos, and split each into the part
training sees and the part only validation sees.

Writes ``<out>/train/*.png`` and ``<out>/val/*.png``, one file per photo (split by whole
picture, so no validation photo is ever cropped for training; photos larger than
``max_side`` are reduced), and ``<out>/marks.json``: the font and logo files of each side
(whole font families and a share of icon names held out, so validation measures marks the model
has never seen).

    python -m training.prepare --params params.yaml --debian data/debian --out data/photos
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from training.fonts import debian_fonts, font_family, matplotlib_fonts, split_fonts
from training.graphics import graphic, icon_wallpaper
from training.leaves import dead_leaves
from training.logos import icon_files, split_logos
from training.photos import (
    GRAPHIC,
    ICONS,
    LEAVES,
    PhotoLoader,
    file_loaders,
    is_validation,
    landscape_files,
    photo_source,
    release_wallpaper_files,
    stamp_images,
    texture_files,
)
from training.synth import ALPHABET


def prepare_photos(
    source: str, folder: str | None, val_fraction: float, seed: int, max_side: int,
    debian_root: Path, out: Path,
) -> dict[str, int]:  # fmt: skip
    photos = photo_source(source, folder, debian_root)
    counts = {"train": 0, "val": 0}
    for name, load in sorted(photos.items()):
        split = "val" if is_validation(name, val_fraction, seed) else "train"
        (out / split).mkdir(parents=True, exist_ok=True)
        _reduced(Image.fromarray(load()), max_side).save(out / split / f"{name}.png")
        counts[split] += 1
    if counts["train"] == 0 or counts["val"] == 0:
        raise ValueError(f"split left a side empty ({counts}): change prepare.val_fraction or seed")
    return counts


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def prepare_textures(debian_root: Path, max_side: int, out: Path) -> int:
    """Photographic textures from the Debian packages, into ``out/train`` only: validation
    stays on the held-out photos, the pictures people send."""
    files = texture_files(debian_root) if debian_root.is_dir() else {}
    return _write_training_only(file_loaders(files), max_side, out)


def prepare_release_wallpapers(releases_root: Path, max_side: int, out: Path) -> int:
    """Other Debian releases' wallpapers (training/assets.py RELEASE_DEBS), into ``out/train``
    only, as the textures: the held-out photos and what is measured on them stay as they were."""
    files = release_wallpaper_files(releases_root) if releases_root.is_dir() else {}
    return _write_training_only(files, max_side, out)


def prepare_landscapes(debian_root: Path, max_side: int, out: Path) -> int:
    """The ground of Stellarium's panoramas (training/photos.py landscape_files), into
    ``out/train`` only, as the textures."""
    files = landscape_files(debian_root) if debian_root.is_dir() else {}
    return _write_training_only(files, max_side, out)


def _write_training_only(files: dict[str, PhotoLoader], max_side: int, out: Path) -> int:
    for name, load in files.items():
        _reduced(Image.fromarray(load()), max_side).save(out / "train" / f"{name}.png")
    return len(files)


# Each worker process gets the photos, stamps and icon files once, from its initializer, instead
# of with every picture it is asked for (a gigabyte pickled per task).
_LEAF_SOURCES: dict[str, list[np.ndarray] | list[Path]] = {}


def _init_leaf_worker(
    photos: list[np.ndarray], stamps: list[np.ndarray], icons: list[Path]
) -> None:
    _LEAF_SOURCES.update(photos=photos, stamps=stamps, icons=icons)


def _leaf_picture(seed: int, index: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([seed, index])
    return dead_leaves(rng, size, _LEAF_SOURCES["photos"], _LEAF_SOURCES["stamps"])


def _graphic_picture(seed: int, index: int, size: int) -> np.ndarray:
    # Another stream than the leaves' (a third key): picture i is not leaves picture i's twin.
    rng = np.random.default_rng([seed, index, 1])
    return graphic(rng, size, _LEAF_SOURCES["photos"])


def _icon_picture(seed: int, index: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([seed, index, 2])  # a stream of its own, as _graphic_picture's
    return icon_wallpaper(rng, size, _LEAF_SOURCES["photos"], _LEAF_SOURCES["icons"])


def prepare_leaves(
    count: int, size: int, seed: int, debian_root: Path, out: Path, workers: int | None = None,
    graphics: int = 0, icon_wallpapers: int = 0, icons: Sequence[Path] = (),
) -> dict[str, int]:  # fmt: skip
    """``count`` dead-leaves pictures, ``graphics`` vector-art ones and ``icon_wallpapers``
    pictures of opaque ``icons`` (training/graphics.py), coloured and textured by the training
    photos written so far, into ``out/train`` (generated once here: far too slow to make per
    training step). Returns how many of each."""
    if icon_wallpapers and not icons:
        icon_wallpapers = 0  # no icon files (no Debian packages): there is nothing to paint
    written = {
        "train_leaves": count, "train_graphics": graphics, "train_icon_wallpapers": icon_wallpapers
    }  # fmt: skip
    if not any(written.values()):
        return written
    kinds = (
        (_leaf_picture, LEAVES, count),
        (_graphic_picture, GRAPHIC, graphics),
        (_icon_picture, ICONS, icon_wallpapers),
    )
    # Sorted by name, without the pictures this stage makes: the same photos colour them
    # whichever kind is written first.
    photos = [
        np.asarray(Image.open(f).convert("RGB"))
        for f in sorted((out / "train").glob("*"))
        if not f.name.startswith(tuple(f"{prefix}-" for _, prefix, _ in kinds))
    ]
    stamps = stamp_images(debian_root) if debian_root.is_dir() else []
    sources = (photos, stamps, list(icons))
    with ProcessPoolExecutor(
        workers or os.cpu_count(), initializer=_init_leaf_worker, initargs=sources
    ) as pool:
        for make, prefix, n in kinds:
            pictures = pool.map(make, [seed] * n, range(n), [size] * n, chunksize=16)
            for i, picture in enumerate(pictures):
                Image.fromarray(picture).save(out / "train" / f"{prefix}-{i:05d}.png")
    return written


def prepare_marks(
    debian_root: Path, held_out_fonts: list[str], held_out_logo_fraction: float, seed: int
) -> dict[str, dict[str, list[str]]]:
    """Font and icon files for each side. Without the Debian packages (no apt), matplotlib's
    DejaVu fonts and drawn shapes stand in."""
    fonts = debian_fonts(debian_root, ALPHABET) if debian_root.is_dir() else []
    fonts = fonts or matplotlib_fonts()
    train_fonts, val_fonts = split_fonts(fonts, held_out_fonts)
    if not train_fonts or not val_fonts:
        families = sorted({str(font_family(f)) for f in fonts})
        raise ValueError(
            f"prepare.held_out_fonts {held_out_fonts} must name some but not all of the font "
            f"families found: {families}"
        )
    train_logos, val_logos = split_logos(icon_files(debian_root), held_out_logo_fraction, seed)
    return {
        "train": {"fonts": [str(f) for f in train_fonts], "logos": [str(p) for p in train_logos]},
        "val": {"fonts": [str(f) for f in val_fonts], "logos": [str(p) for p in val_logos]},
    }


def prepare(params: dict, debian_root: Path, out: Path, releases_root: Path) -> dict[str, int]:
    """Both halves of the stage from its params.yaml section; returns the counts written.
    ``debian_root`` and ``releases_root``: the assets stage's unpacked packages and other
    releases' builds."""
    if out.exists():
        shutil.rmtree(out)
    counts = prepare_photos(
        params["source"], params.get("folder"), params["val_fraction"], params["seed"],
        params["max_side"], debian_root, out,
    )  # fmt: skip
    counts["train_textures"] = (
        prepare_textures(debian_root, params["max_side"], out) if params["textures"] else 0
    )
    counts["train_release_wallpapers"] = (
        prepare_release_wallpapers(releases_root, params["max_side"], out)
        if params["release_wallpapers"]
        else 0
    )
    counts["train_landscapes"] = (
        prepare_landscapes(debian_root, params["max_side"], out) if params["landscapes"] else 0
    )
    marks = prepare_marks(
        debian_root, params["held_out_fonts"], params["held_out_logo_fraction"], params["seed"]
    )
    counts |= prepare_leaves(
        params["leaves"], params["leaves_size"], params["seed"], debian_root, out,
        graphics=params["graphics"], icon_wallpapers=params["icon_wallpapers"],
        icons=[Path(p) for p in marks["train"]["logos"]],
    )  # fmt: skip
    (out / "marks.json").write_text(json.dumps(marks, indent=1))
    for split in ("train", "val"):
        counts[f"{split}_fonts"] = len(marks[split]["fonts"])
        counts[f"{split}_logos"] = len(marks[split]["logos"])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--debian", type=Path, required=True, help="the assets stage's output")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())["prepare"]
    counts = prepare(params, args.debian / "root", args.out, args.debian / "releases")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
