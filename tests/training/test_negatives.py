"""Hard-negative mining keeps the clean crops a model fires on, most-fired first."""

import numpy as np
import torch

from training.examples import training_examples
from training.negatives import firing_scores, hard_negatives, mine_hard_negatives
from training.synth import MarkAssets


def red_probability(batch: torch.Tensor) -> torch.Tensor:
    """A stand-in detector that takes every strongly red pixel for a watermark."""
    red = (batch[:, 0] > 0.6) & (batch[:, 1] < 0.4) & (batch[:, 2] < 0.4)
    return red[:, None].float()


def test_firing_scores_are_the_share_of_flagged_pixels():
    crops = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    crops[1, :4, :, 0] = 255  # half red
    crops[2, :, :, 0] = 255  # all red
    scores = firing_scores(red_probability, crops, threshold=0.5, batch_size=2)
    np.testing.assert_allclose(scores, [0.0, 0.5, 1.0])


def test_hard_negatives_rank_by_score_and_drop_crops_never_fired_on():
    crops = np.arange(4)[:, None, None, None] * np.ones((4, 2, 2, 3), dtype=np.uint8)
    kept = hard_negatives(crops, np.array([0.1, 0.0, 0.7, 0.3]), keep=3)
    assert [int(c[0, 0, 0]) for c in kept] == [2, 3, 0]
    assert len(hard_negatives(crops, np.zeros(4), keep=3)) == 0


def test_mining_finds_the_photo_the_model_fires_on():
    grey = np.full((64, 64, 3), 128, dtype=np.uint8)
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[..., 0] = 230
    # Augmentation may swap channels or shift levels: a mined crop is one the detector flags
    # as it was drawn, so each kept crop must score above zero, and grey crops never do.
    mined = mine_hard_negatives(
        red_probability, [grey, red], np.random.default_rng(0), pool=40, keep=10,
        crop_size=16, min_scale=0.5, threshold=0.5,
    )  # fmt: skip
    assert 0 < len(mined) <= 10
    assert (firing_scores(red_probability, mined, 0.5) > 0).all()
    # Every kept crop is a flat crop of the red photo, never of the grey one.
    assert all(crop.reshape(-1, 3).std(axis=0).max() < 1 for crop in mined)


def test_training_draws_clean_crops_from_the_negatives():
    grey = np.full((64, 64, 3), 128, dtype=np.uint8)
    negatives = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    negatives[..., 1] = 200  # green: no augmented grey crop can be this
    examples = training_examples(
        [grey], MarkAssets(fonts=(), logos=()), np.random.default_rng(0), count=20,
        crop_size=16, min_scale=1.0, mark_reference_sizes=(96, 96), clean_fraction=1.0,
        negatives=negatives, negative_fraction=0.5,
    )  # fmt: skip
    green = [e for e in examples if (e.clean[..., 1] == 200).all() and (e.clean[..., 0] == 0).all()]
    assert 4 <= len(green) <= 16
    assert all(e.style == "none" and not e.mask.any() for e in examples)


def test_mining_draws_photos_by_weight():
    grey = np.full((64, 64, 3), 128, dtype=np.uint8)
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[..., 0] = 230
    args = dict(pool=40, keep=10, crop_size=16, min_scale=0.5, threshold=0.5)
    only_grey = np.array([1.0, 0.0])
    mined = mine_hard_negatives(
        red_probability, [grey, red], np.random.default_rng(0), **args, photo_weights=only_grey
    )
    assert len(mined) == 0  # the red photo, which the detector fires on, is never drawn
    assert len(mine_hard_negatives(red_probability, [grey, red], np.random.default_rng(0), **args))
