"""The prepare stage: gather background photos from the configured source and split them.

Writes ``<out>/train/*.png`` and ``<out>/val/*.png``, one file per photo, split by whole photo
so no validation photo is ever cropped for training.

    python -m training.prepare --params params.yaml --out data/photos
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml
from PIL import Image

from training.photos import is_validation, photo_source


def prepare(
    source: str, folder: str | None, val_fraction: float, seed: int, out: Path
) -> dict[str, int]:
    photos = photo_source(source, folder)
    if out.exists():
        shutil.rmtree(out)
    counts = {"train": 0, "val": 0}
    for name, load in sorted(photos.items()):
        split = "val" if is_validation(name, val_fraction, seed) else "train"
        (out / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(load()).save(out / split / f"{name}.png")
        counts[split] += 1
    if counts["train"] == 0 or counts["val"] == 0:
        raise ValueError(f"split left a side empty ({counts}): change prepare.val_fraction or seed")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())["prepare"]
    counts = prepare(
        params["source"], params.get("folder"), params["val_fraction"], params["seed"], args.out
    )
    print(f"photos: {counts['train']} train, {counts['val']} validation -> {args.out}")


if __name__ == "__main__":
    main()
