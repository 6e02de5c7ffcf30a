"""The network: what it predicts, at which sizes, in which ranges."""

from __future__ import annotations

import pytest
import torch

from training.model import (
    DetectorEnsemble,
    ModelConfig,
    Prediction,
    WatermarkRemover,
    fold_batch_norms,
    invert_blend,
    pad_to_multiple,
    predict,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WatermarkRemover(ModelConfig(widths=(4, 8, 8))).eval()


def test_config_from_a_checkpoint_list_is_a_hashable_tuple():
    cfg = ModelConfig(widths=[4, 8, 16])  # type: ignore[arg-type]
    assert cfg.widths == (4, 8, 16) and cfg == ModelConfig(widths=(4, 8, 16))
    assert hash(cfg) == hash(ModelConfig(widths=(4, 8, 16)))
    assert cfg.size_multiple == 8  # the stem halves, then two more levels halve
    assert ModelConfig().size_multiple == 16


@pytest.mark.parametrize(("height", "width"), [(17, 33), (100, 61), (8, 8), (1, 1)])
def test_every_full_size_map_has_the_input_size(model, height, width):
    image = torch.rand(2, 3, height, width)
    with torch.inference_mode():
        pred = predict(model, image)
    shapes = {name: tuple(getattr(pred, name).shape) for name in
              ("mask_logits", "mask", "alpha", "colour", "restored")}  # fmt: skip
    assert shapes == {
        "mask_logits": (2, 1, height, width),
        "mask": (2, 1, height, width),
        "alpha": (2, 1, height, width),
        "colour": (2, 3, height, width),
        "restored": (2, 3, height, width),
    }
    assert pred.mask.min() >= 0 and pred.mask.max() <= 1
    assert pred.alpha.min() >= 0 and pred.alpha.max() <= model.cfg.max_alpha
    assert pred.colour.min() >= 0 and pred.colour.max() <= 1
    assert pred.restored.min() >= 0 and pred.restored.max() <= 1


def test_predict_is_the_padded_forward_cropped(model):
    image = torch.rand(1, 3, 13, 21)
    with torch.inference_mode():
        cropped = predict(model, image)
        padded = model(pad_to_multiple(image, model.cfg.size_multiple))  # (1, 3, 16, 24)
    assert padded.mask_logits.shape == (1, 1, 16, 24)
    assert torch.equal(cropped.mask_logits, padded.mask_logits[..., :13, :21])
    assert torch.equal(cropped.restored, padded.restored[..., :13, :21])
    # The coarse levels are for training; cropping leaves them at the padded size.
    assert [c.shape for c in cropped.coarse_logits] == [c.shape for c in padded.coarse_logits]


@pytest.mark.parametrize(
    ("widths", "expected"),
    [((4, 8), []), ((4, 8, 8), [(8, 12)]), ((4, 8, 8, 8), [(4, 6), (8, 12)])],
)
def test_coarse_logits_are_one_per_inner_decoder_level(widths, expected):
    """Every decoder level but the last two predicts the mask too, coarsest first: at H / 4,
    H / 8, ... of the (32, 48) input."""
    torch.manual_seed(0)
    net = WatermarkRemover(ModelConfig(widths=widths)).eval()
    with torch.inference_mode():
        pred = net(torch.rand(2, 3, 32, 48))
    assert [tuple(c.shape) for c in pred.coarse_logits] == [(2, 1, *hw) for hw in expected]


def test_alpha_saturates_at_max_alpha_and_restored_stays_in_range():
    torch.manual_seed(0)
    net = WatermarkRemover(ModelConfig(widths=(4, 8), max_alpha=0.6)).eval()
    with torch.no_grad():
        net.refine.bias[1] = 1e4  # the alpha logit: sigmoid -> 1
    image = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        pred = predict(net, image)
    assert torch.allclose(pred.alpha, torch.full_like(pred.alpha, 0.6))
    assert pred.restored.min() >= 0 and pred.restored.max() <= 1
    assert torch.equal(pred.restored, invert_blend(image, pred.alpha, pred.colour))


def test_blend_inversion_recovers_the_background():
    """Where alpha and colour are right, inverting the blend gives back the clean image."""
    torch.manual_seed(1)
    clean = torch.rand(2, 3, 8, 8)
    alpha = torch.rand(2, 1, 8, 8) * 0.9
    colour = torch.rand(2, 3, 8, 8)
    marked = clean * (1 - alpha) + colour * alpha
    assert torch.allclose(invert_blend(marked, alpha, colour), clean, atol=1e-5)
    # Nowhere marked (alpha 0): the image itself.
    assert torch.equal(invert_blend(clean, torch.zeros_like(alpha), colour), clean)


def test_pad_to_multiple_replicates_the_bottom_and_right_edges():
    image = torch.arange(6.0).reshape(1, 1, 2, 3)
    padded = pad_to_multiple(image, 4)
    assert padded.shape == (1, 1, 4, 4)
    assert padded[0, 0].tolist() == [[0, 1, 2, 2], [3, 4, 5, 5], [3, 4, 5, 5], [3, 4, 5, 5]]
    already = torch.rand(1, 3, 8, 12)
    assert pad_to_multiple(already, 4) is already


def test_prediction_cropped_keeps_the_top_left():
    maps = {name: torch.rand(1, c, 8, 8) for name, c in
            (("mask_logits", 1), ("alpha", 1), ("colour", 3), ("restored", 3))}  # fmt: skip
    pred = Prediction(**maps).cropped(5, 7)
    assert torch.equal(pred.colour, maps["colour"][..., :5, :7])
    assert torch.equal(pred.mask, torch.sigmoid(maps["mask_logits"][..., :5, :7]))


def test_folded_batch_norms_compute_the_same_function_and_leave_the_model_alone():
    torch.manual_seed(1)
    model = WatermarkRemover(ModelConfig(widths=(4, 8, 8)))
    # Statistics and affine parameters far from a norm's identity, as after training.
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.2, 3)
        torch.nn.init.uniform_(norm.weight, 0.5, 2)
        torch.nn.init.uniform_(norm.bias, -0.5, 0.5)
    model.eval()
    folded = fold_batch_norms(model)
    image = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        want, got = predict(model, image), predict(folded, image)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 10
    for name in ("mask_logits", "alpha", "colour"):
        assert torch.allclose(getattr(got, name), getattr(want, name), atol=1e-5), name
    assert (want.mask_logits - predict(model.train(), image).mask_logits).abs().max() > 1e-3


