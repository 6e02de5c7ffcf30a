"""The inference engine: settings, whole-image and coarse-to-fine detection, and which pixels
may change, with a tiny random model and with a stand-in network whose detection is exact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

from handler import engine as engine_module
from handler.engine import Engine, EngineConfig, cpu_flags, resolved_precision
from handler.fold import FoldConfig
from handler.pipeline import PipelineConfig, decide_regions, telea
from handler.regions import RegionConfig, tile_origins
from tests.images import photo
from training.model import ModelConfig, WatermarkRemover
from training.restorer import restorer_model

CPU = torch.device("cpu")
MAGENTA = (1.0, 0.0, 1.0)
# Coarse-to-fine on a 256 x 320 photo (81,920 pixels): small tiles and a small reduced copy.
LARGE = (256, 320)
SEARCH = EngineConfig(precision="float32", max_forward_pixels=50_000)
TILES = RegionConfig(tile=64, margin=24, detect_side=128)


def tiny_model(mask_bias: float | None = None) -> WatermarkRemover:
    """A random two-level network; ``mask_bias`` (e.g. -1e4) pins its mask logits."""
    torch.manual_seed(0)
    model = WatermarkRemover(ModelConfig(widths=(4, 8)))
    if mask_bias is not None:
        with torch.no_grad():
            model.refine.bias[0] = mask_bias
    return model


def magenta_network(batch: torch.Tensor) -> torch.Tensor:
    """A stand-in for the network that finds magenta marks on grey photos exactly, pixel by
    pixel: (B, 3, H, W) -> (B, 5, H, W) probability, alpha (0.5 where marked), colour."""
    red, green, blue = batch[:, :1], batch[:, 1:2], batch[:, 2:3]
    probability = ((torch.minimum(red, blue) - green) * 8).clamp(0, 1)  # grey: 0, marked: 1
    colour = torch.tensor(MAGENTA).view(1, 3, 1, 1).expand(batch.shape[0], 3, *batch.shape[2:])
    return torch.cat([probability, 0.5 * probability, colour], dim=1)


def stub_engine(cfg: EngineConfig, regions: RegionConfig | None = None) -> Engine:
    engine = Engine(tiny_model(), CPU, cfg, regions)
    engine.network = magenta_network  # type: ignore[method-assign]
    return engine


def magenta_marked(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean grey gravel, the same with two magenta outlines blended at 0.5, the bool mark)."""
    clean = photo(height, width, "skimage-gravel")
    mark = np.zeros((height, width), dtype=bool)
    for top, left in ((20, 30), (150, 200)):
        mark[top : top + 40, left : left + 60] = True
        mark[top + 6 : top + 34, left + 6 : left + 54] = False
    a = np.where(mark, 0.5, 0.0)[..., None]
    marked = np.round(clean * (1 - a) + 255 * np.array(MAGENTA) * a).astype(np.uint8)
    return clean, marked, mark


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask widened by ``pixels``, 8-connected, as the pipeline grows kept regions."""
    return ndimage.binary_dilation(mask, np.ones((3, 3), dtype=bool), iterations=pixels)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        EngineConfig(precision="int3")
    with pytest.raises(ValueError, match="mirror_views"):
        EngineConfig(mirror_views="max")


@pytest.mark.parametrize(
    ("device", "flags", "expected"),
    [
        ("cpu", {"avx512f", "avx512_bf16"}, "bfloat16"),
        ("cpu", {"avx2", "amx_bf16"}, "bfloat16"),
        ("cpu", {"avx512f", "avx2"}, "float32"),  # emulated bfloat16: 4x slower than float32
        ("cpu", set(), "float32"),
        ("cuda", set(), "bfloat16"),
        ("mps", {"avx512_bf16"}, "float32"),
    ],
)
def test_auto_precision_is_bfloat16_only_where_the_hardware_computes_it(device, flags, expected):
    assert resolved_precision("auto", torch.device(device), frozenset(flags)) == expected
    # A named precision is kept whatever the hardware.
    assert resolved_precision("bfloat16", torch.device(device), frozenset()) == "bfloat16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx2\n"
    )
    assert cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "avx512f", "avx512_bf16"})
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_an_engine_resolves_auto_precision_once(monkeypatch):
    monkeypatch.setattr(engine_module, "cpu_flags", lambda: frozenset({"avx2"}))
    assert Engine(tiny_model(), CPU, EngineConfig(precision="auto")).cfg.precision == "float32"
    monkeypatch.setattr(engine_module, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert Engine(tiny_model(), CPU, EngineConfig(precision="auto")).cfg.precision == "bfloat16"


def test_mirror_views_combine_the_image_and_its_mirror_image():
    image = torch.from_numpy(photo(32, 48)).permute(2, 0, 1)[None].float() / 255
    one = Engine(tiny_model(), CPU, EngineConfig(precision="float32"))
    maps, mirrored = one.network(image), one.network(image.flip(-1)).flip(-1)
    assert not torch.allclose(maps, mirrored, atol=1e-3)  # a random network is not symmetric
    for how in ("mean", "min"):
        both = Engine(tiny_model(), CPU, EngineConfig(precision="float32", mirror_views=how))
        result = both.network(image)
        assert torch.allclose(result[:, 1:], (maps[:, 1:] + mirrored[:, 1:]) / 2, atol=1e-5)
        pick = torch.minimum if how == "min" else lambda a, b: (a + b) / 2
        assert torch.allclose(result[:, :1], pick(maps[:, :1], mirrored[:, :1]), atol=1e-5)
    upside_down = one.network(image.flip(-2)).flip(-2)
    both_ways = one.network(image.flip(-2, -1)).flip(-2, -1)
    four = Engine(tiny_model(), CPU, EngineConfig(precision="float32", mirror_views="mean4"))
    expected = (maps + mirrored + upside_down + both_ways) / 4
    assert torch.allclose(four.network(image), expected, atol=1e-5)


@pytest.mark.parametrize(("margin", "found"), [(None, (True, True)), (4, (True, False))])
def test_footprint_margin_keeps_only_what_the_reduced_copy_saw(margin, found):
    clean = photo(*LARGE, "skimage-gravel")
    marks = np.zeros(LARGE, dtype=bool)
    marks[8:20, 8:40] = True  # both marks in the top-left tile, 20 pixels apart
    marks[40:56, 36:60] = True
    marked = clean.copy()
    marked[marks] = np.round(clean[marks] * 0.5 + 255 * np.array(MAGENTA) * 0.5)
    engine = stub_engine(SEARCH, replace(TILES, footprint_margin=margin))
    whole = engine.whole

    def blind_to_the_second(images: list[torch.Tensor]) -> list[torch.Tensor]:
        """The reduced copy's maps with nothing found below its 12th row (the second mark)."""
        maps = whole(images)
        for m in maps:
            m[0, 12:] = 0
        return maps

    engine.whole = blind_to_the_second  # type: ignore[method-assign]
    [result] = engine.clean([marked])
    assert result.tiles == [(0, 0)]
    assert (result.mask[8:20, 8:40].all(), result.mask[40:56, 36:60].any()) == found


def test_only_a_large_photo_with_a_footprint_is_looked_at_twice():
    _, marked, _ = magenta_marked(*LARGE)
    small = marked[:128, :128]  # 16,384 pixels: detected whole
    for margin, twice in [(None, False), (4, True)]:
        engine = stub_engine(SEARCH, replace(TILES, footprint_margin=margin))
        [(large, tiles), (whole, none)] = engine.detect(
            [engine.tensor(marked), engine.tensor(small)]
        )
        assert tiles and none is None
        assert (large.looked_twice, whole.looked_twice) == (twice, False)


def test_settings_reach_each_config():
    settings = {"precision": "float32", "max_forward_pixels": 4096, "tile": 64,
                "candidate_threshold": 0.2, "grow_pixels": 2, "cpu_threads": 0,
                "fold_count": 4}  # fmt: skip
    engine = Engine.from_settings(tiny_model(), CPU, settings)
    assert engine.cfg == EngineConfig(precision="float32", max_forward_pixels=4096)
    assert engine.regions == RegionConfig(tile=64, candidate_threshold=0.2)
    assert engine.pipeline == PipelineConfig(grow_pixels=2)
    assert engine.fold == FoldConfig(fold_count=4)


def test_a_tiled_mark_half_hidden_in_some_copies_is_removed_whole_by_its_fold():
    """Magenta copies on grey, a third of them half covered by green (the network sees half of
    those), and a network a little too unsure of any copy for the gate: folded, every copy is
    masked whole, the covered halves too."""
    image = np.full((150, 200, 3), 128, np.uint8)
    mark = np.zeros((150, 200), bool)
    covered = np.zeros((150, 200), bool)
    for row, top in enumerate(range(5, 140, 30)):
        for col, left in enumerate(range(6, 180, 40)):
            mark[top : top + 10, left : left + 20] = True
            if (row + col) % 3 == 0:
                covered[top : top + 10, left + 10 : left + 20] = True
    image[mark] = (255, 0, 255)
    image[covered] = (0, 200, 0)

    def unsure_magenta(batch: torch.Tensor) -> torch.Tensor:
        maps = magenta_network(batch)
        maps[:, :1] *= 0.85
        return maps

    pipeline = PipelineConfig(region_confidence=0.9, seed_threshold=0.95, grow_pixels=0)
    fold = FoldConfig(fold_count=4, fold_min_pixels=60, fold_region_confidence=0.8)
    engine = Engine(tiny_model(), CPU, EngineConfig(precision="float32"), None, pipeline, None)
    engine.network = unsure_magenta  # type: ignore[method-assign]
    [unfolded] = engine.clean([image])
    assert not unfolded.mask.any()
    engine.fold = fold
    [folded] = engine.clean([image])
    assert np.array_equal(folded.mask, mark)
    assert np.array_equal(folded.output[~mark], image[~mark])


def test_every_image_comes_back_at_its_size_and_changes_only_inside_its_mask():
    engine = Engine(tiny_model(), CPU, SEARCH, TILES)
    images = [photo(*LARGE), photo(17, 33), photo(1, 1), photo(120, 61)]
    images[1].setflags(write=False)  # as np.asarray of a decoded JPEG: taken without a warning
    results = engine.clean(images)
    assert [r.output.shape for r in results] == [img.shape for img in images]
    assert [r.mask.shape for r in results] == [img.shape[:2] for img in images]
    assert all(r.output.dtype == np.uint8 and r.mask.dtype == bool for r in results)
    # Only the image above max_forward_pixels is searched tile by tile.
    assert results[0].tiles is not None
    assert [r.tiles for r in results[1:]] == [None, None, None]
    for image, result in zip(images, results, strict=True):
        assert np.array_equal(result.output[~result.mask], image[~result.mask])


@pytest.mark.parametrize(
    ("cfg", "tiles"), [(EngineConfig(), None), (SEARCH, [])], ids=["whole", "coarse-to-fine"]
)
def test_a_mask_that_never_fires_changes_nothing(cfg, tiles):
    engine = Engine(tiny_model(mask_bias=-1e4), CPU, cfg, TILES)
    image = photo(*LARGE)
    [result] = engine.clean([image])
    assert np.array_equal(result.output, image)
    assert not result.mask.any()
    # Searched: no tile is a candidate, so none is run at full resolution.
    assert result.tiles == tiles


def test_a_given_mask_is_honoured():
    engine = Engine(tiny_model(mask_bias=-1e4), CPU, EngineConfig(precision="float32"))
    image = photo(64, 80, "skimage-gravel")
    given = np.zeros((64, 80), dtype=bool)
    given[20:30, 30:50] = True
    [result] = engine.clean([image], [given])
    assert np.array_equal(result.mask, given)
    assert np.array_equal(result.output[~given], image[~given])
    assert not np.array_equal(result.output[given], image[given])


@pytest.mark.parametrize(
    "cfg", [EngineConfig(precision="float32"), SEARCH], ids=["whole", "coarse-to-fine"]
)
def test_an_exactly_detected_mark_is_removed_and_nothing_else_changes(cfg):
    clean, marked, mark = magenta_marked(*LARGE)
    engine = stub_engine(cfg, TILES)
    [result] = engine.clean([marked])
    assert np.array_equal(result.mask, grown(mark, engine.pipeline.grow_pixels))
    assert np.array_equal(result.output[~result.mask], marked[~result.mask])
    assert np.abs(result.output.astype(int) - clean).max() <= 2
    if cfg is SEARCH:
        # Only the tiles the marks lie in (and their neighbours on the reduced copy).
        assert result.tiles is not None
        assert 0 < len(result.tiles) < len(tile_origins(*LARGE, TILES.tile))
        for top, left in tile_origins(*LARGE, TILES.tile):
            if mark[top : top + TILES.tile, left : left + TILES.tile].any():
                assert (top, left) in result.tiles


def test_detect_only_decides_the_mask():
    _, marked, mark = magenta_marked(*LARGE)
    engine = stub_engine(EngineConfig(precision="float32"))
    [removed, detected] = engine.clean([marked, marked], restore=[True, False])
    assert detected.output is marked
    assert np.array_equal(detected.mask, removed.mask)
    assert np.array_equal(detected.mask, grown(mark, engine.pipeline.grow_pixels))


def test_coarse_to_fine_detection_matches_the_whole_image_where_windows_cover():
    """Every tile a candidate: the feathered windows give the whole image's maps back, up to
    the network's own zero padding at the photo's border and the context a margin cuts off."""
    image = photo(*LARGE)
    whole = Engine(tiny_model(), CPU, EngineConfig(precision="float32"))
    everywhere = RegionConfig(tile=64, margin=24, detect_side=128, candidate_threshold=-1.0)
    tiled = Engine(tiny_model(), CPU, SEARCH, everywhere, PipelineConfig(busy_regions=1.0))
    [(expected, none)] = whole.detect([whole.tensor(image)])
    [(found, tiles)] = tiled.detect([tiled.tensor(image)])
    assert none is None and tiles == tile_origins(*LARGE, 64)
    # The busy-photo rule's area: every pixel a window saw (here all), None for a whole image
    # and where the rule is off.
    assert found.examined == LARGE[0] * LARGE[1] and expected.examined is None
    [(off, _)] = Engine(tiny_model(), CPU, SEARCH, everywhere).detect([tiled.tensor(image)])
    assert off.examined is None
    inner = (slice(8, -8), slice(8, -8))
    for name in ("probability", "alpha", "colour"):
        a, b = getattr(found, name), getattr(expected, name)
        assert a.shape == b.shape
        assert np.abs(a - b)[inner].max() < 0.02, name
        assert np.abs(a - b).mean() < 0.002, name


def test_bfloat16_detection_is_close_to_float32():
    image = photo(96, 128)
    fast = Engine(tiny_model(), CPU, EngineConfig(precision="bfloat16"))
    exact = Engine(tiny_model(), CPU, EngineConfig(precision="float32", channels_last=False))
    [(a, _)] = fast.detect([fast.tensor(image)])
    [(b, _)] = exact.detect([exact.tensor(image)])
    assert a.probability.dtype == np.float32
    assert np.abs(a.probability - b.probability).max() < 0.02
    assert np.abs(a.colour - b.colour).max() < 0.02


def test_regions_of_the_reduced_copy_need_the_surer_coarse_mean():
    engine = Engine(
        tiny_model(), CPU, SEARCH, RegionConfig(coarse_region_confidence=0.93),
        PipelineConfig(busy_regions=1.0, near_pixels=16),
    )  # fmt: skip
    # The busy and near rules are for the tiles' gate only.
    assert engine.coarse_gate.busy_regions == 0 and engine.coarse_gate.near_pixels == 0
    probability = np.zeros((32, 32), dtype=np.float32)
    probability[8:20, 8:20] = 0.9  # a blob the tiles' gate keeps at seed 0.9 / mean 0.8
    probability[12, 12] = 0.95
    assert engine.coarse_gate.seed_threshold == engine.pipeline.seed_threshold
    assert decide_regions(probability, engine.pipeline)[8:20, 8:20].all()
    assert not decide_regions(probability, engine.coarse_gate).any()


def correcting_restorer() -> WatermarkRemover:
    """A random restorer whose correction of the fill is not zero (a fresh one's is), and
    depends on the whole network's view, so that tiling it could show."""
    torch.manual_seed(1)
    restorer = restorer_model((4, 8))
    with torch.no_grad():
        restorer.head[0].weight[8:20].normal_(std=0.5)
        restorer.refine.weight[2:5].normal_(std=0.5)
    return restorer


def test_the_learned_restorer_in_tiles_matches_it_whole():
    restorer = correcting_restorer()
    image = photo(128, 96, "skimage-coffee")
    mask = np.zeros((128, 96), dtype=bool)
    mask[30:100, 20:70] = True
    fill = telea(image, mask, 3)
    whole = Engine(tiny_model(), CPU, EngineConfig(precision="float32"), restorer=restorer)
    # Tiles of 32 seen with 32 pixels of context: more than the two-level network's view.
    small = EngineConfig(precision="float32", max_forward_pixels=96**2, restore_margin=32)
    tiled = Engine(tiny_model(), CPU, small, restorer=restorer)
    expected = whole.learned(image, fill, mask)
    assert expected.shape == (128, 96, 3) and not np.allclose(expected[mask], fill[mask] / 255)
    np.testing.assert_allclose(tiled.learned(image, fill, mask), expected, atol=1e-5)


def test_an_engine_with_a_restorer_uses_it_on_a_given_mask():
    image = photo(64, 80, "skimage-gravel")
    given = np.zeros((64, 80), dtype=bool)
    given[20:30, 30:50] = True
    cfg = EngineConfig(precision="float32")
    plain = Engine(tiny_model(mask_bias=-1e4), CPU, cfg)
    learned = Engine(tiny_model(mask_bias=-1e4), CPU, cfg, restorer=correcting_restorer())
    [floor], [restored] = plain.clean([image], [given]), learned.clean([image], [given])
    assert np.array_equal(restored.output[~given], image[~given])
    assert not np.array_equal(restored.output[given], floor.output[given])


def test_an_engine_with_a_restorer_restores_detected_regions_classically():
    # mask_bias 1e4: the tiny model is sure of every pixel, so the whole photo is one region.
    image = photo(64, 80, "skimage-gravel")
    cfg = EngineConfig(precision="float32")
    plain = Engine(tiny_model(mask_bias=1e4), CPU, cfg)
    learned = Engine(tiny_model(mask_bias=1e4), CPU, cfg, restorer=correcting_restorer())
    [floor], [restored] = plain.clean([image]), learned.clean([image])
    assert floor.mask.any() and np.array_equal(restored.mask, floor.mask)
    assert np.array_equal(restored.output, floor.output)


def test_restore_detected_sends_detected_regions_to_the_learned_restorer():
    # mask_bias 1e4: every pixel sure, so the whole photo is one region.
    image = photo(64, 80, "skimage-gravel")
    cfg = EngineConfig(precision="float32", restore_detected=True)
    restorer = correcting_restorer()
    engine = Engine(tiny_model(mask_bias=1e4), CPU, cfg, restorer=restorer)
    [restored] = engine.clean([image])
    fill = telea(image, restored.mask, engine.pipeline.inpaint_radius)
    expected = np.clip(engine.learned(image, fill, restored.mask) * 255 + 0.5, 0, 255)
    assert restored.mask.all()
    assert np.array_equal(restored.output, expected.astype(np.uint8))
    # Without a restorer there is nothing to send them to: Telea fills them.
    [floor] = Engine(tiny_model(mask_bias=1e4), CPU, cfg).clean([image])
    assert not np.array_equal(floor.output, restored.output)
