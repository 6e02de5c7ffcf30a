"""Icon files the synthesizer may use as logo watermarks, and which of them training never sees.

Icons come from the Tango and Adwaita themes (training/assets.py). Each icon name is kept once,
at the largest size its theme ships as PNG; "symbolic" icons are single-colour glyphs, the others
are coloured.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

THEMES = ("Adwaita", "Tango")
# "48x48" -> 48; scalable SVGs are skipped (no SVG renderer among the dependencies).
SIZE_FOLDER = re.compile(r"^(\d+)x\1$")
MIN_SIZE = 32  # smaller icons upscaled to logo size are a blur, nothing like a real logo


def icon_files(root: Path) -> dict[str, Path]:
    """``{"<theme>/<icon name>": largest PNG}`` under ``root`` (the assets stage's output)."""
    best: dict[str, tuple[int, Path]] = {}
    for theme in THEMES:
        theme_dir = root / "usr/share/icons" / theme
        if not theme_dir.is_dir():
            continue
        for size_dir in theme_dir.iterdir():
            match = SIZE_FOLDER.match(size_dir.name)
            if not match or int(match.group(1)) < MIN_SIZE:
                continue
            size = int(match.group(1))
            for png in size_dir.rglob("*.png"):
                name = f"{theme}/{png.name.removesuffix('.png').removesuffix('.symbolic')}"
                if size > best.get(name, (0, png))[0]:
                    best[name] = (size, png)
    return {name: path for name, (_, path) in sorted(best.items())}


def is_held_out(icon_name: str, fraction: float, seed: int) -> bool:
    """Hold out a stable ``fraction`` of icon names (the theme prefix dropped, so that an icon
    drawn in both themes falls on one side)."""
    digest = hashlib.sha256(f"{seed}:{icon_name.split('/', 1)[-1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_logos(
    icons: dict[str, Path], fraction: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """(training icons, held-out icons)."""
    train, val = [], []
    for name, path in icons.items():
        (val if is_held_out(name, fraction, seed) else train).append(path)
    return train, val
