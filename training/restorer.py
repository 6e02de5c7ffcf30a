"""Restoration given a mask, learned: a small network that sees the photo, the mask and Telea's
fill of it, and says per pixel how the mark was blended (alpha, colour) and how far to trust
inverting that blend over the fill.

    restored = trust * invert_blend(photo, alpha, colour) + (1 - trust) * telea_fill

inside the mask; every other pixel is the photo's own. With trust 0 this is Telea exactly, so
the network learns only what it can add to the classical floor: the real detail under a
semi-transparent mark, which inpainting throws away. With the true alpha and colour, inverting
where alpha < 0.8 scores 2-8 dB above Telea per style on held-out 256 crops; the detector's own
alpha and colour scored below Telea (handler/model-config.yaml: invert_max_alpha 0), because
it must also find the mark. Given the mask, this network only has to explain it.

The network is training/model.py's U-Net with a 7-channel input (photo, fill, mask), so the
handler ships no second architecture. Pure torch, shipped in the handler's archive; the
training data and loop are training/train_restorer.py's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from training.model import ModelConfig, WatermarkRemover, invert_blend, predict

IN_CHANNELS = 7  # photo (3), Telea's fill (3), mask (1)


# The trust a fresh network starts with, sigmoid(-4) = 0.018: it starts as Telea, and moves
# off the floor only where inverting does better.
INITIAL_TRUST_LOGIT = -4.0


def restorer_model(widths: Sequence[int], max_alpha: float) -> WatermarkRemover:
    model = WatermarkRemover(ModelConfig(tuple(widths), max_alpha, IN_CHANNELS))
    head = model.head[0]
    assert isinstance(head, nn.Conv2d) and head.bias is not None
    with torch.no_grad():
        # The head's first 4 channels are the trust logit of each pixel of a 2x2 block.
        head.bias[:4] = INITIAL_TRUST_LOGIT
    return model


def restore(
    model: WatermarkRemover, photo: torch.Tensor, fill: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """photo, fill (B, 3, H, W) and mask (B, 1, H, W), float in [0, 1], any size -> (the
    restored photos (B, 3, H, W): the mask's pixels restored, the others the photo's own; the
    predicted alpha (B, 1, H, W), which training also fits)."""
    pred = predict(model, torch.cat([photo, fill, mask], dim=1))
    trust = torch.sigmoid(pred.mask_logits.float())
    alpha = pred.alpha.float()
    inverted = invert_blend(photo, alpha, pred.colour.float())
    inside = trust * inverted + (1 - trust) * fill
    return mask * inside + (1 - mask) * photo, alpha
