"""The mask-first remover after detection: decide the marked regions, restore them, composite.

Detection (handler/engine.py) gives, for the whole photo at full resolution, the probability
that each pixel belongs to a watermark and the blend the mark was made with (alpha, colour).
Everything after that is here, in three stages that evaluation measures one by one:

1. *decide* (``decide_regions``): connected regions of the probability map, kept only when the
   network is sure of them (hysteresis: a seed pixel above ``seed_threshold``, a mean above
   ``region_confidence``, at least ``min_region_pixels``), then widened by ``grow_pixels`` to
   take in the faint anti-aliased edge of the mark. Within a kept region, a part the network is
   less sure of than ``local_confidence`` over a ``local_window`` square is dropped: one region
   can be a sure mark and the photo's own line art that touches it. A region the network is
   unsure of is left as it came in: a remover that damages a photo is worse than none. On a
   *busy* photo, one where the network is unsure of many places (more than ``busy_regions``
   candidate regions it does not keep per 256x256 pixels it examined: a wallpaper of icons, a
   pattern of glyph-like shapes), a region must be surer still (``busy_region_confidence``):
   there the photo's own content looks like marks to the network. A *tiled* mark (one text or
   logo repeated over the photo at a fixed step) is kept though the gate keeps none of its
   copies: many candidate regions of one shape on one lattice are evidence that no single
   region gives (handler/tiled.py, ``repeat_count``); and so is a photo folded over the copies'
   lattice, which the network sees each copy of whole on (handler/fold.py, ``fold_count``: the
   engine finds those copies and passes them in). Two rules may keep regions the gate left,
   each held part by part to its own mean by the local rule: a region beside the decided mask
   (``near_pixels``: a word's letters the network is less sure of), and on a large photo that
   the network looked at twice (its windows count only where the reduced copy saw a candidate
   too) a large region (``large_region_pixels``: a large mark spans windows that each see
   part of it).
2. *restore* (``restore_regions``): with a learned restorer (training/restorer.py: it sees the
   photo, the mask and Telea's fill, and corrects the fill), that;
   without one, the classical floor: inside the mask, invert the blend where the mark is
   semi-transparent (it keeps the real detail under the mark); where it is nearly opaque
   (alpha not below ``invert_max_alpha``) or the inversion is implausible (far from the inpainted
   fill of the region at low frequency: a wrong alpha or colour), fill by OpenCV's Telea
   inpainting from the pixels around the region. Then, for a given mask with ``blend_fit``,
   each cluster's blend (one alpha, one colour) is fitted over the band just inside its edge and
   inverted inside it where the fit is plainly right (handler/blendfit.py): that gives back the
   photo's own detail under a semi-transparent mark of one colour, which neither the restorer
   nor Telea can.
3. *composite*: only pixels inside the final mask change; every other pixel is returned
   bit-identical.

Pure numpy/OpenCV on uint8 HWC images; no torch, no TorchServe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from handler.blendfit import invert_blend, invert_fitted
from handler.settings import own_settings
from handler.tiled import TiledConfig, tiled_marks

# 8-connectivity: the strokes of a rotated glyph touch at corners.
CONNECTIVITY = np.ones((3, 3), dtype=bool)
# busy_regions counts unsure regions per this many pixels: the 256x256 crops the network is
# trained and validated on.
BUSY_AREA = 256 * 256


@dataclass(frozen=True)
class PipelineConfig:
    mask_threshold: float = 0.5  # a pixel above this belongs to a candidate region
    seed_threshold: float = 0.9  # a region is kept only if some pixel is this sure ...
    region_confidence: float = 0.8  # ... and its mean probability is at least this
    min_region_pixels: int = 6  # smaller specks are noise, not marks
    # Kept regions closer than 2 x cluster_margin pixels make one cluster (the glyphs of a word,
    # the pieces of a logo); a cluster of fewer than min_cluster_pixels is dropped (0: none is).
    # An isolated dot or stroke on a flat field is as likely the photo's own as a mark.
    min_cluster_pixels: int = 0
    cluster_margin: int = 8
    grow_pixels: int = 1  # kept regions widened by this many pixels
    # A tiled mark (one text or logo repeated over the photo, as stock photos carry; handler/
    # tiled.py): repeat_count or more candidate regions (0: off) of repeat_min_pixels or more,
    # each of mean repeat_confidence or more, whose probability maps correlate by
    # repeat_correlation, at the steps of one lattice, are kept though none may be as sure as
    # the gate above asks; and so is each copy the lattice predicts elsewhere whose pixels have a
    # mean of repeat_fill_confidence or more.
    repeat_count: int = 0
    repeat_confidence: float = 0.8
    repeat_correlation: float = 0.8
    repeat_min_pixels: int = 20
    repeat_fill_confidence: float = 0.4
    # A photo with more than busy_regions unsure regions (candidates of busy_min_pixels or more
    # that the gate above does not keep) per BUSY_AREA pixels examined is busy, and its regions
    # need a mean of busy_region_confidence; 0 turns the rule off.
    busy_regions: float = 0.0
    busy_region_confidence: float = 0.95
    busy_min_pixels: int = 20
    # Within the kept regions, a pixel stays only where the kept pixels of the local_window x
    # local_window square around it have a mean of at least local_confidence (0: off). A
    # region's mean let photo content joined to a sure mark through with it: line art crossed
    # by a word, a light streak touching a "(c)" (model/candidates/README.md).
    local_window: int = 0
    local_confidence: float = 0.0
    # A candidate region the gate above did not keep is kept when it lies within near_pixels
    # (0: off) of the decided mask and has a mean of near_confidence or more: the letters of a
    # word the network is less sure of than of its neighbours, a mark's piece split off by the
    # texture under it. The photo's own content beside a mark is taken too where the network is
    # as sure of it (water drops beside a tiled logo, model/candidates/README.md), hence a mean
    # close to the gate's.
    near_pixels: int = 0
    near_confidence: float = 0.8
    # On a photo looked at twice (a large photo, whose full-size windows count only where its
    # reduced copy saw a candidate too: handler/regions.py footprint), a seeded region of
    # large_region_pixels or more (0: off) is kept with a mean of large_region_confidence,
    # whatever the busy rule asks; the local rule then holds its parts to that mean too. A
    # large mark spans several windows, each of which sees only part of it and is less sure;
    # texture the network fires on over a large area is what the reduced copy's look removes.
    large_region_pixels: int = 0
    large_region_confidence: float = 0.85
    # The blend is inverted where alpha is below this (above, inversion amplifies noise); 0 turns
    # inversion off and Telea fills every region.
    invert_max_alpha: float = 0.7
    plausible_error: float = 0.08  # low-pass distance (0-1 scale) from the inpainted fill
    inpaint_radius: int = 3  # Telea's neighbourhood, in pixels
    # handler/blendfit.py, for given masks only: per cluster, one blend fitted just inside the
    # mask's edge and inverted inside it, where the fit is plainly right; elsewhere the
    # restoration stands.
    blend_fit: bool = False

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> PipelineConfig:
        """From model-config.yaml's ``handler`` section: its pipeline keys, defaults otherwise."""
        return cls(**own_settings(cls, settings))


