"""cifar100_photos on a tiny CIFAR-100 written in the real on-disk format, read by torchvision."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from typing import ClassVar
from urllib.error import URLError

import numpy as np
import pytest
import torchvision.datasets.cifar
from torchvision.datasets.utils import check_integrity

from training.cifar import cifar100_photos

TRAIN_COUNT, TEST_COUNT = 3, 2
MARK = (255, 0, 7)  # one pixel, channels all different, so a channel swap shows
MARK_ROW, MARK_COL = 3, 20  # row != col, so a transposed image shows
ALL_NAMES = [
    "cifar100-train-00000",
    "cifar100-train-00001",
    "cifar100-train-00002",
    "cifar100-test-00000",
    "cifar100-test-00001",
]


class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str``, as the real CIFAR pickles (made by Python 2) do.

    That is why torchvision reads them with ``encoding="latin1"`` and str keys (``"data"``),
    and why ``encoding="bytes"`` shows them as ``b"data"``.
    """

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch: ClassVar[dict] = {**pickle._Pickler.dispatch, bytes: save_py2_str}


def write_py2_pickle(path: Path, obj: object) -> None:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


def planar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) RGB -> CIFAR's (N, 3072) rows: the R plane, then G, then B, row-major."""
    planes = [images[:, :, :, c].reshape(len(images), 1024) for c in range(3)]
    return np.concatenate(planes, axis=1)


def random_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def cifar_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    # torchvision checks the md5 sums of the real 160 MB files, which no test-made set can
    # match; keep its file-exists check and drop only the checksum.
    def exists(fpath: str, md5: str | None = None) -> bool:
        return check_integrity(fpath)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    images = {"train": random_images(TRAIN_COUNT, 0), "test": random_images(TEST_COUNT, 1)}
    images["train"][1, MARK_ROW, MARK_COL] = MARK
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, split_images in images.items():
        count = len(split_images)
        write_py2_pickle(
            folder / split,
            {
                b"filenames": [f"{split}_{i}.png".encode() for i in range(count)],
                b"batch_label": f"{split}ing batch 1 of 1".encode(),
                b"fine_labels": list(range(count)),
                b"coarse_labels": [0] * count,
                b"data": planar_rows(split_images),
            },
        )
    write_py2_pickle(
        folder / "meta",
        {
            b"fine_label_names": [b"apple", b"aquarium_fish", b"baby"],
            b"coarse_label_names": [b"fruit_and_vegetables"],
        },
    )
    return tmp_path, images


def test_pixels_decode_at_their_row_col_in_rgb_order(cifar_root):
    root, images = cifar_root
    photo = cifar100_photos(root)["cifar100-train-00001"]()
    assert photo[MARK_ROW, MARK_COL].tolist() == list(MARK)
    assert photo[MARK_COL, MARK_ROW].tolist() != list(MARK)
    np.testing.assert_array_equal(photo, images["train"][1])


def test_both_splits_named_by_split_and_index(cifar_root):
    root, images = cifar_root
    photos = cifar100_photos(root)
    assert list(photos) == ALL_NAMES
    for split, split_images in images.items():
        for i, expected in enumerate(split_images):
            photo = photos[f"cifar100-{split}-{i:05d}"]()
            assert photo.shape == (32, 32, 3)
            assert photo.dtype == np.uint8
            assert photo.flags.c_contiguous
            np.testing.assert_array_equal(photo, expected)


def test_loader_returns_a_copy(cifar_root):
    root, images = cifar_root
    load = cifar100_photos(root)["cifar100-test-00000"]
    load()[:] = 0
    np.testing.assert_array_equal(load(), images["test"][0])


@pytest.mark.parametrize("limit", [0, 2, 3, 4, 99])
def test_limit_takes_the_first_n(cifar_root, limit):
    root, _ = cifar_root
    assert list(cifar100_photos(root, limit=limit)) == ALL_NAMES[:limit]


def test_missing_folder_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        cifar100_photos(tmp_path)
    message = str(raised.value)
    assert str(tmp_path / "cifar-100-python") in message
    assert "internet" in message
    assert "download=True" in message
    assert "cifar-100-python.tar.gz" in message


def test_failed_download_is_file_not_found(tmp_path, monkeypatch):
    # Stands in for a machine without internet, without touching the network.
    def no_network(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_network)
    with pytest.raises(FileNotFoundError, match="Downloading needs internet"):
        cifar100_photos(tmp_path, download=True)
