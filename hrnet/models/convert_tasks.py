"""The published checkpoint layouts and the key rules between them and this package's models.

Each :class:`Layout` of :data:`LAYOUTS` describes the state dict one codebase writes for one
kind of model: the keys as ``(theirs, ours)`` templates (``{x}`` any rest of the key, ``{i}``
an index), read in both directions (:func:`convert_for` imports, :func:`export_for` exports),
conventions that differ beyond names (``to_ours``/``to_theirs``), the keys it declares not part
of the model (``ignore``), and what the published file holds around the state dict.

"Ours" are the names of this package's model of the layout's kind with its backbone at the
kind's prefix (:data:`KIND_PREFIX`); :func:`convert_for` then moves the backbone to the target
model's prefix, so a checkpoint of one kind initialises the backbone of another (the rest is then
reported: ignored when the target is a bare backbone, unused otherwise).

=========== ============ =============================================== ============================================
id          kind         source                                          published file (what :func:`read_source`
                                                                         unwraps) and declared extras
=========== ============ =============================================== ============================================
official    backbone     HRNet-Image-Classification release, timm;       plain state dict; into a dense backbone the
                         also the ImageNet files of the pose repository  ImageNet head is ignored (``IMAGENET_HEAD``)
mmpretrain  backbone     mmpretrain ImageClassifier (HRNet, HRFuseScales ``{"meta", "state_dict"}``; its head convs have
                         neck, linear head)                              no bias (folded into the BatchNorm on export)
openmmlab   backbone     an OpenMMLab backbone alone (``backbone.*``)    ``{"meta", "state_dict"}``
mmseg       segmentation MMSegmentation EncoderDecoder + FCNHead         ``{"meta", "state_dict"}``
                         (``fcn_hr18*`` configs); also this package's
                         segmentation names
hrnet_seg   segmentation HRNet-Semantic-Segmentation ``seg_hrnet``       ``best.pth``/``final_state.pth``: the
                         (``tools/train.py``)                            ``FullModel`` state dict, ``model.*`` plus
                                                                         ``loss.criterion.weight`` when the loss has
                                                                         class weights (ignored, a loss buffer);
                                                                         ``checkpoint.pth.tar``: ``{"epoch",
                                                                         "best_mIoU", "state_dict", "optimizer"}``
mmdet       detection    MMDetection 2.x/3.x Faster/Mask/Cascade R-CNN,  ``{"meta", "state_dict"}``
                         Cascade Mask R-CNN, HTC with HRFPN
                         (``*_rcnn_hrnetv2p_*``, ``htc_hrnetv2p_*``)
hrnet_det   detection    HRNet-Object-Detection (MMDetection 0.x/1.x)    ``{"meta", "state_dict"[, "optimizer"]}``
                         Faster/Mask/Cascade (Mask) R-CNN, HTC, HRFPN
mmpose      pose         mmpose top-down heatmap (1.x ``head.*``, 0.x    ``{"meta", "state_dict"}``
                         ``keypoint_head.*``; export writes 1.x)
hrnet_pose  pose         deep-high-resolution-net.pytorch ``pose_hrnet`` ``final_state.pth``/``model_best.pth``:
                         (``tools/train.py``)                            ``model.module.state_dict()`` (top-level
                                                                         names; forks that save the DataParallel's
                                                                         own dict add ``module.``);
                                                                         ``checkpoint.pth``: ``{"epoch", "model",
                                                                         "state_dict"`` (``module.`` keys),
                                                                         ``"best_state_dict", "perf", "optimizer"}``
hrnet_face  landmarks    HRNet-Facial-Landmark-Detection (release files  the network's state dict (top-level backbone,
                         ``HR18-300W.pth`` ...; ``final_state.pth``)     ``head.{0,1,3}``), plain or under
                                                                         ``state_dict``, as its ``tools/test.py``
                                                                         loads it into the unwrapped network
native      each kind    this package's own names (``model.pt``,         ``{"format", "config", "model", "info"}``
                         ``model.state_dict()``)
=========== ============ =============================================== ============================================

Every container's other entries (optimizer, epoch, metrics, metadata) are ignored and listed.

Box-head classes: MMDetection 2.x/3.x puts the background last in ``fc_cls``, has no background
rows in a class-specific ``fc_reg`` and no background channel in the mask logits; torchvision
(and MMDetection 0.x, ``hrnet_det``) put it first. The ``mmdet`` conventions move the row and
give the background zero regression weights and mask logits (never used at inference);
export drops them. Anchors, box coders and RoI level mapping agree (ratio-major anchors,
``(10, 10, 5, 5)`` box weights, finest scale 56); MMDetection 0.x computed widths as
``x2 - x1 + 1``, so ``hrnet_det`` weights give slightly shifted boxes here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hrnet.errors import HRNetError
from hrnet.models.hrnet import HighResolutionNet

__all__ = [
    "BN_COUNTER",
    "HEAD_MODULES",
    "IMAGENET_HEAD",
    "KIND_PREFIX",
    "LAYOUTS",
    "TASK_HEAD",
    "V1_FUSE",
    "Converted",
    "Layout",
    "add_zero_head_bias",
    "backbone_prefix",
    "convert_for",
    "detect_task_layout",
    "export_for",
    "fold_conv_bias",
    "layout_ids",
    "model_kind",
]

StateDict = dict[str, Tensor]
# modules of the ImageNet classification head of HRNet-Image-Classification / timm
HEAD_MODULES: tuple[str, ...] = ("incre_modules", "downsamp_modules", "final_layer", "classifier")

# Reasons a checkpoint key may stay unused without `partial` (besides the layouts' own, in
# hrnet.models.convert_tasks.LAYOUTS). Each is applied in one place below.
IMAGENET_HEAD = "ImageNet classification head: a dense-task backbone has none"
V1_FUSE = (
    "fuse layers into branches 1-3 of the last stage-4 module: the V1 (pose) backbone computes "
    "only branch 0 there"
)
TASK_HEAD = "task head and neck of a {kind} checkpoint: the model is a backbone"
BN_COUNTER = "BatchNorm step counter: the model's norm layers keep none (e.g. FrozenBatchNorm2d)"

_HEAD_CONV_BN = re.compile(r"((?:.+\.)?(?:downsamp_modules\.\d+|final_layer))\.0\.weight")


def fold_conv_bias(state_dict: Mapping[str, Tensor]) -> StateDict:
    """Fold the classification-head conv biases into their BatchNorm (``running_mean -= bias``).

    Applies to ``downsamp_modules.{i}.0`` / ``final_layer.0`` (each followed by the norm ``.1``), so
    ``BN(conv(x) + b) == BN'(conv(x))``; the bias keys are removed.
    """
    out = dict(state_dict)
    for key in state_dict:
        match = _HEAD_CONV_BN.fullmatch(key)
        if match and f"{match[1]}.0.bias" in out and f"{match[1]}.1.running_mean" in out:
            bias = out.pop(f"{match[1]}.0.bias")
            mean_key = f"{match[1]}.1.running_mean"
            out[mean_key] = out[mean_key] - bias
    return out


def add_zero_head_bias(state_dict: Mapping[str, Tensor]) -> StateDict:
    """The inverse layout step of :func:`fold_conv_bias`: bias-free head convs get a zero bias."""
    out = dict(state_dict)
    for key, value in state_dict.items():
        match = _HEAD_CONV_BN.fullmatch(key)
        if match and f"{match[1]}.0.bias" not in out and f"{match[1]}.1.running_mean" in out:
            out[f"{match[1]}.0.bias"] = value.new_zeros(value.shape[0])
    return out


Template = tuple[str, str]  # (their key, our key) with {x} (any rest) and {i}/{j} (an index)

# where each kind of model keeps its HighResolutionNet
KIND_PREFIX: dict[str, str] = {
    "backbone": "",
    "classifier": "net.",
    "segmentation": "backbone.",
    "detection": "backbone.body.",
    "pose": "backbone.",
    "landmarks": "backbone.",
}
BACKBONE_KINDS = frozenset({"backbone", "classifier"})  # models that are a backbone (with its ImageNet head)


@dataclass(frozen=True)
class Layout:
    """One published checkpoint layout (see the module table)."""

    id: str
    kind: str  # the kind of model whose state dict it describes (a key of KIND_PREFIX)
    source: str  # who writes it (public names)
    keys: tuple[Template, ...]  # first match wins, in both directions
    signature: tuple[str, ...] = ()  # detection: each regex must fully match some key
    ignore: tuple[tuple[str, str], ...] = ()  # (regex on their keys, reason): not part of the model
    to_ours: Callable[[StateDict], StateDict] | None = None  # conventions, applied after renaming
    to_theirs: Callable[[StateDict], StateDict] | None = None  # their inverse, applied before


# --------------------------------------------------------------------------------------------
# Conventions beyond names
# --------------------------------------------------------------------------------------------

_SEG_CONV, _SEG_BN = "decode_head.convs.0.conv", "decode_head.convs.0.bn"


def _fold_seg_bias(sd: StateDict) -> StateDict:
    """HRNet-Semantic-Segmentation's head conv has a bias, ours none: ``BN(conv(x) + b)`` equals
    ``BN'(conv(x))`` with ``running_mean' = running_mean - b``."""
    if f"{_SEG_CONV}.bias" not in sd or f"{_SEG_BN}.running_mean" not in sd:
        return sd
    out = dict(sd)
    bias = out.pop(f"{_SEG_CONV}.bias")
    out[f"{_SEG_BN}.running_mean"] = out[f"{_SEG_BN}.running_mean"] - bias
    return out


def _zero_seg_bias(sd: StateDict) -> StateDict:
    out = dict(sd)
    weight = out.get(f"{_SEG_CONV}.weight")
    if weight is not None and f"{_SEG_CONV}.bias" not in out:
        out[f"{_SEG_CONV}.bias"] = weight.new_zeros(weight.shape[0])
    return out


_PREDICTOR = re.compile(r"(roi_heads\.(?:stages\.\d+\.)?box_predictor)\.cls_score\.weight")
# the class-specific mask logits: Mask R-CNN's, and each stage's of Cascade Mask R-CNN / HTC
_MASK_LOGITS = re.compile(
    r"roi_heads\.(?:mask_heads\.\d+\.)?mask_predictor\.mask_fcn_logits\.(?:weight|bias)"
)


def _mmdet_to_ours(sd: StateDict) -> StateDict:
    """MMDetection 2.x/3.x -> torchvision: background first, zero background deltas and mask logits."""
    out = dict(sd)
    for key in sd:
        match = _PREDICTOR.fullmatch(key)
        if not match:
            continue
        prefix = match[1]
        for kind in ("weight", "bias"):
            cls = out[f"{prefix}.cls_score.{kind}"]
            out[f"{prefix}.cls_score.{kind}"] = torch.cat([cls[-1:], cls[:-1]])
        num_classes = out[key].shape[0]
        reg = f"{prefix}.bbox_pred"
        # Faster/Mask R-CNN: class-specific deltas without background; the cascade stages' are class-agnostic
        if ".stages." not in prefix and out.get(f"{reg}.weight", torch.empty(0)).shape[:1] == (
            4 * (num_classes - 1),
        ):
            for kind in ("weight", "bias"):
                value = out[f"{reg}.{kind}"]
                out[f"{reg}.{kind}"] = torch.cat([value.new_zeros((4, *value.shape[1:])), value])
    for key in sd:
        if _MASK_LOGITS.fullmatch(key):
            out[key] = torch.cat([out[key].new_zeros((1, *out[key].shape[1:])), out[key]])
    return out


def _mmdet_to_theirs(sd: StateDict) -> StateDict:
    """The inverse of :func:`_mmdet_to_ours` (the background rows are dropped)."""
    out = dict(sd)
    for key in sd:
        match = _PREDICTOR.fullmatch(key)
        if not match:
            continue
        prefix = match[1]
        num_classes = out[key].shape[0]
        for kind in ("weight", "bias"):
            cls = out[f"{prefix}.cls_score.{kind}"]
            out[f"{prefix}.cls_score.{kind}"] = torch.cat([cls[1:], cls[:1]])
        reg = f"{prefix}.bbox_pred"
        if ".stages." not in prefix and out.get(f"{reg}.weight", torch.empty(0)).shape[:1] == (
            4 * num_classes,
        ):
            for kind in ("weight", "bias"):
                out[f"{reg}.{kind}"] = out[f"{reg}.{kind}"][4:]
    for key in sd:
        if _MASK_LOGITS.fullmatch(key):
            out[key] = out[key][1:]
    return out


# --------------------------------------------------------------------------------------------
# The layouts (detection order)
# --------------------------------------------------------------------------------------------

_RPN: tuple[Template, ...] = (
    ("rpn_head.rpn_conv.{x}", "rpn.head.conv.0.0.{x}"),
    ("rpn_head.rpn_cls.{x}", "rpn.head.cls_logits.{x}"),
    ("rpn_head.rpn_reg.{x}", "rpn.head.bbox_pred.{x}"),
)


def _box_heads(root: str) -> tuple[Template, ...]:
    """Faster/Mask R-CNN box head (``{root}``), the Cascade stages (``{root}.{i}``), the mask head;
    the per-stage mask heads of Cascade Mask R-CNN / HTC (``{mask}.{i}``, HTC's ``conv_res``) and
    HTC's ``FusedSemanticHead`` (MMDetection mmdet/models/roi_heads/mask_heads/htc_mask_head.py,
    fused_semantic_head.py: every conv but ``conv_logits`` a ``ConvModule``, hence ``.conv``)."""
    mask = root.replace("bbox_head", "mask_head")
    semantic = root.replace("bbox_head", "semantic_head")
    return (
        (f"{root}.shared_fcs.0.{{x}}", "roi_heads.box_head.fc6.{x}"),
        (f"{root}.shared_fcs.1.{{x}}", "roi_heads.box_head.fc7.{x}"),
        (f"{root}.fc_cls.{{x}}", "roi_heads.box_predictor.cls_score.{x}"),
        (f"{root}.fc_reg.{{x}}", "roi_heads.box_predictor.bbox_pred.{x}"),
        (f"{root}.{{i}}.shared_fcs.0.{{x}}", "roi_heads.stages.{i}.box_head.fc6.{x}"),
        (f"{root}.{{i}}.shared_fcs.1.{{x}}", "roi_heads.stages.{i}.box_head.fc7.{x}"),
        (f"{root}.{{i}}.fc_cls.{{x}}", "roi_heads.stages.{i}.box_predictor.cls_score.{x}"),
        (f"{root}.{{i}}.fc_reg.{{x}}", "roi_heads.stages.{i}.box_predictor.bbox_pred.{x}"),
        (f"{mask}.convs.{{i}}.conv.{{x}}", "roi_heads.mask_head.{i}.0.{x}"),
        (f"{mask}.upsample.{{x}}", "roi_heads.mask_predictor.conv5_mask.{x}"),
        (f"{mask}.conv_logits.{{x}}", "roi_heads.mask_predictor.mask_fcn_logits.{x}"),
        (f"{mask}.{{i}}.convs.{{j}}.conv.{{x}}", "roi_heads.mask_heads.{i}.mask_head.{j}.0.{x}"),
        (f"{mask}.{{i}}.upsample.{{x}}", "roi_heads.mask_heads.{i}.mask_predictor.conv5_mask.{x}"),
        (f"{mask}.{{i}}.conv_logits.{{x}}", "roi_heads.mask_heads.{i}.mask_predictor.mask_fcn_logits.{x}"),
        (f"{mask}.{{i}}.conv_res.conv.{{x}}", "roi_heads.mask_heads.{i}.conv_res.{x}"),
        (f"{semantic}.lateral_convs.{{i}}.conv.{{x}}", "roi_heads.semantic_head.lateral_convs.{i}.{x}"),
        (f"{semantic}.convs.{{i}}.conv.{{x}}", "roi_heads.semantic_head.convs.{i}.{x}"),
        (f"{semantic}.conv_embedding.conv.{{x}}", "roi_heads.semantic_head.conv_embedding.{x}"),
        (f"{semantic}.conv_logits.{{x}}", "roi_heads.semantic_head.conv_logits.{x}"),
    )


# MMDetection's FCOSHead (``bbox_head.{cls,reg}_convs.{i}.{conv,gn}``, ``conv_cls``, ``conv_reg``,
# ``conv_centerness``, ``scales.{i}.scale``): hrnet.models.detection_anchor_free.MMDetFCOSHead keeps
# the names under ``head.``; its ``conv_cls`` has no background row either (sigmoid classes)
_FCOS_HEAD: tuple[Template, ...] = (("bbox_head.{x}", "head.{x}"),)


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "mmpretrain",
        "backbone",
        "mmpretrain ImageClassifier (HRNet backbone, HRFuseScales neck, linear head)",
        keys=(
            ("neck.0.increase_layers.{i}.{x}", "incre_modules.{i}.{x}"),
            ("neck.0.downsample_layers.{i}.conv.{x}", "downsamp_modules.{i}.0.{x}"),
            ("neck.0.downsample_layers.{i}.bn.{x}", "downsamp_modules.{i}.1.{x}"),
            ("neck.0.final_layer.conv.{x}", "final_layer.0.{x}"),
            ("neck.0.final_layer.bn.{x}", "final_layer.1.{x}"),
            ("head.fc.{x}", "classifier.{x}"),
            ("backbone.{x}", "{x}"),
        ),
        signature=(r"backbone\..+", r"neck\.0\.(increase_layers|final_layer)\..+"),
        to_ours=add_zero_head_bias,
        to_theirs=fold_conv_bias,
    ),
    Layout(
        "mmseg",
        "segmentation",
        "MMSegmentation EncoderDecoder with FCNHead (fcn_hr18 configs)",
        keys=(
            ("backbone.{x}", "backbone.{x}"),
            ("decode_head.{x}", "decode_head.{x}"),
            ("auxiliary_head.{x}", "auxiliary_head.{x}"),
        ),
        signature=(r"decode_head\..+",),
    ),
    Layout(
        "hrnet_seg",
        "segmentation",
        "HRNet-Semantic-Segmentation seg_hrnet (tools/train.py)",
        keys=(
            ("last_layer.0.{x}", "decode_head.convs.0.conv.{x}"),
            ("last_layer.1.{x}", "decode_head.convs.0.bn.{x}"),
            ("last_layer.3.{x}", "decode_head.conv_seg.{x}"),
            ("{x}", "backbone.{x}"),
        ),
        signature=(r"last_layer\.\d+\..+",),
        to_ours=_fold_seg_bias,
        to_theirs=_zero_seg_bias,
    ),
    Layout(
        "mmdet",
        "detection",
        "MMDetection 2.x/3.x Faster/Mask/Cascade R-CNN, HTC and FCOS with HRFPN, CenterNet",
        keys=(
            ("backbone.{x}", "backbone.body.{x}"),
            ("neck.reduction_conv.conv.{x}", "backbone.neck.reduction_conv.{x}"),
            ("neck.fpn_convs.{i}.conv.{x}", "backbone.neck.fpn_convs.{i}.{x}"),
            *_RPN,
            *_box_heads("roi_head.bbox_head"),
            *_FCOS_HEAD,
        ),
        # CenterNet has no neck: its head names tell it from HRNet-Object-Detection's bbox_head
        signature=(r"(roi_head\.|neck\.reduction_conv\.conv\.|bbox_head\.(heatmap|wh|offset)_head\.).+",),
        to_ours=_mmdet_to_ours,
        to_theirs=_mmdet_to_theirs,
    ),
    Layout(
        "hrnet_det",
        "detection",
        "HRNet-Object-Detection (MMDetection 0.x/1.x) Faster/Mask/Cascade R-CNN with HRFPN",
        keys=(
            ("backbone.{x}", "backbone.body.{x}"),
            ("neck.reduction_conv.0.{x}", "backbone.neck.reduction_conv.{x}"),
            ("neck.fpn_conv.{i}.{x}", "backbone.neck.fpn_convs.{i}.{x}"),
            *_RPN,
            *_box_heads("bbox_head"),
        ),
        signature=(r"(neck\.reduction_conv\.0\.|neck\.fpn_conv\.\d+\.|bbox_head\.|mask_head\.).+",),
    ),
    Layout(
        "mmpose",
        "pose",
        "mmpose top-down heatmap model (1.x head.final_layer, 0.x keypoint_head.final_layer)",
        keys=(
            ("backbone.{x}", "backbone.{x}"),
            ("head.final_layer.{x}", "final_layer.{x}"),
            ("keypoint_head.final_layer.{x}", "final_layer.{x}"),
        ),
        signature=(r"(keypoint_head|head)\.final_layer\..+",),
    ),
    Layout(
        "hrnet_pose",
        "pose",
        "deep-high-resolution-net.pytorch pose_hrnet (tools/train.py)",
        keys=(("final_layer.{x}", "final_layer.{x}"), ("{x}", "backbone.{x}")),
        signature=(r"final_layer\.weight", r"conv1\.weight"),
    ),
    Layout(
        "hrnet_face",
        "landmarks",
        "HRNet-Facial-Landmark-Detection (release files HR18-300W.pth ..., tools/train.py final_state.pth)",
        keys=(("head.{i}.{x}", "head.{i}.{x}"), ("{x}", "backbone.{x}")),
        signature=(r"head\.\d+\..+", r"conv1\.weight"),
    ),
    Layout("native", "detection", "this package", keys=(("{x}", "{x}"),), signature=(r"backbone\.body\..+",)),
    Layout(
        "native",
        "pose",
        "this package",
        keys=(("{x}", "{x}"),),
        signature=(r"backbone\..+", r"final_layer\.weight"),
    ),
    Layout(
        "native",
        "landmarks",
        "this package",
        keys=(("{x}", "{x}"),),
        signature=(r"backbone\..+", r"head\.\d+\..+"),
    ),
    Layout("native", "classifier", "this package", keys=(("{x}", "{x}"),), signature=(r"net\..+",)),
    # the same names as mmseg, which detection reports; "native" is accepted as the layout argument
    Layout("native", "segmentation", "this package", keys=(("{x}", "{x}"),)),
    Layout(
        "openmmlab",
        "backbone",
        "an OpenMMLab backbone alone (MMSegmentation, MMDetection, mmpose: backbone.*)",
        keys=(("backbone.{x}", "{x}"),),
        signature=(r"backbone\..+",),
    ),
    Layout(
        "official",
        "backbone",
        "HRNet-Image-Classification release and timm (top-level names, ImageNet head)",
        keys=(("{x}", "{x}"),),
    ),
)

# export names that are another layout's for a kind of model
_EXPORT_ALIASES: dict[str, str] = {
    "timm": "official",
    "mmdet": "openmmlab",
    "mmseg": "openmmlab",
    "mmpose": "openmmlab",
}


def layout_ids() -> list[str]:
    """The layout ids, in detection order, each once."""
    return list(dict.fromkeys(layout.id for layout in LAYOUTS))


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


@functools.cache
def _pattern(template: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{\w+\})", template):
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if name is None:
            regex += re.escape(part)
        else:
            regex += f"(?P<{name}>.+)" if name == "x" else f"(?P<{name}>\\d+)"
    return re.compile(regex)


def _rename(key: str, templates: tuple[Template, ...], *, to_ours: bool) -> str | None:
    for theirs, ours in templates:
        source, target = (theirs, ours) if to_ours else (ours, theirs)
        match = _pattern(source).fullmatch(key)
        if match:
            return target.format(**match.groupdict())
    return None


def _matches(layout: Layout, keys: list[str]) -> bool:
    return bool(layout.signature) and all(
        any(re.fullmatch(pattern, k) for k in keys) for pattern in layout.signature
    )


# --------------------------------------------------------------------------------------------
# Models and detection
# --------------------------------------------------------------------------------------------


def backbone_prefix(model: nn.Module) -> str:
    """The state-dict prefix of the model's :class:`HighResolutionNet` (``""`` for a bare backbone)."""
    for name, module in model.named_modules():
        if isinstance(module, HighResolutionNet):
            return f"{name}." if name else ""
    raise HRNetError(f"{type(model).__name__} contains no HighResolutionNet: not an HRNet model")