@dataclass(frozen=True)
class Detection:
    """What the network found in one photo, at full resolution."""

    probability: np.ndarray  # (H, W) float32 in [0, 1]: the pixel belongs to a watermark
    alpha: np.ndarray  # (H, W) float32 in [0, max_alpha]: the mark's opacity
    colour: np.ndarray  # (H, W, 3) float32 in [0, 1]: the mark's colour
    # Pixels the network looked at at full resolution (a large photo's windows), None: all.
    examined: int | None = None
    # (H, W) bool: the copies of tiled marks the network saw on the photo folded over their
    # lattice (handler/fold.py), kept as tiled marks are; None where not looked for.
    copies: np.ndarray | None = None
    # The probability counts only where a reduced copy of the photo saw a candidate too (a
    # large photo's windows, handler/regions.py footprint): large regions may be less sure.
    looked_twice: bool = False


# A learned restoration given a mask: (photo window (h, w, 3) uint8, Telea's fill of the mask
# in it (h, w, 3) uint8, the mask in it (h, w) bool) -> the restored window (h, w, 3) float in
# [0, 1]; only the mask's pixels of it are used.
Restorer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# candidate_regions' answer, which decide_regions and unsure_regions share on a detect_unsure
# request instead of each labelling the map (0.1 s of a 12-megapixel photo).
Candidates = tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]


def candidate_regions(probability: np.ndarray, cfg: PipelineConfig) -> Candidates:
    """(candidate pixels (H, W) bool, their regions' labels (H, W), the count of regions, and
    by label (0 the background) each region's pixel count and mean probability) of a
    probability map: the pixels above ``mask_threshold`` and their 8-connected regions, which
    the gate judges and unsure_regions offers to a person."""
    candidate = probability > cfg.mask_threshold
    labels, count = ndimage.label(candidate, structure=CONNECTIVITY)
    # Counted over the candidate pixels, in linear time: ndimage.maximum sorts every pixel of
    # the photo by label (5 s of a 12-megapixel photo's 6).
    inside = labels[candidate]
    size = np.bincount(inside, minlength=count + 1)
    total = np.bincount(inside, weights=probability[candidate], minlength=count + 1)
    return candidate, labels, count, size, total / np.maximum(size, 1)


