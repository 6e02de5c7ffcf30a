import pytest
import torch

from training.model import ModelConfig, WatermarkRemover, pad_to_multiple, remove_watermark


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WatermarkRemover(ModelConfig(base_channels=4, depth=3)).eval()


@pytest.mark.parametrize(("height", "width"), [(17, 33), (427, 640), (8, 8), (1, 1)])
def test_output_size_equals_input_size(model, height, width):
    image = torch.rand(2, 3, height, width)
    with torch.inference_mode():
        pred = remove_watermark(model, image)
    for tensor, channels in ((pred.output, 3), (pred.mask, 1), (pred.alpha, 1), (pred.colour, 3)):
        assert tensor.shape == (2, channels, height, width)
    assert pred.output.min() >= 0 and pred.output.max() <= 1
    assert pred.alpha.max() <= model.cfg.max_alpha


def test_pixels_outside_the_mask_are_the_input(model):
    """With the mask forced to 0 the output is exactly the input (the served composite)."""
    with torch.no_grad():
        model.head.bias[0] = -1e4
    image = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        out = remove_watermark(model, image).output
    assert torch.equal(out, image)


def test_blend_inversion_recovers_the_background():
    """Where alpha and colour are right, inverting the blend restores the clean pixel."""
    clean, colour, alpha = torch.tensor(0.2), torch.tensor(1.0), torch.tensor(0.6)
    marked = clean * (1 - alpha) + colour * alpha
    assert torch.isclose((marked - alpha * colour) / (1 - alpha), clean)


def test_pad_to_multiple_replicates_edges():
    image = torch.arange(6.0).reshape(1, 1, 2, 3)
    padded = pad_to_multiple(image, 4)
    assert padded.shape == (1, 1, 4, 4)
    assert padded[0, 0, 3].tolist() == [3.0, 4.0, 5.0, 5.0]
