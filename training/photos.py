"""Where background photographs come from, and how they are split into train and validation.

A source is a function returning ``{name: loader}``; loaders return (H, W, 3) uint8 RGB.
``SOURCES`` maps the name used in params.yaml (``prepare.source``) to the function.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

PhotoLoader = Callable[[], np.ndarray]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

# The name prefixes of the training folder's sources, which examples.photo_sources reads back
# and params.yaml's source_shares name: gathered here, and made by the prepare stage.
WALLPAPER, TEXTURE, LANDSCAPE = "wallpaper", "texture", "landscape"
LEAVES, GRAPHIC, ICONS = "leaves", "graphic", "icons"
# Made or gathered for variety, not photos people send: the procedural banks and the game and
# sample textures. The rest (wallpapers, landscapes, the libraries' photos) is real photographs.
MADE_SOURCES = frozenset({LEAVES, GRAPHIC, ICONS, TEXTURE})


def load_rgb(path: Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, EXIF orientation applied."""
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def library_photos() -> dict[str, PhotoLoader]:
    """Photographs shipped inside scikit-image, scikit-learn and matplotlib, as RGB: eleven
    colour photos and ten greyscale ones (no download, no apt)."""
    import matplotlib
    import skimage
    import sklearn.datasets

    skimage_dir = Path(skimage.__file__).parent / "data"
    sklearn_dir = Path(sklearn.datasets.__file__).parent / "images"
    mpl_dir = Path(matplotlib.get_data_path()) / "sample_data"
    # motorcycle_right is left out: it is a stereo twin of motorcycle_left, and the
    # two would leak across the train/validation split.
    files = {
        **{
            f"skimage-{Path(name).stem}": skimage_dir / name
            for name in (
                "astronaut.png",
                "chelsea.png",
                "coffee.png",
                "hubble_deep_field.jpg",
                "ihc.png",
                "motorcycle_left.png",
                "retina.jpg",
                "rocket.jpg",
                # greyscale
                "brick.png",
                "camera.png",
                "cell.png",
                "clock_motion.png",
                "coins.png",
                "grass.png",
                "gravel.png",
                "moon.png",
                "page.png",
                "text.png",
            )
        },
        "sklearn-china": sklearn_dir / "china.jpg",
        "sklearn-flower": sklearn_dir / "flower.jpg",
        "matplotlib-grace_hopper": mpl_dir / "grace_hopper.jpg",
    }
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"bundled photos missing (reinstall the packages?): {missing}")
    return file_loaders(files)


def bundled_photos(debian_root: Path) -> dict[str, PhotoLoader]:
    """The library photos plus the wallpapers of Debian's mate-backgrounds, gnome-backgrounds
    and desktop-base unpacked under ``debian_root`` (the assets stage's output): photos of
    nature and abstract art up to 5640x3172, for texture and full-resolution validation."""
    return {**library_photos(), **file_loaders(wallpaper_files(debian_root))}


def file_loaders(files: dict[str, Path]) -> dict[str, PhotoLoader]:
    """A loader (load_rgb) for each image file, by name."""
    return {name: (lambda f=f: load_rgb(f)) for name, f in files.items()}


# Wallpaper packages' files of 100 kB or less are icons, thumbnails and fills, not pictures.
MIN_PICTURE_BYTES = 100_000


