"""The :class:`Task` base class, the task registry and the pieces every task shares.

A task family (classification, segmentation, ...) is one module of :mod:`hrnet.tasks` holding
one :class:`Task` subclass decorated with :func:`register_task`. That class is the one place
that knows the task's dataset formats, reader and transforms, the facts its model needs, how
to build the model (with pretrained backbone weights), how to batch and move data, how to
evaluate (and the metric keys that evaluation writes), how to draw a prediction, and which
module the benchmark report counts. The training loop and the evaluation driver of
:mod:`hrnet.engine` only call these methods, so a new task is one new module.

:func:`get_task` imports the task modules on first use (importing this module does no work).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from hrnet.errors import HRNetError

if TYPE_CHECKING:
    from hrnet.engine.config import EvalConfig, TrainConfig

__all__ = [
    "Task",
    "autocast",
    "create_model",
    "eval_batches",
    "eval_loader",
    "freeze_batchnorm",
    "get_task",
    "load_backbone_weights",
    "register_task",
    "require_root",
    "task_names",
]

TaskType = TypeVar("TaskType", bound="type[Task]")

# task name -> Task subclass, filled by @register_task as the task modules are imported
_REGISTRY: dict[str, type[Task]] = {}
_DISCOVERED = False


class Task:
    """The base class: a task family's datasets, model, batches, evaluation and predictions.

    Class attributes:

    - ``name``: the ``task`` value of a configuration;
    - ``dataset_formats``: the ``dataset`` values (on-disk formats) the task reads;
    - ``metrics``: the metric keys its :meth:`evaluate` writes into ``metrics.json`` (the
      names a benchmark row may compare);
    - ``find_unused_parameters``: DDP must look for parameters without gradients.
    """

    name: str = ""
    dataset_formats: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    # key prefixes of the layers whose shape follows the class / keypoint count: re-initialised
    # when a checkpoint trained with another count seeds a fine-tuning (TrainConfig.init_from)
    class_layers: tuple[str, ...] = ()
    find_unused_parameters: bool = False
    # the test protocol fields (hrnet.engine.config.PROTOCOL_FIELDS) the task reads; a protocol
    # setting any other is refused (check_protocol) rather than recorded and ignored
    protocol: tuple[str, ...] = ()
    # the model kinds (hrnet.models.model_info(name).task) the task builds on; () = its name
    model_tasks: tuple[str, ...] = ()

    def check_protocol(self, ecfg: EvalConfig) -> None:
        """Raise HRNetError when ``ecfg`` sets a protocol field this task does not read."""
        from hrnet.engine.config import PROTOCOL_FIELDS, EvalConfig

        defaults = EvalConfig()
        unused = [
            n for n in PROTOCOL_FIELDS if n not in self.protocol and getattr(ecfg, n) != getattr(defaults, n)
        ]
        if unused:
            flags = ", ".join("--" + n.replace("_", "-") for n in unused)
            reads = ", ".join("--" + n.replace("_", "-") for n in self.protocol) or "none of them"
            raise HRNetError(f"{flags}: not part of the {self.name} task's test protocol (it reads {reads})")

    # -- data ----------------------------------------------------------------------------

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        """The ``split`` of ``cfg.data`` read in the ``cfg.dataset`` format, with training or
        evaluation transforms."""
        raise NotImplementedError

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        """Facts from the training set that the model and evaluation need (plain values),
        saved in ``model.pt``."""
        raise NotImplementedError

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        """A list of dataset items -> ``(images, targets)``."""
        raise NotImplementedError

    def to_device(
        self, images: Any, targets: Any, device: torch.device, *, channels_last: bool
    ) -> tuple[Any, Any]:
        """Move a batch to ``device`` (non-blocking) in the model's memory format."""
        return tensors_to_device(images, device, channels_last), tensors_to_device(targets, device, False)

    def batch_size_of(self, images: Any) -> int:
        return len(images)

    def check_format(self, dataset_format: str) -> None:
        """Raise HRNetError when the task does not read datasets of ``dataset_format``."""
        if dataset_format not in self.dataset_formats:
            raise HRNetError(
                f"config: task {self.name!r} reads datasets of format "
                f"{', '.join(self.dataset_formats)}, not {dataset_format!r}"
            )

    # -- model ---------------------------------------------------------------------------

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        """The task model of the contract (loss dict in train mode, predictions in eval), with
        ``cfg.pretrained`` loaded into its backbone."""
        raise NotImplementedError

    def build_model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        """:meth:`model` with the configuration's normalisation choice applied (frozen BN);
        what training and evaluation build."""
        model = self.model(cfg, info)
        if cfg.frozen_bn:
            freeze_batchnorm(model)
        return model

    def state_dict(self, model: nn.Module) -> dict[str, Tensor]:
        """The weights ``model.pt`` stores (the model's own key names)."""
        return model.state_dict()

    def load_state_dict(self, model: nn.Module, state: dict[str, Tensor]) -> None:
        model.load_state_dict(state)

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        """The module whose parameters and GFLOPs the benchmark report counts, built from the
        configuration alone (the dataset is not read: class and keypoint counts left at 0 take
        the published datasets' numbers), and the ``(height, width)`` input its FLOPs are
        counted at (None: not countable by tracing). Called under ``torch.device("meta")``."""
        raise NotImplementedError

    # -- evaluation and prediction ---------------------------------------------------------

    def evaluate(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        ecfg: EvalConfig,
        info: dict[str, Any],
        device: torch.device,
        out_dir: Path,
    ) -> dict[str, Any]:
        """Run ``model`` (eval mode) over ``ecfg.split`` and return the metrics (the keys of
        :attr:`metrics` among them); pictures go to ``out_dir/plots`` and predictions (COCO
        results where they apply) to ``out_dir``."""
        raise NotImplementedError

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
        """Predict on one image (uint8 ``[3, H, W]``): return the JSON fields of its record and
        draw the prediction to ``picture`` (files beside it may hold more, e.g. a mask). ``ecfg``
        gives the test protocol where the task has one (segmentation's test scale, windows,
        scales and flip; the heatmap tasks' flip test); None: the defaults."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def register_task(cls: TaskType) -> TaskType:
    """Class decorator: make a :class:`Task` subclass findable by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__}: a registered task needs a name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"task {cls.name!r} is registered twice ({_REGISTRY[cls.name].__qualname__})")
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> dict[str, type[Task]]:
    """Import every module of the :mod:`hrnet.tasks` package once (they register themselves)."""
    global _DISCOVERED
    if not _DISCOVERED:
        package = importlib.import_module("hrnet.tasks")
        for module in pkgutil.iter_modules(package.__path__):
            if module.name != "base":
                importlib.import_module(f"hrnet.tasks.{module.name}")
        _DISCOVERED = True
    return _REGISTRY


