"""Object detection and instance segmentation: COCO instances -> R-CNN detections; scored by
COCO box (and, for models with a mask head, mask) AP with pycocotools.

``input_size`` is (short side, long side cap) of the model's internal resize, e.g. (800, 1333)
for COCO.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hrnet.data.coco import coco_image_folder
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

__all__ = ["DetectionTask", "accepted_knobs", "detections_to_coco", "predicts_masks"]

# object categories of the published benchmark (COCO), for counting a row's model without its data
PUBLISHED_NUM_CLASSES = 80


def predicts_masks(model: nn.Module) -> bool:
    """Whether a detector has an instance mask head: torchvision's ``RoIHeads.has_mask()``
    (Mask R-CNN); the box-only heads (Faster R-CNN, Cascade R-CNN's stages) have none."""
    from torchvision.models.detection.roi_heads import RoIHeads

    heads = getattr(model, "roi_heads", None)  # one-stage detectors (FCOS, CenterNet) have none
    if isinstance(heads, RoIHeads):
        return bool(heads.has_mask())
    # Cascade Mask R-CNN / HTC (hrnet.models.htc.CascadeMaskRoIHeads) answer the same question
    return callable(getattr(heads, "has_mask", None)) and bool(heads.has_mask())  # type: ignore[union-attr]


def uses_semantic_maps(model: nn.Module) -> bool:
    """Whether a detector trains a semantic branch on COCO-stuff maps (HTC's ``semantic_head``);
    its training targets then carry ``"semantic"``."""
    return getattr(getattr(model, "roi_heads", None), "semantic_head", None) is not None


@functools.cache
def _model_uses_semantic_maps(model_name: str) -> bool:
    with torch.device("meta"):
        return uses_semantic_maps(create_model(model_name, num_classes=2))


@functools.cache
def _model_predicts_masks(model_name: str) -> bool:
    """:func:`predicts_masks` of the model ``model_name``, built on the meta device (no memory)."""
    with torch.device("meta"):
        return predicts_masks(create_model(model_name, num_classes=2))


def detections_to_coco(
    image_id: int, pred: dict[str, torch.Tensor], category_ids: list[int]
) -> list[dict[str, Any]]:
    """One image's predictions (xyxy boxes, labels 1..K, scores[, masks [N,1,H,W]]) -> COCO
    results: xywh boxes, the file's category ids, RLE masks (threshold 0.5)."""
    boxes = pred["boxes"].detach().float().cpu()
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    labels, scores = pred["labels"].tolist(), pred["scores"].float().tolist()
    results = [
        {
            "image_id": int(image_id),
            "category_id": category_ids[label - 1],
            "bbox": [round(v, 2) for v in box],
            "score": round(score, 5),
        }
        for box, label, score in zip(xywh, labels, scores)
    ]
    if "masks" in pred and len(results):
        import numpy as np
        from pycocotools import mask as mask_utils

        binary = (pred["masks"][:, 0] > 0.5).cpu().numpy().astype(np.uint8)
        for r, m in zip(results, binary):
            rle = mask_utils.encode(np.asfortranarray(m))
            rle["counts"] = rle["counts"].decode("ascii")
            r["segmentation"] = rle
    return results


@register_task
class DetectionTask(Task):
    """COCO instances -> R-CNN detections; scored by COCO box (and mask) AP with pycocotools.

    ``input_size`` is (short side, long side cap) of the model's internal resize, e.g.
    (800, 1333) for COCO.
    """

    name = "detection"
    # bdd100k_ins_seg: BDD100K's COCO-format files for training, its bitmasks and official
    # evaluator (hrnet.data.bdd100k) for mask_AP
    dataset_formats = ("coco_instances", "bdd100k_ins_seg")
    # mask_AP only for models with a mask head
    metrics = ("box_AP", "mask_AP")
    class_layers = (
        "roi_heads.box_predictor.",
        "roi_heads.mask_predictor.mask_fcn_logits.",
        "head.conv_cls.",  # FCOS, MMDetection head
        "head.classification_head.cls_logits.",  # FCOS, torchvision head
        "head.heatmap_head.2.",  # CenterNet
    )
    find_unused_parameters = True

    @staticmethod
    def annotation_file(cfg: TrainConfig, split: str) -> Path:
        if cfg.dataset == "bdd100k_ins_seg":
            from hrnet.data import bdd100k

            return bdd100k.annotation_file(require_root(cfg), split)
        return require_root(cfg) / "annotations" / f"instances_{split}.json"

    @staticmethod
    def image_folder(cfg: TrainConfig, split: str) -> Path:
        if cfg.dataset == "bdd100k_ins_seg":
            from hrnet.data import bdd100k

            return bdd100k.image_folder(require_root(cfg), split)
        return coco_image_folder(require_root(cfg), split)

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        from hrnet.data import transforms as T
        from hrnet.data.coco import CocoDetection

        self.check_format(cfg.dataset)
        root = require_root(cfg)
        hflip = 0.5 if cfg.hflip else 0.0
        if not train:
            tf = T.detection_eval_transforms()
        elif cfg.det_augment == "centernet":
            if _model_predicts_masks(cfg.model):
                raise HRNetError(f"det_augment centernet warps boxes only; {cfg.model} predicts masks")
            tf = T.centernet_train_transforms((cfg.input_size[0], cfg.input_size[1]), hflip_prob=hflip)
        else:
            tf = T.detection_train_transforms(hflip_prob=hflip)
        return CocoDetection(
            self.image_folder(cfg, split),
            self.annotation_file(cfg, split),
            transforms=tf,
            with_masks=_model_predicts_masks(cfg.model),
            # CenterNet trains on every image and annotation, crowd ones too (src/lib/datasets/
            # dataset/coco.py getImgIds(); sample/ctdet.py getAnnIds(imgIds=[img_id]))
            include_crowd=train and cfg.det_augment == "centernet",
            skip_empty=train and cfg.det_augment != "centernet",
            # HTC: COCO-stuff maps in MMDetection's layout, <root>/stuffthingmaps/<split>/<stem>.png
            semantic_dir=root / "stuffthingmaps" / split
            if train and _model_uses_semantic_maps(cfg.model)
            else None,
        )

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        classes = list(dataset.classes)  # type: ignore[attr-defined]
        if cfg.num_classes and cfg.num_classes != len(classes):
            raise HRNetError(f"{cfg.data}: {len(classes)} categories but num_classes is {cfg.num_classes}")
        # label l (1..K) <-> COCO category id category_ids[l - 1]
        return {"class_names": classes, "category_ids": [int(c) for c in dataset.cat_ids]}  # type: ignore[attr-defined]

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        short, long = min(cfg.input_size), max(cfg.input_size)
        # the size knobs left at 0 / empty keep the builder's (published) values
        optional = {
            **_size_knobs(cfg),
            "rpn_post_nms_top_n_train": cfg.rpn_post_nms_top_n_train,
            "rpn_post_nms_top_n_test": cfg.rpn_post_nms_top_n_test,
            "box_batch_size_per_image": cfg.box_batch_size_per_image,
            "test_keep_res": cfg.test_keep_res,
        }
        try:
            model = create_model(
                cfg.model,
                num_classes=len(info["class_names"]) + 1,
                min_size=short,
                max_size=long,
                frozen_bn=cfg.frozen_bn,
                **_knobs_for(cfg.model, optional),
            )
        except ValueError as exc:  # e.g. anchor_sizes not one per pyramid level
            raise HRNetError(f"config: model {cfg.model!r}: {exc}") from None
        # the detectors' backbone is HRNetWithHRFPN: the ImageNet weights go into its body
        load_backbone_weights(model.backbone.body, cfg.pretrained)  # type: ignore[union-attr,arg-type]
        return model

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_detection

        return collate_detection(batch)

    def to_device(
        self, images: Any, targets: Any, device: torch.device, *, channels_last: bool
    ) -> tuple[Any, Any]:
        keep = ("boxes", "labels", "masks", "semantic")
        targets = [
            {k: v.to(device, non_blocking=True).as_subclass(Tensor) for k, v in t.items() if k in keep}
            for t in targets
        ]
        return [image.to(device, non_blocking=True) for image in images], targets

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        """The detector with the configuration's head sizes; no input size: proposals have
        data-dependent shapes, so FLOPs are not traced on the meta device."""
        knobs = _knobs_for(cfg.model, _size_knobs(cfg))
        num_classes = (cfg.num_classes or PUBLISHED_NUM_CLASSES) + 1
        return create_model(cfg.model, num_classes=num_classes, **knobs), None

    def evaluate(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        ecfg: EvalConfig,
        info: dict[str, Any],
        device: torch.device,
        out_dir: Path,
    ) -> dict[str, Any]:
        """COCO box AP (and mask AP for Mask R-CNN) by pycocotools on the split's annotation file;
        predictions as COCO results in ``predictions.json``; ``plots/predictions.png``. For
        ``bdd100k_ins_seg`` also ``bitmasks/`` + ``score.json`` and ``mask_AP`` from the official
        BDD100K evaluator on the split's ground-truth bitmasks."""
        from hrnet.data.io import write_json_atomic
        from hrnet.engine import plots
        from hrnet.engine.metrics import coco_evaluate

        results: list[dict[str, Any]] = []
        image_ids: list[int] = []
        samples: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
        dataset = self.dataset(cfg, ecfg.split, train=False)
        bitmasks = None
        if cfg.dataset == "bdd100k_ins_seg":  # predictions as BDD100K bitmasks + score.json
            from hrnet.data.bdd100k import BitmaskWriter

            bitmasks = BitmaskWriter(out_dir)
        loader = eval_loader(self, ecfg, device, dataset)
        with torch.inference_mode():
            for images, targets in eval_batches(loader, enabled=ecfg.progress):
                with autocast(device, ecfg.amp):
                    preds = model([image.to(device, non_blocking=True) for image in images])
                for image, target, pred in zip(images, targets, preds):
                    image_ids.append(int(target["image_id"]))
                    if bitmasks is not None:
                        name = dataset.coco.imgs[int(target["image_id"])]["file_name"]  # type: ignore[attr-defined]
                        bitmasks.add(name, tuple(image.shape[-2:]), pred, info["category_ids"])
                    results += detections_to_coco(int(target["image_id"]), pred, info["category_ids"])
                    if len(samples) < ecfg.num_plots:
                        samples.append((image, {k: v.cpu() for k, v in pred.items()}))
        write_json_atomic(out_dir / "predictions.json", results)
        ann_file = self.annotation_file(cfg, ecfg.split)
        metrics: dict[str, Any] = {"num_images": len(image_ids), "num_detections": len(results)}
        # mask AP for every model with a mask head, also when it detected nothing (AP 0, not absent)
        with_masks = predicts_masks(model) or any("segmentation" in r for r in results)
        metrics["bbox"] = coco_evaluate(ann_file, results, "bbox", image_ids=image_ids)
        metrics["box_AP"] = metrics["bbox"]["AP"]
        if with_masks:
            metrics["segm"] = coco_evaluate(ann_file, results, "segm", image_ids=image_ids)
            metrics["mask_AP"] = metrics["segm"]["AP"]
        if bitmasks is not None:  # BDD100K: mask_AP is the official evaluator's, on its bitmasks
            from hrnet.data.bdd100k import bitmask_folder

            metrics["bdd100k_ins_seg"] = bitmasks.evaluate(bitmask_folder(require_root(cfg), ecfg.split))
            metrics["mask_AP"] = metrics["bdd100k_ins_seg"]["AP"]
        if samples:
            plots.detection_grid(samples, info["class_names"], out_dir / "plots" / "predictions.png")
        return metrics

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
        """``{"detections": [{"bbox", "label", "category_id", "score"}]}``, ``bbox`` as in COCO
        results (and ``hrnet evaluate``'s ``predictions.json``): ``[x, y, width, height]``."""
        from hrnet.data import transforms as T
        from hrnet.engine import plots

        x = T.detection_eval_transforms()(image)
        pred = {k: v.cpu() for k, v in model([x.to(device)])[0].items()}
        detections = [
            {
                "bbox": [round(float(v), 2) for v in (*box[:2], *(box[2:] - box[:2]))],
                "label": info["class_names"][int(label) - 1],
                "category_id": info["category_ids"][int(label) - 1],
                "score": float(score),
            }
            for box, label, score in zip(pred["boxes"], pred["labels"], pred["scores"])
        ]
        plots.detection_grid([(x, pred)], info["class_names"], picture)
        return {"detections": detections}


def accepted_knobs(model_name: str) -> frozenset[str] | None:
    """The keyword arguments a detector's builder takes, where it declares them (the one-stage
    detectors: no RPN, RoI or anchor knobs); None for the R-CNN builders (they take all)."""
    from hrnet.models import model_info

    return getattr(model_info(model_name).builder, "accepted_kwargs", None)


def _knobs_for(model_name: str, knobs: dict[str, Any]) -> dict[str, Any]:
    """The knobs set (non-zero, non-empty); one the model has no part for is an error."""
    chosen = {k: v for k, v in knobs.items() if v}
    accepted = accepted_knobs(model_name)
    lacking = sorted(set(chosen) - accepted) if accepted is not None else []
    if lacking:
        raise HRNetError(
            f"config: model {model_name!r} has no {', '.join(lacking)} (R-CNN settings); leave them at 0"
        )
    return chosen


def _size_knobs(cfg: TrainConfig) -> dict[str, Any]:
    """The configuration's detector size knobs shared by training and counting (0 or empty:
    the builder's published value)."""
    return {
        "anchor_sizes": tuple(cfg.anchor_sizes),
        "fpn_channels": cfg.fpn_channels,
        "representation_size": cfg.representation_size,
    }
