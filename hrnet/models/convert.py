"""Checkpoint interop: one strict entry that reads HRNet checkpoints of the published layouts.

:func:`load_pretrained` takes any model of :mod:`hrnet.models` (a bare
:class:`~hrnet.models.hrnet.HighResolutionNet`, the classification
:class:`~hrnet.models.classification.Classifier`, the segmentation, detection, pose and landmark
models) and a checkpoint file or state dict. It

1. reads the file (``torch.load(..., weights_only=True)``) and unwraps its container
   (:func:`read_checkpoint`; the container's other entries, such as an optimizer, are listed in
   the report as ignored);
2. detects the key layout (:func:`hrnet.models.convert_tasks.detect_task_layout`; the table of
   layouts is :data:`hrnet.models.convert_tasks.LAYOUTS`);
3. rewrites the keys into the model's names and loads them (:func:`load_state_dict_checked`);
4. raises :class:`~hrnet.errors.HRNetError` naming the keys when any tensor that should load did
   not (a model key left without a tensor, a checkpoint tensor with no place, a shape
   mismatch), unless ``partial=True``.

Checkpoint keys may stay unused only where a layout or the model's structure declares them not
part of the model; each such allowance is written once, next to its layout (the ``ignore``
column of :data:`~hrnet.models.convert_tasks.LAYOUTS`, the reasons of
:mod:`hrnet.models.convert_tasks`: :data:`IMAGENET_HEAD`, :data:`V1_FUSE`, :data:`TASK_HEAD`,
:data:`BN_COUNTER`) or next to the container wrappers below, and each use is listed in
:attr:`LoadReport.ignored` with its reason.

Backbone key names are those of the HRNet-Image-Classification release and timm (layout
``official``); :func:`export_state_dict` writes every layout that is read.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from hrnet.errors import HRNetError
from hrnet.models.convert_tasks import (
    BN_COUNTER,
    HEAD_MODULES,
    IMAGENET_HEAD,
    TASK_HEAD,
    V1_FUSE,
    add_zero_head_bias,
    convert_for,
    export_for,
    fold_conv_bias,
)

__all__ = [
    "BN_COUNTER",
    "HEAD_MODULES",
    "IMAGENET_HEAD",
    "TASK_HEAD",
    "V1_FUSE",
    "Checkpoint",
    "LoadReport",
    "Rule",
    "add_prefix",
    "add_zero_head_bias",
    "detect_layout",
    "export_state_dict",
    "fold_conv_bias",
    "load_pretrained",
    "load_state_dict_checked",
    "read_checkpoint",
    "read_source",
    "remap",
    "strip_prefix",
]

logger = logging.getLogger(__name__)

StateDict = dict[str, Tensor]
Source = str | os.PathLike[str] | Mapping[str, object]
Rule = tuple[str, str]
"""``(pattern, replacement)``: a regex that must match a whole key, and an ``re`` expand template."""

CONTAINER_ENTRY = "training-container entry, not a weight (optimizer state, epoch, metrics, metadata)"
DATA_PARALLEL = "module."  # DataParallel / DistributedDataParallel prefix of every key
FULL_MODEL = "model."  # HRNet-Semantic-Segmentation's FullModel: the network under `model.` ...
FULL_MODEL_LOSS = "loss."  # ... beside its loss, whose buffers (class weights) are not the network's
FULL_MODEL_LOSS_REASON = (
    "loss buffer of HRNet-Semantic-Segmentation's FullModel (cross-entropy class weights): "
    "not part of the network"
)

# the entries of a checkpoint container that may hold the state dict, in order of preference
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "module")


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


# --------------------------------------------------------------------------------------------
# Reading: containers and wrapper prefixes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """An unwrapped checkpoint: the tensors by key, the name used in messages and what was set aside."""

    state_dict: StateDict
    name: str  # the path, or "<state dict>"
    ignored: tuple[tuple[str, str], ...] = ()  # (entry or key, reason)


def _is_state_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def _unwrap(obj: object, name: str) -> Checkpoint:
    ignored: list[tuple[str, str]] = []
    path = ""
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        key = next((k for k in _WRAPPER_KEYS if _is_state_dict(obj.get(k)) or _has_inner(obj.get(k))), None)
        if key is None:
            raise HRNetError(
                f"{name}: no state dict found (top-level keys: {', '.join(map(str, list(obj)[:12]))})"
            )
        ignored += [(f"{path}{k}", CONTAINER_ENTRY) for k in obj if k != key]
        path = f"{path}{key}/"
        obj = obj[key]
    if not _is_state_dict(obj):
        raise HRNetError(f"{name}: expected a state dict (str -> Tensor), got {type(obj).__name__}")
    assert isinstance(obj, Mapping)
    state_dict: StateDict = {str(k): v for k, v in obj.items()}
    while True:
        if all(k.startswith(DATA_PARALLEL) for k in state_dict):
            state_dict = strip_prefix(state_dict, DATA_PARALLEL)
        elif any(k.startswith(FULL_MODEL) for k in state_dict) and all(
            k.startswith((FULL_MODEL, FULL_MODEL_LOSS)) for k in state_dict
        ):
            ignored += [(k, FULL_MODEL_LOSS_REASON) for k in state_dict if k.startswith(FULL_MODEL_LOSS)]
            state_dict = {k[len(FULL_MODEL) :]: v for k, v in state_dict.items() if k.startswith(FULL_MODEL)}
        else:
            break
    return Checkpoint(state_dict, name, tuple(ignored))


def _has_inner(obj: object) -> bool:
    """A mapping that holds a state dict under one of the wrapper keys (nested containers)."""
    return isinstance(obj, Mapping) and any(
        _is_state_dict(obj.get(k)) or _has_inner(obj.get(k)) for k in _WRAPPER_KEYS
    )


def read_source(source: Source) -> Checkpoint:
    """Read a checkpoint file (``weights_only=True``, on CPU) or take a state dict; unwrap it.

    Containers: the state dict is taken from ``state_dict``, ``model``, ``model_state_dict``,
    ``net`` or ``module`` (nested containers too: mmpretrain/MMSegmentation/MMDetection/mmpose
    ``{"meta", "state_dict"}``, the pose repository's ``checkpoint.pth``, this package's
    ``model.pt``); the other entries are returned as ignored. Prefixes: ``module.`` on every key
    (DataParallel, DistributedDataParallel) and HRNet-Semantic-Segmentation's ``FullModel``
    (``model.*`` beside ``loss.*``; the loss buffers are returned as ignored) are removed.

    Raises:
        HRNetError: missing file, a file ``torch.load`` refuses, or no state dict inside.
    """
    if isinstance(source, Mapping):
        return _unwrap(source, "<state dict>")
    name = os.fspath(source)
    if not os.path.isfile(name):
        raise HRNetError(f"{name}: checkpoint file not found")
    return _unwrap(load_tensors_only(name), name)


def load_tensors_only(path: str | os.PathLike[str]) -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)``; HRNetError naming the file
    and why it cannot be read: not a ``torch.save`` file at all (its first bytes), or one holding
    Python objects that weights-only loading refuses (the first such global). Such a file is
    never unpickled (that would run its code); its tensors must be saved again as a state dict.
    """
    import zipfile

    name = os.fspath(path)
    try:
        return torch.load(name, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        with open(name, "rb") as f:
            head = f.read(8)
        if head.startswith(b"PK\x03\x04") and not zipfile.is_zipfile(name):  # no central directory
            raise HRNetError(
                f"{name}: a truncated or corrupt torch.save archive (a zip without its end: an interrupted "
                "download or copy?); fetch or copy it again"
            ) from None
        if not (zipfile.is_zipfile(name) or head[:1] == b"\x80"):  # torch.save: a zip, or a pickle
            raise HRNetError(
                f"{name}: not a PyTorch checkpoint (neither a torch.save archive nor a pickle; it starts "
                f"with {head!r})"
            ) from None
        text = str(exc)
        unsafe = re.search(r"GLOBAL (\S+)", text)
        if unsafe is not None:
            raise HRNetError(
                f"{name}: holds Python objects besides tensors ({unsafe.group(1)}), which weights-only "
                "loading refuses and this project does not unpickle (it would run the file's code); save "
                "its state dict (torch.save(model.state_dict(), ...)) and load that"
            ) from None
        # torch's own text is advice about weights_only=False; the reason is the line after it
        torch_advice = ("Weights only load failed", "Please file an issue", "Check the documentation")
        lines = [
            line.strip() for line in text.splitlines() if line.strip() and not line.startswith(torch_advice)
        ]
        reason = lines[0] if lines else type(exc).__name__
        raise HRNetError(f"{name}: a corrupt or unreadable PyTorch file ({reason})") from None


def read_checkpoint(source: Source) -> tuple[StateDict, str]:
    """:func:`read_source` as ``(state_dict, name)``: the unwrapped tensors and the message name."""
    checkpoint = read_source(source)
    return checkpoint.state_dict, checkpoint.name


def detect_layout(state_dict: Mapping[str, Tensor]) -> str:
    """The backbone-level layout of an unwrapped state dict: ``mmpretrain`` (``backbone.`` plus
    ``neck.0.*`` head), ``openmmlab`` (``backbone.``) or ``official`` (top-level names).

    Task layouts need the model: :func:`hrnet.models.convert_tasks.detect_task_layout`.
    """
    keys = list(state_dict)
    if any(k.startswith("backbone.") for k in keys):
        if any(k.startswith(("neck.0.increase_layers.", "neck.0.final_layer.")) for k in keys):
            return "mmpretrain"
        return "openmmlab"
    return "official"


# --------------------------------------------------------------------------------------------
# Loading with a report
# --------------------------------------------------------------------------------------------


def _group(keys: Sequence[str]) -> str:
    if len(keys) <= 4:
        return ", ".join(keys)
    counts = Counter(
        ".".join(k.split(".")[:2]) if k.startswith("backbone.") else k.split(".", 1)[0] for k in keys
    )
    return ", ".join(f"{module} ({n})" for module, n in counts.items())


def _some(keys: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_pretrained` did. Keys are in the model's naming, except ``ignored`` and
    ``unused`` (the checkpoint's keys where they have no model name)."""

    source: str  # checkpoint path, or "<state dict>"
    layout: str  # layout the keys were converted from (hrnet.models.convert_tasks.LAYOUTS)
    loaded: tuple[str, ...]  # model keys that received a tensor
    missing: tuple[str, ...]  # model keys the checkpoint lacks (BatchNorm num_batches_tracked not counted)
    unused: tuple[str, ...]  # checkpoint keys with no place in the model (not declared ignorable)
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()  # (key, ckpt, model) shapes
    ignored: tuple[tuple[str, str], ...] = field(default=())  # (checkpoint key or entry, declared reason)
    partial: bool = False  # loaded with partial=True

    @property
    def complete(self) -> bool:
        """Every model tensor loaded and every checkpoint tensor used (or declared ignorable)."""
        return not (self.missing or self.unused or self.mismatched)

    def summary(self) -> str:
        """Counts, then what was left out and why, keys grouped by module."""
        lines = [f"{self.source}: loaded {len(self.loaded)} tensors (layout {self.layout})"]
        if self.missing:
            lines.append(f"  missing {len(self.missing)} (left as initialised): {_group(self.missing)}")
        if self.unused:
            lines.append(f"  unused {len(self.unused)} (no place in the model): {_group(self.unused)}")
        for key, ckpt_shape, model_shape in self.mismatched:
            lines.append(f"  skipped {key}: checkpoint {ckpt_shape} vs model {model_shape}")
        by_reason: dict[str, list[str]] = {}
        for key, reason in self.ignored:
            by_reason.setdefault(reason, []).append(key)
        for reason, keys in by_reason.items():
            lines.append(f"  ignored {len(keys)} ({reason}): {_group(keys)}")
        return "\n".join(lines)


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str = "<state dict>",
    layout: str = "native",
    partial: bool = False,
    ignorable: Mapping[str, str] | None = None,
    unused: Sequence[str] = (),
    ignored: Sequence[tuple[str, str]] = (),
) -> LoadReport:
    """Load the tensors of ``state_dict`` (keys in the model's names) and check the result.

    Args:
        ignorable: keys of ``state_dict`` that may stay unused, with the declared reason.
        unused: checkpoint keys already known to have no place (listed as unused).
        ignored: ``(key, reason)`` set aside before (container entries, layout extras).

    BatchNorm ``num_batches_tracked`` counters are never required and may stay unused.

    Raises:
        HRNetError: without ``partial``, any missing, unused or mismatched tensor (the message
            names the keys); with ``partial``, a load that fits no tensor at all.
    """
    own = model.state_dict()
    ignorable = dict(ignorable or {})
    to_load: StateDict = {}
    unused_keys = list(unused)
    ignored_keys = list(ignored)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for key, value in state_dict.items():
        if key not in own:
            if key in ignorable:
                ignored_keys.append((key, ignorable[key]))
            elif key.endswith("num_batches_tracked"):
                ignored_keys.append((key, BN_COUNTER))
            else:
                unused_keys.append(key)
        elif value.shape != own[key].shape:
            mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            to_load[key] = value
    skipped = {m[0] for m in mismatched}
    missing = tuple(
        k for k in own if k not in to_load and k not in skipped and not k.endswith("num_batches_tracked")
    )
    report = LoadReport(
        source=source,
        layout=layout,
        loaded=tuple(to_load),
        missing=missing,
        unused=tuple(unused_keys),
        mismatched=tuple(mismatched),
        ignored=tuple(ignored_keys),
        partial=partial,
    )
    problems = []
    if report.missing:
        problems.append(f"model keys without a tensor: {_some(report.missing)}")
    if report.unused:
        problems.append(f"checkpoint tensors with no place: {_some(report.unused)}")
    for key, ckpt_shape, model_shape in report.mismatched[:8]:
        problems.append(
            f"key {key!r} has shape {ckpt_shape} in the checkpoint but {model_shape} in the model"
        )
    what = f"{source} -> {type(model).__name__} (layout {layout})"
    if not to_load:
        raise HRNetError(f"{what}: no tensor of the checkpoint fits the model; " + "; ".join(problems))
    if not partial and not report.complete:
        raise HRNetError(
            f"{what}: incomplete load; "
            + "; ".join(problems)
            + f"\n{report.summary()}\n(to load the tensors that fit: partial=True in Python; on the command "
            "line --partial with --weights, or --init-from FILE --init-partial to start a training)"
        )
    with torch.no_grad():
        result = model.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    logger.log(logging.INFO if report.complete else logging.WARNING, "%s", report.summary())
    return report


def load_pretrained(
    model: nn.Module,
    source: Source,
    *,
    partial: bool = False,
    layout: str | None = None,
) -> LoadReport:
    """Load a checkpoint of any published HRNet layout into any model of :mod:`hrnet.models`.

    Args:
        model: a backbone (:class:`~hrnet.models.hrnet.HighResolutionNet`, any output mode), the
            classification :class:`~hrnet.models.classification.Classifier`, or a segmentation,
            detection (Faster/Mask/Cascade R-CNN), pose or landmark model.
        source: checkpoint path or state dict (containers and wrapper prefixes are removed; see
            :func:`read_source`).
        partial: load the tensors that fit and report (log) the rest, instead of raising.
        layout: skip detection; an id of :data:`hrnet.models.convert_tasks.LAYOUTS`.

    Returns:
        The :class:`LoadReport` (also logged; a warning when something was left out).

    Raises:
        HRNetError: unreadable file, unknown layout, or (without ``partial``) a model key left
            without a tensor, a checkpoint tensor with no place that no layout declares
            ignorable, or a shape mismatch; the message names the keys. Also with ``partial``
            when no tensor fits at all.
    """
    checkpoint = read_source(source)
    converted = convert_for(model, checkpoint.state_dict, layout)
    return load_state_dict_checked(
        model,
        converted.state_dict,
        source=checkpoint.name,
        layout=converted.layout,
        partial=partial,
        ignorable=converted.ignorable,
        unused=converted.unused,
        ignored=checkpoint.ignored + converted.ignored,
    )


def export_state_dict(model: nn.Module, layout: str = "official") -> StateDict:
    """The model's state dict in the key names (and conventions) of ``layout``.

    Backbones and classifiers: ``official``/``timm`` (as is), ``mmpretrain`` (head conv biases
    folded into their BatchNorm), ``openmmlab``/``mmdet``/``mmseg``/``mmpose`` (under
    ``backbone.``). Task models: their task layouts (``mmseg``, ``hrnet_seg``, ``mmdet``,
    ``hrnet_det``, ``mmpose``, ``hrnet_pose``, ``hrnet_face``) and ``native`` (this package's
    names). Containers and wrapper prefixes are the caller's (see
    :data:`hrnet.models.convert_tasks.LAYOUTS` for what each published file holds).

    Raises:
        HRNetError: a layout that does not describe this kind of model, or a model key the
            layout has no name for.
    """
    return export_for(model, layout)
