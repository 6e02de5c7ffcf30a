"""The boundary term: what it weighs is the clean ring just outside the mark, nothing else."""

from __future__ import annotations

import torch

from training.losses import BOUNDARY_WIDTH, boundary_loss

SURE = 20.0  # a logit whose BCE is all but 0 when right


def marked() -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, touched), (1, 1, 64, 64): a 10x10 mark with a 1-pixel faint edge around it."""
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:30, 20:30] = 1
    touched = torch.zeros_like(mask)
    touched[..., 19:31, 19:31] = 1
    return mask, touched


def test_a_prediction_that_stops_at_the_mark_costs_nothing():
    mask, touched = marked()
    logits = torch.where(mask > 0, SURE, -SURE)
    assert boundary_loss(logits, mask, touched).item() < 1e-6


def test_a_prediction_that_spills_past_the_mark_costs_in_the_ring_only():
    mask, touched = marked()
    right = torch.where(mask > 0, SURE, -SURE)
    # The prediction runs on along a line out of the mark: inside the ring it costs ...
    spill = right.clone()
    spill[..., 25, 30 : 30 + BOUNDARY_WIDTH] = SURE
    ring_pixels = (
        torch.nn.functional.max_pool2d(mask, 2 * BOUNDARY_WIDTH + 1, 1, BOUNDARY_WIDTH)
        * (1 - touched)
    ).sum()
    # The first of those 8 pixels is the faint edge the mark touched: 7 are in the ring, each
    # costing a BCE of about SURE.
    expected = 7 * SURE / ring_pixels.item()
    assert abs(boundary_loss(spill, mask, touched).item() - expected) < 1e-3
    # ... and far from the mark it is the whole-image BCE's business, not this term's.
    far = right.clone()
    far[..., 55:60, 5:10] = SURE
    assert boundary_loss(far, mask, touched).item() < 1e-6


def test_a_batch_without_a_mark_costs_nothing():
    empty = torch.zeros(2, 1, 32, 32)
    assert boundary_loss(torch.full_like(empty, SURE), empty, empty).item() == 0.0
