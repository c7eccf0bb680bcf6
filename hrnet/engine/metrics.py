"""Metrics: top-k accuracy, confusion matrices and IoU, landmark NME, and COCO AP through
pycocotools (boxes, masks, keypoints).

Accumulators take batches of predictions and return plain floats from ``compute()``; the COCO
functions take a ground-truth JSON file and a results list and return pycocotools' own
summary numbers (``stats``), named.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "COCO_BOX_NAMES",
    "COCO_KEYPOINT_NAMES",
    "ClassificationMeter",
    "SegmentationMeter",
    "coco_evaluate",
    "landmark_nme",
]


class ClassificationMeter:
    """Top-1/top-5 accuracy and the confusion matrix over batches of logits.

    Args:
        num_classes: number of classes C.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # [true, predicted]
        self.top5_hits = 0

    def update(self, logits: Tensor, labels: Tensor) -> None:
        """logits ``float [B, C]``, labels ``int64 [B]``."""
        logits, labels = logits.detach().float().cpu(), labels.cpu()
        k = min(5, self.num_classes)
        topk = logits.topk(k, dim=1).indices
        self.top5_hits += int((topk == labels[:, None]).any(dim=1).sum())
        pred = topk[:, 0]
        self.confusion += torch.bincount(
            labels * self.num_classes + pred, minlength=self.num_classes**2
        ).reshape(self.num_classes, self.num_classes)

    def compute(self) -> dict[str, float]:
        """``{"top1", "top5", "mean_class_accuracy", "num_images"}`` (accuracies in 0..1)."""
        total = int(self.confusion.sum())
        if total == 0:
            return {"top1": 0.0, "top5": 0.0, "mean_class_accuracy": 0.0, "num_images": 0}
        per_class = self.confusion.diag() / self.confusion.sum(1).clamp(min=1)
        present = self.confusion.sum(1) > 0
        return {
            "top1": float(self.confusion.diag().sum()) / total,
            "top5": self.top5_hits / total,
            "mean_class_accuracy": float(per_class[present].mean()),
            "num_images": total,
        }


class SegmentationMeter:
    """Confusion matrix over labelled pixels -> per-class IoU, mIoU, pixel accuracy.

    Args:
        num_classes: C (label values 0..C-1).
        ignore_index: label value excluded from every count.
    """

    def __init__(self, num_classes: int, *, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """pred and target ``int64 [B, H, W]`` (or any equal shapes) of class indices."""
        pred, target = pred.cpu().flatten(), target.cpu().flatten()
        keep = (target != self.ignore_index) & (target >= 0) & (target < self.num_classes)
        idx = target[keep] * self.num_classes + pred[keep].clamp(0, self.num_classes - 1)
        self.confusion += torch.bincount(idx, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def compute(self) -> dict[str, Any]:
        """``{"mIoU", "pixel_accuracy", "mean_accuracy", "iou": [per class]}``; classes absent
        from both prediction and ground truth are left out of the means (IoU NaN)."""
        c = self.confusion.double()
        tp = c.diag()
        union = c.sum(0) + c.sum(1) - tp
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
        gt = c.sum(1)
        acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, float("nan")))
        total = float(c.sum())
        return {
            "mIoU": float(np.nanmean(iou.numpy())) if union.gt(0).any() else 0.0,
            "pixel_accuracy": float(tp.sum()) / total if total else 0.0,
            "mean_accuracy": float(np.nanmean(acc.numpy())) if gt.gt(0).any() else 0.0,
            "iou": [None if np.isnan(v) else float(v) for v in iou.tolist()],
        }


def landmark_nme(pred: Tensor, target: Tensor, norm: Tensor, visible: Tensor | None = None) -> Tensor:
    """Normalised mean error per image: mean over landmarks of ``||pred - target||`` / ``norm``.

    Args:
        pred, target: ``float [B, K, 2]`` points in the same (image) coordinates.
        norm: ``float [B]`` normalising distance (inter-ocular for 300W/WFLW, as chosen by the
            dataset reader).
        visible: optional ``bool [B, K]``; hidden landmarks are left out of the mean.

    Returns:
        ``float [B]``; multiply by 100 for the percentages of the papers.
    """
    dist = (pred.float() - target.float()).norm(dim=-1)  # [B, K]
    if visible is None:
        return dist.mean(dim=1) / norm.float()
    w = visible.float()
    return (dist * w).sum(1) / w.sum(1).clamp(min=1) / norm.float()


# the order of COCOeval.stats, named
COCO_BOX_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
COCO_KEYPOINT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_evaluate(
    gt_json: str | Path,
    results: Sequence[dict[str, Any]],
    iou_type: str,
    *,
    image_ids: Sequence[int] | None = None,
    verbose: bool = False,
) -> dict[str, float]:
    """COCO AP of ``results`` against the ground truth ``gt_json`` with pycocotools.

    Args:
        gt_json: a COCO annotation file (instances or person keypoints).
        results: COCO results, ``{"image_id", "category_id", "score"}`` plus ``"bbox"``
            (xywh), ``"segmentation"`` (RLE) or ``"keypoints"`` ([x, y, v] * K) per
            ``iou_type`` ``"bbox" | "segm" | "keypoints"``; category ids are the file's own.
        image_ids: restrict to these images (default: every image of the file).
        verbose: print pycocotools' table.

    Returns:
        pycocotools' ``stats`` named as :data:`COCO_BOX_NAMES` / :data:`COCO_KEYPOINT_NAMES`
        (fractions in 0..1; -1 where pycocotools finds no ground truth, e.g. no small objects).
        No results gives zeros.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    names = COCO_KEYPOINT_NAMES if iou_type == "keypoints" else COCO_BOX_NAMES
    if not results:
        return dict.fromkeys(names, 0.0)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        gt = COCO(str(gt_json))
        # loadRes writes into the result dicts (a box polygon as "segmentation", "area", "id"):
        # give it copies, or a later look at the caller's results sees masks that never were
        dt = gt.loadRes(copy.deepcopy(list(results)))
        ev = COCOeval(gt, dt, iou_type)
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if verbose:
        print(sink.getvalue())
    return {name: float(v) for name, v in zip(names, ev.stats)}
