"""Semantic segmentation: label maps (255 = ignore) -> FCN logits; scored by mIoU at single
scale and, when asked, multi-scale + flip."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from hrnet.data.segmentation import TEST_SCALES
from hrnet.errors import HRNetError
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
    from hrnet.engine.config import EvalConfig, TrainConfig
    from hrnet.engine.metrics import SegmentationMeter

__all__ = [
    "TEST_SCALES",
    "SegmentationTask",
    "protocol_description",
    "rescaled_size",
    "save_mask_prediction",
    "score_segmentation",
    "segmentation_probabilities",
    "slide_logits",
]

# the base size (height, width) the random rescale of each benchmark set is relative to; None:
# the network input size (a mask folder's images are resized to fit input_size, in training
# times a random ratio, at evaluation exactly, while its masks keep their size for scoring)
BASE_SIZES: dict[str, tuple[int, int] | None] = {
    "mask_segmentation": None,
    "cityscapes": (1024, 2048),
    "ade20k": (512, 2048),
    "voc": (512, 2048),
    "pascal_context": (520, 520),  # MMSegmentation _base_/datasets/pascal_context.py img_scale
    # the driving sets of hrnet.data.driving at their frame sizes (recipe: ours, after Cityscapes')
    "acdc": (1080, 1920),
    "dada_seg": (660, 1584),
    "synpass": (1024, 2048),
}

# classes of the published benchmark (Cityscapes), for counting a row's model without its data
PUBLISHED_NUM_CLASSES = 19


def rescaled_size(height: int, width: int, scale: tuple[int, int], ratio: float = 1.0) -> tuple[int, int]:
    """``(height, width)`` of an image rescaled, keeping its aspect ratio, to the largest size
    that fits ``int(ratio * scale)`` (long side <= the larger number, short side <= the smaller):
    mmcv's ``rescale_size`` (``int(side * factor + 0.5)``) at MMSegmentation's ``MultiScaleFlipAug``
    scales (``int(scale * ratio)``)."""
    long_edge, short_edge = (int(s * ratio) for s in (max(scale), min(scale)))
    factor = min(long_edge / max(height, width), short_edge / min(height, width))
    return max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))


def slide_logits(model: nn.Module, images: Tensor, crop: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """Logits ``[B, C, H, W]`` of ``images`` from overlapping ``crop`` windows ``stride`` apart,
    averaged where they overlap: MMSegmentation's ``slide`` test mode. The windows start at
    multiples of the stride, the last one of a row or column is moved back to end at the image's
    edge, and a window of an image smaller than ``crop`` is the whole side (no padding)."""
    height, width = images.shape[-2:]
    rows = max(height - crop[0] + stride[0] - 1, 0) // stride[0] + 1
    cols = max(width - crop[1] + stride[1] - 1, 0) // stride[1] + 1
    total: Tensor | None = None
    count = images.new_zeros((1, 1, height, width))
    for i in range(rows):
        for j in range(cols):
            y2, x2 = min(i * stride[0] + crop[0], height), min(j * stride[1] + crop[1], width)
            y1, x1 = max(y2 - crop[0], 0), max(x2 - crop[1], 0)
            logits = model(images[..., y1:y2, x1:x2])["out"].float()
            if total is None:
                total = logits.new_zeros((images.shape[0], logits.shape[1], height, width))
            total[..., y1:y2, x1:x2] += logits
            count[..., y1:y2, x1:x2] += 1
    assert total is not None and bool((count > 0).all()), "sliding windows left pixels uncovered"
    return total / count


def segmentation_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    *,
    scales: tuple[float, ...] = (1.0,),
    flip: bool = False,
    size: tuple[int, int] | None = None,
    test_scale: tuple[int, int] | None = None,
    slide: tuple[tuple[int, int], tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Class probabilities ``[B, C, *size]`` (default: the input size ``[H, W]``): the mean of
    the softmaxed logits, bilinearly resized to ``size``, over the rescaled (bilinear) and, with
    ``flip``, mirrored inputs. Pass the label map's size when the images were resized.

    Without ``test_scale`` a scale multiplies the input's own size; with it the input is
    rescaled to fit ``scale * test_scale`` (:func:`rescaled_size`; scale 1.0 alone is the
    single-scale protocol of the MMSegmentation sets, :data:`TEST_SCALES`). ``slide``
    (``(crop, stride)``) predicts each rescaled input from windows (:func:`slide_logits`), else
    from the whole input. The inputs are rescaled after normalisation; MMSegmentation rescales
    the 8-bit image before it, which differs by the rounding to 8 bits."""
    size = tuple(images.shape[-2:]) if size is None else tuple(size)
    height, width = images.shape[-2:]
    total = None
    count = 0
    for scale in scales:
        if test_scale is not None:
            target = rescaled_size(height, width, test_scale, scale)
            x = (
                images
                if target == (height, width)
                else F.interpolate(images, size=target, mode="bilinear", align_corners=False)
            )
        elif scale == 1.0:
            x = images
        else:
            x = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
        for mirrored in (False, True) if flip else (False,):
            inputs = x.flip(-1) if mirrored else x
            logits = model(inputs)["out"] if slide is None else slide_logits(model, inputs, *slide)
            if mirrored:
                logits = logits.flip(-1)
            probs = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False).softmax(1)
            total = probs if total is None else total + probs
            count += 1
    assert total is not None
    return total / count


def protocol_suffix(ecfg: EvalConfig) -> str:
    """The metric-name suffix of a test protocol beyond single scale: ``_ms_flip`` (scales other
    than 1.0 alone, each also flipped: the published multi-scale + flip), ``_ms`` (scales only)
    or ``_flip`` (flip at single scale); "" for single scale."""
    scaled = tuple(ecfg.scales) != (1.0,)
    return ("_ms" if scaled else "") + ("_flip" if ecfg.flip else "")


@register_task
class SegmentationTask(Task):
    """Label maps (255 = ignore) -> FCN logits; scored by mIoU (single scale, and multi-scale
    + flip when asked)."""

    name = "segmentation"
    dataset_formats = tuple(BASE_SIZES)
    # single-scale scores, and with test scales and/or flip the mIoU of that protocol, named by
    # what ran: mIoU_ms_flip (the published multi-scale + flip), mIoU_ms or mIoU_flip
    metrics = ("mIoU", "pixel_accuracy", "mean_accuracy", "mIoU_ms_flip", "mIoU_ms", "mIoU_flip")
    class_layers = ("decode_head.conv_seg.", "auxiliary_head.conv_seg.")
    protocol = ("scales", "test_scale", "slide_crop", "slide_stride", "flip")

    def dataset(
        self, cfg: TrainConfig, split: str, *, train: bool, classes: Sequence[str] | None = None
    ) -> Dataset:
        """The split in ``cfg.dataset``'s layout; ``classes`` (a trained model's class names)
        names the labels of a mask folder without a ``classes.txt`` (one trained before it had
        one, or with ``num_classes``)."""
        from hrnet.data import segmentation as S
        from hrnet.data import transforms as T

        self.check_format(cfg.dataset)
        root = require_root(cfg)
        base = BASE_SIZES[cfg.dataset]
        if train:
            tf = T.segmentation_train_transforms(
                crop_size=cfg.input_size,
                base_size=base or cfg.input_size,
                ratio_range=cfg.scale_range,
                hflip_prob=0.5 if cfg.hflip else 0.0,
                photometric=cfg.photometric,
            )
        else:
            tf = T.segmentation_eval_transforms(resize=None if base else cfg.input_size)
        if cfg.dataset == "mask_segmentation":  # a folder pair, not a benchmark layout
            if classes is None or (root / S.MASK_CLASSES_FILE).is_file():  # the data's own names win
                classes = S.mask_folder_classes(root, cfg.num_classes)  # classes.txt or num_classes
            return S.MaskFolderSegmentation(
                root / "images" / split, root / "masks" / split, classes=classes, transforms=tf
            )
        if cfg.dataset == "voc":  # train_aug: the SBD-augmented label maps (SegmentationClassAug)
            return S.PascalVOC(root, split, transforms=tf, aug=split.endswith("_aug"))
        if cfg.dataset == "pascal_context":  # 60 classes: background is class 0 (else 59, ignored)
            return S.PascalContext(root, split, transforms=tf, background=cfg.num_classes == 60)
        if cfg.dataset in ("acdc", "dada_seg", "synpass"):
            from hrnet.data import driving as D

            driving = {"acdc": D.ACDC, "dada_seg": D.DADASeg, "synpass": D.SynPASS}
            return driving[cfg.dataset](root, split, transforms=tf)
        reader = {"cityscapes": S.Cityscapes, "ade20k": S.ADE20K}
        return reader[cfg.dataset](root, split, transforms=tf)

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        classes = list(dataset.classes)  # type: ignore[attr-defined]
        if cfg.num_classes and cfg.num_classes != len(classes):
            raise HRNetError(
                f"{cfg.data}: the dataset has {len(classes)} classes but num_classes is {cfg.num_classes}"
            )
        return {"class_names": classes}

    def _create(self, cfg: TrainConfig, num_classes: int) -> nn.Module:
        return create_model(
            cfg.model,
            num_classes=num_classes,
            label_smoothing=cfg.label_smoothing,
            ohem_thresh=cfg.ohem_thresh,
            ohem_min_kept=cfg.ohem_min_kept,
        )

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        model = self._create(cfg, len(info["class_names"]))
        load_backbone_weights(model.backbone, cfg.pretrained)  # type: ignore[arg-type]
        return model

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_segmentation

        return collate_segmentation(batch)

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        net = create_model(cfg.model, num_classes=cfg.num_classes or PUBLISHED_NUM_CLASSES)
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
        """mIoU at single scale (``mIoU``) and, when ``ecfg.scales``/``ecfg.flip`` ask for more,
        under that protocol (``mIoU_ms_flip``, ``mIoU_ms`` or ``mIoU_flip``:
        :func:`protocol_suffix`); ``plots/predictions.png`` overlays."""
        from hrnet.engine import plots

        classes = info["class_names"]
        dataset = self.dataset(cfg, ecfg.split, train=False, classes=info["class_names"])
        if list(dataset.classes) != list(classes):  # type: ignore[attr-defined]
            # a model evaluated on another dataset (trained on ACDC, scored on DADA-seg) must
            # predict that dataset's classes in its order
            raise HRNetError(
                f"{cfg.data}: its classes differ from the {len(classes)} the model was trained on"
            )
        if BASE_SIZES[cfg.dataset] is not None and ecfg.batch_size > 1:
            # the benchmark sets' images keep their own (varying) sizes: one per forward pass, as
            # MMSegmentation's test loader (samples_per_gpu=1)
            print(
                f"evaluate: one image per pass ({cfg.dataset} images keep their own sizes)", file=sys.stderr
            )
            ecfg = dataclasses.replace(ecfg, batch_size=1)
        loader = eval_loader(self, ecfg, device, dataset)
        test_scale = test_scale_of(cfg, ecfg)
        single, multi, samples = score_segmentation(
            model, loader, len(classes), ecfg, device, test_scale=test_scale
        )
        result: dict[str, Any] = single.compute()
        if multi is not None:
            ms = multi.compute()
            suffix = protocol_suffix(ecfg)
            result.update(
                {
                    f"mIoU{suffix}": ms["mIoU"],
                    f"iou{suffix}": ms["iou"],
                    "test_scales": list(ecfg.scales),
                    "test_flip": ecfg.flip,
                }
            )
        # the protocol the numbers were made under (strings: MLflow params, not metrics)
        result.update(protocol_description(cfg, ecfg))
        if samples:
            plots.segmentation_grid(samples, len(classes), out_dir / "plots" / "predictions.png")
        return {**result, "class_names": classes}

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
        """``{"mask"}``: a PNG of class indices beside the picture (``<stem>_mask.png``), made
        under ``ecfg``'s protocol (:func:`test_scale_of`: the test scale of the dataset the model
        was trained on unless ``ecfg`` names one)."""
        import numpy as np

        from hrnet.data import transforms as T
        from hrnet.engine.config import EvalConfig

        ecfg = ecfg or EvalConfig()
        x, _ = T.segmentation_eval_transforms()(image, image[0])
        probs = segmentation_probabilities(
            model,
            x[None].to(device),
            scales=ecfg.scales,
            flip=ecfg.flip,
            test_scale=test_scale_of(cfg, ecfg),
            slide=ecfg.slide,
        )
        pred = probs.argmax(1)[0].cpu()
        return save_mask_prediction(picture, pred.numpy().astype(np.uint8), x, pred, len(info["class_names"]))


def test_scale_of(cfg: TrainConfig, ecfg: EvalConfig) -> tuple[int, int] | None:
    """The ``(height, width)`` test images are rescaled to fit: ``ecfg.test_scale``, else the
    dataset's (:data:`TEST_SCALES`), else None (their own size)."""
    if ecfg.test_scale:
        return (ecfg.test_scale[0], ecfg.test_scale[1])
    return TEST_SCALES.get(cfg.dataset)


def protocol_description(cfg: TrainConfig, ecfg: EvalConfig) -> dict[str, str]:
    """``{"test_resize", "test_mode"}``: how test images are sized (``fit HxW`` or ``own size``)
    and predicted (``slide HxW stride HxW`` or ``whole``)."""
    test_scale = test_scale_of(cfg, ecfg)
    return {
        "test_resize": "fit " + "x".join(map(str, test_scale)) if test_scale else "own size",
        "test_mode": "slide {}x{} stride {}x{}".format(*ecfg.slide[0], *ecfg.slide[1])
        if ecfg.slide
        else "whole",
    }


def score_segmentation(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    num_classes: int,
    ecfg: EvalConfig,
    device: torch.device,
    *,
    test_scale: tuple[int, int] | None = None,
) -> tuple[SegmentationMeter, SegmentationMeter | None, list[tuple[Tensor, Tensor, Tensor]]]:
    """The confusion matrices of ``model`` over ``loader``'s ``(images, label maps)`` batches,
    each prediction made at its label map's own size: single scale, and multi-scale + flip when
    ``ecfg.scales`` / ``ecfg.flip`` ask for more (else None); plus up to ``ecfg.num_plots``
    ``(picture, prediction, labels)`` samples, the picture being the first three channels.
    Images are rescaled to fit ``test_scale`` (see :func:`segmentation_probabilities`) and
    predicted from ``ecfg.slide``'s windows when it is set."""
    from hrnet.engine.metrics import SegmentationMeter

    single = SegmentationMeter(num_classes)
    multi = SegmentationMeter(num_classes) if (ecfg.scales != (1.0,) or ecfg.flip) else None
    samples: list[tuple[Tensor, Tensor, Tensor]] = []
    with torch.inference_mode():
        for images, masks in eval_batches(loader, enabled=ecfg.progress):
            images = images.to(device, non_blocking=True)
            size = (masks.shape[-2], masks.shape[-1])  # scored at the label map's own size
            with autocast(device, ecfg.amp):
                protocol = {"size": size, "test_scale": test_scale, "slide": ecfg.slide}
                pred = segmentation_probabilities(model, images, **protocol).argmax(1).cpu()
                single.update(pred, masks)
                if multi is not None:
                    probs = segmentation_probabilities(
                        model, images, scales=ecfg.scales, flip=ecfg.flip, **protocol
                    )
                    multi.update(probs.argmax(1).cpu(), masks)
            for i in range(min(len(images), ecfg.num_plots - len(samples))):
                picture = F.interpolate(
                    images[i : i + 1, :3].float().cpu(), size=size, mode="bilinear", align_corners=False
                )[0]
                samples.append((picture, pred[i], masks[i]))
    return single, multi, samples


def save_mask_prediction(
    picture: Path, mask: Any, image: Tensor, pred: Tensor, num_classes: int
) -> dict[str, Any]:
    """``hrnet predict``'s output of a per-pixel task: ``mask`` (a uint8 array) saved as
    ``<stem>_mask.png`` beside ``picture``, and ``picture`` the overlay of ``pred`` on ``image``;
    returns ``{"mask": path}``."""
    from PIL import Image

    from hrnet.engine import plots

    mask_path = picture.with_name(f"{picture.stem}_mask.png")
    Image.fromarray(mask).save(mask_path)
    plots.segmentation_grid([(image, pred, pred)], num_classes, picture)
    return {"mask": str(mask_path)}
