"""Checkpoint interop for the task models: key rules from the published task layouts to ours.

Our task models keep the backbone under one prefix (``backbone.`` for segmentation, pose and
landmarks; ``backbone.body.`` for the R-CNNs) and name their heads as follows; the rules below
rewrite each reference layout into these names (HRNET.md §3):

==========  =====================================================  ==================================
layout      source                                                 head keys (theirs -> ours)
==========  =====================================================  ==================================
mmseg       MMSEG FCN (``backbone.*``)                             ``decode_head.*`` (same names)
ss          HRNet-Semantic-Segmentation (top-level backbone)       ``last_layer.{0,1,3}`` ->
                                                                   ``decode_head.convs.0.{conv,bn}``,
                                                                   ``decode_head.conv_seg``; the bias
                                                                   of ``last_layer.0`` is folded into
                                                                   the BN (``running_mean -= b``)
mmdet       MMDET HRFPN R-CNNs (``backbone.*``)                    ``neck.reduction_conv.conv``,
                                                                   ``neck.fpn_convs.{i}.conv``,
                                                                   ``rpn_head.*``, ``roi_head.bbox_head.*``
od          HRNet-Object-Detection (mmdet 0.x, ``backbone.*``)     ``neck.reduction_conv.0``,
                                                                   ``neck.fpn_conv.{i}``, ``rpn_head.*``,
                                                                   ``bbox_head.*``
pose        deep-high-resolution-net (top-level backbone)          ``final_layer``
mmpose      MMPOSE top-down heatmap (``backbone.*``)               ``keypoint_head.final_layer`` or
                                                                   ``head.final_layer``
fl          HRNet-Facial-Landmark-Detection (top-level backbone)   ``head.{0,1,3}`` (same names)
backbone    an ImageNet/backbone checkpoint in any layout          none (the head stays as built)
            :func:`hrnet.models.convert.detect_layout` knows
==========  =====================================================  ==================================

Box-head classes: MMDET 2.x puts the background last in ``fc_cls`` and has no background rows in
``fc_reg``; torchvision (and mmdet 0.x, ``od``) put it first. The ``mmdet`` rules move the row and
give the background zero regression weights. Anchors, box coders and RoI level mapping of the two
agree (ratio-major anchors, ``(10, 10, 5, 5)`` box weights, finest scale 56); mmdet 0.x computed
widths as ``x2 - x1 + 1``, so ``od`` weights give slightly shifted boxes here.

Wrappers and ``module.``/``model.`` prefixes are removed by :func:`hrnet.models.convert.read_checkpoint`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from hrnet.models.convert import (
    LoadReport,
    Rule,
    add_prefix,
    detect_layout,
    load_state_dict_checked,
    read_checkpoint,
    remap,
    to_official,
)
from hrnet.models.hrnet import HighResolutionNet

__all__ = [
    "TASK_RULES",
    "TaskLayout",
    "backbone_prefix",
    "detect_task_layout",
    "load_task_pretrained",
    "to_task",
]

StateDict = dict[str, Tensor]
TaskLayout = Literal["native", "mmseg", "ss", "mmdet", "od", "pose", "mmpose", "fl", "backbone"]

# Head rules per layout; `{B}` stands for the escaped backbone prefix of the model. A final rule
# places the backbone keys under the prefix.
TASK_RULES: dict[str, tuple[Rule, ...]] = {
    "mmseg": ((r"(decode_head|auxiliary_head)\.(.+)", r"\1.\2"), (r"backbone\.(.+)", r"{B}\1")),
    "ss": (
        (r"last_layer\.0\.weight", r"decode_head.convs.0.conv.weight"),
        (r"last_layer\.0\.bias", r"decode_head.convs.0.conv.bias"),  # folded into the BN below
        (r"last_layer\.1\.(.+)", r"decode_head.convs.0.bn.\1"),
        (r"last_layer\.3\.(.+)", r"decode_head.conv_seg.\1"),
        (r"(.+)", r"{B}\1"),
    ),
    "mmdet": (
        (r"neck\.reduction_conv\.conv\.(.+)", r"backbone.neck.reduction_conv.\1"),
        (r"neck\.fpn_convs\.(\d+)\.conv\.(.+)", r"backbone.neck.fpn_convs.\1.\2"),
        (r"rpn_head\.rpn_conv\.(.+)", r"rpn.head.conv.0.0.\1"),
        (r"rpn_head\.rpn_cls\.(.+)", r"rpn.head.cls_logits.\1"),
        (r"rpn_head\.rpn_reg\.(.+)", r"rpn.head.bbox_pred.\1"),
        (r"roi_head\.bbox_head\.shared_fcs\.0\.(.+)", r"roi_heads.box_head.fc6.\1"),
        (r"roi_head\.bbox_head\.shared_fcs\.1\.(.+)", r"roi_heads.box_head.fc7.\1"),
        (r"roi_head\.bbox_head\.fc_cls\.(.+)", r"roi_heads.box_predictor.cls_score.\1"),
        (r"roi_head\.bbox_head\.fc_reg\.(.+)", r"roi_heads.box_predictor.bbox_pred.\1"),
        (r"backbone\.(.+)", r"{B}\1"),
    ),
    "od": (
        (r"neck\.reduction_conv\.0\.(.+)", r"backbone.neck.reduction_conv.\1"),
        (r"neck\.fpn_conv\.(\d+)\.(.+)", r"backbone.neck.fpn_convs.\1.\2"),
        (r"rpn_head\.rpn_conv\.(.+)", r"rpn.head.conv.0.0.\1"),
        (r"rpn_head\.rpn_cls\.(.+)", r"rpn.head.cls_logits.\1"),
        (r"rpn_head\.rpn_reg\.(.+)", r"rpn.head.bbox_pred.\1"),
        (r"bbox_head\.shared_fcs\.0\.(.+)", r"roi_heads.box_head.fc6.\1"),
        (r"bbox_head\.shared_fcs\.1\.(.+)", r"roi_heads.box_head.fc7.\1"),
        (r"bbox_head\.fc_cls\.(.+)", r"roi_heads.box_predictor.cls_score.\1"),
        (r"bbox_head\.fc_reg\.(.+)", r"roi_heads.box_predictor.bbox_pred.\1"),
        (r"backbone\.(.+)", r"{B}\1"),
    ),
    "pose": ((r"final_layer\.(weight|bias)", r"final_layer.\1"), (r"(.+)", r"{B}\1")),
    "mmpose": (
        (r"(?:keypoint_head|head)\.final_layer\.(.+)", r"final_layer.\1"),
        (r"backbone\.(.+)", r"{B}\1"),
    ),
    "fl": ((r"head\.(\d+)\.(.+)", r"head.\1.\2"), (r"(.+)", r"{B}\1")),
}


def backbone_prefix(model: nn.Module) -> str:
    """The state-dict prefix of the model's :class:`HighResolutionNet` (``""`` for a bare backbone)."""
    for name, module in model.named_modules():
        if isinstance(module, HighResolutionNet):
            return f"{name}." if name else ""
    raise ValueError(f"{type(model).__name__} contains no HighResolutionNet")


