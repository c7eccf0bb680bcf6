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

    def to_device(self, images: Any, targets: Any, device: torch.device, *, channels_last: bool) -> tuple[Any, Any]:
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
        raise NotImplementedError


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
            tf = T.classification_eval_transforms(size=size)
        return ImageFolderDataset(_require_root(cfg), split, transforms=tf)

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        classes = list(dataset.classes)  # type: ignore[attr-defined]
        if cfg.num_classes and cfg.num_classes != len(classes):
            raise HRNetError(
                f"{cfg.data}: {len(classes)} class folders but num_classes is {cfg.num_classes}"
            )
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

    def evaluate(self, model, cfg, ecfg, info, device, out_dir):  # noqa: D102 - see Task
        from hrnet.engine.evaluate import evaluate_classification

        return evaluate_classification(self, model, cfg, ecfg, info, device, out_dir)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

TASKS: dict[str, type[Task]] = {
    "classification": ClassificationTask,
}


def get_task(name: str) -> Task:
    """The :class:`Task` of a task name."""
    if name not in TASKS:
        raise HRNetError(f"config: task {name!r} is not supported yet (supported: {', '.join(TASKS)})")
    return TASKS[name]()
