"""Per-task glue: which reader, transforms, collate, model and metric go with which task.

This is the one place that knows that a ``segmentation`` row reads label maps and is scored by
mIoU, or that a ``pose`` row reads COCO keypoints and is scored by OKS AP. The training loop and
the evaluator only call the :class:`Task` methods:

- :meth:`Task.dataset` builds a split with the task's transforms;
- :meth:`Task.info` records the facts the model and the evaluator need (class names, joints,
  flip pairs), saved in ``model.pt``;
- :meth:`Task.model` builds the module of the task model contract (docs/ARCHITECTURE.md);
- :meth:`Task.collate` / :meth:`Task.to_device` assemble and move a batch;
- :meth:`Task.evaluate` runs inference over a split and returns the metrics (evaluate.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from hrnet.engine.config import TrainConfig
from hrnet.errors import HRNetError

if TYPE_CHECKING:
    from hrnet.engine.config import EvalConfig

__all__ = ["TASKS", "Classifier", "Task", "freeze_batchnorm", "get_task"]


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` by a ``FrozenBatchNorm2d`` holding the same statistics
    and affine parameters (fixed: no gradient, no running update). Returns the module."""
    from torchvision.ops import FrozenBatchNorm2d

    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                if child.affine:
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                if child.running_mean is not None:
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


