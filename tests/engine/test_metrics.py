"""Metrics against perfect predictions, hand-computed cases and pycocotools itself."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hrnet.engine.metrics import ClassificationMeter, SegmentationMeter, coco_evaluate, landmark_nme


def test_classification_perfect_and_hand_case() -> None:
    meter = ClassificationMeter(3)
    labels = torch.tensor([0, 1, 2, 2])
    meter.update(torch.nn.functional.one_hot(labels, 3).float(), labels)
    assert meter.compute()["top1"] == 1.0

    meter = ClassificationMeter(3)
    logits = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    meter.update(logits, torch.tensor([0, 1, 0, 2]))
    result = meter.compute()
    assert result["top1"] == pytest.approx(2 / 4)  # rows 0 and 3
    assert result["top5"] == 1.0  # k = min(5, C) covers every class
    # per class: class 0 1/2, class 1 0/1, class 2 1/1
    assert result["mean_class_accuracy"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert meter.confusion.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]  # [true, predicted]


def test_segmentation_hand_case() -> None:
    target = torch.tensor([[0, 0, 1, 1], [0, 255, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0]])
    meter = SegmentationMeter(2)
    meter.update(pred[None], target[None])
    r = meter.compute()
    # class 0: tp 2 (positions (0,0),(1,0)), fp 1 ((1,3)), fn 1 ((0,1)) -> 2/4
    # class 1: tp 3, fp 1 ((0,1)), fn 1 ((1,3)) -> 3/5 ; ignore at (1,1) excluded
    assert r["iou"] == pytest.approx([0.5, 0.6])
    assert r["mIoU"] == pytest.approx(0.55)
    assert r["pixel_accuracy"] == pytest.approx(5 / 7)

    perfect = SegmentationMeter(3)
    perfect.update(target.clamp(max=1)[None], target[None])
    r = perfect.compute()
    assert r["mIoU"] == 1.0 and r["iou"][2] is None  # class 2 absent everywhere: left out


def test_landmark_nme() -> None:
    target = torch.zeros(1, 2, 2)
    pred = torch.tensor([[[3.0, 4.0], [0.0, 0.0]]])  # errors 5 and 0
    assert landmark_nme(pred, target, torch.tensor([10.0])).item() == pytest.approx(0.25)
    assert landmark_nme(target, target, torch.tensor([1.0])).item() == 0.0


def _coco_gt(tmp_path):
    images = [{"id": i, "width": 64, "height": 64, "file_name": f"{i}.png"} for i in (1, 2)]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [4, 4, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 9, "bbox": [30, 30, 24, 16], "area": 384, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 7, "bbox": [10, 20, 30, 30], "area": 900, "iscrowd": 0},
    ]
    cats = [{"id": 7, "name": "a"}, {"id": 9, "name": "b"}]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path, anns


def test_coco_perfect_boxes_score_one(tmp_path) -> None:
    gt, anns = _coco_gt(tmp_path)
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for a in anns
    ]
    stats = coco_evaluate(gt, results, "bbox")
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["AP50"] == pytest.approx(1.0)


def test_coco_equals_pycocotools_on_same_file(tmp_path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, _ = _coco_gt(tmp_path)
    results = [
        {"image_id": 1, "category_id": 7, "bbox": [5, 5, 20, 18], "score": 0.8},
        {"image_id": 1, "category_id": 9, "bbox": [30, 28, 20, 20], "score": 0.6},
        {"image_id": 2, "category_id": 7, "bbox": [0, 0, 20, 20], "score": 0.7},
        {"image_id": 2, "category_id": 7, "bbox": [12, 22, 28, 28], "score": 0.5},
    ]
    res_file = tmp_path / "res.json"
    res_file.write_text(json.dumps(results))
    coco = COCO(str(gt))
    ev = COCOeval(coco, coco.loadRes(str(res_file)), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    ours = coco_evaluate(gt, json.loads(res_file.read_text()), "bbox")
    assert list(ours.values()) == pytest.approx(list(ev.stats))
    assert 0 < ours["AP"] < 1 and not math.isnan(ours["AP"])
