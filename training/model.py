"""The watermark-removal network: a small fully convolutional U-Net.

Only the network lives here (no I/O, no training logic) so that the TorchServe
handler can ship this one file and rebuild the model from a checkpoint's
``model_args``.

The network explains each pixel of the input with the blend that makes a visible
watermark,

    watermarked = clean * (1 - alpha) + colour * alpha,

and predicts, per pixel, the watermark mask, its opacity ``alpha`` and its
``colour``. Inverting the blend gives the clean background where the mark is
semi-transparent, which keeps the real detail under the mark instead of
inventing it; the mask then gates the result so that pixels outside the mark
are returned exactly as they came in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelConfig:
    base_channels: int = 24
    depth: int = 3  # number of 2x downsamplings; inputs are padded to 2**depth
    max_alpha: float = 0.9  # inverting a more opaque blend only amplifies noise

    @property
    def size_multiple(self) -> int:
        return int(2**self.depth)


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
    """All tensors float32 NCHW; images in [0, 1]."""

    mask_logits: torch.Tensor  # (B, 1, H, W)
    alpha: torch.Tensor  # (B, 1, H, W) in [0, max_alpha]
    colour: torch.Tensor  # (B, 3, H, W) in [0, 1]
    restored: torch.Tensor  # (B, 3, H, W) the blend inverted everywhere
    output: torch.Tensor  # (B, 3, H, W) restored inside the mask, input outside

    @property
    def mask(self) -> torch.Tensor:
        return torch.sigmoid(self.mask_logits)


class WatermarkRemover(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [cfg.base_channels * 2**i for i in range(cfg.depth + 1)]
        self.stem = _conv_block(3, widths[0])
        self.down = nn.ModuleList(_conv_block(widths[i], widths[i + 1]) for i in range(cfg.depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(cfg.depth))
        )
        self.fuse = nn.ModuleList(
            _conv_block(2 * widths[i], widths[i]) for i in reversed(range(cfg.depth))
        )
        # 1 mask logit, 1 alpha logit, 3 colour logits
        self.head = nn.Conv2d(widths[0], 5, 1)

    def forward(self, image: torch.Tensor) -> Prediction:
        """image: (B, 3, H, W) float in [0, 1], H and W multiples of cfg.size_multiple."""
        skips = [self.stem(image)]  # (B, C, H, W)
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()  # (B, C * 2**depth, H / 2**depth, W / 2**depth)
        for up, fuse in zip(self.up, self.fuse, strict=True):
            x = fuse(torch.cat([up(x), skips.pop()], dim=1))
        head = self.head(x)  # (B, 5, H, W)
        mask_logits = head[:, :1]
        alpha = torch.sigmoid(head[:, 1:2]) * self.cfg.max_alpha
        colour = torch.sigmoid(head[:, 2:])
        restored = ((image - alpha * colour) / (1 - alpha)).clamp(0, 1)
        mask = torch.sigmoid(mask_logits)
        output = mask * restored + (1 - mask) * image
        return Prediction(mask_logits, alpha, colour, restored, output)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) on the bottom and right by edge replication up to a multiple."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")


def remove_watermark(model: WatermarkRemover, image: torch.Tensor) -> Prediction:
    """Run the model on (B, 3, H, W) images of any size; every output is cropped back to H x W."""
    h, w = image.shape[-2:]
    pred = model(pad_to_multiple(image, model.cfg.size_multiple))
    return Prediction(**{name: t[..., :h, :w] for name, t in vars(pred).items()})
