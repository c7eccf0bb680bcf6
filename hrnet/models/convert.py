"""Checkpoint interop: read HRNet state dicts in the published layouts, load them with a report, export.

Our module names are those of the official HRNet-Image-Classification (IC) and timm checkpoints
("official" layout, HRNET.md §3). Other layouts are rewritten into it by :func:`remap` rules:

- ``openmmlab`` (mmdet / mmseg / mmpose): the backbone under ``backbone.``; task-head keys are
  left as they are (a task model maps them with its own rules).
- ``mmpretrain``: ``backbone.`` plus the classification head as ``neck.0.increase_layers``,
  ``neck.0.downsample_layers.{i}.{conv,bn}``, ``neck.0.final_layer.{conv,bn}`` and ``head.fc``.
  Its head convs have no bias: importing sets our conv biases to zero; exporting folds our biases
  into the following BatchNorm (``running_mean -= bias``), which leaves the function unchanged.
- ``pose`` (deep-high-resolution-net): the official backbone plus ``final_layer.{weight,bias}``.

Wrappers ``{"state_dict": ...}`` / ``{"model": ...}`` and whole-dict ``module.`` / ``model.`` prefixes
(DataParallel, SS ``FullModel``) are removed first.

Building blocks for task models: :func:`read_checkpoint`, :func:`remap`, :func:`strip_prefix`,
:func:`add_prefix`, :func:`to_official`, :func:`load_state_dict_checked`.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from hrnet.errors import HRNetError

__all__ = [
    "HEAD_MODULES",
    "LoadReport",
    "Rule",
    "add_prefix",
    "detect_layout",
    "export_state_dict",
    "fold_conv_bias",
    "load_pretrained",
    "load_state_dict_checked",
    "read_checkpoint",
    "remap",
    "strip_prefix",
    "to_official",
]

logger = logging.getLogger(__name__)

StateDict = dict[str, Tensor]
Layout = Literal["official", "openmmlab", "mmpretrain", "pose"]
ExportLayout = Literal["official", "timm", "mmpretrain", "mmdet", "mmseg", "mmpose"]
Rule = tuple[str, str]
"""``(pattern, replacement)``: a regex that must match a whole key, and an ``re`` expand template."""

# modules of the ImageNet head: unused (and reported) when a classification checkpoint feeds a dense backbone
HEAD_MODULES: tuple[str, ...] = ("incre_modules", "downsamp_modules", "final_layer", "classifier")

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
_WRAPPER_PREFIXES = ("module.", "model.")

MMPRETRAIN_TO_OFFICIAL: tuple[Rule, ...] = (
    (r"backbone\.(.+)", r"\1"),
    (r"neck\.0\.increase_layers\.(\d+)\.(.+)", r"incre_modules.\1.\2"),
    (r"neck\.0\.downsample_layers\.(\d+)\.conv\.(.+)", r"downsamp_modules.\1.0.\2"),
    (r"neck\.0\.downsample_layers\.(\d+)\.bn\.(.+)", r"downsamp_modules.\1.1.\2"),
    (r"neck\.0\.final_layer\.conv\.(.+)", r"final_layer.0.\1"),
    (r"neck\.0\.final_layer\.bn\.(.+)", r"final_layer.1.\1"),
    (r"head\.fc\.(.+)", r"classifier.\1"),
)
OFFICIAL_TO_MMPRETRAIN: tuple[Rule, ...] = (
    (r"incre_modules\.(\d+)\.(.+)", r"neck.0.increase_layers.\1.\2"),
    (r"downsamp_modules\.(\d+)\.0\.(.+)", r"neck.0.downsample_layers.\1.conv.\2"),
    (r"downsamp_modules\.(\d+)\.1\.(.+)", r"neck.0.downsample_layers.\1.bn.\2"),
    (r"final_layer\.0\.(.+)", r"neck.0.final_layer.conv.\1"),
    (r"final_layer\.1\.(.+)", r"neck.0.final_layer.bn.\1"),
    (r"classifier\.(.+)", r"head.fc.\1"),
    (r"(.+)", r"backbone.\1"),
)
OPENMMLAB_TO_OFFICIAL: tuple[Rule, ...] = ((r"backbone\.(.+)", r"\1"),)

# (conv, norm) pairs of the classification head whose conv bias mmpretrain folds into the norm
_HEAD_CONV_BN = re.compile(r"(downsamp_modules\.\d+|final_layer)\.0\.weight")


# --------------------------------------------------------------------------------------------
# Key-mapping primitives
# --------------------------------------------------------------------------------------------


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> StateDict:
    """Remove ``prefix`` from the keys that start with it; other keys are kept unchanged."""
    n = len(prefix)
    return {k[n:] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def add_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> StateDict:
    """Prepend ``prefix`` to every key."""
    return {prefix + k: v for k, v in state_dict.items()}


def remap(state_dict: Mapping[str, Tensor], rules: Sequence[Rule]) -> StateDict:
    """Rename keys by the first rule whose pattern matches the whole key; unmatched keys stay.

    Example: ``remap(sd, [(r"backbone\\.(.+)", r"\\1")])`` strips ``backbone.``.

    Raises:
        HRNetError: two keys would get the same name.
    """
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    out: StateDict = {}
    for key, value in state_dict.items():
        new = key
        for pattern, replacement in compiled:
            match = pattern.fullmatch(key)
            if match:
                new = match.expand(replacement)
                break
        if new in out:
            raise HRNetError(f"state dict: key {key!r} is renamed to {new!r}, which another key already took")
        out[new] = value
    return out


def fold_conv_bias(state_dict: Mapping[str, Tensor]) -> StateDict:
    """Fold the classification-head conv biases into their BatchNorm (``running_mean -= bias``).

    Applies to ``downsamp_modules.{i}.0`` / ``final_layer.0`` (each followed by the norm ``.1``), so
    ``BN(conv(x) + b) == BN'(conv(x))``; the bias keys are removed.
    """
    out = dict(state_dict)
    for key in state_dict:
        match = _HEAD_CONV_BN.fullmatch(key)
        if match and f"{match[1]}.0.bias" in out:
            bias = out.pop(f"{match[1]}.0.bias")
            mean_key = f"{match[1]}.1.running_mean"
            out[mean_key] = out[mean_key] - bias
    return out


def _add_zero_head_bias(state_dict: Mapping[str, Tensor]) -> StateDict:
    """The inverse layout step of :func:`fold_conv_bias`: bias-free head convs get a zero bias."""
    out = dict(state_dict)
    for key, value in state_dict.items():
        match = _HEAD_CONV_BN.fullmatch(key)
        if match and f"{match[1]}.0.bias" not in out:
            out[f"{match[1]}.0.bias"] = value.new_zeros(value.shape[0])
    return out


# --------------------------------------------------------------------------------------------
# Reading and layouts
# --------------------------------------------------------------------------------------------


def _unwrap(obj: object, name: str) -> StateDict:
    while isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise HRNetError(
                f"{name}: no state dict found (top-level keys: {', '.join(map(str, list(obj)[:12]))})"
            )
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise HRNetError(f"{name}: expected a state dict (str -> Tensor), got {type(obj).__name__}")
    state_dict = {str(k): v for k, v in obj.items()}
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state_dict):
                state_dict = strip_prefix(state_dict, prefix)
                stripped = True
    return state_dict


def read_checkpoint(source: str | os.PathLike[str] | Mapping[str, object]) -> tuple[StateDict, str]:
    """Read a checkpoint file (``weights_only=True``, on CPU) or take a state dict; unwrap it.

    Returns:
        ``(state_dict, name)``: tensors by key (wrappers and ``module.``/``model.`` prefixes
        removed) and the name used in messages (the path, or ``"<state dict>"``).

    Raises:
        HRNetError: missing file, a file ``torch.load`` refuses, or no state dict inside.
    """
    if isinstance(source, Mapping):
        return _unwrap(source, "<state dict>"), "<state dict>"
    name = os.fspath(source)
    if not os.path.isfile(name):
        raise HRNetError(f"{name}: checkpoint file not found")
    try:
        obj = torch.load(name, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        lines = str(exc).splitlines() or [type(exc).__name__]
        reason = next((line.strip() for line in lines if "Unsupported global" in line), lines[0])
        raise HRNetError(f"{name}: cannot load checkpoint with weights_only=True: {reason}") from exc
    return _unwrap(obj, name), name


def detect_layout(state_dict: Mapping[str, Tensor]) -> Layout:
    """Guess the key layout of an (unwrapped) HRNet state dict; see the module docstring."""
    keys = list(state_dict)
    if any(k.startswith("backbone.") for k in keys):
        if any(k.startswith(("neck.0.increase_layers.", "neck.0.final_layer.")) for k in keys):
            return "mmpretrain"
        return "openmmlab"
    if "final_layer.weight" in state_dict:
        return "pose"
    return "official"


def to_official(state_dict: Mapping[str, Tensor], layout: Layout) -> StateDict:
    """Rewrite a state dict of ``layout`` into our (official/timm) key names."""
    if layout == "mmpretrain":
        return _add_zero_head_bias(remap(state_dict, MMPRETRAIN_TO_OFFICIAL))
    if layout == "openmmlab":
        return remap(state_dict, OPENMMLAB_TO_OFFICIAL)
    if layout in ("official", "pose"):
        return dict(state_dict)
    raise ValueError(f"unknown checkpoint layout {layout!r}")


# --------------------------------------------------------------------------------------------
# Loading with a report
# --------------------------------------------------------------------------------------------


def _group(keys: Sequence[str]) -> str:
    counts = Counter(k.split(".", 1)[0] for k in keys)
    return ", ".join(f"{module} ({n})" for module, n in counts.items())


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_pretrained` did. Keys are in the model's naming."""

    source: str  # checkpoint path, or "<state dict>"
    layout: str  # layout the keys were converted from
    loaded: tuple[str, ...]  # model keys that received a tensor
    missing: tuple[str, ...]  # model keys the checkpoint lacks (BatchNorm num_batches_tracked not counted)
    unused: tuple[str, ...]  # checkpoint keys the model has no place for
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()  # (key, ckpt, model) shapes

    def summary(self) -> str:
        """One paragraph: counts, and the unused/missing keys grouped by top-level module."""
        lines = [f"{self.source}: loaded {len(self.loaded)} tensors (layout {self.layout})"]
        if self.missing:
            lines.append(f"  missing {len(self.missing)}: {_group(self.missing)}")
        if self.unused:
            lines.append(f"  unused {len(self.unused)}: {_group(self.unused)}")
        for key, ckpt_shape, model_shape in self.mismatched:
            lines.append(f"  skipped {key}: checkpoint {ckpt_shape} vs model {model_shape}")
        return "\n".join(lines)


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str = "<state dict>",
    layout: str = "official",
    strict_shapes: bool = True,
    strict: bool = False,
) -> LoadReport:
    """Load the tensors whose keys the model has; report the rest (the primitive of :func:`load_pretrained`).

    Raises:
        HRNetError: a shape mismatch (``strict_shapes``; names the key and both shapes), or with
            ``strict`` any missing, unused or mismatched key.
    """
    own = model.state_dict()
    to_load: StateDict = {}
    unused: list[str] = []
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for key, value in state_dict.items():
        if key not in own:
            unused.append(key)
        elif value.shape != own[key].shape:
            ckpt_shape, model_shape = tuple(value.shape), tuple(own[key].shape)
            if strict_shapes:
                raise HRNetError(
                    f"{source}: key {key!r} has shape {ckpt_shape} in the checkpoint but {model_shape} in the model"
                )
            mismatched.append((key, ckpt_shape, model_shape))
        else:
            to_load[key] = value
    missing = [k for k in own if k not in to_load and not k.endswith("num_batches_tracked")]
    result = model.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    report = LoadReport(
        source=source,
        layout=layout,
        loaded=tuple(to_load),
        missing=tuple(k for k in missing if k not in {m[0] for m in mismatched}),
        unused=tuple(unused),
        mismatched=tuple(mismatched),
    )
    if strict and (report.missing or report.unused or report.mismatched):
        raise HRNetError(f"strict load failed:\n{report.summary()}")
    logger.log(
        logging.WARNING if report.missing or report.mismatched else logging.INFO, "%s", report.summary()
    )
    return report