def detect_task_layout(state_dict: Mapping[str, Tensor], model: nn.Module) -> TaskLayout:
    """Guess the layout of an (unwrapped) task checkpoint for ``model`` (see the module table)."""
    keys = set(state_dict)
    own = set(model.state_dict())
    if keys <= own:
        return "native"

    def has(pattern: str) -> bool:
        compiled = re.compile(pattern)
        return any(compiled.match(k) for k in keys)

    if has(r"decode_head\."):
        return "mmseg"
    if has(r"last_layer\.\d+\."):
        return "ss"
    if has(r"neck\.reduction_conv\.conv\."):
        return "mmdet"
    if has(r"neck\.reduction_conv\.0\."):
        return "od"
    if has(r"(keypoint_head|head)\.final_layer\."):
        return "mmpose"
    if "final_layer.weight" in keys:
        return "pose"
    if has(r"head\.\d+\.") and not has(r"backbone\."):
        return "fl"
    return "backbone"


def _fold_bias_into_bn(state_dict: StateDict, conv: str, bn: str) -> StateDict:
    """``BN(conv(x) + b) == BN'(conv(x))`` with ``running_mean' = running_mean - b``; drops the bias."""
    bias_key = f"{conv}.bias"
    if bias_key not in state_dict:
        return state_dict
    out = dict(state_dict)
    bias = out.pop(bias_key)
    out[f"{bn}.running_mean"] = out[f"{bn}.running_mean"] - bias
    return out


