"""The watermark network: a U-Net behind a pixel-unshuffle stem, for a mask-first remover.

Only the network lives here (no I/O, no training logic) so that the TorchServe handler can ship
this one file and rebuild the model from a checkpoint's ``model_args``.

The network explains each pixel of the input with the blend that makes a visible watermark,

    watermarked = clean * (1 - alpha) + colour * alpha,

and predicts, per pixel, the watermark mask, its opacity ``alpha`` and its ``colour``. The mask
is what the pipeline (handler/pipeline.py) decides regions with; alpha and colour let it invert
the blend where the mark is semi-transparent, which keeps the real detail under the mark
instead of inventing it.

Speed on a 2-core CPU decided the shape: the stem folds each 2x2 block of pixels into channels
(pixel unshuffle), so that every convolution is a dense 3x3 at 32+ channels on a quarter of the
pixels. Measured here, dense 3x3 convolutions at that width run 1.3-2x more FLOP/s than
depthwise or NAFNet-style blocks, and this stem is about 3.5x faster than a 12-channel level at
full resolution.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class ModelConfig:
    widths: tuple[int, ...] = (32, 48, 64, 96)  # channels per level, the first at H/2 x W/2
    max_alpha: float = 0.9  # inverting a more opaque blend only amplifies noise
    # 3: the detector sees the photo. training/restorer.py's network also sees the inpainted
    # fill and the mask (7), and its first output is its trust in the inversion, not a mask.
    in_channels: int = 3

    def __post_init__(self) -> None:
        # yaml and checkpoints give lists; the config stays hashable and comparable.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to this: the stem halves them, then each further level halves."""
        return int(2 ** len(self.widths))


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # BatchNorm: from-scratch training converges in far fewer steps, and at inference it is
    # a fixed per-channel scale and shift.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.GELU(),
    )


@dataclass
class Prediction:
    """All tensors float NCHW; images in [0, 1]."""

    mask_logits: torch.Tensor  # (B, 1, H, W)
    alpha: torch.Tensor  # (B, 1, H, W) in [0, max_alpha]
    colour: torch.Tensor  # (B, 3, H, W) in [0, 1]
    restored: torch.Tensor  # (B, 3, H, W) the blend inverted everywhere
    # Mask logits of the coarser decoder levels, (B, 1, H / 4, W / 4), (B, 1, H / 8, W / 8),
    # ...: trained too (deep supervision), so that the coarse levels already locate the mark.
    coarse_logits: tuple[torch.Tensor, ...] = ()

    @property
    def mask(self) -> torch.Tensor:
        return torch.sigmoid(self.mask_logits)

    def cropped(self, height: int, width: int) -> Prediction:
        """The prediction for the top-left (height, width) of a padded input."""
        full = {
            name: getattr(self, name)[..., :height, :width]
            for name in ("mask_logits", "alpha", "colour", "restored")
        }
        return Prediction(**full, coarse_logits=self.coarse_logits)


