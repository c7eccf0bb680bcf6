"""The model registry: every builder once, with the numbers published for it.

Each model module ends with a table ``MODEL_INFOS: tuple[ModelInfo, ...]`` next to its builders;
:func:`registry` gathers the modules listed in :data:`MODEL_MODULES` on first use (importing this
module, or a model module, builds no model). :func:`hrnet.models.create_model`,
:func:`hrnet.models.list_models` and :func:`hrnet.models.model_info` read it.

A :class:`ModelInfo` carries, the way torchvision's weights carry their ``meta``:

- ``params`` and ``gflops``: :class:`Published` numbers, each with its value, its unit (a
  :class:`Unit`: what one "M" or one "GFLOPs" is), the input size it is taken at, the counting
  convention and the public source. ``tests/models/test_registry.py`` counts every model and
  compares; ``hrnet info MODEL`` prints published against counted.
- ``checkpoints``: the fetch-catalogue names (``hrnet fetch --list``) of published weights of
  this network, and ``backbone_checkpoints``: the ImageNet-pretrained backbones its training
  recipe starts from.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from torch import nn

__all__ = [
    "GFLOPS",
    "GFLOPS_1E9",
    "MEBI_PARAMS",
    "MEGA_PARAMS",
    "MODEL_MODULES",
    "TASKS",
    "Counter",
    "ModelInfo",
    "Published",
    "Task",
    "Unit",
    "registry",
]

Task = Literal["classification", "segmentation", "detection", "pose", "landmarks"]
TASKS: tuple[str, ...] = ("classification", "segmentation", "detection", "pose", "landmarks")

# What is run to count a published figure (hrnet.models.flops.count_published):
#   "params":   the parameters of the built model (BatchNorm running statistics are buffers, not counted);
#   "forward":  conv + linear multiply-adds of ``model(images)`` for one [1, 3, H, W] image;
#   "detector": conv + linear multiply-adds of one [1, 3, H, W] image through the backbone and neck,
#               the RPN head on every pyramid level and the box head (+ predictor) on 1000
#               proposals: the parts MMDetection's ``forward_dummy`` runs, without the data-dependent
#               proposal selection.
Counter = Literal["params", "forward", "detector"]

# model modules under hrnet.models whose MODEL_INFOS tables make up the registry
MODEL_MODULES: tuple[str, ...] = (
    "hrnet",
    "segmentation",
    "detection",
    "htc",  # Cascade Mask R-CNN and Hybrid Task Cascade
    "detection_anchor_free",  # FCOS and CenterNet
    "pose",
    "landmarks",
)


@dataclass(frozen=True)
class Unit:
    """What one unit of a published figure is: ``value * scale`` counted things."""

    symbol: str  # printed after the value: "M", "GFLOPs"
    scale: float  # counted things per unit: 1e6 parameters, 2**30 multiply-adds
    meaning: str  # the unit in words

    def __str__(self) -> str:
        return f"{self.symbol} ({self.meaning})"


MEGA_PARAMS = Unit("M", 1e6, "10^6 parameters")
# HRNet-Object-Detection prints parameter counts as "M" that are units of 2^20 (its 26.2M for
# Faster R-CNN HRNetV2p-W18 is 27.5 million parameters)
MEBI_PARAMS = Unit("M", 2**20, "2^20 parameters")
# the HRNet papers' and HRNet-Image-Classification's "GFLOPs": multiply-adds / 2^30
GFLOPS = Unit("GFLOPs", 2**30, "2^30 multiply-adds")
# MMPretrain's "Flops(G)": 10^9 operations as mmengine's counter counts them
GFLOPS_1E9 = Unit("GFLOPs", 1e9, "10^9 operations")


def _frozen(mapping: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Published:
    """One published figure (a parameter count or a FLOP count) and how to reproduce it.

    ``value * unit.scale`` is what ``counter`` counts on the model (or on ``counted_on``), within
    ``rel_tol`` of ``value`` (1% covers the rounding of every figure printed with 3 significant digits).
    """

    value: float  # as printed by the source
    unit: Unit
    source: str  # the publisher by public name: "HRNet-Image-Classification", "timm", "MMPretrain", ...
    convention: str  # what the source counts, in words
    counter: Counter = "params"
    input_size: tuple[int, int] | None = None  # (H, W) of the counted image; None for parameter counts
    rel_tol: float = 0.01
    # the figure is the count of another registered network (built with ``counted_on_kwargs``):
    # set where a source prints a number that is not its own network's count
    counted_on: str | None = None
    counted_on_kwargs: Mapping[str, object] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counted_on_kwargs", _frozen(self.counted_on_kwargs))
        if (self.counter == "params") != (self.input_size is None):
            raise ValueError("a parameter count has no input size; a FLOP count needs one")

    def tolerance(self) -> float:
        """The allowed absolute difference from ``value``, in ``unit``."""
        return self.rel_tol * abs(self.value)

    def matches(self, counted: float) -> bool:
        """``counted`` (in ``unit``) agrees with the published value."""
        return abs(counted - self.value) <= self.tolerance()

    def describe(self) -> str:
        """``"21.3 M (10^6 parameters), MMPretrain"``; FLOP counts add ``" at 224x224 (HxW)"``."""
        at = f" at {self.input_size[0]}x{self.input_size[1]} (HxW)" if self.input_size else ""
        return f"{self.value!r} {self.unit}{at}, {self.source}"


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its builder, the keyword arguments it is built with, its metadata."""

    name: str  # the create_model name
    task: Task
    builder: Callable[..., nn.Module]
    summary: str  # one line: what the network is
    # keyword arguments create_model passes to the builder (the caller's own take precedence);
    # the published numbers refer to the model built with exactly these
    kwargs: Mapping[str, object] = field(default_factory=dict, hash=False)
    params: Published | None = None
    gflops: tuple[Published, ...] = ()
    checkpoints: tuple[str, ...] = ()  # fetch-catalogue names of published weights of this network
    backbone_checkpoints: tuple[str, ...] = ()  # ImageNet-pretrained backbones its recipe loads
    notes: str = ""  # what a user of the numbers should know (a published count of another network...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", _frozen(self.kwargs))
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {TASKS}, got {self.task!r}")
        if self.params is not None and self.params.counter != "params":
            raise ValueError(f"{self.name}: params must be a parameter count")
        if any(g.counter == "params" for g in self.gflops):
            raise ValueError(f"{self.name}: gflops must be FLOP counts")

    def build(self, **kwargs: object) -> nn.Module:
        """The builder called with :attr:`kwargs` updated by ``kwargs``."""
        return self.builder(**{**self.kwargs, **kwargs})

    @property
    def published(self) -> tuple[Published, ...]:
        """All published figures: the parameter count first, then the FLOP counts."""
        return ((self.params,) if self.params is not None else ()) + self.gflops


@functools.cache
def registry() -> Mapping[str, ModelInfo]:
    """Every registered model by name (gathered on first use from :data:`MODEL_MODULES`).

    Raises:
        RuntimeError: a name registered twice.
    """
    merged: dict[str, ModelInfo] = {}
    for module_name in MODEL_MODULES:
        try:
            module = importlib.import_module(f"hrnet.models.{module_name}")
        except ModuleNotFoundError as exc:  # a task module not written yet
            if exc.name != f"hrnet.models.{module_name}":
                raise
            continue
        for info in module.MODEL_INFOS:
            if info.name in merged:
                raise RuntimeError(
                    f"model name {info.name!r} is registered twice (hrnet.models.{module_name})"
                )
            merged[info.name] = info
    return MappingProxyType(merged)
