"""Fonts the synthesizer may draw watermark text with."""

from __future__ import annotations

from pathlib import Path

# Latin fonts with the "©" glyph, shipped inside matplotlib (so no system fonts are needed).
BUNDLED_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
)


def bundled_fonts() -> list[Path]:
    import matplotlib

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [font_dir / name for name in BUNDLED_FONT_FILES]
    missing = [str(f) for f in fonts if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"fonts missing from matplotlib: {missing}")
    return fonts