def invert_blend(image: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """The clean image under a blend of ``colour`` at ``alpha``: (B, 3, H, W) in [0, 1]."""
    return ((image - alpha * colour) / (1 - alpha)).clamp(0, 1)


class WatermarkRemover(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = cfg.widths
        channels = cfg.in_channels
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), _conv_block(4 * channels, widths[0]))
        self.down = nn.ModuleList(
            _conv_block(widths[i], widths[i + 1]) for i in range(len(widths) - 1)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(len(widths) - 1))
        )
        self.fuse = nn.ModuleList(
            _conv_block(2 * widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )
        self.coarse_heads = nn.ModuleList(
            nn.Conv2d(widths[i], 1, 1) for i in reversed(range(1, len(widths) - 1))
        )
        # Per 2x2 block: 1 mask logit, 1 alpha logit, 3 colour logits, shuffled back to full
        # size; the full-resolution input refines them in the last, cheap layer.
        self.head = nn.Sequential(nn.Conv2d(widths[0], 5 * 4, 1), nn.PixelShuffle(2))
        self.refine = nn.Conv2d(5 + channels, 5, 3, padding=1)

    def forward(self, image: torch.Tensor) -> Prediction:
        """image: (B, in_channels, H, W) float in [0, 1], H and W multiples of
        cfg.size_multiple; the first three channels are the photo."""
        skips = [self.stem(image)]  # (B, C0, H / 2, W / 2)
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()  # (B, C_last, H / 2**levels, W / 2**levels)
        coarse = []
        for level, (up, fuse) in enumerate(zip(self.up, self.fuse, strict=True)):
            x = fuse(torch.cat([up(x), skips.pop()], dim=1))
            if level < len(self.coarse_heads):
                coarse.append(self.coarse_heads[level](x))
        head = self.head(x)  # (B, 5, H, W)
        head = head + self.refine(torch.cat([head, image], dim=1))
        mask_logits = head[:, :1]
        alpha = torch.sigmoid(head[:, 1:2]) * self.cfg.max_alpha
        colour = torch.sigmoid(head[:, 2:])
        restored = invert_blend(image[:, :3], alpha, colour)
        # Coarsest first from the loop; the loss does not care about the order.
        return Prediction(mask_logits, alpha, colour, restored, tuple(coarse))


# A logit's probability is kept off 0 and 1 when an ensemble turns it back into a logit.
_PROBABILITY_EPS = 1e-6


class DetectorEnsemble(nn.Module):
    """Detectors run on the same image, their predictions combined: the watermark probability
    is the weighted mean of theirs (as a logit again, so the prediction reads like one
    network's), alpha and colour the weighted means. Tried because independently trained
    detectors fire on different photo content (a from-scratch run flagged 6.2% of a hazy lake
    photo's pixels where the served detector flagged 16.6%); measured 2026-12-07, the mean of
    the two found more (F1 0.57 -> 0.59 before any gate) but no gate that passed the gate
    search kept as much as the served detector's own (model/candidates/README.md)."""

    def __init__(self, members: Sequence[WatermarkRemover], weights: Sequence[float]) -> None:
        super().__init__()
        if len(members) < 2 or len(weights) != len(members):
            raise ValueError(
                f"an ensemble needs two or more members and a weight each: {len(members)} "
                f"members, {len(weights)} weights"
            )
        if any(w <= 0 for w in weights):
            raise ValueError(f"ensemble weights must be positive: {list(weights)}")
        shapes = {(m.cfg.size_multiple, m.cfg.in_channels, m.cfg.max_alpha) for m in members}
        if len(shapes) > 1 or members[0].cfg.in_channels != 3:
            raise ValueError(
                "ensemble members must be detectors (3 input channels) of one input size "
                f"multiple and max_alpha: {sorted(shapes)}"
            )
        self.members = nn.ModuleList(members)
        # The first member's: what predict() pads to and alpha's range, which all share.
        self.cfg = members[0].cfg
        total = float(sum(weights))
        self.weights = tuple(float(w) / total for w in weights)

    def forward(self, image: torch.Tensor) -> Prediction:
        preds = [member(image) for member in self.members]
        weights = torch.tensor(self.weights, device=image.device).view(-1, 1, 1, 1, 1)

        def mean(values: Sequence[torch.Tensor]) -> torch.Tensor:
            return (torch.stack([v.float() for v in values]) * weights).sum(0)

        probability = mean([torch.sigmoid(p.mask_logits.float()) for p in preds])
        probability = probability.clamp(_PROBABILITY_EPS, 1 - _PROBABILITY_EPS)
        alpha = mean([p.alpha for p in preds])
        colour = mean([p.colour for p in preds])
        logits = torch.log(probability) - torch.log1p(-probability)
        return Prediction(logits, alpha, colour, invert_blend(image[:, :3], alpha, colour))


# What detects: one network or an ensemble of them (training/checkpoint.py load_detector).
Detector = WatermarkRemover | DetectorEnsemble

Module = TypeVar("Module", bound=nn.Module)


def fold_batch_norms(model: Module) -> Module:
    """An eval-mode copy of ``model`` for inference, each Conv2d followed by a BatchNorm2d in a
    Sequential folded into one convolution with a bias (the same function of its input): a
    tenth of the detector's time on a CPU went to the separate normalisation passes."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(conv, norm)
                module[i + 1] = nn.Identity()
    return folded


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) on the bottom and right by edge replication up to a multiple."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")


def predict(model: Detector, image: torch.Tensor) -> Prediction:
    """Run the model on (B, C, H, W) inputs of any size; full-size outputs cropped to H x W."""
    h, w = image.shape[-2:]
    pred: Prediction = model(pad_to_multiple(image, model.cfg.size_multiple))
    return pred.cropped(h, w)
