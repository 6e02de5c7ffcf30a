"""The DVC stages' functions on tiny data the tests make, and dvc.yaml's consistency."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from handler.pipeline import Detection, PipelineConfig
from tests.images import photo
from training.checkpoint import load_model
from training.evaluate import (
    METHODS,
    evaluate,
    example_grid,
    large_photos,
    score_ungated,
    ungated_masks,
    with_unsure,
)
from training.examples import augment_photo, load_marks, sampling_weights, validation_examples
from training.export import export
from training.metrics import psnr
from training.model import ModelConfig, Prediction
from training.photos import (
    GRAPHIC,
    ICONS,
    LANDSCAPE,
    LEAVES,
    TEXTURE,
    WALLPAPER,
    folder_photos,
    is_validation,
    photo_source,
    split_group,
)
from training.prepare import prepare
from training.report import eval_table
from training.synth import STYLES, WatermarkedExample
from training.train import (
    TrainConfig,
    TrainingBatches,
    learning_rate,
    load_params,
    train,
    validation_scores,
)

REPO = Path(__file__).resolve().parents[2]


def tiny_config(**changes) -> tuple[TrainConfig, ModelConfig]:
    cfg, _ = load_params(REPO / "params.yaml")
    cfg = replace(cfg, steps=2, batch_size=2, crop_size=32, eval_every=1, checkpoint_every=1,
                  val_count=2, val_crop_size=32, warmup_steps=1, **changes)  # fmt: skip
    return cfg, ModelConfig(widths=(4, 8, 8))


def test_dvc_stages_declare_what_they_run():
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert list(pipeline) == [
        "assets", "prepare", "train", "train_restorer", "evaluate", "export", "archive"
    ]  # fmt: skip
    for name, stage in pipeline.items():
        module = stage["cmd"].split("python -m ")[1].split()[0]
        assert module.replace(".", "/") + ".py" in stage["deps"], name
        for section in stage.get("params", []):
            assert section in params, f"{name} reads params.{section}"
    export_outs = pipeline["export"]["outs"][0]
    assert export_outs == {"model/clearmark.pt": {"cache": False}}
    assert (REPO / "model" / "clearmark.pt").is_file(), "the committed checkpoint"
    # The served restorer is committed too, and both the evaluation and the archive use it.
    restorer = "model/restorer.pt"
    assert {restorer: {"persist": True, "cache": False}} in pipeline["train_restorer"]["outs"]
    assert (REPO / restorer).is_file(), "the committed restorer"
    for name in ("evaluate", "archive"):
        assert (
            restorer in pipeline[name]["deps"] and f"--restorer {restorer}" in pipeline[name]["cmd"]
        )
    assert (REPO / "dvc.lock").is_file()


def test_source_shares_name_sources_the_prepare_stage_writes():
    """A share for a misspelt prefix would silently go to nothing (sampling_weights drops
    shares of sources with no photo)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    written = {WALLPAPER, TEXTURE, LANDSCAPE, LEAVES, GRAPHIC, ICONS, "other"}
    for section in ("train", "restorer"):
        assert set(params[section]["source_shares"]) <= written, section


def test_split_is_by_whole_photo_and_stable():
    names = [f"photo-{i}" for i in range(200)]
    val = {n for n in names if is_validation(n, 0.25, seed=0)}
    assert 30 < len(val) < 70
    assert val == {n for n in names if is_validation(n, 0.25, seed=0)}
    assert val != {n for n in names if is_validation(n, 0.25, seed=1)}


def test_split_keeps_variants_of_one_picture_together():
    assert split_group("wallpaper-gnome-adwaita-l") == split_group("wallpaper-gnome-adwaita-d")
    assert split_group("wallpaper-x-Elephants_3840x2160") == "wallpaper-x-Elephants"
    assert split_group("wallpaper-d-Ubuntu-Mate-Cold-no-logo") == "wallpaper-d-Ubuntu-Mate"
    assert split_group("skimage-coffee") == "skimage-coffee"


def test_prepare_from_a_folder(tmp_path):
    source = tmp_path / "mine" / "holiday"
    source.mkdir(parents=True)
    for i in range(12):
        Image.fromarray(photo(40 + i, 50)).save(source / f"p{i}.jpg")
    Image.fromarray(photo(300, 200)).save(source / "big.jpg")
    (source / "notes.txt").write_text("not a photo")
    params = {"source": "folder", "folder": str(tmp_path / "mine"), "val_fraction": 0.3,
              "seed": 0, "max_side": 120, "held_out_fonts": ["DejaVuSerif"],
              "held_out_logo_fraction": 0.2, "textures": True, "release_wallpapers": True,
              "landscapes": True, "leaves": 0, "graphics": 0, "icon_wallpapers": 0,
              "leaves_size": 32}  # fmt: skip
    # No Debian packages here: matplotlib's DejaVu fonts stand in, and no icons.
    counts = prepare(params, tmp_path / "no-debian", tmp_path / "out", tmp_path / "no-releases")
    assert counts["train"] + counts["val"] == 13 and counts["val"] > 0
    assert counts["train_textures"] == 0 and counts["train_leaves"] == 0  # no Debian, none asked
    written = sorted(p.name for p in (tmp_path / "out").rglob("*.png"))
    assert len(written) == 13 and "holiday__p0.png" in written
    big = next((tmp_path / "out").rglob("holiday__big.png"))
    with Image.open(big) as img:
        assert img.mode == "RGB" and img.size == (80, 120), "reduced to max_side, aspect kept"
    train_marks = load_marks(tmp_path / "out" / "marks.json", "train")
    val_marks = load_marks(tmp_path / "out" / "marks.json", "val")
    assert {f.name for f in val_marks.fonts} == {"DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"}
    assert val_marks.logos == () and train_marks.logos == ()
    assert not set(train_marks.fonts) & set(val_marks.fonts)
    assert counts["train_release_wallpapers"] == 0  # no assets stage, no other releases
    assert counts["train_landscapes"] == 0
    with pytest.raises(ValueError, match="held_out_fonts"):
        prepare({**params, "held_out_fonts": ["Comic"]}, tmp_path / "no-debian", tmp_path / "o2",
                tmp_path / "no-releases")  # fmt: skip
    # Other releases' wallpapers go to training only, and change nothing else.
    releases = tmp_path / "releases/gnome-backgrounds_3.38.0-1"
    releases.mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(releases / "Road.png")  # over 100 kB
    more = prepare(params, tmp_path / "no-debian", tmp_path / "o3", tmp_path / "releases")
    assert more == {**counts, "train_release_wallpapers": 1}
    with Image.open(tmp_path / "o3/train/wallpaper-gnome-backgrounds-Road.png") as img:
        assert img.size == (120, 80), "reduced to max_side"
    assert sorted(p.name for p in (tmp_path / "o3/val").iterdir()) == sorted(
        p.name for p in (tmp_path / "out/val").iterdir()
    )
    off = prepare({**params, "release_wallpapers": False}, tmp_path / "no-debian",
                  tmp_path / "o4", tmp_path / "releases")  # fmt: skip
    assert off["train_release_wallpapers"] == 0


def test_photo_sources_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown photo source"):
        photo_source("flickr")
    with pytest.raises(ValueError, match=r"prepare\.folder"):
        photo_source("folder")
    with pytest.raises(FileNotFoundError, match="no images"):
        folder_photos(tmp_path)
    with pytest.raises(FileNotFoundError, match="run the assets stage"):
        photo_source("bundled", debian_root=tmp_path)


def test_bundled_photos_add_the_largest_of_each_wallpaper(tmp_path):
    folder = tmp_path / "usr/share/backgrounds/mate/nature"
    folder.mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "Dune.png")
    Image.fromarray(noise[:, :300]).save(folder / "Dune_3840x2160.png")
    Image.fromarray(noise[:20, :20]).save(folder / "thumbnail.png")  # under 100 kB: skipped
    photos = photo_source("bundled", debian_root=tmp_path)
    assert len(photos) == 21 + 1
    assert photos["wallpaper-mate-nature-Dune"]().shape == (300, 400, 3)


def test_learning_rate_warms_up_then_decays():
    cfg, _ = tiny_config()
    cfg = replace(cfg, steps=100, warmup_steps=10)
    assert learning_rate(cfg, 0) == pytest.approx(cfg.lr / 10)
    assert learning_rate(cfg, 10) == pytest.approx(cfg.lr)
    assert learning_rate(cfg, 100) == pytest.approx(cfg.min_lr)


class SpotModel(torch.nn.Module):
    """A detector stand-in, sure of a 6x6 spot of every image and of nothing else."""

    cfg = ModelConfig(widths=(4, 8, 8))

    def forward(self, image: torch.Tensor) -> Prediction:
        b, _, h, w = image.shape
        logits = torch.full((b, 1, h, w), -10.0)
        logits[..., 4:10, 4:10] = 10.0
        opaque = torch.full((b, 1, h, w), 0.9)  # above invert_max_alpha: Telea fills the spot
        return Prediction(logits, opaque, torch.zeros(b, 3, h, w), image)


def test_validation_scores_each_gate_and_its_worst_crop():
    clean = photo(24, 24)  # a textured photo without a mark: the spot is a false detection
    batch = {
        "watermarked": torch.from_numpy(clean).permute(2, 0, 1)[None].float() / 255,
        "mask": torch.zeros(1, 1, 24, 24),
    }
    batch["clean"] = batch["watermarked"]
    strict = PipelineConfig(min_cluster_pixels=100)  # the 36-pixel spot is dropped
    scores = validation_scores(SpotModel(), batch, {"served": strict, "loose": PipelineConfig()})
    assert scores["served"] == {"psnr": 100.0, "mask_f1": 1.0, "worst_db": 0.0}
    loose = scores["loose"]
    assert loose["psnr"] < 60 and loose["worst_db"] == pytest.approx(loose["psnr"] - 100.0)
    assert loose["mask_f1"] == 0.0  # flagged pixels, none of them a mark


def test_train_checkpoints_and_resumes(tmp_path, photos, assets, capsys):
    cfg, model_cfg = tiny_config()
    summary = train(cfg, model_cfg, photos, photos, assets, assets, tmp_path, tmp_path / "live")
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    assert math.isfinite(summary["val_psnr"]) and summary["step"] in (1, 2)
    assert (tmp_path / "live" / "metrics.json").is_file()
    last = torch.load(tmp_path / "last.pt", weights_only=False)
    assert last["step"] == 2

    train(replace(cfg, steps=3), model_cfg, photos, photos, assets, assets, tmp_path)
    assert "resuming from step 2" in capsys.readouterr().out
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 3

    train(replace(cfg, steps=3, lr=0.01), model_cfg, photos, photos, assets, assets, tmp_path)
    assert "starting afresh" in capsys.readouterr().out


def test_batches_are_the_same_from_a_worker_process(photos, assets):
    cfg, _ = tiny_config()
    batches = TrainingBatches(replace(cfg, steps=5), photos, assets)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=[3, 1], num_workers=1)
    from_worker = list(loader)
    for step, batch in zip([3, 1], from_worker, strict=True):
        assert all(torch.equal(batch[k], batches[step][k]) for k in batch)
    assert not torch.equal(from_worker[0]["watermarked"], from_worker[1]["watermarked"])
    assert from_worker[0]["colour"].shape == (cfg.batch_size, 3, cfg.crop_size, cfg.crop_size)


def test_batches_draw_photos_by_source_share(assets):
    cfg, _ = tiny_config(clean_fraction=1.0)
    cfg = replace(cfg, batch_size=8, source_shares={"leaves": 0.0, "other": 1.0})
    black, noise = (
        np.zeros((64, 64, 3), np.uint8),
        np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8),
    )
    weights = sampling_weights(["other", "leaves"], cfg.source_shares)
    batch = TrainingBatches(cfg, [black, noise], assets, weights=weights)[0]
    # Every crop is of the black photo (augmentation keeps it flat), none of the leaves one.
    flat = batch["clean"].amax(dim=(1, 2, 3)) - batch["clean"].amin(dim=(1, 2, 3))
    assert torch.equal(flat, torch.zeros(8))
    uniform = TrainingBatches(cfg, [black, noise], assets)[0]
    assert (uniform["clean"].amax(dim=(1, 2, 3)) > uniform["clean"].amin(dim=(1, 2, 3))).any()


def test_train_starts_from_given_weights(tmp_path, photos, assets, capsys):
    cfg, model_cfg = tiny_config(hard_negative_pool=64, hard_negative_keep=8)
    train(replace(cfg, steps=1), model_cfg, photos, photos, assets, assets, tmp_path / "a")
    export(tmp_path / "a" / "best.pt", tmp_path / "init.pt")
    # Written before ModelConfig had in_channels (as model/clearmark.pt was): still this
    # architecture, since the field takes its default.
    payload = torch.load(tmp_path / "init.pt", weights_only=True)
    del payload["model_args"]["in_channels"]
    torch.save(payload, tmp_path / "init.pt")
    start = load_model(tmp_path / "init.pt").state_dict()
    lr0 = replace(cfg, steps=1, lr=0.0, min_lr=0.0)  # no update: the weights stay the init's
    train(lr0, model_cfg, photos, photos, assets, assets, tmp_path / "b", init=tmp_path / "init.pt")
    after = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    # An untrained network fires almost everywhere: the miner keeps its full share.
    assert "hard negatives: 8 of 64 clean crops fired on" in capsys.readouterr().out
    assert all(
        torch.equal(start[k], after[k])
        for k in start
        if "running" not in k and not k.endswith("tracked")
    )
    with pytest.raises(ValueError, match="architecture"):
        train(cfg, ModelConfig(widths=(8, 8)), photos, photos, assets, assets,
              tmp_path / "c", init=tmp_path / "init.pt")  # fmt: skip


def test_train_from_scratch_mines_with_other_weights(tmp_path, photos, assets, capsys):
    cfg, model_cfg = tiny_config(hard_negative_pool=64, hard_negative_keep=8)
    train(replace(cfg, steps=1), model_cfg, photos, photos, assets, assets, tmp_path / "a")
    export(tmp_path / "a" / "best.pt", tmp_path / "miner.pt")
    capsys.readouterr()
    lr0 = replace(cfg, steps=1, lr=0.0, min_lr=0.0)  # no update: the weights stay the start's
    train(lr0, model_cfg, photos, photos, assets, assets, tmp_path / "b")
    assert "hard negatives" not in capsys.readouterr().out  # random weights mine nothing
    train(lr0, model_cfg, photos, photos, assets, assets, tmp_path / "c",
          negatives_from=tmp_path / "miner.pt")  # fmt: skip
    assert "hard negatives: 8 of 64 clean crops fired on" in capsys.readouterr().out
    # The miner's weights picked the crops; training still started from the seed's random ones.
    scratch = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    mined = torch.load(tmp_path / "c" / "last.pt", weights_only=False)["model"]
    miner = load_model(tmp_path / "miner.pt").state_dict()
    conv = next(k for k in scratch if k.endswith("weight") and scratch[k].dim() == 4)
    assert torch.equal(scratch[conv], mined[conv])
    assert not torch.equal(mined[conv], miner[conv])


def test_a_runs_last_step_exports_as_its_moving_average(tmp_path, photos, assets):
    cfg, model_cfg = tiny_config()
    train(replace(cfg, steps=2, eval_every=1), model_cfg, photos, photos, assets, assets, tmp_path)
    last = torch.load(tmp_path / "last.pt", weights_only=False)
    payload = export(tmp_path / "last.pt", tmp_path / "step2.pt")
    assert payload["step"] == 2 and payload["model_args"] == last["model_args"]
    model = load_model(tmp_path / "step2.pt")
    # The EMA's weights, not the raw ones the optimizer stepped (they differ after two steps).
    ema = {k.removeprefix("module."): v for k, v in last["ema"].items() if k != "n_averaged"}
    state = model.state_dict()
    assert all(torch.equal(state[k], ema[k]) for k in state)
    conv = next(k for k in state if k.endswith("weight") and state[k].dim() == 4)
    assert not torch.equal(state[conv], last["model"][conv])
    # A last.pt written before it carried model_args is refused with what it lacks.
    del last["model_args"]
    torch.save(last, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="has no model_args"):
        export(tmp_path / "old.pt", tmp_path / "old-export.pt")
    assert not (tmp_path / "old-export.pt").exists()


EVAL_PARAMS = {"count": 5, "crop_size": 48, "seed": 5, "full_count": 2,
               "full_min_megapixels": 0.009, "clean_count": 2}  # fmt: skip


def test_export_then_evaluate(tmp_path, photos, assets):
    cfg, model_cfg = tiny_config()
    train(cfg, model_cfg, photos, photos, assets, assets, tmp_path)
    payload = export(tmp_path / "best.pt", tmp_path / "model" / "clearmark.pt")
    assert set(payload) == {"model", "model_args", "step"}
    model = load_model(tmp_path / "model" / "clearmark.pt")
    assert model.cfg == model_cfg

    # Coarse-to-fine at 80 x 120 (above max_forward_pixels), every tile a candidate; the
    # 48 x 48 crops run whole.
    serving = dict(tile=32, margin=8, detect_side=40, candidate_threshold=-1.0,
                   max_forward_pixels=5000, precision="float32")  # fmt: skip
    summary, examples, outputs, masks = evaluate(model, photos, assets, EVAL_PARAMS, serving)
    assert {"protocol_256", "full_resolution", "clean_photos"} <= set(summary)
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert summary["gflop_per_megapixel"] > 0
    p256, full = summary["protocol_256"], summary["full_resolution"]
    assert p256["examples"] == 5 and list(p256["per_style"]) == list(STYLES)
    assert full["examples"] == 2 and full["megapixels"] == pytest.approx(0.0096)  # 80 x 120
    expected_input = np.mean([psnr(e.watermarked, e.clean) for e in examples])
    assert p256["input"]["psnr"] == pytest.approx(expected_input)
    for style, scores in p256["per_style"].items():
        of_style = [psnr(e.watermarked, e.clean) for e in examples if e.style == style]
        assert scores["input"]["psnr"] == pytest.approx(np.mean(of_style))
    for section in (p256, full, *p256["per_style"].values()):
        assert set(METHODS) <= set(section)
        for method in METHODS:
            assert {"psnr", "ssim", "rmse", "rmse_w", "psnr_w"} <= set(section[method])
        model_scores = section["model"]
        for key in ("iou", "f1", "precision", "recall"):
            assert 0 <= model_scores[key] <= 1, key
        assert section["psnr_gain"] == pytest.approx(
            model_scores["psnr"] - section["input"]["psnr"]
        )
        gap = section["telea_true_mask"]["psnr"] - section["input"]["psnr"]
        assert section["gap_closed"] == pytest.approx(section["psnr_gain"] / gap)
    assert 0 < p256["model"]["ssim"] <= 1
    # Telea fills the true mask: better than the watermarked input inside it.
    assert p256["telea_true_mask"]["rmse_w"] < p256["input"]["rmse_w"]
    # The crops run whole (share 1); on the larger photos every tile was a candidate.
    assert p256["tile_share"] == 1.0 and full["tile_share"] == 1.0
    clean = summary["clean_photos"]
    assert clean["examples"] == 2
    assert 0 <= clean["mask_coverage"] <= 1 and clean["mean_abs_change"] >= 0
    assert 0 <= clean["ungated_coverage"] <= 1
    assert clean["mask_coverage"] <= clean["worst_mask_coverage"] <= 1
    whole = summary["clean_full_size"]
    assert whole["examples"] == len(large_photos(photos, 0.009)) and "ungated_coverage" not in whole
    for section in (p256, full):
        assert 0 <= section["photos_worse"] <= section["examples"]
        # The worst photo is at most the mean.
        assert section["worst_gain"] <= section["psnr_gain"] + 1e-9
        counts = [section[k] for k in ("marks_whole", "marks_partly", "marks_left")]
        assert min(counts) >= 0 and sum(counts) == section["examples"]
    for section in (p256, full):
        # The mask with the unsure regions holds at least what the mask holds.
        shown = section["with_unsure"]
        assert shown["recall"] >= section["model"]["recall"] - 1e-9
        assert 0 <= shown["marks_rescued"] <= section["examples"]
    assert {"f1", "iou", "precision", "recall", "per_style"} == set(p256["ungated"])
    assert list(full["ungated"]["per_style"]) == list(STYLES[:2])  # the two styles it holds
    report = eval_table(summary)
    assert report.count("The detector alone") == 2  # at 256 and at full resolution
    assert report.count("the page's amber regions") == 2
    assert "came back worse than their input" in report
    assert f"256: {p256['marks_whole']} whole, {p256['marks_partly']} partly" in report
    assert "Watermark-free photos at full size" in report
    assert outputs[0].shape == (48, 48, 3) and masks[0].shape == (48, 48)
    assert example_grid(examples, outputs, masks).shape == (5 * 48, 4 * 48, 3)


