"""Fonts the synthesizer may draw watermark text with, and which of them training never sees."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# Latin text families among the allowed Debian font packages (training/assets.py). Noto's other
# files are scripts (Thai, Runic, ...) that cannot draw "© Studio Lumen".
FAMILY = re.compile(
    r"^(DejaVu(Sans|Serif)|Free(Sans|Serif|Mono)|Noto(Sans|Serif)(Display)?|OpenSans|EBGaramond"
    r"|ComicNeue|DancingScript)(Mono|Condensed)?(?=[-0-9]|Bold|Italic|Oblique|$)"
)
# DejaVu fonts as matplotlib ships them: the fallback when the Debian packages are absent
# (tests, or a machine without apt). They are the same files as Debian's fonts-dejavu.
MATPLOTLIB_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
)


def font_family(path: Path) -> str | None:
    """The family a font file belongs to ("OpenSans" for OpenSans-CondBold.ttf), or None."""
    match = FAMILY.match(path.stem)
    return match.group(0) if match else None


def has_glyphs(path: Path, text: str) -> bool:
    """Whether the font maps every character of ``text`` (else Pillow draws empty boxes)."""
    from fontTools.ttLib import TTFont  # ships with matplotlib

    with TTFont(str(path), lazy=True) as font:
        cmap = font.getBestCmap() or {}
    return all(ord(ch) in cmap for ch in text if not ch.isspace())


def debian_fonts(root: Path, alphabet: str) -> list[Path]:
    """Latin fonts unpacked under ``root`` (the assets stage's output) that draw ``alphabet``."""
    fonts = sorted(
        p
        for p in (root / "usr/share/fonts").rglob("*")
        if p.suffix.lower() in (".ttf", ".otf") and font_family(p)
    )
    return [f for f in fonts if has_glyphs(f, alphabet)]


def matplotlib_fonts() -> list[Path]:
    import matplotlib

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [font_dir / name for name in MATPLOTLIB_FONT_FILES]
    missing = [str(f) for f in fonts if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"fonts missing from matplotlib: {missing}")
    return fonts


def split_fonts(fonts: Iterable[Path], held_out: Iterable[str]) -> tuple[list[Path], list[Path]]:
    """(training fonts, held-out fonts): whole families are held out, never single styles."""
    held = set(held_out)
    train, val = [], []
    for font in fonts:
        (val if font_family(font) in held else train).append(font)
    return train, val