def grown(mask: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """``mask`` widened by ``grow_pixels`` (8-connected), to take in a mark's faint edge."""
    if cfg.grow_pixels > 0 and mask.any():
        widened: np.ndarray = ndimage.binary_dilation(
            mask, CONNECTIVITY, iterations=cfg.grow_pixels
        )
        return widened
    return mask


def decide_regions(
    probability: np.ndarray,
    cfg: PipelineConfig,
    examined: int | None = None,
    regions: Candidates | None = None,
    copies: np.ndarray | None = None,
    looked_twice: bool = False,
) -> np.ndarray:
    """The final watermark mask, (H, W) bool, from a probability map (H, W) in [0, 1] that the
    network computed over ``examined`` of its pixels (None: all of them); ``regions``: the
    map's candidate_regions where the caller has them; ``copies`` and ``looked_twice``: a
    Detection's."""
    candidate, labels, count, size, mean = regions or candidate_regions(probability, cfg)
    if count == 0:
        return candidate if copies is None else grown(copies, cfg)
    seeded = np.zeros(count + 1, dtype=bool)
    seeded[labels[probability >= cfg.seed_threshold]] = True
    seeded[0] = False  # the background
    keep = seeded & (mean >= cfg.region_confidence) & (size >= cfg.min_region_pixels)
    if cfg.busy_regions > 0:
        unsure = int(np.count_nonzero(~keep[1:] & (size[1:] >= cfg.busy_min_pixels)))
        area = probability.size if examined is None else examined
        if unsure > cfg.busy_regions * area / BUSY_AREA:
            keep &= mean >= cfg.busy_region_confidence
    mask: np.ndarray = keep[labels]
    if cfg.local_window > 0 and mask.any():
        mask = drop_unsure_parts(mask, probability, cfg.local_window, cfg.local_confidence)
    if looked_twice and cfg.large_region_pixels > 0:
        large = ~keep & seeded & (size >= cfg.large_region_pixels)
        large &= mean >= cfg.large_region_confidence
        if large.any():
            mask = mask | _held_locally(
                large[labels], probability, cfg.large_region_confidence, cfg
            )
            keep = keep | large
    if cfg.min_cluster_pixels > 0 and mask.any():
        mask = drop_small_clusters(mask, cfg.min_cluster_pixels, cfg.cluster_margin)
    if cfg.repeat_count > 0:
        mask = mask | tiled_marks(probability, labels, size, mean, tiled_config(cfg))
    if copies is not None:
        mask = mask | copies
    if cfg.near_pixels > 0 and mask.any():
        beside = ~keep & (mean >= cfg.near_confidence) & (size >= cfg.min_region_pixels)
        near = near_regions(mask, labels, beside, cfg.near_pixels)
        mask = mask | _held_locally(near, probability, cfg.near_confidence, cfg)
    return grown(mask, cfg)


def _held_locally(
    mask: np.ndarray, probability: np.ndarray, confidence: float, cfg: PipelineConfig
) -> np.ndarray:
    """``mask`` with the local rule (``local_window``) at ``confidence``: the regions a rule
    keeps at a lower mean than the gate's are held to that mean part by part."""
    if cfg.local_window > 0 and mask.any():
        return drop_unsure_parts(mask, probability, cfg.local_window, confidence)
    return mask


def near_regions(
    mask: np.ndarray, labels: np.ndarray, eligible: np.ndarray, reach: int
) -> np.ndarray:
    """(H, W) bool: the regions of ``labels`` (H, W) int marked in ``eligible`` (by label, 0
    the background) that come within ``reach`` pixels (a square) of ``mask`` (H, W) bool."""
    box = grown_box(mask, reach)
    side = 2 * reach + 1
    around = cv2.dilate(mask[box].astype(np.uint8), np.ones((side, side), np.uint8)) > 0
    touched = np.zeros_like(eligible)
    touched[np.unique(labels[box][around])] = True
    chosen = touched & eligible
    chosen[0] = False
    if not chosen.any():
        return np.zeros_like(mask)
    found: np.ndarray = chosen[labels]
    return found


def unsure_regions(
    probability: np.ndarray,
    mask: np.ndarray,
    cfg: PipelineConfig,
    regions: Candidates | None = None,
) -> np.ndarray:
    """(H, W) bool: what the network saw but the gate did not keep, for a person to judge (the
    API's detect with ``unsure``, the page's suggestions): the candidate regions (probability
    above ``mask_threshold``) of ``busy_min_pixels`` or more, the busy-photo rule's unsure
    regions, widened by ``grow_pixels`` as kept regions are, outside the final ``mask``. Nothing
    here is ever changed unless a person sends it back as part of a mask. (Widened: added as
    they were, a held-out date's letters came back as outlines of their own faint rim.)
    ``regions``: the map's candidate_regions where the caller has them."""
    candidate, labels, count, size, _ = regions or candidate_regions(probability, cfg)
    if count == 0:
        return candidate
    big = size >= cfg.busy_min_pixels
    big[0] = False
    left: np.ndarray = grown(big[labels], cfg) & ~mask
    return left


def tiled_config(cfg: PipelineConfig) -> TiledConfig:
    return TiledConfig(
        min_copies=cfg.repeat_count,
        confidence=cfg.repeat_confidence,
        correlation=cfg.repeat_correlation,
        min_pixels=cfg.repeat_min_pixels,
        fill_confidence=cfg.repeat_fill_confidence,
        mask_threshold=cfg.mask_threshold,
    )


def grown_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of ``mask`` (H, W) bool, not empty, grown by ``margin`` pixels on every
    side (cut at the top and left edges; slices stop at the others): what works on a mask and
    its surroundings need look at no more, so a corner mark of a 12-megapixel photo costs its
    box, not the photo."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (
        slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
        slice(max(cols[0] - margin, 0), cols[-1] + margin + 1),
    )


