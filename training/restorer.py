"""Restoration given a mask, learned: a small network that sees the photo, the mask and Telea's
fill of it, and says per pixel how the mark was blended (alpha, colour) and whether inverting
that blend beats the fill:

    restored = invert_blend(photo, alpha, colour) if trust > 0.5 else telea_fill

inside the mask; every other pixel is the photo's own. Untrusted, this is Telea exactly, so
the network can only add to the classical floor: the real detail under a
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

from training.model import ModelConfig, Prediction, WatermarkRemover, predict

IN_CHANNELS = 7  # photo (3), Telea's fill (3), mask (1)


# The trust a fresh network starts with, sigmoid(-4) = 0.018: it starts as Telea, and moves
# off the floor only where inverting does better.
INITIAL_TRUST_LOGIT = -4.0
# A pixel is inverted only where the network's trust in the inversion is above this.
TRUST_THRESHOLD = 0.5


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
) -> tuple[torch.Tensor, Prediction]:
    """photo, fill (B, 3, H, W) and mask (B, 1, H, W), float in [0, 1], any size -> (the
    restored photos (B, 3, H, W), the network's prediction (its ``restored``: the inverted
    blend everywhere) for the training losses).

    Inside the mask each pixel is either the inverted blend, where the network's trust in it
    is above TRUST_THRESHOLD, or Telea's fill: never a mix. A mix let the network hedge (a
    trust of 0.05-0.15 everywhere), and the hedge spoilt fills that were already exact.
    Outside the mask every pixel is the photo's own."""
    pred = predict(model, torch.cat([photo, fill, mask], dim=1))
    trusted = torch.sigmoid(pred.mask_logits.float()) > TRUST_THRESHOLD
    inside = torch.where(trusted, pred.restored.float(), fill)
    return mask * inside + (1 - mask) * photo, pred