def _backbone(model: nn.Module, prefix: str) -> HighResolutionNet:
    module = model.get_submodule(prefix[:-1]) if prefix else model
    assert isinstance(module, HighResolutionNet)
    return module


def model_kind(model: nn.Module) -> tuple[str, str]:
    """``(kind, backbone prefix)`` of a model: a key of :data:`KIND_PREFIX` (or ``"other"`` for an
    unknown module holding a :class:`HighResolutionNet`) and where that backbone sits."""
    from hrnet.models.classification import Classifier
    from hrnet.models.detection import HRNetWithHRFPN
    from hrnet.models.detection_anchor_free import HRNetV2Features
    from hrnet.models.landmarks import LandmarkHRNet
    from hrnet.models.pose import PoseHRNet
    from hrnet.models.segmentation import SegmentationHRNet

    kinds: tuple[tuple[type[nn.Module], str], ...] = (
        (HighResolutionNet, "backbone"),
        (SegmentationHRNet, "segmentation"),
        (PoseHRNet, "pose"),
        (LandmarkHRNet, "landmarks"),
    )
    for cls, kind in kinds:
        if isinstance(model, cls):
            return kind, KIND_PREFIX[kind]
    if isinstance(model, Classifier) and isinstance(model.net, HighResolutionNet):
        return "classifier", KIND_PREFIX["classifier"]
    if isinstance(getattr(model, "backbone", None), HRNetWithHRFPN | HRNetV2Features):
        return "detection", KIND_PREFIX["detection"]
    return "other", backbone_prefix(model)