def drop_unsure_parts(
    mask: np.ndarray, probability: np.ndarray, window: int, confidence: float
) -> np.ndarray:
    """``mask`` (H, W) bool without the pixels around which, over a ``window`` x ``window``
    square, the mask's pixels have a mean ``probability`` below ``confidence``, unless the
    pixels that have it enclose them."""
    box = grown_box(mask, window)
    inside = mask[box].astype(np.float32)
    size, border = (window, window), cv2.BORDER_CONSTANT
    total = cv2.boxFilter(probability[box] * inside, -1, size, normalize=False, borderType=border)
    count = cv2.boxFilter(inside, -1, size, normalize=False, borderType=border)
    # What the sure part encloses stays: the inside of a large flat mark is what the network is
    # least sure of at full size (it looks like any flat field), and cut out it left a hole of
    # the mark's own colour in the removed mark.
    sure = mask[box] & (total >= confidence * count)
    kept = mask.copy()
    kept[box] &= ndimage.binary_fill_holes(sure)
    return kept


def drop_small_clusters(mask: np.ndarray, min_pixels: int, margin: int) -> np.ndarray:
    """``mask`` (H, W) bool without the clusters (regions closer than 2 x ``margin``) that hold
    fewer than ``min_pixels`` of its pixels."""
    labels, count = clusters(mask, margin)
    size = np.bincount(labels[mask], minlength=count + 1)
    big = size >= min_pixels
    big[0] = False
    kept: np.ndarray = mask & big[labels]
    return kept


def telea(image: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """OpenCV Telea inpainting of ``mask`` in (H, W, 3) uint8; other pixels unchanged."""
    filled: np.ndarray = cv2.inpaint(image, mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    return filled


def _low_pass(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=2.0)


def clusters(mask: np.ndarray, margin: int) -> tuple[np.ndarray, int]:
    """Labels (H, W) int of the mask's regions grown by ``margin`` pixels, and their count:
    regions closer than 2 x margin share a cluster (the glyphs of one word), and a cluster's
    bounding box already holds the margin around its regions."""
    size = 2 * margin + 1
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8))
    labels, count = ndimage.label(grown, structure=CONNECTIVITY)
    return labels, int(count)


