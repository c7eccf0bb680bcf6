"""Detection and pose paths of the engine: model size knobs, COCO evaluation, heatmap codec.

The pose "oracle" tests decode the ground-truth heatmaps of the embedded figures set through
the real evaluation path (crop geometry, decoding, mapping back to the image, pycocotools OKS):
a perfect network must score AP near 1, so any loss there is a bug in the evaluation.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hrnet.data.embedded import generate_dataset
from hrnet.data.transforms import collate_keypoints
from hrnet.engine.config import (
    EvalConfig,
    TrainConfig,
    add_config_arguments,
    config_from_mapping,
    config_overrides,
    config_to_flags,
)
from hrnet.engine.metrics import coco_evaluate
from hrnet.errors import HRNetError
from hrnet.ops.keypoints import decode_heatmaps, flip_back, generate_heatmaps
from hrnet.tasks import get_task
from hrnet.tasks.pose import _image_points

# the embedded detection recipe's knobs (docs/EMBEDDED_RECIPES.md), on 64x64 images
SMALL_DETECTOR = {
    "anchor_sizes": (8, 16, 32, 64, 128),
    "fpn_channels": 32,
    "rpn_post_nms_top_n_train": 50,
    "rpn_post_nms_top_n_test": 20,
    "box_batch_size_per_image": 16,
    "representation_size": 64,
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset("shapes", tmp_path_factory.mktemp("det") / "shapes", num_train=2, num_val=3)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset("figures", tmp_path_factory.mktemp("pose") / "figures", num_train=1, num_val=12)


def _det_config(data: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        task="detection",
        model="fasterrcnn_hrnetv2p_w18_small",
        data=str(data),
        dataset="coco_instances",
        input_size=(64, 64),
        **SMALL_DETECTOR,  # type: ignore[arg-type]
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------


def test_detection_size_knobs_reach_the_model(shapes: Path) -> None:
    task = get_task("detection")
    model = task.model(_det_config(shapes), {"class_names": ["a", "b", "c"], "category_ids": [1, 2, 3]})
    sizes = [s[0] for s in model.rpn.anchor_generator.sizes]  # type: ignore[union-attr]
    assert sizes == [8, 16, 32, 64, 128]
    assert model.backbone.out_channels == 32  # type: ignore[union-attr]
    assert model.rpn._post_nms_top_n == {"training": 50, "testing": 20}  # type: ignore[union-attr]
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 16  # type: ignore[union-attr]
    assert model.roi_heads.box_head.fc7.out_features == 64  # type: ignore[union-attr]
    assert model.roi_heads.box_predictor.cls_score.out_features == 4  # type: ignore[union-attr]

    # zeros keep the published sizes
    default = task.model(
        dataclasses.replace(
            _det_config(shapes),
            anchor_sizes=(),
            fpn_channels=0,
            representation_size=0,
            box_batch_size_per_image=0,
            rpn_post_nms_top_n_train=0,
            rpn_post_nms_top_n_test=0,
        ),
        {"class_names": ["a"], "category_ids": [1]},
    )
    assert [s[0] for s in default.rpn.anchor_generator.sizes] == [32, 64, 128, 256, 512]  # type: ignore[union-attr]
    assert default.backbone.out_channels == 256  # type: ignore[union-attr]
    assert default.roi_heads.box_head.fc7.out_features == 1024  # type: ignore[union-attr]


def test_anchor_sizes_need_one_per_level(shapes: Path) -> None:
    with pytest.raises(HRNetError, match="one size per pyramid level"):
        get_task("detection").model(_det_config(shapes, anchor_sizes=(8, 16)), {"class_names": ["a"]})
    with pytest.raises(HRNetError, match="anchor_sizes must be positive"):
        _det_config(shapes, anchor_sizes=(0, 16, 32, 64, 128))


@pytest.mark.parametrize("anchor_sizes", [(), (8, 16, 32, 64, 128)])
def test_detection_knobs_survive_the_worker_flags(shapes: Path, anchor_sizes: tuple[int, ...]) -> None:
    """config_to_flags (how torchrun workers get the config) must rebuild it, empty tuples too."""
    cfg = _det_config(shapes, anchor_sizes=anchor_sizes)
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(config_to_flags(cfg))
    assert config_from_mapping(config_overrides(args), source="flags") == cfg


def test_coco_evaluate_does_not_write_into_the_results(shapes: Path) -> None:
    """pycocotools' loadRes adds a box polygon as "segmentation" to each result it is given."""
    ann_file = shapes / "annotations" / "instances_val.json"
    gt = json.loads(ann_file.read_text())
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for a in gt["annotations"]
    ]
    before = copy.deepcopy(results)
    stats = coco_evaluate(ann_file, results, "bbox")
    assert stats["AP"] == pytest.approx(1.0)
    assert results == before


def test_faster_rcnn_evaluation_has_no_mask_ap(shapes: Path, tmp_path: Path) -> None:
    """The bug: box results came back from the bbox evaluation holding "segmentation", so a
    Faster R-CNN was also scored for masks (``mask_AP``)."""
    cfg = _det_config(shapes)
    task = get_task("detection")
    train_set = task.dataset(cfg, "train", train=True)
    info = task.info(cfg, train_set)
    model = task.model(cfg, info).eval()
    model.roi_heads.score_thresh = 0.0  # type: ignore[union-attr]  # an untrained model: keep every box
    (tmp_path / "plots").mkdir()
    metrics = task.evaluate(
        model, cfg, EvalConfig(workers=0, num_plots=1), info, torch.device("cpu"), tmp_path
    )
    assert metrics["num_detections"] > 0
    assert "box_AP" in metrics
    assert "mask_AP" not in metrics and "segm" not in metrics
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert saved and all("segmentation" not in r for r in saved)


# --------------------------------------------------------------------------------------------
# pose: heatmap codec and the oracle
# --------------------------------------------------------------------------------------------


def test_subpixel_codec_roundtrip() -> None:
    keypoints = torch.tensor([[37.3, 51.9], [20.2, 70.7], [50.6, 30.1]])
    plain, _ = generate_heatmaps(keypoints, torch.ones(3), image_size=(96, 128), heatmap_size=(24, 32))
    exact, _ = generate_heatmaps(
        keypoints, torch.ones(3), image_size=(96, 128), heatmap_size=(24, 32), subpixel=True
    )
    standard = decode_heatmaps(plain[None])[0][0] * 4
    subpixel = decode_heatmaps(exact[None], subpixel=True)[0][0] * 4
    assert (subpixel - keypoints).abs().max() < 0.02
    # PE's codec rounds the centre to the heatmap grid: errors up to half a heatmap pixel
    assert (standard - keypoints).abs().max() > 0.5


@pytest.mark.parametrize("subpixel", [False, True])
def test_flip_back_puts_mirrored_peaks_back(subpixel: bool) -> None:
    """Heatmaps of the mirrored image, flipped back with the shift, peak at the original joints."""
    width = 96
    keypoints = torch.tensor([[37.3, 51.9], [20.2, 70.7]])
    mirrored = keypoints[[1, 0]].clone()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]

    def maps(points: torch.Tensor) -> torch.Tensor:
        return generate_heatmaps(
            points, torch.ones(2), image_size=(width, 128), heatmap_size=(24, 32), subpixel=True
        )[0][None]

    back = flip_back(maps(mirrored), [(0, 1)], shift=True, subpixel=subpixel)
    error = (decode_heatmaps(back, subpixel=True)[0][0] * 4 - keypoints).abs().max()
    # the 1-px shift of PE leaves a quarter heatmap pixel (1 input px); the exact one ~nothing
    assert error < 0.1 if subpixel else 0.9 < error < 1.1


def _pose_config(
    figures: Path, *, input_size: tuple[int, int] = (64, 48), subpixel: bool = True
) -> TrainConfig:
    return TrainConfig(
        task="pose",
        model="pose_hrnet_w18_small",
        data=str(figures),
        dataset="coco_keypoints",
        input_size=input_size,
        heatmap_subpixel=subpixel,
    )