def _mmdet_background_first(state_dict: StateDict, prefix: str) -> StateDict:
    """MMDET 2.x box predictor -> torchvision's: background row first, zero background deltas."""
    cls_w = f"{prefix}.cls_score.weight"
    if cls_w not in state_dict:
        return state_dict
    out = dict(state_dict)
    for kind in ("weight", "bias"):
        key = f"{prefix}.cls_score.{kind}"
        out[key] = torch.cat([out[key][-1:], out[key][:-1]])
    num_classes = out[cls_w].shape[0]
    for kind in ("weight", "bias"):
        key = f"{prefix}.bbox_pred.{kind}"
        if key in out and out[key].shape[0] == 4 * (num_classes - 1):  # class-specific, no background
            out[key] = torch.cat([out[key].new_zeros((4, *out[key].shape[1:])), out[key]])
    return out


def to_task(state_dict: Mapping[str, Tensor], layout: TaskLayout, model: nn.Module) -> StateDict:
    """Rewrite a checkpoint of ``layout`` into ``model``'s key names."""
    prefix = backbone_prefix(model)
    if layout == "native":
        return dict(state_dict)
    if layout == "backbone":
        return add_prefix(to_official(state_dict, detect_layout(state_dict)), prefix)
    if layout not in TASK_RULES:
        raise ValueError(f"unknown task checkpoint layout {layout!r}; known: {', '.join(TASK_RULES)}")
    escaped = prefix.replace("\\", "\\\\")
    rules = tuple((pattern, repl.replace("{B}", escaped)) for pattern, repl in TASK_RULES[layout])
    out = remap(state_dict, rules)
    if layout == "ss":
        out = _fold_bias_into_bn(out, "decode_head.convs.0.conv", "decode_head.convs.0.bn")
    if layout == "mmdet":
        out = _mmdet_background_first(out, "roi_heads.box_predictor")
    return out


def load_task_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, object],
    *,
    layout: TaskLayout | None = None,
    strict_shapes: bool = True,
    strict: bool = False,
) -> LoadReport:
    """Load a task checkpoint (or a backbone checkpoint) of any layout in the module table.

    Args:
        model: a segmentation, detection, pose or landmark model of :mod:`hrnet.models`.
        source: checkpoint path or state dict.
        layout: skip detection (:func:`detect_task_layout`).
        strict_shapes: raise on a shape mismatch (naming the key and both shapes); else skip it.
        strict: raise unless every key loads and every model key is provided.

    Returns:
        The :class:`~hrnet.models.convert.LoadReport`, keys in the model's names. A backbone
        checkpoint leaves the heads missing and the ImageNet head unused, both reported.

    Raises:
        HRNetError: unreadable file, shape mismatch, or (``strict``) an incomplete load.
    """
    state_dict, name = read_checkpoint(source)
    layout = layout or detect_task_layout(state_dict, model)
    return load_state_dict_checked(
        model,
        to_task(state_dict, layout, model),
        source=name,
        layout=layout,
        strict_shapes=strict_shapes,
        strict=strict,
    )