def _is_picture(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.suffix.lower() in suffixes and path.stat().st_size > MIN_PICTURE_BYTES


def wallpaper_files(debian_root: Path) -> dict[str, Path]:
    """Raster wallpapers under ``debian_root``, named "wallpaper-<path>"; of one picture shipped
    at several sizes only the largest file is kept."""
    folders = [debian_root / "usr/share/backgrounds", debian_root / "usr/share/desktop-base"]
    if not any(f.is_dir() for f in folders):
        raise FileNotFoundError(
            f"no Debian wallpapers under {debian_root}: run the assets stage "
            "(python -m training.assets --out data/debian) first"
        )
    largest: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not _is_picture(path, IMAGE_SUFFIXES):
                continue
            name = f"{WALLPAPER}-" + str(path.relative_to(folder).with_suffix("")).replace("/", "-")
            picture = SIZE_SUFFIX.sub("", name)
            if picture not in largest or path.stat().st_size > largest[picture].stat().st_size:
                largest[picture] = path
    return largest


# Training-only photographs from more Debian packages (issue 10): SuperTuxKart's photographic
# textures (bark, rock, sand, grass, wood, walls), OpenCV's sample photos, and Tux Paint's
# photographic cut-outs, which the dead-leaves bank (training/leaves.py) uses as leaves.
TEXTURE_FOLDERS = (
    "usr/share/games/supertuxkart/data/textures",
    "usr/share/games/supertuxkart/data/tracks",
    "usr/share/doc/opencv-doc/examples/data",
)
STAMP_FOLDER = "usr/share/tuxpaint/stamps"
# Stamps of letters and symbols look like text marks, cartoons like logos: not backgrounds.
STAMP_EXCLUDED = ("symbols", "cartoon")
MIN_TEXTURE_SIDE = 192
# Not photographs: normal, gloss and displacement maps; drawings and test charts; pictures of
# printed text, signs and ads, which would teach that text on a photo is never a mark.
TEXTURE_EXCLUDED = re.compile(
    r"normal|_nm$|gloss|displace|mask|noise|caustics|stkflag|sign|poster|text|digits|sudoku|"
    r"licenseplate|chessboard|pca_test|^ml$|ellipses|detect_blob|gradient|cards|board|map",
    re.IGNORECASE,
)


def _is_photo_texture(path: Path) -> bool:
    """A raster at least MIN_TEXTURE_SIDE on its short side, fully opaque (textures with holes
    are sprites: leaves, fences), and not a flat fill."""
    with Image.open(path) as img:
        if min(img.size) < MIN_TEXTURE_SIDE:
            return False
        rgba = np.asarray(img.convert("RGBA"))
    return bool(rgba[..., 3].min() == 255 and rgba[..., :3].std() > 8)


def texture_files(debian_root: Path) -> dict[str, Path]:
    """Photographic textures and samples under ``debian_root``, named "texture-<path>"."""
    files = {}
    for folder in TEXTURE_FOLDERS:
        for path in sorted((debian_root / folder).rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.stat().st_size <= 30_000:
                continue
            if not TEXTURE_EXCLUDED.search(path.stem) and _is_photo_texture(path):
                name = f"{TEXTURE}-" + str(path.relative_to(debian_root / folder).with_suffix(""))
                files[name.replace("/", "-")] = path
    return files


# Stellarium's landscapes (training/assets.py FOLDER_PACKAGES), training only: panorama
# photographs cut into tiles with the sky transparent (a rapeseed field, snowy pines, fields,
# Mars, the Moon). Each tile keeps its longest band of fully opaque rows, the ground under the
# horizon, if it is at least MIN_TEXTURE_SIDE tall. Left out: the fog, light-pollution and
# night-illumination layers (masks, not pictures) and the "ocean" landscape, a Terragen render.
LANDSCAPE_FOLDER = "usr/share/stellarium/landscapes"
LANDSCAPE_EXCLUDED = re.compile(r"fog|illum|lgt|ocean", re.IGNORECASE)


def opaque_band(rgba: np.ndarray) -> np.ndarray:
    """The longest run of rows of ``rgba`` (H, W, 4) in which every pixel is fully opaque, as
    RGB (0 rows if none is); of two runs as long, the upper."""
    opaque = np.concatenate([[False], (rgba[..., 3] == 255).all(axis=1), [False]])
    edges = np.flatnonzero(np.diff(opaque.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    if len(starts) == 0:
        return rgba[:0, :, :3]
    longest = int(np.argmax(ends - starts))
    return rgba[starts[longest] : ends[longest], :, :3]


def landscape_files(debian_root: Path) -> dict[str, PhotoLoader]:
    """The opaque bands of Stellarium's landscape pictures under ``debian_root``, named
    "landscape-<landscape>-<file>"."""
    loaders: dict[str, PhotoLoader] = {}
    for path in sorted((debian_root / LANDSCAPE_FOLDER).rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or LANDSCAPE_EXCLUDED.search(path.stem):
            continue
        with Image.open(path) as img:
            band = opaque_band(np.asarray(img.convert("RGBA")))
        if min(band.shape[:2]) >= MIN_TEXTURE_SIDE and band.std() > 8:
            loaders[f"{LANDSCAPE}-{path.parent.name}-{path.stem}"] = lambda band=band: band
    return loaders


# Other releases' wallpapers (training/assets.py RELEASE_DEBS), training only: validation and
# the evaluation stay on the held-out photos they were measured on. Left out: gnome 3.38's
# Symbolics-1/2, symbolic icons on a field, siblings of the held-out gnome "symbolic"
# wallpaper (a different picture, but training on it would flatter the held-out score), and
# files under 100 kB (the VNC fill, e17's four line-drawn Squiggles).
RELEASE_SUFFIXES = (*IMAGE_SUFFIXES, ".edj")
RELEASE_EXCLUDED = re.compile(r"^Symbolics", re.IGNORECASE)
JPEG_START = b"\xff\xd8\xff"


def release_wallpaper_files(releases_root: Path) -> dict[str, PhotoLoader]:
    """The pictures under ``releases_root`` (the assets stage's ``releases`` folder), named
    "wallpaper-<package>-<file>"; Enlightenment's .edj files are read by ``edj_picture``."""
    loaders: dict[str, PhotoLoader] = {}
    for package in sorted(p for p in releases_root.glob("*") if p.is_dir()):
        for path in sorted(package.rglob("*")):
            if not _is_picture(path, RELEASE_SUFFIXES) or RELEASE_EXCLUDED.search(path.stem):
                continue
            name = f"{WALLPAPER}-{package.name.split('_')[0]}-{path.stem}"
            read = edj_picture if path.suffix.lower() == ".edj" else load_rgb
            loaders[name] = lambda path=path, read=read: read(path)
    return loaders


def edj_picture(path: Path) -> np.ndarray:
    """The largest picture in an Enlightenment theme file (an Eet archive that stores its
    images at several sizes as JPEG streams), as RGB; of two the same size, the colour one
    (an image with alpha keeps its alpha as a second, greyscale JPEG)."""
    data = path.read_bytes()
    best: tuple[int, bool, np.ndarray] | None = None
    for match in re.finditer(re.escape(JPEG_START), data):
        try:
            with Image.open(io.BytesIO(data[match.start() :])) as img:
                img.load()
                key = (img.width * img.height, img.mode != "L")
                if best is None or key > best[:2]:
                    best = (*key, np.asarray(img.convert("RGB")))
        except OSError:  # the marker bytes inside other data, not a picture
            continue
    if best is None:
        raise ValueError(f"{path} holds no JPEG picture")
    return best[2]


def stamp_images(debian_root: Path) -> list[np.ndarray]:
    """Tux Paint's photographic cut-outs as (h, w, 4) uint8 RGBA, in path order."""
    stamps = []
    for path in sorted((debian_root / STAMP_FOLDER).rglob("*.png")):
        if any(word in str(path) for word in STAMP_EXCLUDED):
            continue
        with Image.open(path) as img:
            rgba = np.asarray(img.convert("RGBA"))
        # Mostly transparent or fully opaque images are not cut-outs.
        if 0.1 < (rgba[..., 3] > 0).mean() < 0.95:
            stamps.append(rgba)
    return stamps


def folder_photos(folder: Path) -> dict[str, PhotoLoader]:
    """Every image file under ``folder`` (COCO, DIV2K, your own photos), by relative path."""
    if not folder.is_dir():
        raise FileNotFoundError(f"photo folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return file_loaders(
        {str(p.relative_to(folder).with_suffix("")).replace("/", "__"): p for p in files}
    )


def photo_source(
    name: str, folder: str | None = None, debian_root: Path = Path("data/debian/root")
) -> dict[str, PhotoLoader]:
    if name == "bundled":
        return bundled_photos(debian_root)
    if name == "cifar100":
        from training.cifar import cifar100_photos  # torchvision, imported only when used

        return cifar100_photos(Path(folder or "data/cifar100"), download=True)
    if name == "folder":
        if not folder:
            raise ValueError("prepare.source 'folder' needs prepare.folder set in params.yaml")
        return folder_photos(Path(folder))
    raise ValueError(f"unknown photo source {name!r}; choose 'bundled', 'cifar100' or 'folder'")


# Variants of one picture: sizes (Elephants_3840x2160), light and dark versions (adwaita-l,
# adwaita-d), recolourings (Ubuntu-Mate-Cold-no-logo). They must fall on one side of the split.
SIZE_SUFFIX = re.compile(r"[_-]\d+x\d+$")
VARIANT_SUFFIX = re.compile(
    r"([_-]\d+x\d+|-[ld]|-(Cold|Warm|Dark|Radioactive)-no-logo|-(Light|Dark))$", re.IGNORECASE
)


def split_group(name: str) -> str:
    """The picture a photo name shows, with its variant suffix dropped."""
    return VARIANT_SUFFIX.sub("", name)


def is_validation(name: str, val_fraction: float, seed: int) -> bool:
    """Split by whole picture, stable under adding or removing other photos."""
    digest = hashlib.sha256(f"{seed}:{split_group(name)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction
