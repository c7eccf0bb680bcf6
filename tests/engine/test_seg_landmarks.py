"""Segmentation and landmark paths of the engine: transforms keep image and mask aligned, the
evaluator scores at the label map's size, OHEM, and the landmark dataset of a task config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import tv_tensors

from hrnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, segmentation_train_transforms
from hrnet.engine.config import EvalConfig, TrainConfig, config_from_mapping
from hrnet.errors import HRNetError
from hrnet.models import create_model
from hrnet.tasks import get_task
from hrnet.tasks.segmentation import segmentation_probabilities

# grey level of each class in the synthetic images: the label can be read back from the colour
LEVELS = (30, 110, 190, 250)


def _label_map(size: int, rng: np.random.Generator) -> np.ndarray:
    """Blocks of 4x4 pixels with random classes 0..3 (no ignore)."""
    blocks = rng.integers(0, 4, size=(size // 4, size // 4))
    return np.kron(blocks, np.ones((4, 4), dtype=np.int64)).astype(np.uint8)


def make_mask_folder(root: Path, *, size: int = 16, count: int = 2) -> Path:
    """``images/{train,val}`` and ``masks/{train,val}``: the image colour encodes the label."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(count):
            label = _label_map(size, rng)
            grey = np.asarray(LEVELS, dtype=np.uint8)[label]
            Image.fromarray(np.stack([grey] * 3, axis=-1)).save(root / "images" / split / f"{i}.png")
            Image.fromarray(label).save(root / "masks" / split / f"{i}.png")
    (root / "classes.txt").write_text("".join(f"level {v}\n" for v in LEVELS))
    return root


def _seg_config(data: Path, **overrides: object) -> TrainConfig:
    values = {
        "task": "segmentation",
        "model": "fcn_hrnetv2_w18_small",
        "data": str(data),
        "dataset": "mask_segmentation",
        "input_size": [32, 32],
        "workers": 0,
        **overrides,
    }
    return config_from_mapping(values, source="test")


def _read_labels(image: torch.Tensor) -> torch.Tensor:
    """Normalised float image ``[3, H, W]`` -> the class whose grey level is nearest."""
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    grey = ((image.as_subclass(torch.Tensor) * std + mean) * 255).mean(0)
    return (grey[None] - torch.tensor(LEVELS, dtype=torch.float32)[:, None, None]).abs().argmin(0)


def _interior(mask: torch.Tensor) -> torch.Tensor:
    """Labelled pixels whose 3x3 neighbourhood holds one label (never the border: the crop may
    cut through a colour blend)."""
    m = mask.float()[None, None]
    padded = F.pad(m, (1, 1, 1, 1), value=255.0)
    high = F.max_pool2d(padded, 3, stride=1)
    low = -F.max_pool2d(-padded, 3, stride=1)
    return ((high == low) & (m != 255))[0, 0]


def test_train_transforms_keep_image_and_mask_aligned() -> None:
    rng = np.random.default_rng(1)
    label = _label_map(32, rng)
    image = tv_tensors.Image(
        torch.from_numpy(np.asarray(LEVELS, dtype=np.uint8)[label])[None].repeat(3, 1, 1)
    )
    mask = tv_tensors.Mask(torch.from_numpy(label))
    tf = segmentation_train_transforms(
        crop_size=(32, 32), base_size=(32, 32), ratio_range=(0.6, 1.7), photometric=False
    )
    torch.manual_seed(0)
    for _ in range(6):
        out_image, out_mask = tf(image, mask)
        assert out_image.shape == (3, 32, 32) and out_mask.shape == (32, 32)
        assert out_mask.dtype == torch.int64
        inside = _interior(out_mask)  # pixels on block edges blend two colours when rescaled
        assert inside.sum() > 20
        assert torch.equal(_read_labels(out_image)[inside], out_mask[inside])


def test_photometric_switch_changes_colours_only_when_on() -> None:
    image = tv_tensors.Image(torch.full((3, 16, 16), 120, dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.zeros(16, 16, dtype=torch.uint8))
    off = segmentation_train_transforms(crop_size=(16, 16), ratio_range=(1.0, 1.0), photometric=False)
    on = segmentation_train_transforms(crop_size=(16, 16), ratio_range=(1.0, 1.0), photometric=True)
    torch.manual_seed(0)
    reference = off(image, mask)[0]
    assert all(torch.equal(off(image, mask)[0], reference) for _ in range(5))
    assert any(not torch.allclose(on(image, mask)[0], reference) for _ in range(20))


def test_mask_folder_images_are_resized_to_the_input_size(tmp_path: Path) -> None:
    cfg = _seg_config(make_mask_folder(tmp_path / "d"), scale_range=[1.0, 1.0], photometric=False)
    task = get_task("segmentation")
    image, mask = task.dataset(cfg, "train", train=True)[0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32)  # both scaled 2x
    inside = _interior(mask)
    assert torch.equal(_read_labels(image)[inside], mask[inside])
    image, mask = task.dataset(cfg, "val", train=False)[0]
    assert image.shape == (3, 32, 32) and mask.shape == (16, 16)  # the label map keeps its size


def test_probabilities_at_the_label_size() -> None:
    model = create_model("fcn_hrnetv2_w18_small", num_classes=3).eval()
    with torch.inference_mode():
        probs = segmentation_probabilities(model, torch.randn(2, 3, 32, 32), size=(16, 16))
        both = segmentation_probabilities(
            model, torch.randn(1, 3, 32, 32), scales=(0.75, 1.0), flip=True, size=(20, 24)
        )
    assert probs.shape == (2, 3, 16, 16)
    assert torch.allclose(probs.sum(1), torch.ones(2, 16, 16))
    assert both.shape == (1, 3, 20, 24)


def test_evaluate_scores_resized_images_against_original_masks(tmp_path: Path) -> None:
    cfg = _seg_config(make_mask_folder(tmp_path / "d"))
    task = get_task("segmentation")
    info = task.info(cfg, task.dataset(cfg, "train", train=True))
    model = task.model(cfg, info).eval()
    ecfg = EvalConfig(batch_size=2, workers=0, device="cpu", scales=(1.0, 1.5), flip=True, num_plots=1)
    (tmp_path / "plots").mkdir()
    metrics = task.evaluate(model, cfg, ecfg, info, torch.device("cpu"), tmp_path)
    assert 0.0 <= metrics["mIoU"] <= 1.0 and 0.0 <= metrics["mIoU_ms_flip"] <= 1.0
    assert len(metrics["iou"]) == 4
    assert (tmp_path / "plots" / "predictions.png").is_file()
    # the second number is named by what ran: scales without flip are not "ms_flip"
    for scales, flip, key in (
        ((1.0, 1.5), False, "mIoU_ms"),
        ((1.0,), True, "mIoU_flip"),
        ((1.0,), False, None),
    ):
        other = task.evaluate(
            model,
            cfg,
            dataclasses.replace(ecfg, scales=scales, flip=flip),
            info,
            torch.device("cpu"),
            tmp_path,
        )
        assert [k for k in other if k.startswith("mIoU_")] == ([key] if key else []), (scales, flip)
        assert (f"iou{key[4:]}" in other) if key else not [k for k in other if k.startswith("iou_")]


def _pixel_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(logits, targets, ignore_index=255, reduction="none")
    return losses[targets != 255]


def test_ohem_keeps_the_hardest_pixels() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    targets = torch.randint(0, 3, (2, 8, 8))
    targets[0, 0] = 255
    model = create_model("fcn_hrnetv2_w18_small", num_classes=3)
    losses = _pixel_losses(logits, targets)

    model.ohem_thresh, model.ohem_min_kept = 1.0, 10**6  # every labelled pixel is below p = 1
    assert model._loss(logits, targets) == pytest.approx(float(losses.mean()), rel=1e-5)

    model.ohem_thresh, model.ohem_min_kept = 1e-6, 20  # nothing that unlikely: the 20 hardest
    expected = losses.sort(descending=True).values[:20].mean()
    assert model._loss(logits, targets) == pytest.approx(float(expected), rel=1e-5)

    model.ohem_thresh = 0.0  # off: the plain mean
    assert model._loss(logits, targets) == pytest.approx(float(losses.mean()), rel=1e-5)


def test_ohem_settings_are_checked() -> None:
    with pytest.raises(TypeError, match="ohem_thresh"):
        create_model("fcn_hrnetv2_w18_small", ohem_tresh=0.7)
    with pytest.raises(HRNetError, match="ohem_thresh"):
        TrainConfig(ohem_thresh=1.5)
    with pytest.raises(HRNetError, match="ohem_min_kept"):
        TrainConfig(ohem_min_kept=-1)


def test_rescaled_mask_samples_pixel_centres() -> None:
    from hrnet.data.transforms import RandomRescale

    source = torch.arange(10, dtype=torch.uint8).repeat(10, 1)  # column index as the label
    out = RandomRescale(base_size=None, ratio_range=(1.6, 1.6))(tv_tensors.Mask(source))
    expected = ((torch.arange(16) + 0.5) / 1.6).floor().long()  # the source pixel under each centre
    assert torch.equal(out[0].long(), expected)


def test_a_mask_folder_without_classes_txt_is_scored_with_the_models_class_names(tmp_path: Path) -> None:
    from hrnet.tasks import get_task

    root = make_mask_folder(tmp_path / "data")
    (root / "classes.txt").unlink()
    cfg = _seg_config(root)
    task = get_task("segmentation")
    with pytest.raises(HRNetError, match="number of classes is not known"):
        task.dataset(cfg, "train", train=True)
    names = ["a", "b", "c", "d"]
    assert task.dataset(cfg, "val", train=False, classes=names).classes == names  # type: ignore[attr-defined]
    (root / "classes.txt").write_text("w\nx\ny\nz\n")  # the data's own names win
    assert task.dataset(cfg, "val", train=False, classes=names).classes == ["w", "x", "y", "z"]  # type: ignore[attr-defined]


def test_300w_full_set_is_also_scored_on_its_common_and_challenging_subsets(tmp_path: Path) -> None:
    """The row's NME_common / NME_challenge: the full set's faces of helen+lfpw testsets and of
    ibug, scored as HRNet-Facial-Landmark-Detection scores its _valid_common / _valid_challenge
    lists, i.e. as evaluating those splits on their own does."""
    from hrnet.data.landmarks import write_pts
    from tests.data.fixtures import _face_points, make_300w

    root = make_300w(tmp_path / "300w")
    write_pts(root / "ibug" / "face_1.pts", _face_points(68, x0=4.0, y0=3.0) * 1.3)  # another face
    values = {"task": "landmarks", "model": "landmark_hrnetv2_w18_small", "data": str(root)}
    cfg = config_from_mapping({**values, "dataset": "300w", "input_size": [64, 64]}, source="test")
    task = get_task("landmarks")
    info = task.info(cfg, task.dataset(cfg, "full", train=False))
    torch.manual_seed(0)
    model = task.model(cfg, info).eval()
    scores = {
        split: task.evaluate(
            model,
            cfg,
            EvalConfig(split=split, batch_size=1, workers=0, num_plots=0),
            info,
            torch.device("cpu"),
            tmp_path,
        )
        for split in ("full", "common", "challenging")
    }
    full = scores["full"]
    assert full["num_faces"] == 3 and full["NME_common"] != full["NME_challenge"]
    assert full["NME_common"] == pytest.approx(scores["common"]["NME"], rel=1e-6)
    assert full["NME_challenge"] == pytest.approx(scores["challenging"]["NME"], rel=1e-6)
    assert full["NME"] == pytest.approx((2 * full["NME_common"] + full["NME_challenge"]) / 3, rel=1e-6)
    assert "NME_common" not in scores["common"]  # a subset's own split has no subsets
