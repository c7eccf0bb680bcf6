"""The DIS5K and MFN tasks: DIS metrics equal PySODMetrics called directly, HCE of hand-derived
cases, scoring at the source's resolution; RTFNet's mIoU (9 classes, ``unlabeled`` counted) of
a hand-made confusion matrix and on the MFN fixture."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import py_sod_metrics as sod
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hrnet.engine.config import EvalConfig, config_from_mapping
from hrnet.tasks import get_task
from hrnet.tasks.dichotomous import DIS_METRICS, DISMeter, at_source_resolution
from hrnet.tasks.thermal import rtfnet_scores

pytestmark = pytest.mark.filterwarnings("ignore:This class will be removed:UserWarning")


def _reference(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """DIS5K's Table 2 scores straight from PySODMetrics' documented API: max F = the maximum of
    the mean F curve, E-measure = the mean of the mean E curve (E^m), HCE with relax 5 and
    epsilon 2 (the DIS ``hce_metric_main.py`` defaults) on the prediction binarised as DIS's
    ``relax_HCE`` does (``rs > 128``)."""
    fm, wfm, sm, em, mae = sod.Fmeasure(), sod.WeightedFmeasure(), sod.Smeasure(), sod.Emeasure(), sod.MAE()
    hce = sod.HumanCorrectionEffortMeasure(relax=5, epsilon=2.0)
    for pred, gt in pairs:
        for meter in (fm, wfm, sm, em, mae):
            meter.step(pred=pred, gt=gt)
        hce.step(pred=(pred > 128).astype(np.uint8) * 255, gt=gt)
    return {
        "max_F": fm.get_results()["fm"]["curve"].max(),
        "weighted_F": wfm.get_results()["wfm"],
        "MAE": mae.get_results()["mae"],
        "S_measure": sm.get_results()["sm"],
        "E_measure": em.get_results()["em"]["curve"].mean(),
        "HCE": hce.get_results()["hce"],
    }


def _pairs(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Soft predictions of 0/255 masks (discs, of different sizes)."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in ((40, 56), (33, 47), (48, 48)):
        yy, xx = np.mgrid[:h, :w]
        gt = (((yy - h / 2) ** 2 + (xx - w / 3) ** 2) < (h / 4) ** 2).astype(np.uint8) * 255
        noise = rng.normal(0, 60, (h, w))
        pred = np.clip(gt * 0.7 + noise + 30, 0, 255).astype(np.uint8)
        out.append((pred, gt))
    return out


def test_dis_meter_equals_py_sod_metrics():
    meter = DISMeter()
    pairs = _pairs()
    for pred, gt in pairs:
        meter.update(pred, gt)
    scores = meter.compute()
    expected = _reference(pairs)
    assert scores.pop("images") == 3
    assert scores.keys() == expected.keys()
    for name, value in expected.items():
        assert scores[name] == pytest.approx(float(value), abs=1e-12), name
    with pytest.raises(ValueError, match="differ in size"):
        meter.update(pairs[0][0], pairs[1][1])


def test_hce_of_hand_derived_cases():
    """HCE (Qin et al., ECCV 2022: the control points plus the independent regions a human
    must correct; PySODMetrics' ``cal_hce``):

    - a perfect prediction needs no correction: 0;
    - a missed one-pixel-wide straight line: the line is its own skeleton, so it stays in the
      relaxed false negatives although the relaxation (erosion of the union: the line vanishes)
      drops every other missed pixel; its contour borders on the background everywhere, so it
      is one boundary, a straight segment that the polygon approximation reduces to its two
      end points: 2;
    - plus a false-positive blob far from every true pixel: its core survives the relaxation,
      but no point of its contour touches a true or missed pixel, so it is one independent
      region (one click to delete) and adds no control point: 2 + 1 = 3.
    """

    def hce(pred: np.ndarray, gt: np.ndarray) -> float:
        meter = DISMeter()
        meter.update(pred, gt)
        return meter.compute()["HCE"]

    square = np.zeros((40, 60), np.uint8)
    square[5:35, 5:35] = 255
    assert hce(square.copy(), square) == 0.0
    line = np.zeros((40, 60), np.uint8)
    line[10, 5:30] = 255
    empty = np.zeros_like(line)
    assert hce(empty, line) == 2.0
    blob = empty.copy()
    blob[22:38, 38:56] = 255
    assert hce(blob, line) == 3.0
    # DIS binarises the saved map at > 128: a blob of exactly 128 is background (no deletion);
    # a one-pixel false positive vanishes in the relaxation (the eroded union): no cost either
    faint = empty.copy()
    faint[22:38, 38:56] = 128
    faint[0, 0] = 255
    assert hce(faint, line) == 2.0
    # PySODMetrics' own binarisation (min-max normalised, > 0.5) would count the blob: 3
    raw = sod.HumanCorrectionEffortMeasure(relax=5, epsilon=2.0)
    raw.step(pred=faint, gt=line)
    assert raw.get_results()["hce"] == 3.0


def _isnet_saved(prob: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """IS-Net's ``valid``: ``F.upsample(pred, (h, w), mode='bilinear')``, ``(pred - mi) / (ma - mi)``,
    ``(pred * 255).astype(np.uint8)``."""
    x = prob.reshape(1, 1, *prob.shape[-2:])
    up = F.interpolate(x, size=size, mode="bilinear", align_corners=False)[0, 0]
    up = (up - up.min()) / (up.max() - up.min())
    return (up.numpy() * 255).astype(np.uint8)


def test_at_source_resolution_is_isnets_saved_map():
    prob = torch.tensor([[0.2, 0.9], [0.7, 0.1]])[None]
    saved = at_source_resolution(prob, (4, 6))
    assert saved.shape == (4, 6) and saved.dtype == np.uint8
    np.testing.assert_array_equal(saved, _isnet_saved(prob, (4, 6)))
    assert saved.max() == 255 and saved.min() == 0  # min-max normalised
    constant = at_source_resolution(torch.full((1, 2, 2), 0.5), (3, 3))
    np.testing.assert_array_equal(constant, np.full((3, 3), 127, np.uint8))


class _Ramp(torch.nn.Module):
    """A fixed logit map of the input's size: a horizontal ramp -4..4 on every channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = x.shape
        return {"out": torch.linspace(-4, 4, w).expand(b, self.channels, h, w).clone()}


def _unpack(files: dict[str, bytes], dest: Path) -> Path:
    for data in files.values():
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(dest)
    return dest


def test_dis_evaluation_is_at_the_masks_original_size(tmp_path):
    from hrnet.data import dis, smoke

    _unpack(dis.smoke_archive(np.random.default_rng(0), smoke._jpeg, smoke._png, smoke._zip), tmp_path)
    root = tmp_path / "DIS5K"
    cfg = config_from_mapping(
        {"task": "dichotomous_image_segmentation", "model": "fcn_hrnetv2_w18_small", "data": str(root),
         "dataset": "dis5k", "input_size": [32, 32], "workers": 0},
        source="test",
    )  # fmt: skip
    task = get_task(cfg.task)
    ecfg = EvalConfig(
        split="DIS-TR,DIS-VD", batch_size=2, workers=0, device="cpu", num_plots=1, progress=False
    )
    (tmp_path / "out" / "plots").mkdir(parents=True)
    metrics = task.evaluate(
        _Ramp(1), cfg, ecfg, {"class_names": ["foreground"]}, torch.device("cpu"), tmp_path / "out"
    )

    for split, scores in (("DIS-TR", metrics), ("DIS-VD", metrics["DIS-VD"])):
        pairs = []
        for _, mask_path in dis.dis_files(root, split):
            gt = np.asarray(Image.open(mask_path))
            assert gt.shape != (32, 32)  # the fixture's masks are larger than the network input
            ramp = torch.linspace(-4, 4, 32).expand(1, 32, 32).sigmoid()
            pairs.append((_isnet_saved(ramp, gt.shape), gt))
        expected = _reference(pairs)
        assert scores["images"] == len(pairs)
        for name, value in expected.items():
            assert scores[name] == pytest.approx(float(value), abs=1e-9), (split, name)
    assert metrics["sets"] == ["DIS-TR", "DIS-VD"]
    floats = {k for k, v in metrics.items() if isinstance(v, float)}
    floats |= {f"DIS-VD.{k}" for k, v in metrics["DIS-VD"].items() if isinstance(v, float)}
    assert set(DIS_METRICS) <= floats <= set(task.metrics)  # the declared metric keys
    assert (tmp_path / "out" / "plots" / "predictions.png").is_file()


# --------------------------------------------------------------------------------------------
# MFN: RTFNet's mIoU


def test_rtfnet_miou_counts_unlabeled_and_absent_classes_as_zero():
    """RTFNet ``util/util.py compute_results`` (``consider_unlabeled = True``): per-class
    IoU = TP / (row + column - TP) over all 9 classes, NaN where row + column is 0; the mean
    ``np.mean(np.nan_to_num(iou))`` (the second average ``test.py`` prints; with every class
    present, as on the MFN test set, both agree). Rows are truth, columns prediction."""
    c = torch.zeros(9, 9, dtype=torch.int64)
    c[0, 0], c[0, 1] = 6, 2  # unlabeled: 6 right, 2 taken for cars
    c[1, 1], c[1, 0] = 4, 2  # car: 4 right, 2 taken for unlabeled
    for k in range(2, 8):
        c[k, k] = 1  # person .. color_cone: perfect
    # bump (8): absent from truth and prediction
    scores = rtfnet_scores(c)
    # IoU0 = 6 / (8 + 8 - 6) = 0.6; IoU1 = 4 / (6 + 6 - 4) = 0.5; IoU2..7 = 1; IoU8 = NaN -> 0
    assert scores["iou"] == pytest.approx([0.6, 0.5, 1, 1, 1, 1, 1, 1, None], nan_ok=True)
    assert scores["iou"][8] is None
    assert scores["mIoU"] == pytest.approx((0.6 + 0.5 + 6) / 9)
    # recall0 = 6 / 8, recall1 = 4 / 6, recall2..7 = 1, recall8 = NaN -> 0
    assert scores["mAcc"] == pytest.approx((6 / 8 + 4 / 6 + 6) / 9)
    # were "unlabeled" left out (start_index 1), the mean would differ: 0 is counted
    assert scores["mIoU"] != pytest.approx((4 / 6 + 6) / 8)


def test_thermal_evaluation_scores_unlabeled_at_the_label_size(tmp_path):
    from hrnet.data import mfn, smoke

    _unpack(mfn.smoke_archive(np.random.default_rng(0), smoke._png, smoke._zip), tmp_path)
    root = tmp_path / "dataset"
    cfg = config_from_mapping(
        {"task": "thermal_image_segmentation", "model": "fcn_hrnetv2_w18_small", "data": str(root),
         "dataset": "mfn", "input_size": [32, 32], "workers": 0},
        source="test",
    )  # fmt: skip
    task = get_task(cfg.task)
    info = task.info(cfg, task.dataset(cfg, "test", train=False))
    assert info["class_names"][0] == "unlabeled" and len(info["class_names"]) == 9

    class Unlabeled(torch.nn.Module):  # predicts class 0 everywhere
        def forward(self, x):
            zeros = torch.zeros(x.shape[0], *x.shape[2:], dtype=torch.int64)
            return {"out": F.one_hot(zeros, 9).permute(0, 3, 1, 2).float()}

    ecfg = EvalConfig(split="test", batch_size=2, workers=0, device="cpu", num_plots=1, progress=False)
    (tmp_path / "plots").mkdir()
    metrics = task.evaluate(Unlabeled(), cfg, ecfg, info, torch.device("cpu"), tmp_path)
    labels = np.concatenate([np.asarray(Image.open(p)).ravel() for _, p in mfn.mfn_files(root, "test")])
    share = float(np.mean(labels == 0))  # IoU of class 0 = its pixels / all pixels (48x64 each)
    assert metrics["iou"][0] == pytest.approx(share)
    assert metrics["iou"][1:] == [0.0] * 8
    assert metrics["mIoU"] == pytest.approx(share / 9)
    assert metrics["mAcc"] == pytest.approx(1 / 9)
    assert {k for k, v in metrics.items() if isinstance(v, float)} == set(task.metrics)


def test_thermal_model_takes_four_channels():
    cfg = config_from_mapping(
        {"task": "thermal_image_segmentation", "model": "fcn_hrnetv2_w18_small", "data": "unused",
         "dataset": "mfn", "input_size": [32, 32], "workers": 0},
        source="test",
    )  # fmt: skip
    model = get_task(cfg.task).model(cfg, {"class_names": list(range(9))}).eval()
    assert model.backbone.conv1.weight.shape[1] == 4
    with torch.inference_mode():
        assert model(torch.randn(1, 4, 32, 48))["out"].shape == (1, 9, 32, 48)


@pytest.mark.parametrize(
    ("name", "dataset", "in_chans"),
    [("dichotomous_image_segmentation", "dis5k", 3), ("thermal_image_segmentation", "mfn", 4)],
)
def test_count_model_builds_on_the_meta_device(name, dataset, in_chans):
    cfg = config_from_mapping(
        {"task": name, "model": "fcn_hrnetv2_w18_small", "data": "unused", "dataset": dataset,
         "input_size": [32, 32], "workers": 0},
        source="test",
    )  # fmt: skip
    with torch.device("meta"):
        model, size = get_task(name).count_model(cfg)
    assert next(model.parameters()).is_meta and size == (32, 32)
    assert model.backbone.conv1.weight.shape[1] == in_chans


def test_dis_prediction_is_saved_at_the_image_size(tmp_path):
    cfg = config_from_mapping(
        {"task": "dichotomous_image_segmentation", "model": "fcn_hrnetv2_w18_small", "data": "unused",
         "dataset": "dis5k", "input_size": [32, 32], "workers": 0},
        source="test",
    )  # fmt: skip
    image = torch.randint(0, 256, (3, 37, 53), dtype=torch.uint8)
    picture = tmp_path / "picture.png"
    task = get_task(cfg.task)
    with torch.inference_mode():
        record = task.predict_image(_Ramp(1), cfg, {}, image, device=torch.device("cpu"), picture=picture)
    saved = np.asarray(Image.open(record["mask"]))
    ramp = torch.linspace(-4, 4, 32).expand(1, 32, 32).sigmoid()
    np.testing.assert_array_equal(saved, _isnet_saved(ramp, (37, 53)))
    assert picture.is_file()


@pytest.mark.parametrize(
    ("name", "dataset", "folder", "split"),
    [
        ("dichotomous_image_segmentation", "dis5k", "DIS5K", "DIS-TR"),
        ("thermal_image_segmentation", "mfn", "dataset", "train"),
    ],
)
def test_one_training_step_on_the_fixture(name, dataset, folder, split, tmp_path):
    from hrnet.data import dis, mfn, smoke
    from hrnet.engine.train import train

    rng = np.random.default_rng(0)
    if dataset == "dis5k":
        _unpack(dis.smoke_archive(rng, smoke._jpeg, smoke._png, smoke._zip), tmp_path)
    else:
        _unpack(mfn.smoke_archive(rng, smoke._png, smoke._zip), tmp_path)
    cfg = config_from_mapping(
        {"task": name, "model": "fcn_hrnetv2_w18_small", "data": str(tmp_path / folder), "dataset": dataset,
         "input_size": [32, 32], "workers": 0, "batch_size": 2, "iters": 1, "train_split": split},
        source="test",
    )  # fmt: skip
    result = train(cfg, out_dir=tmp_path / "run", progress=False)
    assert result.steps == 1 and result.model_path.is_file()
    assert np.isfinite(result.final_losses["loss"])