def detect_task_layout(state_dict: Mapping[str, Tensor], model: nn.Module) -> str:
    """The id of the layout of an unwrapped checkpoint for ``model`` (see the module table)."""
    return _detect(list(state_dict), model_kind(model)[0]).id


def _detect(keys: list[str], kind: str) -> Layout:
    """The first layout whose signature matches (the signatures are told apart by the keys
    alone; ``kind`` only chooses among the ``native`` entries when several would match)."""
    matching = [layout for layout in LAYOUTS if _matches(layout, keys)]
    if not matching:
        return LAYOUTS[-1]  # official
    return next((lay for lay in matching if lay.id == "native" and lay.kind == kind), matching[0])


def _resolve(layout_id: str | None, keys: list[str], kind: str) -> Layout:
    if layout_id is None:
        return _detect(keys, kind)
    candidates = [layout for layout in LAYOUTS if layout.id == layout_id]
    if not candidates:
        raise HRNetError(f"unknown checkpoint layout {layout_id!r}; known: {', '.join(layout_ids())}")
    return next(
        (lay for lay in candidates if lay.kind == kind),
        next((lay for lay in candidates if _matches(lay, keys)), candidates[0]),
    )


# --------------------------------------------------------------------------------------------
# Import and export
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Converted:
    """A checkpoint rewritten for one model (input of :func:`~hrnet.models.convert.load_state_dict_checked`)."""

    state_dict: StateDict  # in the model's names
    layout: str
    ignorable: dict[str, str]  # keys of state_dict that may have no place, with the reason
    unused: tuple[str, ...]  # their keys no rule of the layout names
    ignored: tuple[tuple[str, str], ...]  # their keys the layout or the target declares not part of it