def _members(*widths: tuple[int, ...], seed: int = 1) -> list[WatermarkRemover]:
    torch.manual_seed(seed)
    return [WatermarkRemover(ModelConfig(widths=w)).eval() for w in widths]


def test_an_ensemble_averages_its_members_probabilities_alphas_and_colours():
    first, second = _members((4, 8, 8), (8, 8, 16))
    ensemble = DetectorEnsemble([first, second], [1.0, 3.0]).eval()
    assert ensemble.weights == (0.25, 0.75)
    image = torch.rand(2, 3, 24, 16)
    with torch.inference_mode():
        a, b, both = (predict(m, image) for m in (first, second, ensemble))
    torch.testing.assert_close(both.mask, 0.25 * a.mask + 0.75 * b.mask)
    torch.testing.assert_close(both.alpha, 0.25 * a.alpha + 0.75 * b.alpha)
    torch.testing.assert_close(both.colour, 0.25 * a.colour + 0.75 * b.colour)
    torch.testing.assert_close(both.restored, invert_blend(image, both.alpha, both.colour))
    assert both.mask_logits.shape == (2, 1, 24, 16) and both.coarse_logits == ()


def test_an_ensemble_of_one_network_twice_reads_like_the_network(model):
    ensemble = DetectorEnsemble([model, model], [1.0, 1.0]).eval()
    image = torch.rand(1, 3, 19, 23)
    with torch.inference_mode():
        alone, both = predict(model, image), predict(ensemble, image)
    torch.testing.assert_close(both.mask, alone.mask, atol=1e-5, rtol=0)
    torch.testing.assert_close(both.alpha, alone.alpha)


def test_an_ensemble_folds_its_members_batch_norms_to_the_same_function():
    ensemble = DetectorEnsemble(_members((4, 8, 8), (4, 8, 8), seed=2), [1.0, 1.0])
    for member in ensemble.members:  # non-trivial statistics, so folding changes the weights
        for module in member.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    ensemble.eval()
    image = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(
            predict(fold_batch_norms(ensemble), image).mask, predict(ensemble, image).mask,
            atol=1e-5, rtol=1e-4,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("members", "weights", "message"),
    [
        (_members((4, 8)), [1.0], "two or more members"),
        (_members((4, 8), (4, 8)), [1.0], "a weight each"),
        (_members((4, 8), (4, 8)), [1.0, 0.0], "must be positive"),
        (_members((4, 8), (4, 8, 8)), [1.0, 1.0], "one input size multiple"),
        ([WatermarkRemover(ModelConfig((4, 8), in_channels=7))] * 2, [1.0, 1.0], "detectors"),
    ],
)
def test_an_ensemble_refuses_members_that_cannot_run_together(members, weights, message):
    with pytest.raises(ValueError, match=message):
        DetectorEnsemble(members, weights)