class Classifier(nn.Module):
    """A classification backbone under the task model contract.

    ``forward(images, targets=None)``: images ``float [B, 3, H, W]`` (ImageNet-normalised);
    with ``targets`` (``int64 [B]``) in train mode returns ``{"loss_cls": cross-entropy}``,
    otherwise logits ``float [B, num_classes]``. The backbone is ``self.net``; its state dict
    (the IC/timm key names) is what ``model.pt`` stores.
    """

    def __init__(self, net: nn.Module, *, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.label_smoothing = label_smoothing

    def forward(self, images: Tensor, targets: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        logits = self.net(images)
        if targets is None or not self.training:
            return logits
        return {"loss_cls": F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)}


class Task:
    """The base class: a task family's datasets, model, batches and evaluation."""

    name: str = ""
    # DDP must look for parameters without gradients (models with unused branches)
    find_unused_parameters: bool = False

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        """The ``split`` of ``cfg.data`` read in the ``cfg.dataset`` format, with training or
        evaluation transforms."""
        raise NotImplementedError

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        """Facts from the training set that the model and evaluation need (plain values)."""
        raise NotImplementedError

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        """The task model of the contract (loss dict in train mode, predictions in eval)."""
        raise NotImplementedError

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        """A list of dataset items -> ``(images, targets)``."""
        raise NotImplementedError

    def to_device(
        self, images: Any, targets: Any, device: torch.device, *, channels_last: bool
    ) -> tuple[Any, Any]:
        """Move a batch to ``device`` (non-blocking) in the model's memory format."""
        return _to_device(images, device, channels_last), _to_device(targets, device, False)

    def batch_size_of(self, images: Any) -> int:
        return len(images)

    def state_dict(self, model: nn.Module) -> dict[str, Tensor]:
        """The weights ``model.pt`` stores (the model's own key names)."""
        return model.state_dict()

    def load_state_dict(self, model: nn.Module, state: dict[str, Tensor]) -> None:
        model.load_state_dict(state)

    def evaluate(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        ecfg: EvalConfig,
        info: dict[str, Any],
        device: torch.device,
        out_dir: Path,
    ) -> dict[str, Any]:
        """Run ``model`` (eval mode) over ``ecfg.split`` and return the metrics; pictures go to
        ``out_dir/plots`` and predictions (COCO results where they apply) to ``out_dir``."""
        from hrnet.engine.evaluate import EVALUATORS

        return EVALUATORS[self.name](self, model, cfg, ecfg, info, device, out_dir)


def _to_device(obj: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(obj, Tensor):
        if channels_last and obj.dim() == 4:
            return obj.to(device, non_blocking=True, memory_format=torch.channels_last)
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: _to_device(v, device, channels_last) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_device(v, device, channels_last) for v in obj)
    return obj


def _require_format(cfg: TrainConfig, allowed: tuple[str, ...]) -> None:
    if cfg.dataset not in allowed:
        raise HRNetError(
            f"config: task {cfg.task!r} reads datasets of format {', '.join(allowed)}, not {cfg.dataset!r}"
        )


def _require_root(cfg: TrainConfig) -> Path:
    if not cfg.data:
        raise HRNetError("config: data (the dataset root folder) is not set")
    root = Path(cfg.data)
    if not root.is_dir():
        raise HRNetError(f"{root}: dataset folder not found")
    return root


def _create(name: str, **kwargs: Any) -> nn.Module:
    from hrnet.models import create_model

    try:
        return create_model(name, **kwargs)
    except TypeError as exc:
        raise HRNetError(f"config: model {name!r} cannot be built with {kwargs}: {exc}") from None


def _load_pretrained(net: nn.Module, path: str) -> None:
    if path:
        from hrnet.models import load_pretrained

        load_pretrained(net, path)


# --------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------


class ClassificationTask(Task):
    """ImageFolder images -> backbone logits; scored by top-1/top-5 accuracy."""

    name = "classification"

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        from hrnet.data import transforms as T
        from hrnet.data.imagefolder import ImageFolderDataset

        _require_format(cfg, ("imagefolder",))
        height, width = cfg.input_size
        size = height if height == width else (height, width)
        if train:
            tf = T.classification_train_transforms(
                size=size, scale=cfg.scale_range, hflip_prob=0.5 if cfg.hflip else 0.0
            )
        else:
            short = size if isinstance(size, int) else min(size)
            tf = T.classification_eval_transforms(size=size, resize_size=round(short / cfg.eval_crop_ratio))
        return ImageFolderDataset(_require_root(cfg), split, transforms=tf)

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        classes = list(dataset.classes)  # type: ignore[attr-defined]
        if cfg.num_classes and cfg.num_classes != len(classes):
            raise HRNetError(f"{cfg.data}: {len(classes)} class folders but num_classes is {cfg.num_classes}")
        return {"class_names": classes}

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        net = _create(cfg.model, num_classes=len(info["class_names"]))
        _load_pretrained(net, cfg.pretrained)
        return Classifier(net, label_smoothing=cfg.label_smoothing)

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_classification

        return collate_classification(batch)

    def state_dict(self, model: nn.Module) -> dict[str, Tensor]:
        return model.net.state_dict()  # type: ignore[union-attr]

    def load_state_dict(self, model: nn.Module, state: dict[str, Tensor]) -> None:
        model.net.load_state_dict(state)  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# segmentation
# --------------------------------------------------------------------------------------------

# the base size (height, width) the random rescale of each benchmark set is relative to; None:
# the network input size (a mask folder's images are resized to fit input_size, in training
# times a random ratio, at evaluation exactly, while its masks keep their size for scoring)
_SEG_BASE_SIZE: dict[str, tuple[int, int] | None] = {
    "mask_segmentation": None,
    "cityscapes": (1024, 2048),
    "ade20k": (512, 2048),
    "voc": (512, 2048),
    "pascal_context": (480, 520),
}


class SegmentationTask(Task):
    """Label maps (255 = ignore) -> FCN logits; scored by mIoU (single scale, and multi-scale
    + flip when asked)."""

    name = "segmentation"

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        from hrnet.data import segmentation as S
        from hrnet.data import transforms as T

        _require_format(cfg, tuple(_SEG_BASE_SIZE))
        root = _require_root(cfg)
        base = _SEG_BASE_SIZE[cfg.dataset]
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
        if cfg.dataset == "mask_segmentation":
            return S.MaskFolderSegmentation(root / "images" / split, root / "masks" / split, transforms=tf)
        reader = {
            "cityscapes": S.Cityscapes,
            "ade20k": S.ADE20K,
            "voc": S.PascalVOC,
            "pascal_context": S.PascalContext,
        }
        return reader[cfg.dataset](root, split, transforms=tf)

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        classes = list(dataset.classes)  # type: ignore[attr-defined]
        if cfg.num_classes and cfg.num_classes != len(classes):
            raise HRNetError(
                f"{cfg.data}: the dataset has {len(classes)} classes but num_classes is {cfg.num_classes}"
            )
        return {"class_names": classes}

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        model = _create(
            cfg.model,
            num_classes=len(info["class_names"]),
            label_smoothing=cfg.label_smoothing,
            ohem_thresh=cfg.ohem_thresh,
            ohem_min_kept=cfg.ohem_min_kept,
        )
        _load_pretrained(model.backbone, cfg.pretrained)  # type: ignore[arg-type]
        return model

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_segmentation

        return collate_segmentation(batch)


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------


class DetectionTask(Task):
    """COCO instances -> R-CNN detections; scored by COCO box (and mask) AP with pycocotools.

    ``input_size`` is (short side, long side cap) of the model's internal resize, e.g.
    (800, 1333) for COCO.
    """

    name = "detection"
    find_unused_parameters = True

    @staticmethod
    def annotation_file(cfg: TrainConfig, split: str) -> Path:
        return _require_root(cfg) / "annotations" / f"instances_{split}.json"

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        from hrnet.data import transforms as T
        from hrnet.data.coco import CocoDetection

        _require_format(cfg, ("coco_instances",))
        root = _require_root(cfg)
        tf = (
            T.detection_train_transforms(hflip_prob=0.5 if cfg.hflip else 0.0)
            if train
            else T.detection_eval_transforms()
        )
        return CocoDetection(
            root / "images" / split,
            self.annotation_file(cfg, split),
            transforms=tf,
            with_masks=cfg.model.startswith("maskrcnn"),
            skip_empty=train,
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
            "anchor_sizes": tuple(cfg.anchor_sizes),
            "fpn_channels": cfg.fpn_channels,
            "rpn_post_nms_top_n_train": cfg.rpn_post_nms_top_n_train,
            "rpn_post_nms_top_n_test": cfg.rpn_post_nms_top_n_test,
            "box_batch_size_per_image": cfg.box_batch_size_per_image,
            "representation_size": cfg.representation_size,
        }
        try:
            model = _create(
                cfg.model,
                num_classes=len(info["class_names"]) + 1,
                min_size=short,
                max_size=long,
                frozen_bn=cfg.frozen_bn,
                **{k: v for k, v in optional.items() if v},
            )
        except ValueError as exc:  # e.g. anchor_sizes not one per pyramid level
            raise HRNetError(f"config: model {cfg.model!r}: {exc}") from None
        _load_pretrained(
            model.backbone.body if hasattr(model.backbone, "body") else model.backbone, cfg.pretrained
        )  # type: ignore[union-attr]
        return model

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_detection

        return collate_detection(batch)

    def to_device(
        self, images: Any, targets: Any, device: torch.device, *, channels_last: bool
    ) -> tuple[Any, Any]:
        keep = ("boxes", "labels", "masks")
        targets = [
            {k: v.to(device, non_blocking=True).as_subclass(Tensor) for k, v in t.items() if k in keep}
            for t in targets
        ]
        return [image.to(device, non_blocking=True) for image in images], targets


# --------------------------------------------------------------------------------------------
# pose and landmarks (top-down heatmaps)
# --------------------------------------------------------------------------------------------


class PoseTask(Task):
    """COCO person keypoints, one crop per person box -> heatmaps; scored by COCO keypoint AP
    (OKS) with ground-truth or detected person boxes. ``input_size`` is (height, width)."""

    name = "pose"

    @staticmethod
    def annotation_file(cfg: TrainConfig, split: str) -> Path:
        return _require_root(cfg) / "annotations" / f"person_keypoints_{split}.json"

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool, detections: str | None = None) -> Dataset:
        from hrnet.data import transforms as T
        from hrnet.data.coco import CocoKeypoints
        from hrnet.pose_utils import COCO_FLIP_PAIRS

        _require_format(cfg, ("coco_keypoints",))
        root = _require_root(cfg)
        width_height = (cfg.input_size[1], cfg.input_size[0])
        if train:
            tf = T.TopDownTransform(
                train=True,
                input_size=width_height,
                sigma=cfg.heatmap_sigma,
                flip_pairs=COCO_FLIP_PAIRS,
                flip_prob=0.5 if cfg.hflip else 0.0,
                scale_factor=max(abs(cfg.scale_range[0] - 1), abs(cfg.scale_range[1] - 1)),
                rotation=cfg.rotation,
                subpixel=cfg.heatmap_subpixel,
            )
        else:
            tf = T.pose_eval_transforms(
                input_size=width_height, sigma=cfg.heatmap_sigma, subpixel=cfg.heatmap_subpixel
            )
        return CocoKeypoints(
            root / "images" / split,
            self.annotation_file(cfg, split),
            transforms=tf,
            input_size=width_height,
            detections=detections,
        )

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        from hrnet.pose_utils import COCO_FLIP_PAIRS

        names = list(dataset.keypoint_names)  # type: ignore[attr-defined]
        if cfg.num_keypoints and cfg.num_keypoints != len(names):
            raise HRNetError(f"{cfg.data}: {len(names)} keypoints but num_keypoints is {cfg.num_keypoints}")
        return {
            "keypoint_names": names,
            "skeleton": [[int(a), int(b)] for a, b in dataset.skeleton],  # type: ignore[attr-defined]
            "flip_pairs": [list(p) for p in COCO_FLIP_PAIRS] if len(names) == 17 else [],
            "category_id": int(dataset.category["id"]),  # type: ignore[attr-defined]
        }

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        model = _create(cfg.model, num_joints=len(info["keypoint_names"]))
        _load_pretrained(model.backbone, cfg.pretrained)  # type: ignore[arg-type]
        return model

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_keypoints

        return collate_keypoints(batch)

    def to_device(
        self, images: Any, targets: Any, device: torch.device, *, channels_last: bool
    ) -> tuple[Any, Any]:
        keep = {"heatmaps": targets["heatmaps"], "target_weight": targets["target_weight"]}
        return _to_device(images, device, channels_last), _to_device(keep, device, False)


class LandmarkTask(PoseTask):
    """Face crops -> landmark heatmaps; scored by NME (inter-ocular). ``input_size`` square."""

    name = "landmarks"

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool, detections: str | None = None) -> Dataset:
        from hrnet.data import landmarks as L
        from hrnet.data import transforms as T

        _require_format(cfg, ("300w", "wflw", "cofw"))
        root = _require_root(cfg)
        size = cfg.input_size[0]
        reader = {"300w": L.Face300W, "wflw": L.WFLW, "cofw": L.COFW}[cfg.dataset]
        probe = reader(root, split)  # the flip pairs of this landmark layout
        if train:
            tf = T.TopDownTransform(
                train=True,
                input_size=(size, size),
                sigma=cfg.heatmap_sigma,
                flip_pairs=probe.flip_pairs,
                flip_prob=0.5 if cfg.hflip else 0.0,
                scale_factor=max(abs(cfg.scale_range[0] - 1), abs(cfg.scale_range[1] - 1)),
                rotation=cfg.rotation,
                rotation_prob=0.6,
                uniform_jitter=True,
                half_body_prob=0.0,
            )
        else:
            tf = T.landmark_eval_transforms(input_size=size, heatmap_size=size // 4, sigma=cfg.heatmap_sigma)
        probe.transforms = tf
        return probe

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        k = dataset.num_points  # type: ignore[attr-defined]
        if cfg.num_keypoints and cfg.num_keypoints != k:
            raise HRNetError(f"{cfg.data}: {k} landmarks but num_keypoints is {cfg.num_keypoints}")
        return {"num_points": k, "flip_pairs": [list(p) for p in dataset.flip_pairs]}  # type: ignore[attr-defined]

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        model = _create(cfg.model, num_points=info["num_points"])
        _load_pretrained(model.backbone, cfg.pretrained)  # type: ignore[arg-type]
        return model


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

TASKS: dict[str, type[Task]] = {
    "classification": ClassificationTask,
    "segmentation": SegmentationTask,
    "detection": DetectionTask,
    "pose": PoseTask,
    "landmarks": LandmarkTask,
}


def get_task(name: str) -> Task:
    """The :class:`Task` of a task name."""
    if name not in TASKS:
        raise HRNetError(f"config: task {name!r} is not supported yet (supported: {', '.join(TASKS)})")
    return TASKS[name]()