def convert_for(
    model: nn.Module, state_dict: Mapping[str, Tensor], layout_id: str | None = None
) -> Converted:
    """Rewrite an unwrapped checkpoint into ``model``'s names (detecting the layout if not given).

    A checkpoint of the model's own kind maps one to one; one of another kind gives its
    backbone, and its other keys are ignored when the model is a backbone (:data:`TASK_HEAD`)
    and unused otherwise. Into a backbone without the ImageNet head, that head is ignorable
    (:data:`IMAGENET_HEAD`); into the V1 backbone, the fuse layers it lacks (:data:`V1_FUSE`).
    """
    kind, prefix = model_kind(model)
    layout = _resolve(layout_id, list(state_dict), kind)
    ignored: list[tuple[str, str]] = []
    unused: list[str] = []
    canonical: StateDict = {}
    origin: dict[str, str] = {}  # our key -> their key, to report their names
    for key, value in state_dict.items():
        reason = next((r for pattern, r in layout.ignore if re.fullmatch(pattern, key)), None)
        if reason is not None:
            ignored.append((key, reason))
            continue
        new = _rename(key, layout.keys, to_ours=True)
        if new is None:
            unused.append(key)
        elif new in canonical:
            raise HRNetError(f"checkpoint: key {key!r} is renamed to {new!r}, which another key already took")
        else:
            canonical[new] = value
            origin[new] = key
    if layout.to_ours is not None:
        canonical = layout.to_ours(canonical)

    source_prefix = KIND_PREFIX.get(layout.kind, prefix)
    same = layout.kind == kind or (layout.kind in BACKBONE_KINDS and kind in BACKBONE_KINDS)
    head_reason = None if kind not in BACKBONE_KINDS else TASK_HEAD.format(kind=layout.kind)
    out: StateDict = {}
    back: dict[str, str] = {}  # model key -> our key of the layout's kind
    for key, value in canonical.items():
        if layout.kind == kind:
            out[key] = value
        elif key.startswith(source_prefix):
            out[prefix + key[len(source_prefix) :]] = value
            back[prefix + key[len(source_prefix) :]] = key
        elif not same and head_reason is not None:
            ignored.append((origin.get(key, key), head_reason))
        else:
            unused.append(origin.get(key, key))

    own = model.state_dict()
    backbone = _backbone(model, prefix)
    last = backbone.config.stage4.num_modules - 1
    v1_fuse = re.compile(rf"stage4\.{last}\.fuse_layers\.[1-9]\d*\..+")
    ignorable: dict[str, str] = {}
    placed: StateDict = {}
    for key, value in out.items():
        rest = key[len(prefix) :] if key.startswith(prefix) else None
        if key in own or key.endswith("num_batches_tracked"):
            pass
        elif (
            rest is not None and backbone.output != "classification" and rest.split(".", 1)[0] in HEAD_MODULES
        ):
            ignorable[key] = IMAGENET_HEAD
        elif rest is not None and backbone.output == "v1" and v1_fuse.fullmatch(rest):
            ignorable[key] = V1_FUSE
        else:  # no place: reported in the checkpoint's own name
            canonical_key = back.get(key, key)
            unused.append(origin.get(canonical_key, canonical_key))
            continue
        placed[key] = value
    return Converted(placed, layout.id, ignorable, tuple(unused), tuple(ignored))


def export_for(model: nn.Module, layout_id: str) -> StateDict:
    """``model``'s state dict in ``layout_id``'s names (see :func:`hrnet.models.convert.export_state_dict`)."""
    kind, prefix = model_kind(model)
    state_dict = dict(model.state_dict())
    if layout_id == "native":
        return state_dict
    if kind in BACKBONE_KINDS:
        layout_id = _EXPORT_ALIASES.get(layout_id, layout_id)
    layouts = [lay for lay in LAYOUTS if lay.id == layout_id and lay.id != "native"]
    if not layouts:
        raise HRNetError(f"unknown export layout {layout_id!r}; known: {', '.join(layout_ids())}, timm")
    layout = next((lay for lay in layouts if lay.kind == kind), layouts[0])
    if layout.kind == kind:
        canonical = state_dict
    elif layout.kind in BACKBONE_KINDS and kind in BACKBONE_KINDS:
        source_prefix = KIND_PREFIX[layout.kind]
        canonical = {source_prefix + k[len(prefix) :]: v for k, v in state_dict.items()}
    else:
        raise HRNetError(
            f"layout {layout_id!r} describes {layout.kind} models; {type(model).__name__} is a {kind} model"
        )
    if layout.to_theirs is not None:
        canonical = layout.to_theirs(canonical)
    out: StateDict = {}
    for key, value in canonical.items():
        new = _rename(key, layout.keys, to_ours=False)
        if new is None:
            raise HRNetError(f"layout {layout_id!r} ({layout.source}) has no name for {key!r}")
        out[new] = value
    return out