def _classical(
    photo: np.ndarray, fill: np.ndarray, alpha: np.ndarray, colour: np.ndarray,
    region: np.ndarray, cfg: PipelineConfig,
) -> np.ndarray:  # fmt: skip
    """The blend inverted with the detector's alpha and colour where it is semi-transparent
    and plausible, Telea's fill elsewhere: (h, w, 3) float in [0, 1]."""
    fill_f = fill.astype(np.float32) / 255
    inverted = invert_blend(photo.astype(np.float32) / 255, alpha, colour)
    restored = np.where((alpha < cfg.invert_max_alpha)[..., None], inverted, fill_f)
    # Inversion with a wrong alpha or colour leaves a ghost or a hole of the mark's shape: at
    # low frequency it then stands out from the fill the surroundings predict.
    # Decided region by region, so that one bad inversion does not cost its neighbours theirs.
    error = np.abs(_low_pass(restored) - _low_pass(fill_f)).max(axis=-1)
    labels, count = ndimage.label(region, structure=CONNECTIVITY)
    if count == 0:
        return restored
    means = ndimage.mean(error, labels, np.arange(1, count + 1))
    implausible = np.concatenate([[False], means > cfg.plausible_error])[labels]
    return np.where(implausible[..., None], fill_f, restored)


def restore_regions(
    image: np.ndarray,
    mask: np.ndarray,
    detection: Detection,
    cfg: PipelineConfig,
    learned: Restorer | None = None,
    fit_blend: bool = False,
) -> np.ndarray:
    """Every pixel of ``mask`` in ``image`` (H, W, 3) uint8 restored; the others unchanged;
    with ``fit_blend``, each cluster's fitted blend inverted where it is plainly right.

    Works cluster by cluster of nearby regions, inside each cluster's bounding box (with room
    for Telea's neighbourhood and the learned restorer's view), so that a small mark on a large
    photo costs little and the glyphs of a word share one window.
    """
    output = image.copy()
    labels, _ = clusters(mask, 4 * cfg.inpaint_radius + 8)
    for index, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is None:
            continue
        region = (labels[window] == index) & mask[window]
        # Inpaint from the unmarked pixels only: every marked pixel of the window is masked.
        fill = telea(image[window], mask[window], cfg.inpaint_radius)
        if learned is not None:
            restored = learned(image[window], fill, mask[window])
        else:
            restored = _classical(
                image[window], fill, detection.alpha[window], detection.colour[window], region,
                cfg,
            )  # fmt: skip
        if fit_blend:
            restored = _with_fitted_blend(image[window], mask[window], region, restored, cfg)
        pixels = np.clip(restored * 255 + 0.5, 0, 255).astype(np.uint8)
        output[window][region] = pixels[region]
    return output


def _with_fitted_blend(
    photo: np.ndarray, mask: np.ndarray, region: np.ndarray, restored: np.ndarray,
    cfg: PipelineConfig,
) -> np.ndarray:  # fmt: skip
    """``restored`` (h, w, 3) float in [0, 1] with the inside of ``region`` replaced by the
    inverted blend where handler/blendfit.py's fit of it is plainly right."""
    photo_f = photo.astype(np.float32) / 255
    # Filled from a pixel farther out: the mark's faint anti-aliased edge lies just outside
    # its mask, and filled from it the fit takes the mark for part of the photo (on 300 held-out
    # crops with their true masks, 5 came back up to 0.58 dB below the restorer's output).
    grown = ndimage.binary_dilation(mask, CONNECTIVITY)
    fill = telea(photo, grown, cfg.inpaint_radius).astype(np.float32) / 255
    fitted = invert_fitted(photo_f, fill, region)
    if fitted is None:
        return restored
    return np.where(fitted.where[..., None], fitted.inverted, restored)


def remove_watermark(
    image: np.ndarray,
    detection: Detection,
    cfg: PipelineConfig,
    given_mask: np.ndarray | None = None,
    learned: Restorer | None = None,
    regions: Candidates | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(cleaned (H, W, 3) uint8, final mask (H, W) bool) of ``image`` (H, W, 3) uint8;
    ``regions``: the detection's candidate_regions where the caller has them.

    ``given_mask`` (H, W) bool, a person's or an evaluation's, replaces the decided regions:
    restoration then runs on exactly those pixels, by ``learned`` when given, and with
    ``blend_fit`` the fitted blend is inverted inside them. Not inside decided regions: a
    detected mask ends a pixel or two off the mark's edge and can miss part of it, and there
    the fit took the mark's partly transparent rim for its inside, too opaque, and outlined
    letters in bright or dark (on 300 held-out crops, 2 came back 6-10 dB below the restorer's
    output; model/candidates/README.md).
    """
    if given_mask is None:
        mask = decide_regions(
            detection.probability, cfg, detection.examined, regions, detection.copies,
            detection.looked_twice,
        )  # fmt: skip
    else:
        mask = given_mask
    if not mask.any():
        return image, mask
    fit_blend = cfg.blend_fit and given_mask is not None
    return restore_regions(image, mask, detection, cfg, learned, fit_blend), mask