def _oracle_ap(figures: Path, *, input_size: tuple[int, int], subpixel: bool) -> float:
    cfg = _pose_config(figures, input_size=input_size, subpixel=subpixel)
    task = get_task("pose")
    dataset = task.dataset(cfg, "val", train=False)
    _, targets = collate_keypoints([dataset[i] for i in range(len(dataset))])  # type: ignore[arg-type]
    points, maxvals = _image_points(targets["heatmaps"], targets, subpixel=subpixel)
    results = [
        {
            "image_id": int(targets["image_id"][i]),
            "category_id": 1,
            "keypoints": np.concatenate([p, maxvals[i].numpy()[:, None]], axis=1).reshape(-1).tolist(),
            "score": 1.0,
        }
        for i, p in enumerate(points)
    ]
    return coco_evaluate(task.annotation_file(cfg, "val"), results, "keypoints")["AP"]  # type: ignore[attr-defined]


def test_pose_oracle_ground_truth_heatmaps_score_near_one(figures: Path) -> None:
    """Decoding the targets the model is trained on must give back the labels (AP ~ 1)."""
    assert _oracle_ap(figures, input_size=(64, 48), subpixel=True) > 0.9
    # the published codec loses most of the AP on these small persons (OKS tolerances of ~1 px)
    assert _oracle_ap(figures, input_size=(64, 48), subpixel=False) < 0.7


@pytest.mark.parametrize("flip", [False, True])
def test_pose_evaluation_runs_end_to_end(figures: Path, tmp_path: Path, flip: bool) -> None:
    cfg = _pose_config(figures)
    task = get_task("pose")
    info = task.info(cfg, task.dataset(cfg, "val", train=False))
    model = task.model(cfg, info).eval()
    (tmp_path / "plots").mkdir()
    metrics = task.evaluate(
        model, cfg, EvalConfig(workers=0, flip=flip, num_plots=2), info, torch.device("cpu"), tmp_path
    )
    assert metrics["num_instances"] > 0 and metrics["flip_test"] is flip
    assert 0.0 <= metrics["keypoint_AP"] <= 1.0
    assert (tmp_path / "plots" / "predictions.png").is_file()
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert len(saved[0]["keypoints"]) == 17 * 3


# --------------------------------------------------------------------------------------------
# OKS-NMS (detected person boxes)
# --------------------------------------------------------------------------------------------


def test_keypoint_oks_equals_pycocotools_for_equal_areas() -> None:
    """With equal areas our OKS is COCOeval.computeOks' (the ground truth's visible keypoints)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from hrnet.ops.keypoints import COCO_KEYPOINT_SIGMAS, keypoint_oks

    rng = np.random.default_rng(0)
    gt_xy = rng.uniform(20, 80, size=(17, 2))
    dt_xy = gt_xy + rng.normal(0, 3, size=(17, 2))
    area = 1500.0
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": area, "bbox": [10, 10, 80, 80],
             "num_keypoints": 17, "keypoints": np.c_[gt_xy, np.full(17, 2)].reshape(-1).tolist()}
        ],
    }  # fmt: skip
    gt.createIndex()
    dt = gt.loadRes([{"image_id": 1, "category_id": 1, "score": 1.0,
                      "keypoints": np.c_[dt_xy, np.ones(17)].reshape(-1).tolist()}])  # fmt: skip
    ev = COCOeval(gt, dt, "keypoints")
    ev.params.imgIds = [1]
    ev._prepare()
    expected = float(ev.computeOks(1, 1)[0, 0])
    variances = (2 * np.asarray(COCO_KEYPOINT_SIGMAS)) ** 2
    ours = keypoint_oks(np.c_[gt_xy, np.full(17, 2.0)], np.c_[dt_xy, np.ones(17)][None], area,
                        np.array([area]), variances, 0.2)  # fmt: skip
    assert ours[0] == pytest.approx(expected, rel=1e-9)


def test_oks_nms_keeps_the_best_of_each_person() -> None:
    from hrnet.ops.keypoints import oks_nms

    rng = np.random.default_rng(1)
    a = np.c_[rng.uniform(0, 50, (17, 2)), np.ones(17)]
    b = a.copy()
    b[:, :2] += 0.5  # the same person, half a pixel off
    c = np.c_[rng.uniform(100, 150, (17, 2)), np.ones(17)]  # another person
    hidden = b.copy()
    hidden[:, 2] = 0.1  # no confident keypoint: OKS 0, never suppressed
    keep = oks_nms(np.stack([b, a, c, hidden]), np.array([0.6, 0.9, 0.7, 0.95]), np.full(4, 2000.0))
    assert keep == [3, 1, 2]
    with pytest.raises(ValueError, match=r"keypoints must be \[N, 17, 3\]"):
        oks_nms(np.zeros((2, 5, 3)), np.ones(2), np.ones(2))


def test_oks_nms_removes_the_duplicates_that_cost_coco_ap(figures: Path) -> None:
    """Detected boxes give duplicate poses; they are false positives for COCO AP (they outrank
    other persons' poses) until OKS-NMS removes them (oracle poses from the training targets,
    each duplicated half a pixel off at 0.98 of its score)."""
    from hrnet.tasks.pose import _oks_nms_per_image

    cfg = _pose_config(figures)
    task = get_task("pose")
    dataset = task.dataset(cfg, "val", train=False)
    _, targets = collate_keypoints([dataset[i] for i in range(len(dataset))])  # type: ignore[arg-type]
    points, maxvals = _image_points(targets["heatmaps"], targets, subpixel=True)
    singles, areas = [], []
    scores = np.random.default_rng(0).uniform(0.5, 1.0, len(points))  # interleaved across images
    for i, p in enumerate(points):
        keypoints = np.concatenate([p, maxvals[i].numpy()[:, None]], axis=1)
        singles.append({"image_id": int(targets["image_id"][i]), "category_id": 1,
                        "keypoints": keypoints.reshape(-1).tolist(), "score": float(scores[i])})  # fmt: skip
        areas.append(float(targets["scale"][i].prod()) * 200.0**2)
    doubled = singles + [
        {
            **r,
            "keypoints": (np.asarray(r["keypoints"]) + np.tile([0.3, 0.3, 0.0], 17)).tolist(),
            "score": r["score"] * 0.98,
        }
        for r in singles
    ]
    ann = task.annotation_file(cfg, "val")  # type: ignore[attr-defined]
    ap_single = coco_evaluate(ann, singles, "keypoints")["AP"]
    ap_doubled = coco_evaluate(ann, doubled, "keypoints")["AP"]
    kept = _oks_nms_per_image(doubled, areas + areas)
    assert kept == singles
    assert ap_doubled < ap_single - 0.05
    assert coco_evaluate(ann, kept, "keypoints")["AP"] == pytest.approx(ap_single)


def test_pose_refuses_a_keypoint_layout_it_cannot_score_before_training(
    figures: Path, tmp_path: Path
) -> None:
    """A person category of 5 keypoints reads and would train, but COCO's OKS has sigmas for
    its 17 only: the task refuses it when the model is made, naming the data."""
    import shutil

    root = tmp_path / "five"
    shutil.copytree(figures, root)
    for file in (root / "annotations").glob("person_keypoints_*.json"):
        coco = json.loads(file.read_text())
        for category in coco["categories"]:
            category["keypoints"] = category["keypoints"][:5]
            category["skeleton"] = [[a, b] for a, b in category["skeleton"] if a <= 5 and b <= 5]
        for ann in coco["annotations"]:
            ann["keypoints"] = ann["keypoints"][:15]
            ann["num_keypoints"] = sum(1 for v in ann["keypoints"][2::3] if v > 0)
        file.write_text(json.dumps(coco))
    cfg = _pose_config(root)
    task = get_task("pose")
    dataset = task.dataset(cfg, "train", train=True)
    assert len(dataset.keypoint_names) == 5  # type: ignore[attr-defined]
    with pytest.raises(HRNetError, match=r"five: the person category has 5 keypoints; .* COCO's 17"):
        task.info(cfg, dataset)
