"""CIFAR-100 as a photo source: its train and test images, loaded through torchvision.

CIFAR images are 32x32, so training crops upsample them (the project's original data plan);
real photos (``folder_photos``) make better backgrounds.
"""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

from torchvision.datasets import CIFAR100

from training.photos import PhotoLoader


def cifar100_photos(
    root: Path, download: bool = False, limit: int | None = None
) -> dict[str, PhotoLoader]:
    """The first ``limit`` CIFAR-100 images (train split, then test) as (32, 32, 3) uint8 RGB.

    ``root`` holds ``cifar-100-python/`` (train, test, meta); ``download`` fetches it there.
    Names are ``cifar100-{train,test}-NNNNN``; both splits are just photos, because the
    project splits photos into train and validation itself.
    """
    photos: dict[str, PhotoLoader] = {}
    for split in ("train", "test"):
        if limit is not None and len(photos) >= limit:
            break  # skip reading the test pickle when the train split already fills the cap
        try:
            dataset = CIFAR100(root, train=split == "train", download=download)
        except (RuntimeError, URLError) as err:
            raise FileNotFoundError(
                f"CIFAR-100 not found or corrupted in {Path(root) / CIFAR100.base_folder} "
                f"({err}). Downloading needs internet: on a connected machine pass "
                f"download=True, or fetch {CIFAR100.url} and extract it into {root} so that "
                f"{CIFAR100.base_folder}/ holds train, test and meta."
            ) from err
        images = dataset.data  # (N, 32, 32, 3) uint8 RGB, the whole split in memory
        count = len(images) if limit is None else min(len(images), limit - len(photos))
        # A bound copy() is the loader: each call gives a fresh C-contiguous array, so a caller
        # that edits a photo in place cannot corrupt the dataset.
        photos |= {f"cifar100-{split}-{i:05d}": images[i].copy for i in range(count)}
    return photos
