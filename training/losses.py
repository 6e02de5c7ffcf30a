"""Training losses. Marks cover a few percent of a crop, so every term that compares pixels is
averaged separately over marked and unmarked pixels: a plain mean would reward predicting
"no watermark" everywhere."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from training.model import Prediction


def _balanced_mean(error: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Mean of ``error`` inside the mark plus mean outside it, per image, averaged over the batch.

    error: (B, C, H, W); inside: (B, 1, H, W) in {0, 1}.
    """
    dims = (1, 2, 3)
    inside = inside.expand_as(error)
    outside = 1 - inside
    mean_in = (error * inside).sum(dims) / inside.sum(dims).clamp_min(1)
    mean_out = (error * outside).sum(dims) / outside.sum(dims).clamp_min(1)
    return (mean_in + mean_out).mean() / 2


def dice_loss(mask_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(mask_logits)
    dims = (1, 2, 3)
    overlap = (prob * target).sum(dims)
    return (1 - (2 * overlap + 1) / (prob.sum(dims) + target.sum(dims) + 1)).mean()


def removal_losses(
    pred: Prediction, batch: dict[str, torch.Tensor], weights: dict[str, float]
) -> dict[str, torch.Tensor]:
    """Every loss term, already weighted, plus their sum under "total"."""
    mask = batch["mask"]
    marked = (batch["alpha"] > 0).float()  # every pixel the mark touched, however faintly
    bce = F.binary_cross_entropy_with_logits(pred.mask_logits, mask, reduction="none")
    colour_weight = batch["alpha"]
    colour_error = (pred.colour - batch["colour"]).abs() * colour_weight
    terms = {
        "image": weights["image"] * _balanced_mean((pred.output - batch["clean"]).abs(), mask),
        "mask_bce": weights["mask_bce"] * _balanced_mean(bce, mask),
        "mask_dice": weights["mask_dice"] * dice_loss(pred.mask_logits, mask),
        "alpha": weights["alpha"] * _balanced_mean((pred.alpha - batch["alpha"]).abs(), marked),
        "colour": weights["colour"]
        * (colour_error.sum() / (3 * colour_weight.sum()).clamp_min(1e-6)),
    }
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms
