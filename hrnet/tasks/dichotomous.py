"""Dichotomous image segmentation (DIS5K): one foreground channel; scored at the source's
resolution by PySODMetrics (max F, weighted F, MAE, S-measure, E-measure, HCE).

Protocol (xuebinqin/DIS ``IS-Net/train_valid_inference_main.py``): images are resized to the
network input (1024x1024 in DIS5K's Table 2), the sigmoid map is upsampled bilinearly to the
original image size, min-max normalised and saved as 8-bit (:func:`at_source_resolution`);
the metrics read that map and the original mask the way SOCToolbox and the DIS HCE code do
(PySODMetrics ``prepare_data``: prediction min-max normalised, mask binarised at > 128), per
image, then averaged over the set. Max F is the maximum over the 256 thresholds of the
per-threshold mean F (beta^2 = 0.3); E-measure is the mean over the thresholds (DIS5K's E^m);
HCE uses relax 5 and epsilon 2.0 on the map binarised at > 128 (``hce_metric_main.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from hrnet.tasks.base import (
    Task,
    autocast,
    create_model,
    eval_batches,
    eval_loader,
    load_backbone_weights,
    register_task,
    require_root,
)

if TYPE_CHECKING:
    import numpy as np

    from hrnet.engine.config import EvalConfig, TrainConfig

__all__ = ["DIS_METRICS", "DISMeter", "DichotomousTask", "at_source_resolution"]

# the scores of one set, in the order DIS5K's Table 2 prints them
DIS_METRICS: tuple[str, ...] = ("max_F", "weighted_F", "MAE", "S_measure", "E_measure", "HCE")
# the sets a row may score beside the first one of its split list (nested keys "<set>.<metric>")
_OTHER_SETS = ("DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")


class DISMeter:
    """Per-image DIS scores through PySODMetrics, averaged over the images of a set."""

    def __init__(self) -> None:
        import py_sod_metrics as sod

        self.fm = sod.Fmeasure()
        self.wfm = sod.WeightedFmeasure()
        self.sm = sod.Smeasure()
        self.em = sod.Emeasure()
        self.mae = sod.MAE()
        self.hce = sod.HumanCorrectionEffortMeasure(relax=5, epsilon=2.0)
        self.count = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """``pred`` and ``gt`` ``uint8 [H, W]`` (0..255) of the same size: the saved prediction
        map and the original mask.

        HCE gets the map binarised as the DIS HCE code binarises it (``relax_HCE``: the raw
        8-bit map ``> 128``); PySODMetrics would min-max normalise it and keep ``> 0.5``, which
        counts a pixel of 128 (or any pixel of a constant non-zero map) as foreground."""
        import numpy as np

        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and mask {gt.shape} differ in size")
        for meter in (self.fm, self.wfm, self.sm, self.em, self.mae):
            meter.step(pred=pred, gt=gt)
        self.hce.step(pred=np.where(pred > 128, 255, 0).astype(np.uint8), gt=gt)
        self.count += 1

    def compute(self) -> dict[str, float]:
        """``{max_F, weighted_F, MAE, S_measure, E_measure, HCE, images}`` (``images`` an int)."""
        if not self.count:
            raise ValueError("no images were scored")
        return {
            "max_F": float(self.fm.get_results()["fm"]["curve"].max()),
            "weighted_F": float(self.wfm.get_results()["wfm"]),
            "MAE": float(self.mae.get_results()["mae"]),
            "S_measure": float(self.sm.get_results()["sm"]),
            "E_measure": float(self.em.get_results()["em"]["curve"].mean()),
            "HCE": float(self.hce.get_results()["hce"]),
            "images": self.count,
        }


def at_source_resolution(prob: Tensor, size: tuple[int, int]) -> np.ndarray:
    """A probability map ``[1, h, w]`` or ``[h, w]`` in 0..1 -> the 8-bit map IS-Net saves and
    the metrics read (``train_valid_inference_main.py`` ``valid``): upsampled bilinearly
    (``align_corners=False``) to ``size`` (H, W), min-max normalised to 0..1, times 255 and
    truncated to ``uint8``. A constant map (where IS-Net divides by zero) is not normalised."""
    x = prob.float().reshape(1, 1, *prob.shape[-2:])
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)[0, 0]
    lo, hi = x.min(), x.max()
    x = (x - lo) / (hi - lo) if hi > lo else x.clamp(0, 1)
    return (x * 255).to(torch.uint8).cpu().numpy()  # truncation, as numpy's astype(np.uint8)


class _Transform:
    """Image resized to ``size`` (bilinear, as IS-Net caches it) and ImageNet-normalised; in
    training the mask is resized the same way to a soft target in [0, 1] and both are flipped
    with probability ``hflip``; at evaluation the mask keeps its size (uint8)."""

    def __init__(self, size: tuple[int, int], *, train: bool, hflip: float) -> None:
        self.size, self.train, self.hflip = size, train, hflip

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        from hrnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        x = F.interpolate(image.as_subclass(Tensor)[None].float(), size=self.size, mode="bilinear")[0] / 255
        if self.train:
            target = F.interpolate(mask[None, None].float(), size=self.size, mode="bilinear")[0, 0] / 255
            if self.hflip and torch.rand(()) < self.hflip:
                x, target = x.flip(-1), target.flip(-1)
        else:
            target = mask
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return (x - mean) / std, target


@register_task
class DichotomousTask(Task):
    """DIS5K: images + binary masks -> one-channel HRNetV2 logits (binary cross-entropy);
    scored per set at the original resolution by PySODMetrics.

    ``EvalConfig.split`` may list several sets separated by commas (``DIS-VD,DIS-TE1,...``): the
    first set's scores are the top-level keys, every other set's are nested under its name.
    """

    name = "dichotomous_image_segmentation"
    model_tasks = ("segmentation",)  # an FCN head on HRNetV2
    dataset_formats = ("dis5k",)
    metrics = (*DIS_METRICS, *(f"{s}.{m}" for s in _OTHER_SETS for m in DIS_METRICS))
    class_layers = ("decode_head.conv_seg.",)

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        from hrnet.data.dis import DIS5K

        self.check_format(cfg.dataset)
        tf = _Transform(cfg.input_size, train=train, hflip=0.5 if cfg.hflip else 0.0)
        return DIS5K(require_root(cfg), split, transforms=tf)  # type: ignore[return-value]

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        return {"class_names": ["foreground"]}

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        model = create_model(cfg.model, num_classes=1, binary=True)
        load_backbone_weights(model.backbone, cfg.pretrained)  # type: ignore[arg-type]
        return model

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        images = torch.stack([image for image, _ in batch])
        targets = [target for _, target in batch]
        if targets[0].dtype.is_floating_point:  # training: soft targets of the input size
            return images, torch.stack(targets)
        return images, targets  # evaluation: the original masks, each its own size

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        return create_model(cfg.model, num_classes=1, binary=True), (cfg.input_size[0], cfg.input_size[1])

    def evaluate(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        ecfg: EvalConfig,
        info: dict[str, Any],
        device: torch.device,
        out_dir: Path,
    ) -> dict[str, Any]:
        """The :data:`DIS_METRICS` of each set of ``ecfg.split`` (class docstring);
        ``plots/predictions.png`` of the first set."""
        from hrnet.engine import plots

        splits = [s.strip() for s in ecfg.split.split(",") if s.strip()]
        result: dict[str, Any] = {}
        samples: list[tuple[Tensor, Tensor, Tensor]] = []
        for i, split in enumerate(splits):
            meter = DISMeter()
            loader = eval_loader(self, ecfg, device, self.dataset(cfg, split, train=False))
            with torch.inference_mode():
                for images, masks in eval_batches(
                    loader, desc=split, enabled=getattr(ecfg, "progress", True)
                ):
                    images = images.to(device, non_blocking=True)
                    with autocast(device, ecfg.amp):
                        probs = model(images)["out"].float().sigmoid().cpu()
                    for k, (prob, mask) in enumerate(zip(probs, masks)):
                        gt = mask.numpy()
                        meter.update(at_source_resolution(prob, gt.shape), gt)
                        if i == 0 and len(samples) < ecfg.num_plots:
                            small = F.interpolate(mask[None, None].float(), size=prob.shape[-2:])[0, 0]
                            samples.append((images[k].cpu(), (prob[0] > 0.5).long(), (small > 128).long()))
            scores = meter.compute()
            if i == 0:
                result.update(scores)
            else:
                result[split] = scores
        if samples:
            plots.segmentation_grid(samples, 2, out_dir / "plots" / "predictions.png")
        return {**result, "sets": splits}

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
        """``{"mask"}``: the 8-bit foreground map at the image's size beside the picture
        (``<stem>_mask.png``)."""
        from hrnet.tasks.segmentation import save_mask_prediction

        x, _ = _Transform(cfg.input_size, train=False, hflip=0.0)(image, image[0])
        prob = model(x[None].to(device))["out"].float().sigmoid()[0].cpu()
        saved = at_source_resolution(prob, (image.shape[-2], image.shape[-1]))
        return save_mask_prediction(picture, saved, x, (prob[0] > 0.5).long(), 2)
