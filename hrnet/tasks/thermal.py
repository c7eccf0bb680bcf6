"""RGB-thermal semantic segmentation (MFN): 4-channel images -> FCN logits on an HRNetV2 whose
stem takes 4 channels; scored by mIoU over the 9 classes, ``unlabeled`` included, as RTFNet does.

RTFNet (yuxiangsun/RTFNet ``train.py``, ``util/util.py``) sums a 9x9 confusion matrix (rows:
truth, columns: prediction) over the test images at 480x640, takes IoU = TP / (TP + FP + FN)
and recall = TP / (TP + FN) of every class with ``consider_unlabeled = True``, and averages
them with NaN (a class absent from truth and prediction) counted as 0. ImageNet RGB weights load
into the 4-channel stem by :func:`hrnet.models.input_channels.load_pretrained_adapting_input`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from hrnet.errors import HRNetError
from hrnet.tasks.base import (
    Task,
    create_model,
    eval_loader,
    register_task,
    require_root,
)

if TYPE_CHECKING:
    from hrnet.engine.config import EvalConfig, TrainConfig

__all__ = ["RGBT_MEAN", "RGBT_STD", "ThermalSegmentationTask", "rtfnet_scores"]

# ImageNet's RGB statistics; the thermal channel takes their mean (ours: no published value)
RGBT_MEAN: tuple[float, ...] = (0.485, 0.456, 0.406, 0.449)
RGBT_STD: tuple[float, ...] = (0.229, 0.224, 0.225, 0.226)
IN_CHANS = 4


def rtfnet_scores(confusion: Tensor) -> dict[str, Any]:
    """RTFNet's ``compute_results`` with ``consider_unlabeled``: ``confusion[t, p]`` pixel counts
    (truth t, prediction p) -> ``{"mIoU", "mAcc", "iou", "recall"}``; per-class values of a class
    with no pixel in truth or prediction are None and count 0 in the means."""
    c = confusion.double()
    tp = c.diag()
    union = c.sum(1) + c.sum(0) - tp
    truth = c.sum(1)
    iou = [float(tp[k] / union[k]) if union[k] > 0 else None for k in range(len(tp))]
    recall = [float(tp[k] / truth[k]) if truth[k] > 0 else None for k in range(len(tp))]
    return {
        "mIoU": sum(v or 0.0 for v in iou) / len(iou),
        "mAcc": sum(v or 0.0 for v in recall) / len(recall),
        "iou": iou,
        "recall": recall,
    }


class _Transform:
    """RTFNet's training augmentation (``util/augmentation.py``: flip with probability ``hflip``,
    a random crop keeping at least 90% of each side) then a resize to ``size`` (bilinear image,
    nearest labels, as ``MF_dataset``); evaluation resizes the image only (labels stay at their
    size). The 4 channels are normalised by :data:`RGBT_MEAN` / :data:`RGBT_STD`."""

    def __init__(self, size: tuple[int, int], *, train: bool, hflip: float, crop_rate: float = 0.1) -> None:
        self.size, self.train, self.hflip, self.crop_rate = size, train, hflip, crop_rate

    def __call__(self, image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        x = image.as_subclass(Tensor).float() / 255
        y = label.as_subclass(Tensor)
        if self.train:
            if self.hflip and torch.rand(()) < self.hflip:
                x, y = x.flip(-1), y.flip(-1)
            h, w = y.shape
            top = int(torch.randint(0, max(1, int(h * self.crop_rate)), ()))
            left = int(torch.randint(0, max(1, int(w * self.crop_rate)), ()))
            bottom = int(torch.randint(h - int(h * self.crop_rate), h + 1, ()))
            right = int(torch.randint(w - int(w * self.crop_rate), w + 1, ()))
            x, y = x[:, top:bottom, left:right], y[top:bottom, left:right]
            y = F.interpolate(y[None, None].float(), size=self.size, mode="nearest")[0, 0].to(torch.uint8)
        x = F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False)[0]
        mean = torch.tensor(RGBT_MEAN).view(-1, 1, 1)
        std = torch.tensor(RGBT_STD).view(-1, 1, 1)
        return (x - mean) / std, y.to(torch.int64)


@register_task
class ThermalSegmentationTask(Task):
    """MFN RGB-thermal images (4 channels) -> FCN logits of 9 classes (``unlabeled`` trained and
    scored as a class, as RTFNet does); mIoU and mAcc by :func:`rtfnet_scores`."""

    name = "thermal_image_segmentation"
    model_tasks = ("segmentation",)  # an FCN head on HRNetV2
    dataset_formats = ("mfn",)
    metrics = ("mIoU", "mAcc")
    class_layers = ("decode_head.conv_seg.", "auxiliary_head.conv_seg.")

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        from hrnet.data.mfn import MFN

        self.check_format(cfg.dataset)
        tf = _Transform(cfg.input_size, train=train, hflip=0.5 if cfg.hflip else 0.0)
        return MFN(require_root(cfg), split, transforms=tf)  # type: ignore[return-value]

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        classes = list(dataset.classes)  # type: ignore[attr-defined]
        if cfg.num_classes and cfg.num_classes != len(classes):
            raise HRNetError(
                f"{cfg.data}: MFN has {len(classes)} classes but num_classes is {cfg.num_classes}"
            )
        return {"class_names": classes}

    def _create(self, cfg: TrainConfig, num_classes: int) -> nn.Module:
        return create_model(
            cfg.model,
            num_classes=num_classes,
            in_chans=IN_CHANS,
            label_smoothing=cfg.label_smoothing,
            ohem_thresh=cfg.ohem_thresh,
            ohem_min_kept=cfg.ohem_min_kept,
        )

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        model = self._create(cfg, len(info["class_names"]))
        if cfg.pretrained:
            from hrnet.models.input_channels import load_pretrained_adapting_input

            load_pretrained_adapting_input(model.backbone, cfg.pretrained)  # type: ignore[arg-type]
        return model

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_segmentation

        return collate_segmentation(batch)  # any channel count: stacks images and int64 labels

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        from hrnet.data.mfn import MFN_CLASSES

        net = create_model(cfg.model, num_classes=cfg.num_classes or len(MFN_CLASSES), in_chans=IN_CHANS)
        return net, (cfg.input_size[0], cfg.input_size[1])

    def evaluate(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        ecfg: EvalConfig,
        info: dict[str, Any],
        device: torch.device,
        out_dir: Path,
    ) -> dict[str, Any]:
        """``mIoU``/``mAcc`` of :func:`rtfnet_scores` over ``ecfg.split``, the logits upsampled
        to the label maps' size; ``plots/predictions.png`` overlays (RGB channels)."""
        from hrnet.engine import plots
        from hrnet.tasks.segmentation import score_segmentation

        classes = info["class_names"]
        loader = eval_loader(self, ecfg, device, self.dataset(cfg, ecfg.split, train=False))
        # every label is a class: nothing is ignored; single scale (RTFNet's protocol)
        meter, _, samples = score_segmentation(
            model,
            loader,
            len(classes),
            dataclasses.replace(ecfg, scales=(1.0,), flip=False, slide_crop=(), slide_stride=()),
            device,
        )
        if samples:
            plots.segmentation_grid(samples, len(classes), out_dir / "plots" / "predictions.png")
        return {**rtfnet_scores(meter.confusion), "class_names": classes}

    def predict_image(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        info: dict[str, Any],
        image: Tensor,
        *,
        device: torch.device,
        picture: Path,
        ecfg: EvalConfig | None = None,
    ) -> dict[str, Any]:
        """Needs a 4-channel image (RGB + thermal): ``hrnet predict`` decodes RGB files only."""
        raise HRNetError(
            "thermal_image_segmentation: predictions need RGB + thermal images (4 channels); "
            "run `hrnet evaluate` on an MFN split instead"
        )
