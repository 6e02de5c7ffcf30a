"""Tiled marks seen whole: the photo folded over the copies' lattice, and detected again.

A tiled mark's copies are one shape; the photo under each is different. The median of the photo
over a dozen copies (each pixel against the same pixel a step of the lattice away) keeps the
mark and leaves little of any one copy's photo: the mark over a plain field, which the network
sees far better than any copy over its own texture (on 13 held-out grid crops, a median of 64%
of a copy's pixels on the photo, 93% on the fold; model/candidates/README.md). Each copy is
then masked whole, with the fold's shape: a copy masked in part comes back restored from its
own remaining colours, as blotches where a whole mark was.

The fold is also the evidence that the lattice is a mark's. Regions of a photo's own repeated
content (a wallpaper's icons, looked at) fold into something the network is not sure of, so the
lattice is looked for among candidate regions less sure than handler/tiled.py's, and kept only
where the network is sure of the fold (``fold_region_confidence``), the fold is like the copy it
was folded around (``fold_likeness``: a lattice a step off folds a jumble of letters), and each
piece of it was seen on the copies too (``fold_seen``).

numpy/OpenCV on uint8 HWC images and the probability map (torch only for the median); the
network is the caller's ``Probe``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from scipy import ndimage

from handler.pipeline import CONNECTIVITY, Candidates
from handler.settings import own_settings
from handler.tiled import (
    Lattice,
    TiledConfig,
    correlation,
    lattice_places,
    lattices,
    place_copy,
)

# The network's probability map of an (h, w, 3) uint8 image: (h, w) float in [0, 1].
Probe = Callable[[np.ndarray], np.ndarray]

# The fold is computed this many rows of its window at a time.
FOLD_ROWS = 64


@dataclass(frozen=True)
class FoldConfig:
    """model-config.yaml's fold_* settings (handler/engine.py reads them)."""

    # Copies of one shape on one lattice, at least (0: folding off) ...
    fold_count: int = 0
    # ... among candidate regions of fold_min_pixels or more with a mean of fold_confidence or
    # more, whose probability maps correlate by fold_correlation: looser than repeat_*, the fold
    # decides.
    fold_confidence: float = 0.6
    fold_min_pixels: int = 60
    fold_correlation: float = 0.7
    # The fold's shape is kept where its pixels above the mask threshold have a mean probability
    # of fold_region_confidence or more.
    fold_region_confidence: float = 0.85
    # And the network's probability on the fold correlates with its probability on the photo
    # there (the copy folded around) by fold_likeness or more.
    fold_likeness: float = 0.8
    # Steps of the lattice each way (the copies folded: up to (2 * reach + 1) ** 2), and at
    # least fold_min_samples of them inside the photo.
    fold_reach: int = 3
    fold_min_samples: int = 5
    # The fold covers the surest copy's box and fold_margin pixels around it (the mark's faint
    # edge), and the network sees it with fold_context pixels of the photo around that.
    fold_margin: int = 6
    # Pieces of the fold this close (a dilation's width, pixels) are one mark: a word's letters.
    fold_gap: int = 5
    # Pieces of the fold's shape smaller than this many pixels are dropped, and those whose
    # mean probability on the copies in the photo (folded as the photo is) is below fold_seen.
    fold_min_piece: int = 10
    fold_seen: float = 0.3
    fold_context: int = 48
    # Each copy the lattice places is kept where the probability under the fold's shape has a
    # mean of fold_fill_confidence or more (handler/tiled.py place_copy).
    fold_fill_confidence: float = 0.4

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> FoldConfig:
        return cls(**own_settings(cls, settings))

    def tiled(self, mask_threshold: float) -> TiledConfig:
        return TiledConfig(
            min_copies=self.fold_count,
            confidence=self.fold_confidence,
            correlation=self.fold_correlation,
            min_pixels=self.fold_min_pixels,
            fill_confidence=self.fold_fill_confidence,
            mask_threshold=mask_threshold,
        )


def fold(
    image: np.ndarray, window: tuple[slice, slice], basis: np.ndarray, reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """(the median of ``image`` (H, W, 3) or (H, W) at each pixel of ``window`` and at the
    same pixel moved by every step of the lattice ``basis`` (k, 2) within ``reach`` steps each
    way, over the moves that stay inside the image, (h, w, 3) or (h, w) float32; how many there
    were, (h, w))."""
    rows, cols = window
    steps = range(-reach, reach + 1)
    pairs = [(i, j) for i in steps for j in (steps if len(basis) == 2 else [0])]
    shifts = [i * basis[0] + (j * basis[1] if len(basis) == 2 else 0) for i, j in pairs]
    photo = image.astype(np.float32)
    height, width = rows.stop - rows.start, cols.stop - cols.start
    channels = image.shape[2:]
    median = np.zeros((height, width, *channels), np.float32)
    count = np.zeros((height, width), np.int64)
    # FOLD_ROWS rows at a time: 49 moves of a 1,100-pixel window at once held 700 MB.
    for top in range(0, height, FOLD_ROWS):
        block = slice(rows.start + top, min(rows.start + top + FOLD_ROWS, rows.stop))
        ys, xs = np.mgrid[block, cols].astype(np.float32)
        # Bilinear: a rotated mark's steps are not whole pixels. NaN beyond the photo's edge.
        samples = [
            cv2.remap(
                photo, xs + np.float32(shift[1]), ys + np.float32(shift[0]), cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=(np.nan, np.nan, np.nan),
            )
            for shift in shifts
        ]  # fmt: skip
        # (moves, rows, w, channels): OpenCV drops a single channel's axis.
        stack = torch.from_numpy(np.stack(samples).reshape(len(samples), *ys.shape, -1))
        # numpy's median of the moves inside (the mean of the two middle values of an even
        # count) by torch's, which takes the lower one, from both ends: np.nanmedian took 12 s
        # of make bench's 12 MP grid, this 1 s.
        lower = torch.nanmedian(stack, dim=0).values
        upper = -torch.nanmedian(-stack, dim=0).values
        middle = torch.nan_to_num((lower + upper) / 2).numpy()
        median[top : top + ys.shape[0]] = middle.reshape(ys.shape + channels)
        count[top : top + ys.shape[0]] = (~torch.isnan(stack[..., 0])).sum(dim=0).numpy()
    return median, count


def around(box: tuple[slice, slice], margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """``box`` and ``margin`` pixels around it, within an image of ``shape``."""
    rows, cols = (
        slice(max(s.start - margin, 0), min(s.stop + margin, n))
        for s, n in zip(box, shape, strict=True)
    )
    return rows, cols


def folded_shape(
    image: np.ndarray,
    seen: np.ndarray,
    lattice: Lattice,
    probe: Probe,
    cfg: FoldConfig,
    mask_threshold: float,
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """(the fold's window in the image, the copy's shape in it (h, w) bool, the network's
    probability on the fold (h, w)) for ``lattice``'s surest copy, or None where too few copies
    fold, the network is not sure of the fold, or the fold is not the copy the network saw there
    in ``seen`` (the probability map of the image, (H, W))."""
    height, width = image.shape[:2]
    box = lattice.box
    # Half a step each way: the surest region may be a piece of the mark (a few letters of a
    # word whose others the network saw less), the rest of it up to half a step away.
    reach = max(cfg.fold_margin, math.ceil(float(np.linalg.norm(lattice.basis, axis=1).max()) / 2))
    window = around(box, reach, (height, width))
    median, count = fold(image, window, lattice.basis, cfg.fold_reach)
    folded = count >= cfg.fold_min_samples
    # The fold in its place in the photo: the network sees it with the photo around.
    view = around(window, cfg.fold_context, (height, width))
    canvas = image[view].copy()
    inner = (
        slice(window[0].start - view[0].start, window[0].stop - view[0].start),
        slice(window[1].start - view[1].start, window[1].stop - view[1].start),
    )
    canvas[inner] = np.where(
        folded[..., None], np.clip(median + 0.5, 0, 255).astype(np.uint8), canvas[inner]
    )
    probability = probe(canvas)[inner]
    candidate = (probability > mask_threshold) & folded
    # The pieces of the fold within fold_gap pixels of the copy's own region, and of those
    # within it of them (the letters of its word): not a neighbouring copy, fold_gap or more
    # away.
    own = np.zeros_like(candidate)
    own[
        box[0].start - window[0].start : box[0].stop - window[0].start,
        box[1].start - window[1].start : box[1].stop - window[1].start,
    ] = lattice.shape
    near = cv2.dilate(candidate.astype(np.uint8), np.ones((cfg.fold_gap, cfg.fold_gap), np.uint8))
    pieces, _ = ndimage.label(near, structure=CONNECTIVITY)
    touched = np.unique(pieces[own & candidate])
    shape = np.isin(pieces, touched[touched > 0]) & candidate
    # Each piece as the network saw it on the copies themselves: the same fold of its map of
    # the photo. A piece it sees only on the fold is the fold's own (on a held-out full-size
    # photo, blobs of 12-267 pixels beside a tiled word, 0.01-0.2 on the copies where the
    # word's letters had 0.7-0.9; placed at every copy, they were changed away from the mark).
    # Less than a dot of a letter is a speck where copies folded a pixel off each other.
    on_copies, _ = fold(seen, window, lattice.basis, cfg.fold_reach)
    pieces, piece_count = ndimage.label(shape, structure=CONNECTIVITY)
    sizes = np.bincount(pieces.ravel(), minlength=piece_count + 1)
    seen_mean = np.bincount(
        pieces.ravel(), weights=on_copies.ravel(), minlength=piece_count + 1
    ) / np.maximum(sizes, 1)
    dropped = (sizes < cfg.fold_min_piece) | (seen_mean < cfg.fold_seen)
    dropped[0] = False
    shape &= ~dropped[pieces]
    if shape.sum() < cfg.fold_min_pixels:
        return None
    if float(probability[shape].mean()) < cfg.fold_region_confidence:
        return None
    # Cut to the shape and its margin: placed at each copy, the window is matched against the
    # probability there, where the rest of a half-step window holds the neighbouring copies.
    rows, cols = ndimage.find_objects(shape.astype(np.uint8))[0]
    tight = around((rows, cols), cfg.fold_margin, shape.shape)
    placed = (
        slice(window[0].start + tight[0].start, window[0].start + tight[0].stop),
        slice(window[1].start + tight[1].start, window[1].start + tight[1].stop),
    )
    # A lattice a step off folds parts of different copies over one another: a jumble of
    # letters the network is as sure of as of a word (a held-out crop's "graphy" folded into
    # "gcazphy", looked at), but not where the network saw the copy itself.
    if correlation(seen[placed], probability[tight]) < cfg.fold_likeness:
        return None
    return placed, shape[tight], probability[tight]


def folded_copies(
    image: np.ndarray,
    probability: np.ndarray,
    regions: Candidates,
    probe: Probe,
    cfg: FoldConfig,
    mask_threshold: float,
) -> np.ndarray:
    """(H, W) bool: every copy of each tiled mark of ``image`` (H, W, 3) uint8 whose fold the
    network is sure of, each the fold's shape placed where the lattice puts it and the
    probability map (H, W) saw it; ``regions``: the map's handler/pipeline.py
    candidate_regions."""
    _, labels, _, size, mean = regions
    found = np.zeros(labels.shape, dtype=bool)
    if cfg.fold_count <= 0:
        return found
    tiled = cfg.tiled(mask_threshold)
    for lattice in lattices(probability, labels, size, mean, tiled):
        folded = folded_shape(image, probability, lattice, probe, cfg, mask_threshold)
        if folded is None:
            continue
        window, shape, seen = folded
        template = np.where(shape, seen, 0).astype(np.float32)
        # The lattice's places are the copies' box centres; the window is the box and its margin,
        # which the photo's edge may cut unevenly.
        offset = np.array([
            (window[k].start + window[k].stop - lattice.box[k].start - lattice.box[k].stop) / 2
            for k in range(2)
        ])  # fmt: skip
        for centre in lattice_places(lattice.origin, lattice.basis, labels.shape):
            place_copy(found, probability, shape, template, centre + offset, tiled)
    return found
