"""Classical baseline for the evaluation: Telea inpainting given the TRUE watermark mask.

This is what inpainting tools do at best: the user paints the mark exactly and the tool fills
it from the surrounding pixels. Its output is exact outside the mark, so its scores measure the
fill alone; a learned remover must also find the mark, and may keep the photo under a
semi-transparent one, which inpainting throws away.
"""

from __future__ import annotations

import cv2
import numpy as np


def telea_inpaint(watermarked: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Fill the pixels under mask with OpenCV's Telea fast-marching inpainting.

    watermarked: uint8 RGB (H, W, 3); mask: bool (H, W), True where the mark is; radius: the
    neighbourhood in pixels each filled pixel is estimated from. OpenCV treats the three
    channels independently, so RGB goes in and comes out without a BGR conversion.
    Returns uint8 RGB (H, W, 3); pixels outside the mask are unchanged.
    """
    inpaint_mask = mask.astype(np.uint8) * 255  # (H, W), OpenCV fills the non-zero pixels
    return cv2.inpaint(np.ascontiguousarray(watermarked), inpaint_mask, radius, cv2.INPAINT_TELEA)
