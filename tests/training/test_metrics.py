import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from training.baselines import telea_inpaint
from training.metrics import (
    PSNR_CAP_DB,
    clean_photo_scores,
    image_scores,
    mask_f1,
    mask_iou,
    mask_precision,
    mask_recall,
    psnr,
    psnr_masked,
    removal_counts,
    rmse,
    rmse_w,
    ssim,
    summarise,
)

# The papers' RMSE scale: 256 x RMSE of [0, 1] images.
PAPER = 256 / 255
PSNR_OF_ERROR_10 = 10 * math.log10(255**2 / 100)  # 28.13 dB


@pytest.fixture
def grey():
    return np.full((20, 30, 3), 100, np.uint8)


@pytest.fixture
def top_left():
    mask = np.zeros((20, 30), bool)
    mask[:5, :6] = True
    return mask


@pytest.mark.parametrize("seed", range(3))
def test_ssim_matches_skimage(seed):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    noisy = np.clip(reference + rng.normal(0, 20, reference.shape), 0, 255).astype(np.uint8)
    for image in (noisy, rng.integers(0, 256, reference.shape, dtype=np.uint8)):
        expected = structural_similarity(
            image,
            reference,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        assert ssim(image, reference) == pytest.approx(expected, abs=1e-6)
    assert 0.3 < ssim(noisy, reference) < 0.99


def test_ssim_of_identical_images_is_one(grey):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert ssim(grey, grey.copy()) == pytest.approx(1.0, abs=1e-12)


def test_rmse_of_constant_error_is_that_error_on_the_papers_scale(grey):
    assert rmse(grey + 10, grey) == pytest.approx(10 * PAPER)
    assert rmse(grey, grey) == 0.0


def test_rmse_averages_squares_over_all_pixels(grey):
    image = grey.copy()
    image[:10] += 10  # half the pixels off by 10, half exact: MSE 50
    assert rmse(image, grey) == pytest.approx(math.sqrt(50) * PAPER)


def test_rmse_w_only_sees_the_mask(grey, top_left):
    image = grey + 50  # large error outside the mask...
    image[top_left] = 110  # ...and 10 inside it
    assert rmse_w(image, grey, top_left) == pytest.approx(10 * PAPER)
    assert rmse(image, grey) > 45


def test_rmse_w_averages_channels_inside_the_mask(grey, top_left):
    image = grey.copy()
    image[top_left, 0] += 30  # one channel off by 30: MSE 900 / 3 = 300
    assert rmse_w(image, grey, top_left) == pytest.approx(math.sqrt(300) * PAPER)


def test_psnr_masked(grey, top_left):
    image = grey + 50
    image[top_left] = 110
    assert psnr_masked(image, grey, top_left) == pytest.approx(PSNR_OF_ERROR_10)
    image[top_left] = 100
    assert psnr_masked(image, grey, top_left) == math.inf
    assert psnr(grey + 10, grey) == pytest.approx(PSNR_OF_ERROR_10)


def test_masked_scores_are_nan_for_an_empty_mask(grey):
    empty = np.zeros(grey.shape[:2], bool)
    assert math.isnan(rmse_w(grey + 10, grey, empty))
    assert math.isnan(psnr_masked(grey + 10, grey, empty))


def test_mask_f1_and_iou_of_hand_made_masks():
    predicted = np.zeros((4, 4), bool)
    truth = np.zeros((4, 4), bool)
    predicted[0, :3] = True  # 3 pixels
    truth[0, 2:] = True  # 2 pixels, 1 shared
    assert mask_f1(predicted, truth) == pytest.approx(2 * 1 / (3 + 2))
    assert mask_iou(predicted, truth) == pytest.approx(1 / 4)
    assert mask_f1(truth, truth) == 1.0 and mask_iou(truth, truth) == 1.0
    assert mask_precision(predicted, truth) == pytest.approx(1 / 3)  # 1 of 3 predicted
    assert mask_recall(predicted, truth) == pytest.approx(1 / 2)  # 1 of 2 marked


def test_removal_counts_split_marks_by_the_share_of_their_pixels_changed():
    counts = removal_counts([1.0, 0.9, 0.89, 0.5, 0.1, 0.09, 0.0])
    assert counts == {"marks_whole": 2, "marks_partly": 3, "marks_left": 2}
    assert removal_counts([]) == {"marks_whole": 0, "marks_partly": 0, "marks_left": 0}


def test_mask_f1_and_iou_with_empty_masks():
    empty = np.zeros((4, 4), bool)
    some = empty.copy()
    some[1, 1] = True
    assert mask_f1(empty, empty) == 1.0 and mask_iou(empty, empty) == 1.0
    assert mask_f1(some, empty) == 0.0 and mask_f1(empty, some) == 0.0
    assert mask_iou(some, empty) == 0.0 and mask_iou(empty, some) == 0.0
    # Nothing predicted makes no false alarm; nothing marked leaves nothing to miss.
    assert mask_precision(empty, some) == 1.0 and mask_recall(empty, some) == 0.0
    assert mask_precision(some, empty) == 0.0 and mask_recall(some, empty) == 1.0


def test_image_scores(grey, top_left):
    output = grey.copy()
    output[top_left] += 10
    predicted = np.zeros_like(top_left)
    predicted[:5, :3] = True  # half the true mask, nothing else
    scores = image_scores(output, grey, top_left, predicted)
    assert scores == {
        "psnr": pytest.approx(psnr(output, grey)),
        "ssim": pytest.approx(ssim(output, grey)),
        "rmse": pytest.approx(math.sqrt(100 * 30 / 600) * PAPER),
        "rmse_w": pytest.approx(10 * PAPER),
        "psnr_w": pytest.approx(PSNR_OF_ERROR_10),
        "iou": pytest.approx(0.5),
        "f1": pytest.approx(2 / 3),
        "precision": 1.0,
        "recall": pytest.approx(0.5),
    }
    assert set(image_scores(output, grey, top_left)) == {"psnr", "ssim", "rmse", "rmse_w", "psnr_w"}


def test_image_scores_of_a_perfect_restoration(grey, top_left):
    scores = image_scores(grey.copy(), grey, top_left, top_left)
    assert scores["psnr"] == math.inf and scores["psnr_w"] == math.inf
    assert scores["rmse"] == 0.0 and scores["rmse_w"] == 0.0
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["iou"] == 1.0 and scores["f1"] == 1.0


def test_clean_photo_scores(grey, top_left):
    output = grey.copy()
    output[..., 0] += 6  # one channel of three changed by 6 everywhere
    output[0, 0] = (94, 100, 100)  # one pixel changed the other way: |-6| counts as 6
    scores = clean_photo_scores(output, grey, top_left)
    assert scores == {"mean_abs_change": pytest.approx(2.0), "mask_coverage": pytest.approx(0.05)}
    assert clean_photo_scores(grey, grey, np.zeros_like(top_left)) == {
        "mean_abs_change": 0.0,
        "mask_coverage": 0.0,
    }


def test_summarise_ignores_nan_and_caps_infinite_psnr():
    rows = [
        {"psnr": math.inf, "psnr_w": math.inf, "rmse_w": math.nan, "f1": 0.5, "empty": math.nan},
        {"psnr": 30.0, "psnr_w": 20.0, "rmse_w": 4.0, "f1": 1.0, "empty": math.nan},
        {"psnr": 32.0, "psnr_w": math.nan, "rmse_w": 8.0, "f1": 0.0, "empty": math.nan},
    ]
    summary = summarise(rows)
    assert summary.keys() == rows[0].keys()
    assert summary["psnr"] == pytest.approx((PSNR_CAP_DB + 30 + 32) / 3)
    assert summary["psnr_w"] == pytest.approx((PSNR_CAP_DB + 20) / 2)
    assert summary["rmse_w"] == pytest.approx(6.0)
    assert summary["f1"] == pytest.approx(0.5)
    assert math.isnan(summary["empty"])
    assert summarise([]) == {}


def test_summarise_does_not_cap_other_keys():
    assert summarise([{"rmse": 150.0}, {"rmse": 250.0}]) == {"rmse": 200.0}


@pytest.fixture
def gradient():
    """A smooth image: red rises left to right, green top to bottom, blue constant."""
    y, x = np.mgrid[0:64, 0:96]
    return np.stack([x * 2 + 20, y * 3 + 10, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def test_telea_fills_a_stripe_from_its_surroundings(gradient):
    mask = np.zeros(gradient.shape[:2], bool)
    mask[28:34, 10:80] = True  # a 6-pixel-high horizontal stripe
    watermarked = gradient.copy()
    watermarked[mask] = (255, 255, 255)
    restored = telea_inpaint(watermarked, mask)
    assert restored.shape == gradient.shape and restored.dtype == np.uint8
    error = np.abs(restored.astype(int) - gradient.astype(int))[mask]
    assert error.mean() < 3
    assert np.array_equal(restored[~mask], watermarked[~mask])
    assert np.abs(watermarked.astype(int) - gradient.astype(int))[mask].mean() > 100


def test_telea_leaves_an_unmasked_image_alone(gradient):
    restored = telea_inpaint(gradient, np.zeros(gradient.shape[:2], bool))
    assert restored.tobytes() == gradient.tobytes()