def task_names() -> list[str]:
    """The registered task names, sorted."""
    return sorted(_discover())


def get_task(name: str, *, dataset: str | None = None, model: str | None = None) -> Task:
    """The :class:`Task` of a task name; with ``dataset``, also check that the task reads that
    dataset format, and with ``model`` that it builds on that kind of model.

    Raises:
        HRNetError: unknown task, a dataset format the task does not read, or a model of
            another task (``hrnet.models.model_info(model).task``).
    """
    tasks = _discover()
    if name not in tasks:
        raise HRNetError(f"config: task {name!r} is not one of {', '.join(sorted(tasks))}")
    task = tasks[name]()
    if dataset is not None:
        task.check_format(dataset)
    if model:
        from hrnet.models import list_models, model_info

        kind, kinds = model_info(model).task, task.model_tasks or (task.name,)
        if kind not in kinds:
            names = ", ".join(list_models(kinds[0])[:4])
            raise HRNetError(
                f"config: model {model!r} is a {kind} model; task {name!r} builds on {' or '.join(kinds)} "
                f"models ({names}, ...: hrnet.models.list_models({kinds[0]!r}))"
            )
    return task


# --------------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------------


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


def tensors_to_device(obj: Any, device: torch.device, channels_last: bool) -> Any:
    """Tensors (in dicts, lists, tuples) moved to ``device``; 4-D ones channels-last if asked."""
    if isinstance(obj, Tensor):
        if channels_last and obj.dim() == 4:
            return obj.to(device, non_blocking=True, memory_format=torch.channels_last)
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: tensors_to_device(v, device, channels_last) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(tensors_to_device(v, device, channels_last) for v in obj)
    return obj


def require_root(cfg: TrainConfig) -> Path:
    """The dataset root folder of ``cfg`` (HRNetError when unset or missing)."""
    if not cfg.data:
        raise HRNetError("config: data (the dataset root folder) is not set")
    root = Path(cfg.data)
    if not root.is_dir():
        raise HRNetError(f"{root}: dataset folder not found")
    return root


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """:func:`hrnet.models.create_model`, with a builder's TypeError as an HRNetError."""
    from hrnet.models import create_model as create

    try:
        return create(name, **kwargs)
    except TypeError as exc:
        raise HRNetError(f"config: model {name!r} cannot be built with {kwargs}: {exc}") from None


def load_backbone_weights(backbone: nn.Module, path: str) -> None:
    """Load the weights file ``path`` into ``backbone`` strictly; no-op for an empty path.

    ``path`` is a checkpoint of any layout :func:`hrnet.models.load_pretrained` reads: ImageNet
    weights of the same width (their classification head is ignored by a dense backbone), or
    another task's checkpoint (e.g. a row's ``model.pt``), whose backbone is taken and whose
    heads are ignored. Every backbone tensor must load.

    Raises:
        HRNetError: a backbone tensor the file lacks, a tensor with no place, or a shape
            mismatch (e.g. weights of another width); the message names the keys and shapes.
    """
    if path:
        from hrnet.models import load_pretrained

        load_pretrained(backbone, path)


def eval_loader(
    task: Task, ecfg: EvalConfig, device: torch.device, dataset: Dataset, *, pin_memory: bool = True
) -> DataLoader:
    """The evaluation loader of ``dataset``: in order, ``ecfg.batch_size``, the task's collate."""
    return DataLoader(
        dataset,
        batch_size=ecfg.batch_size,
        shuffle=False,
        num_workers=ecfg.workers,
        collate_fn=task.collate,
        pin_memory=pin_memory and device.type == "cuda",
    )


def eval_batches(loader: DataLoader, desc: str = "evaluate", *, enabled: bool = True) -> Iterator[Any]:
    """The batches of ``loader``, under a progress bar when ``enabled``."""
    if not enabled:
        yield from loader
        return
    from tqdm import tqdm

    yield from tqdm(loader, desc=desc, unit="batch", dynamic_ncols=True, leave=False)


def autocast(device: torch.device, amp: str) -> Any:
    """Autocast context of an ``amp`` mode (none, bf16, fp16) on ``device``."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