def test_validation_set_is_fixed_and_takes_styles_in_turn(photos, assets):
    a = validation_examples(photos, assets, 6, 64, seed=3)
    b = validation_examples(photos, assets, 6, 64, seed=3)
    assert all(np.array_equal(x.watermarked, y.watermarked) for x, y in zip(a, b, strict=True))
    assert [e.style for e in a] == [*STYLES, STYLES[0]]


def test_augmentation_keeps_shape_and_is_seeded():
    crop = photo(32, 48)
    a = augment_photo(crop, np.random.default_rng(4))
    b = augment_photo(crop, np.random.default_rng(4))
    assert np.array_equal(a, b) and a.dtype == np.uint8
    assert a.shape in ((32, 48, 3), (48, 32, 3))
    shapes = {augment_photo(crop, np.random.default_rng(s)).shape for s in range(20)}
    assert shapes == {(32, 48, 3), (48, 32, 3)}


class MapEngine:
    """An engine stand-in whose detector returns a fixed probability map for every image."""

    def __init__(self, probability: np.ndarray) -> None:
        self.probability, self.pipeline = probability, PipelineConfig(mask_threshold=0.5)

    def tensor(self, rgb: np.ndarray) -> np.ndarray:
        return rgb

    def detect(self, images: list[np.ndarray]) -> list[tuple[Detection, None]]:
        h, w = self.probability.shape
        return [(Detection(self.probability, np.zeros((h, w)), np.zeros((h, w, 3))), None)] * len(
            images
        )


def test_ungated_detection_scores_the_pixels_above_the_mask_threshold():
    truth = np.zeros((8, 8), dtype=bool)
    truth[:, :4] = True  # the left half is the mark
    probability = np.full((8, 8), 0.4, dtype=np.float32)
    probability[:4, :4] = 0.9  # the detector is sure of its top half only
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    example = WatermarkedExample(image, image, truth, np.zeros((8, 8)), np.zeros((8, 8, 3)), "logo")
    missed = WatermarkedExample(image, image, ~truth, np.zeros((8, 8)), np.zeros((8, 8, 3)), "text")
    scores = score_ungated(MapEngine(probability), [example, missed])  # type: ignore[arg-type]
    assert scores["per_style"]["text"]["recall"] == 0.0  # the right half: nothing above 0.5
    assert scores["recall"] == 0.25  # the mean of the two images
    scores = score_ungated(MapEngine(probability), [example])  # type: ignore[arg-type]
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5
    assert scores["per_style"] == {
        "logo": {k: scores[k] for k in ("f1", "iou", "precision", "recall")}
    }
    assert scores["f1"] == pytest.approx(2 / 3) and scores["iou"] == 0.5
    assert ungated_masks(MapEngine(probability), [image])[0].mean() == 0.25  # type: ignore[arg-type]


def test_marks_rescued_are_those_under_half_in_the_mask_and_half_or_more_with_unsure():
    served = [{"recall": r} for r in (0.1, 0.4, 0.6, 0.0)]
    shown = [{"recall": r, "precision": 1.0} for r in (0.5, 0.45, 0.9, 0.7)]
    result = with_unsure(served, shown)
    assert result["marks_rescued"] == 2  # the first and the last
    assert result["recall"] == pytest.approx(np.mean([0.5, 0.45, 0.9, 0.7]))
