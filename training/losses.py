"""Training losses.

Marks cover a few percent of a crop. Averaging marked and unmarked pixels separately (tried
first) makes a wrongly flagged clean pixel fifty times cheaper than a missed marked one, and the
model then flags a third of every photo; for PSNR a false positive costs as much as a miss.
Every pixel term therefore weighs a marked pixel ``1 + inside_weight`` times an unmarked one,
which keeps the cost of a false positive proportional to its area.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from training.model import Prediction


def weighted_mean(error: torch.Tensor, inside: torch.Tensor, inside_weight: float) -> torch.Tensor:
    """Mean of ``error`` with marked pixels weighing ``1 + inside_weight``, over the batch.

    error: (B, C, H, W); inside: (B, 1, H, W) in {0, 1}.
    """
    weight = (1 + inside_weight * inside).expand_as(error)
    return (error * weight).sum() / weight.sum()


def dice_loss(mask_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(mask_logits)
    dims = (1, 2, 3)
    overlap = (prob * target).sum(dims)
    return (1 - (2 * overlap + 1) / (prob.sum(dims) + target.sum(dims) + 1)).mean()


def removal_losses(
    pred: Prediction, batch: dict[str, torch.Tensor], weights: dict[str, float]
) -> dict[str, torch.Tensor]:
    """Every loss term, already weighted, plus their sum under "total".

    ``weights`` holds one weight per term and ``inside_weight``, the extra weight of marked pixels.
    """
    mask = batch["mask"]
    marked = (batch["alpha"] > 0).float()  # every pixel the mark touched, however faintly
    bce = F.binary_cross_entropy_with_logits(pred.mask_logits, mask, reduction="none")
    colour_weight = batch["alpha"]
    colour_error = (pred.colour - batch["colour"]).abs() * colour_weight
    inside = weights["inside_weight"]
    alpha_error = (pred.alpha - batch["alpha"]).abs()
    terms = {
        "image": weights["image"]
        * weighted_mean((pred.output - batch["clean"]).abs(), mask, inside),
        "mask_bce": weights["mask_bce"] * weighted_mean(bce, mask, inside),
        "mask_dice": weights["mask_dice"] * dice_loss(pred.mask_logits, mask),
        "alpha": weights["alpha"] * weighted_mean(alpha_error, marked, inside),
        "colour": weights["colour"]
        * (colour_error.sum() / (3 * colour_weight.sum()).clamp_min(1e-6)),
    }
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms
