"""Tiled marks: one text or logo repeated over the whole photo at a fixed step, as stock photos
carry them.

The network sees each copy of such a mark about as well as any other mark, but rarely surely
enough for the region gate (handler/pipeline.py), which judges every region on its own. Together
the copies are evidence no photo's own content gives: many regions of one shape, at the steps of
one lattice. ``tiled_marks`` finds them in the candidate regions of the probability map, fits
their lattice, and keeps the copies, the ones it found and the ones the lattice predicts where
the network saw part of the mark (a copy cut by the photo's edge, or broken up by the texture
under it).

Pure numpy/OpenCV/SciPy on the probability map; no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage
from scipy.sparse import csgraph

# Bounding boxes of copies agree within this share of their size (and 2 pixels: rotation and
# JPEG move a copy's edge by a pixel or two).
SIZE_TOLERANCE = 0.1
# Each region's probability is resampled to this many pixels a side to compare shapes.
DESCRIPTOR = 16
# Steps between copies are one step when they differ by this many pixels or less (box centres
# are a pixel or so off), and the shortest step shared by SHARED_SHARE of the most shared
# one's pairs is a basis step; steps are taken to each copy's NEIGHBOURS nearest copies.
LATTICE_TOLERANCE = 3.0
SHARED_SHARE = 0.5
NEIGHBOURS = 8
# A copy is where the lattice predicts it within SNAP pixels, and a region is on the fitted
# lattice when its centre lies within LATTICE_FIT of its predicted place.
SNAP = 2
# Snapping scores closer than this are a tie, which the place nearest the lattice's wins.
TIE = 1e-4
LATTICE_FIT = 3.0
# A predicted copy's probability correlates with the copy it is predicted from by at least this
# (a copy half-seen, or broken up by texture, correlates less than a whole one).
FILL_CORRELATION = 0.5
# Steps between copies are at least this long (copies of 100 pixels or more).
MIN_STEP = 4 * LATTICE_FIT
# Two steps are one direction when the sine of the angle between them is below this.
PARALLEL = 0.3
# At most this many predicted places are looked at (a lattice of 20-pixel steps over a
# 16-megapixel photo has 40,000).
MAX_PLACES = 20_000
# At most this many regions are compared as copies, the surest (a busy photo has thousands).
MAX_REGIONS = 2_000


@dataclass(frozen=True)
class TiledConfig:
    """What makes candidate regions a tiled mark (handler/pipeline.py's repeat_* settings)."""

    min_copies: int  # copies of one shape on one lattice, at least
    confidence: float  # the mean probability of each region counted as a copy
    correlation: float  # of two copies' resampled probability maps
    min_pixels: int  # the size of each region counted as a copy
    fill_confidence: float  # the mean probability under a predicted copy's shape
    mask_threshold: float  # the probability of a candidate pixel


def tiled_marks(
    probability: np.ndarray,
    labels: np.ndarray,
    size: np.ndarray,
    mean: np.ndarray,
    cfg: TiledConfig,
) -> np.ndarray:
    """(H, W) bool: the copies of tiled marks among the candidate regions ``labels`` (H, W) of
    ``probability`` (H, W), whose pixel counts and mean probabilities by label (0 the
    background) are ``size`` and ``mean``, and the copies their lattices predict, each the
    shape of the surest copy with the candidate pixels next to it."""
    found = np.zeros(labels.shape, dtype=bool)
    for lattice in lattices(probability, labels, size, mean, cfg):
        # Every copy, found or predicted, is the shape of the surest region found, placed where
        # the lattice puts it: a found region joined to the photo's own content (a water drop's
        # highlight touching a letter, in a held-out photo) would take that content with it.
        template = np.where(lattice.shape, probability[lattice.box], 0).astype(np.float32)
        for centre in lattice_places(lattice.origin, lattice.basis, labels.shape):
            place_copy(found, probability, lattice.shape, template, centre, cfg)
    return found


@dataclass(frozen=True)
class Lattice:
    """A tiled mark's copies: at origin + i * basis[0] + j * basis[1] (centres, in pixels), the
    surest of them in ``box`` with its region's pixels ``shape`` (the box's size)."""

    origin: np.ndarray  # (2,)
    basis: np.ndarray  # (k, 2), k of 1 or 2
    box: tuple[slice, slice]
    shape: np.ndarray


def lattices(
    probability: np.ndarray,
    labels: np.ndarray,
    size: np.ndarray,
    mean: np.ndarray,
    cfg: TiledConfig,
) -> list[Lattice]:
    """The lattice of each set of ``min_copies`` or more candidate regions (as in tiled_marks)
    that are copies of one shape at its steps."""
    eligible = (size >= cfg.min_pixels) & (mean >= cfg.confidence)
    # A region the photo's edge cuts is no whole copy (its box and centre are off, and as the
    # shape placed at every copy it would cut them all); the lattice places it.
    edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    eligible[edges] = False
    eligible[0] = False
    ids = np.flatnonzero(eligible)
    if len(ids) > MAX_REGIONS:
        # The surest: comparing every pair of a busy photo's regions grows with their square.
        ids = np.sort(ids[np.argsort(-mean[ids], kind="stable")[:MAX_REGIONS]])
    if len(ids) < cfg.min_copies:
        return []
    windows = ndimage.find_objects(labels)
    found = []
    for members in copy_groups(probability, labels, ids, windows, cfg):
        boxes = [windows[ids[k] - 1] for k in members]
        centres = np.array([[(s.start + s.stop) / 2 for s in box] for box in boxes])
        fitted = fit_lattice(centres)
        if fitted is None:
            continue
        origin, basis, on = fitted
        if len(on) < cfg.min_copies:
            continue
        surest = on[int(np.argmax(mean[ids[members[on]]]))]
        box = boxes[surest]
        shape = labels[box] == ids[members[surest]]
        found.append(Lattice(origin, basis, (box[0], box[1]), shape))
    return found


def copy_groups(
    probability: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    windows: list[tuple[slice, ...] | None],
    cfg: TiledConfig,
) -> list[np.ndarray]:
    """Index arrays into ``ids`` (the labels of the regions that may be copies; ``windows``:
    every label's bounding box) of each set of ``min_copies`` or more regions that are copies
    of one another."""
    boxes = np.array([[s.stop - s.start for s in _box(windows, i)] for i in ids], np.float32)
    descriptors = np.stack(
        [_descriptor(probability, labels, int(i), _box(windows, i)) for i in ids]
    )
    # Copies: boxes of one size, one shape.
    scale = np.maximum(boxes[:, None], boxes[None])
    alike = np.all(np.abs(boxes[:, None] - boxes[None]) <= SIZE_TOLERANCE * scale + 2, -1)
    alike &= descriptors @ descriptors.T >= cfg.correlation
    np.fill_diagonal(alike, False)
    group_count, group_of = csgraph.connected_components(alike, directed=False)
    groups = [np.flatnonzero(group_of == g) for g in range(group_count)]
    return [g for g in groups if len(g) >= cfg.min_copies]


def _box(windows: list[tuple[slice, ...] | None], index: int) -> tuple[slice, ...]:
    window = windows[index - 1]
    assert window is not None  # every label in ids has pixels
    return window


def _descriptor(
    probability: np.ndarray, labels: np.ndarray, index: int, window: tuple[slice, ...]
) -> np.ndarray:
    """The region's own probability in its box, resampled to DESCRIPTOR x DESCRIPTOR,
    zero-mean and unit-norm."""
    own = np.where(labels[window] == index, probability[window], 0).astype(np.float32)
    small = cv2.resize(own, (DESCRIPTOR, DESCRIPTOR), interpolation=cv2.INTER_AREA).ravel()
    small -= small.mean()
    descriptor: np.ndarray = small / max(float(np.linalg.norm(small)), 1e-6)
    return descriptor


def _common_step(steps: np.ndarray) -> np.ndarray | None:
    """The shortest of the steps (m, 2) that about as many pairs share as the most shared one
    (within LATTICE_TOLERANCE pixels), as the mean of those sharing it; None when none is
    shared by two pairs. A lattice's basis steps are shared by the most pairs; its double
    steps by nearly as many, but they are longer."""
    if len(steps) < 2:
        return None
    near = np.linalg.norm(steps[:, None] - steps[None], axis=-1) <= LATTICE_TOLERANCE
    shared = near.sum(axis=1)
    if shared.max() < 2:
        return None
    common = np.flatnonzero(shared >= max(2, SHARED_SHARE * shared.max()))
    shortest = common[np.argmin(np.linalg.norm(steps[common], axis=1))]
    step: np.ndarray = steps[near[shortest]].mean(axis=0)
    return step


def fit_lattice(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(origin (2,), basis (k, 2) with k of 1 or 2, indices of the centres on it) of the
    lattice the (n, 2) centres lie on, or None when no step repeats.

    A tiled mark's copies lie at origin + i * basis[0] + j * basis[1]; the steps from each copy
    to its nearest ones are shared by many pairs. A photo's own alike shapes (the letters of a
    sign, a few icons) lie at steps of their own, each shared by few pairs.
    """
    n = len(centres)
    if n < 3:
        return None
    # Steps to each centre's NEIGHBOURS nearest: a lattice's basis is among them, and the count
    # of steps stays linear in the copies.
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    nearest = np.argsort(distance, axis=1)[:, 1 : NEIGHBOURS + 1]
    # Each pair once: two copies that are each other's neighbours give one step, not two.
    pairs = np.unique(
        np.sort(np.stack([np.repeat(np.arange(n), nearest.shape[1]), nearest.ravel()], 1), axis=1),
        axis=0,
    )
    steps = centres[pairs[:, 1]] - centres[pairs[:, 0]]
    # Steps shorter than this are no lattice of copies: a lattice that fine fits any centres.
    steps = steps[np.linalg.norm(steps, axis=1) >= MIN_STEP]
    # One direction per pair: a step and its opposite are one step of the lattice.
    flip = (steps[:, 0] < 0) | ((steps[:, 0] == 0) & (steps[:, 1] < 0))
    steps[flip] *= -1
    a = _common_step(steps)
    if a is None:
        return None
    cross = np.abs(steps[:, 0] * a[1] - steps[:, 1] * a[0])
    b = _common_step(steps[cross > PARALLEL * np.linalg.norm(steps, axis=1) * np.linalg.norm(a)])
    basis = np.stack([a] if b is None else [a, b])
    # Each centre's place on the lattice, then the lattice refitted to the centres on it.
    index = np.rint(np.linalg.lstsq(basis.T, (centres - centres[0]).T, rcond=None)[0].T)
    design = np.column_stack([np.ones(n), index])
    fitted = np.linalg.lstsq(design, centres, rcond=None)[0]
    on = np.flatnonzero(np.linalg.norm(design @ fitted - centres, axis=1) <= LATTICE_FIT)
    if len(on) < 3:
        return None
    fitted = np.linalg.lstsq(design[on], centres[on], rcond=None)[0]
    on = np.flatnonzero(np.linalg.norm(design @ fitted - centres, axis=1) <= LATTICE_FIT)
    return fitted[0], fitted[1:], on


def lattice_places(origin: np.ndarray, basis: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(m, 2) float: the lattice's places within an image of ``shape`` (and one step beyond
    each edge, for the copies it cuts), at most MAX_PLACES of them."""
    height, width = shape
    corners = np.array([[0, 0], [0, width], [height, 0], [height, width]], np.float64)
    index = np.linalg.lstsq(basis.T, (corners - origin).T, rcond=None)[0]
    ranges = [np.arange(math.floor(row.min()) - 1, math.ceil(row.max()) + 2) for row in index]
    if math.prod(len(r) for r in ranges) > MAX_PLACES:
        return np.zeros((0, 2))
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, len(ranges))
    places = origin + grid @ basis
    inside = (places[:, 0] > -height / 2) & (places[:, 0] < 1.5 * height)
    inside &= (places[:, 1] > -width / 2) & (places[:, 1] < 1.5 * width)
    kept: np.ndarray = places[inside]
    return kept


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays of one shape (0 when either is constant)."""
    a = a - a.mean()
    b = b - b.mean()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float((a * b).sum()) / norm if norm > 0 else 0.0


def place_copy(
    found: np.ndarray,
    probability: np.ndarray,
    shape: np.ndarray,
    template: np.ndarray,
    centre: np.ndarray,
    cfg: TiledConfig,
) -> None:
    """Add to ``found`` the copy of ``shape`` the lattice predicts at ``centre``, where the
    network saw it: snapped within SNAP pixels to where the probability matches ``template``
    best, clipped to the image, kept when its mean probability is ``fill_confidence`` or more,
    with the candidate pixels next to it (the copy's own edge where it differs by a pixel)."""
    height, width = probability.shape
    h, w = shape.shape
    top, left = round(centre[0] - h / 2), round(centre[1] - w / 2)
    # The view with SNAP pixels around, zero beyond the image's edge: a copy the edge cuts is
    # snapped by its part inside (unsnapped, one was placed 2 pixels off, onto a held-out
    # photo's own border line).
    view = np.zeros((h + 2 * SNAP, w + 2 * SNAP), np.float32)
    vy0, vx0 = max(top - SNAP, 0), max(left - SNAP, 0)
    vy1, vx1 = min(top + h + SNAP, height), min(left + w + SNAP, width)
    if vy0 >= vy1 or vx0 >= vx1:
        return
    view[vy0 - top + SNAP : vy1 - top + SNAP, vx0 - left + SNAP : vx1 - left + SNAP] = probability[
        vy0:vy1, vx0:vx1
    ]
    score = np.nan_to_num(cv2.matchTemplate(view, template, cv2.TM_CCORR_NORMED))
    # Of equal matches the nearest the lattice's place: a copy the network saw half of matches
    # the whole shape equally a few pixels to that half's side.
    offsets = np.hypot(*np.mgrid[-SNAP : SNAP + 1, -SNAP : SNAP + 1])
    dy, dx = np.unravel_index(int(np.argmax(score - TIE * offsets)), score.shape)
    top, left = top + int(dy) - SNAP, left + int(dx) - SNAP
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + h, height), min(left + w, width)
    if y0 >= y1 or x0 >= x1:
        return
    part = shape[y0 - top : y1 - top, x0 - left : x1 - left]
    if part.sum() < cfg.min_pixels or found[y0:y1, x0:x1][part].all():
        return
    seen = probability[y0:y1, x0:x1]
    if seen[part].mean() < cfg.fill_confidence:
        return
    # And the probability there has the mark's shape: a lattice fitted a step off (a mark with a
    # repeated letter) predicts places beside the copies, where the network half-fires on the
    # photo's own edges (a leaf's, in a held-out photo: 14 patches of 75-146 pixels).
    if correlation(seen, template[y0 - top : y1 - top, x0 - left : x1 - left]) < FILL_CORRELATION:
        return
    near = cv2.dilate(part.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    found[y0:y1, x0:x1] |= part | (near & (probability[y0:y1, x0:x1] > cfg.mask_threshold))