def load_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, object],
    *,
    strict_shapes: bool = True,
    strict: bool = False,
    layout: Layout | None = None,
) -> LoadReport:
    """Load an HRNet checkpoint of any supported layout into a backbone/classifier.

    Args:
        model: a :class:`~hrnet.models.hrnet.HighResolutionNet` (any output mode).
        source: checkpoint path or state dict (wrappers and prefixes are removed).
        strict_shapes: raise on a shape mismatch (default); else skip and report the key.
        strict: raise unless every key loads and every model key is provided.
        layout: skip detection (see :func:`detect_layout`).

    Returns:
        The :class:`LoadReport` (also logged). Loading an ImageNet checkpoint into a dense-task
        backbone reports the ``HEAD_MODULES`` keys as unused, which is expected.
    """
    state_dict, name = read_checkpoint(source)
    layout = layout or detect_layout(state_dict)
    return load_state_dict_checked(
        model,
        to_official(state_dict, layout),
        source=name,
        layout=layout,
        strict_shapes=strict_shapes,
        strict=strict,
    )


def export_state_dict(model: nn.Module, layout: ExportLayout = "official") -> StateDict:
    """The model's state dict in another codebase's naming.

    ``official``/``timm``: as is. ``mmdet``/``mmseg``/``mmpose``: every key under ``backbone.``.
    ``mmpretrain``: backbone under ``backbone.``, head under ``neck.0``/``head.fc``, head conv
    biases folded into their BatchNorm. Tensors are shared with the model except folded ones.
    """
    state_dict = dict(model.state_dict())
    if layout in ("official", "timm"):
        return state_dict
    if layout in ("mmdet", "mmseg", "mmpose"):
        return add_prefix(state_dict, "backbone.")
    if layout == "mmpretrain":
        return remap(fold_conv_bias(state_dict), OFFICIAL_TO_MMPRETRAIN)
    raise ValueError(f"unknown export layout {layout!r}")
