"""Training losses, in the spirit of SLBR (Liang et al., 2021): the mask is learnt as a
segmentation, the restoration only where the mark is.

- Mask: binary cross-entropy over every pixel plus a soft Dice term, at full resolution and at
  each coarser decoder level (deep supervision, the target max-pooled so that a thin stroke
  stays marked). BCE keeps false alarms on clean photos as costly as their area; Dice keeps a
  small mark from drowning in the clean pixels around it.
- Restoration: L1 of the blend inverted with the predicted alpha and colour, composited with
  the *detached* predicted mask, averaged over the marked pixels only. Plain L1 over the image
  is dominated by pixels that are already right; detaching keeps the restoration loss from
  teaching the mask to shrink where the restoration is hard.
- Alpha and colour: L1 where the mark touched the pixel, normalised by that area.
- Boundary: BCE over the ring of clean pixels just outside the mark (within BOUNDARY_WIDTH
  pixels of it, untouched by it), averaged over the ring. Over the whole image these pixels
  are a sliver of the BCE mean, yet they are where a looser gate let photo content joined to
  a mark through with it (line art, light streaks; model/candidates/README.md).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from training.model import Prediction

# The ring the boundary term weighs, in pixels from the mark: a thin line of the photo that a
# mark touches was taken in with it over tens of pixels at full size, 2-8 at the 160-pixel
# training crops' scale.
BOUNDARY_WIDTH = 8


def dice_loss(mask_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice per image, averaged; an image without a mark scores by its false alarms."""
    prob = torch.sigmoid(mask_logits)
    dims = (1, 2, 3)
    overlap = (prob * target).sum(dims)
    return (1 - (2 * overlap + 1) / (prob.sum(dims) + target.sum(dims) + 1)).mean()


def mask_losses(pred: Prediction, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE, Dice) summed over full resolution and the coarse levels, each level weighing 1."""
    bce = F.binary_cross_entropy_with_logits(pred.mask_logits, mask)
    dice = dice_loss(pred.mask_logits, mask)
    for logits in pred.coarse_logits:
        target = F.adaptive_max_pool2d(mask, logits.shape[-2:])
        bce = bce + F.binary_cross_entropy_with_logits(logits, target)
        dice = dice + dice_loss(logits, target)
    return bce, dice


def boundary_loss(
    mask_logits: torch.Tensor, mask: torch.Tensor, touched: torch.Tensor
) -> torch.Tensor:
    """BCE of ``mask_logits`` (B, 1, H, W) over the pixels within BOUNDARY_WIDTH of ``mask``
    that the mark did not touch (``touched``, both (B, 1, H, W) in {0, 1}), per ring pixel; 0
    when the batch has no mark."""
    size = 2 * BOUNDARY_WIDTH + 1
    near = F.max_pool2d(mask, size, stride=1, padding=BOUNDARY_WIDTH)
    ring = near * (1 - touched)
    bce = F.binary_cross_entropy_with_logits(mask_logits, mask, reduction="none")
    return (bce * ring).sum() / ring.sum().clamp_min(1.0)


def area_mean(error: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Sum of ``error`` (B, C, H, W) over ``where`` (B, 1, H, W) in [0, 1], per pixel and channel
    of that area; 0 when the batch has no such pixel."""
    channels = error.shape[1]
    return (error * where).sum() / (channels * where.sum()).clamp_min(1.0)


def removal_losses(
    pred: Prediction,
    batch: dict[str, torch.Tensor],
    weights: dict[str, float],
) -> dict[str, torch.Tensor]:
    """Every loss term, already weighted, plus their sum under "total"; ``weights`` holds one
    weight per term."""
    mask = batch["mask"]
    touched = (batch["alpha"] > 0).float()  # every pixel the mark touched, however faintly
    bce, dice = mask_losses(pred, mask)
    gate = pred.mask.detach()
    output = gate * pred.restored + (1 - gate) * batch["watermarked"]
    terms = {
        "mask_bce": weights["mask_bce"] * bce,
        "mask_dice": weights["mask_dice"] * dice,
        "image": weights["image"] * area_mean((output - batch["clean"]).abs(), touched),
        "alpha": weights["alpha"] * area_mean((pred.alpha - batch["alpha"]).abs(), touched),
        "colour": weights["colour"]
        * area_mean((pred.colour - batch["colour"]).abs(), batch["alpha"]),
        "boundary": weights["boundary"] * boundary_loss(pred.mask_logits, mask, touched),
    }
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms
