"""Object detection and instance segmentation on HRNetV2p: HRFPN + torchvision's R-CNN family.

Reading order: the HRFPN neck, the backbone+neck feature extractor, the Cascade R-CNN RoI heads
(torchvision has none: built from its Matcher, sampler, BoxCoder, MultiScaleRoIAlign and
TwoMLPHead), the model assembly, the builders.

Conventions are torchvision's (the task contract in docs/ARCHITECTURE.md): images are a list of
``float [3, H, W]`` in 0..1, normalised and resized inside the model; boxes are ``xyxy`` in input
pixels; labels ``1..K`` with 0 the background, so ``num_classes`` counts the background (81 for
COCO). Train mode returns a dict of losses, eval mode a list of ``{"boxes", "labels", "scores"[,
"masks"]}``.

Facts (HRNet-Object-Detection, MMDetection): HRFPN concatenates the four branches at 1/4
(bilinear, align_corners False), reduces 15C -> 256 with a 1x1 conv (bias, no norm), average-pools
by 2/4/8/16 for strides 4..64 and applies one 3x3 conv (bias) per level. Anchors: one size per
level, ``8 * stride`` (32..512), ratios 0.5/1/2. RoIAlign 7x7 over strides 4-32; box head two fc of 1024.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops import boxes as box_ops

from hrnet.errors import HRNetError
from hrnet.models.hrnet import CONFIGS, HRNETV2_CHECKPOINTS, HighResolutionNet
from hrnet.models.registry import GFLOPS, MEBI_PARAMS, ModelInfo, Published

__all__ = [
    "CASCADE_IOU_THRESHOLDS",
    "CASCADE_REG_WEIGHTS",
    "HRFPN",
    "MODELS",
    "MODEL_INFOS",
    "CascadeRCNN",
    "CascadeRoIHeads",
    "DetectionKwargs",
    "HRNetWithHRFPN",
    "freeze_stages",
]

FEATURE_NAMES: tuple[str, ...] = ("0", "1", "2", "3", "4")  # strides 4, 8, 16, 32, 64
ROI_FEATURE_NAMES: list[str] = ["0", "1", "2", "3"]  # RoIAlign reads strides 4..32
ANCHOR_SIZES: tuple[tuple[int, ...], ...] = ((32,), (64,), (128,), (256,), (512,))
ANCHOR_RATIOS: tuple[tuple[float, ...], ...] = ((0.5, 1.0, 2.0),) * len(ANCHOR_SIZES)
ROI_SIZE = 7  # RoIAlign output of the box head(s): ROI_SIZE x ROI_SIZE
REPRESENTATION_SIZE = 1024  # width of the two fc layers of the box head (published architecture)
MASK_HEAD_CHANNELS = 256  # torchvision's (and MMDetection's) mask head width

# Cascade R-CNN (Cai & Vasconcelos): IoU threshold, box-coder weights and loss weight per stage
CASCADE_IOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7)
CASCADE_REG_WEIGHTS: tuple[tuple[float, float, float, float], ...] = (
    (10.0, 10.0, 5.0, 5.0),
    (20.0, 20.0, 10.0, 10.0),
    (30.0, 30.0, 15.0, 15.0),
)
CASCADE_LOSS_WEIGHTS: tuple[float, ...] = (1.0, 0.5, 0.25)

# backbone module groups, from the input up; `trainable_stages=k` leaves the last k trainable
STAGE_MODULES: tuple[tuple[str, ...], ...] = (
    ("conv1", "bn1", "conv2", "bn2"),
    ("layer1",),
    ("transition1", "stage2"),
    ("transition2", "stage3"),
    ("transition3", "stage4"),
)


# --------------------------------------------------------------------------------------------
# Neck
# --------------------------------------------------------------------------------------------


class HRFPN(nn.Module):
    """The HRNetV2p feature pyramid.

    Input: the backbone branches ``[B, C_k, H/2^(k+2), W/2^(k+2)]``. Output: ``num_levels`` maps
    ``[B, out_channels, H/2^(l+2), W/2^(l+2)]`` (avg-pool sizes are floor divisions of the 1/4 map).
    Module names are MMDetection's without its ``ConvModule`` wrapper (``reduction_conv``, ``fpn_convs``).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 256,
        *,
        num_levels: int = 5,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.reduction_conv = nn.Conv2d(sum(in_channels), out_channels, kernel_size=1)
        self.fpn_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1) for _ in range(num_levels)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, branches: Sequence[Tensor]) -> list[Tensor]:
        size = branches[0].shape[-2:]
        ups = [
            F.interpolate(b, size=size, mode="bilinear", align_corners=self.align_corners)
            for b in branches[1:]
        ]
        coarsest = 2 ** (len(self.fpn_convs) - 1)
        # avg_pool2d's "output size is too small", said in pixels (eager only: not when traced)
        if not torch.jit.is_tracing() and min(int(s) for s in size) < coarsest:
            raise HRNetError(
                f"HRFPN: a {size[0]}x{size[1]} stride-4 map has no {coarsest}x{coarsest} cell for its "
                f"stride-{4 * coarsest} level; backbone inputs (images after the detector's resize and "
                f"padding to a multiple of 32) need at least {4 * coarsest} pixels a side"
            )
        x = self.reduction_conv(torch.cat([branches[0], *ups], dim=1))
        pyramid = [x] + [
            F.avg_pool2d(x, kernel_size=2**i, stride=2**i) for i in range(1, len(self.fpn_convs))
        ]
        return [conv(p) for conv, p in zip(self.fpn_convs, pyramid)]


class HRNetWithHRFPN(nn.Module):
    """Backbone (``output="branches"``) + :class:`HRFPN`: the feature extractor of the R-CNNs.

    ``forward(images [B, 3, H, W])`` -> ``OrderedDict`` ``"0".."4"`` of ``[B, 256, ...]`` at strides
    4..64 (torchvision's backbone contract: ``out_channels`` attribute, ordered dict of maps).
    State-dict keys: ``body.<HRNet-Image-Classification names>``, ``neck.reduction_conv.*``,
    ``neck.fpn_convs.{i}.*``.
    """

    def __init__(self, body: HighResolutionNet, out_channels: int = 256) -> None:
        super().__init__()
        if body.output != "branches":
            raise ValueError(
                f"HRNetWithHRFPN needs a backbone built with output='branches', got {body.output!r}"
            )
        self.body = body
        self.neck = HRFPN(body.branch_channels, out_channels, num_levels=len(FEATURE_NAMES))
        self.out_channels = out_channels

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict(zip(FEATURE_NAMES, self.neck(self.body(images))))


def freeze_stages(body: HighResolutionNet, trainable_stages: int) -> None:
    """Freeze (``requires_grad=False``) all but the last ``trainable_stages`` backbone stages.

    The five stages from the input up are: stem, ``layer1``, ``transition1 + stage2``,
    ``transition2 + stage3``, ``transition3 + stage4``; 5 trains everything, 0 nothing.
    """
    if not 0 <= trainable_stages <= len(STAGE_MODULES):
        raise ValueError(f"trainable_stages must be in 0..{len(STAGE_MODULES)}, got {trainable_stages}")
    for group in STAGE_MODULES[: len(STAGE_MODULES) - trainable_stages]:
        for name in group:
            getattr(body, name).requires_grad_(False)


# --------------------------------------------------------------------------------------------
# Cascade R-CNN RoI heads
# --------------------------------------------------------------------------------------------


class CascadeBoxPredictor(nn.Module):
    """Class scores ``[N, num_classes]`` and class-agnostic box deltas ``[N, 4]`` from RoI features."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


class CascadeStage(nn.Module):
    """One cascade stage: its own box head, predictor, IoU assigner and box coder."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        iou_threshold: float,
        reg_weights: tuple[float, float, float, float],
        batch_size_per_image: int,
        positive_fraction: float,
        representation_size: int = REPRESENTATION_SIZE,
    ) -> None:
        super().__init__()
        self.box_head = TwoMLPHead(in_features, representation_size)
        self.box_predictor = CascadeBoxPredictor(representation_size, num_classes)
        self.iou_threshold = iou_threshold
        # positives at IoU >= t, negatives below t (no ignore band, no low-quality matches)
        self.proposal_matcher = det_utils.Matcher(
            iou_threshold, iou_threshold, allow_low_quality_matches=False
        )
        self.fg_bg_sampler = det_utils.BalancedPositiveNegativeSampler(
            batch_size_per_image, positive_fraction
        )
        self.box_coder = det_utils.BoxCoder(reg_weights)

    def forward(self, box_features: Tensor) -> tuple[Tensor, Tensor]:
        return self.box_predictor(self.box_head(box_features))


class CascadeRoIHeads(nn.Module):
    """Three-stage Cascade R-CNN box heads (a drop-in for torchvision's ``RoIHeads``, boxes only).

    Training: stage ``t`` adds the ground-truth boxes to its input boxes, labels each box by its
    best ground-truth match at IoU >= ``iou_thresholds[t]`` (else background), samples
    ``batch_size_per_image`` boxes (``positive_fraction`` positives), and is trained with cross
    entropy + smooth-L1 on class-agnostic deltas (losses ``loss_classifier_{t}``,
    ``loss_box_reg_{t}``, weighted 1/0.5/0.25). The sampled boxes that were not ground truth,
    moved by the stage's (detached) regression, are the next stage's input.

    Inference: each stage scores and refines the previous stage's boxes; the class scores are the
    softmax of the mean of the three stages' logits (MMDetection's ``simple_test``), the boxes
    those of the last stage; then score threshold, per-class NMS and the top ``detections_per_img``.
    """

    def __init__(
        self,
        box_roi_pool: MultiScaleRoIAlign,
        in_features: int,
        num_classes: int,
        *,
        iou_thresholds: Sequence[float] = CASCADE_IOU_THRESHOLDS,
        reg_weights: Sequence[tuple[float, float, float, float]] = CASCADE_REG_WEIGHTS,
        loss_weights: Sequence[float] = CASCADE_LOSS_WEIGHTS,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        representation_size: int = REPRESENTATION_SIZE,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        box_loss_beta: float = 1 / 9,
    ) -> None:
        super().__init__()
        if not len(iou_thresholds) == len(reg_weights) == len(loss_weights):
            raise ValueError("iou_thresholds, reg_weights and loss_weights need one entry per stage")
        self.box_roi_pool = box_roi_pool
        self.stages = nn.ModuleList(
            CascadeStage(
                in_features,
                num_classes,
                iou_threshold=t,
                reg_weights=w,
                batch_size_per_image=batch_size_per_image,
                positive_fraction=positive_fraction,
                representation_size=representation_size,
            )
            for t, w in zip(iou_thresholds, reg_weights)
        )
        self.loss_weights = tuple(loss_weights)
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.box_loss_beta = box_loss_beta  # smooth-L1 beta of the stages' box regression

    # ---- training ----

    def assign(
        self, stage: int, proposals: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """Label and sample training boxes for ``stage``.

        Args:
            stage: 0-based stage index (its IoU threshold decides the positives).
            proposals: per image ``float [N_i, 4]`` boxes (xyxy).
            targets: per image ``{"boxes" [M_i, 4], "labels" int64 [M_i]}``.

        Returns:
            Per image: sampled boxes ``[S_i, 4]`` (input boxes, then the ground truth appended),
            their labels ``int64 [S_i]`` (0 = background), matched ground-truth boxes ``[S_i, 4]``
            and ``is_gt bool [S_i]`` (the box is an appended ground-truth box).
        """
        return self.assign_with_indices(stage, proposals, targets)[:4]

    def assign_with_indices(
        self, stage: int, proposals: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """:meth:`assign` plus, per image, the index of each sampled box's matched ground truth
        ``int64 [S_i]`` (0 where there is no ground truth; read only for positives)."""
        head = self.stages[stage]
        boxes_out, labels_out, matched_out, is_gt_out, idx_out = [], [], [], [], []
        for props, target in zip(proposals, targets):
            gt_boxes, gt_labels = target["boxes"].to(props.dtype), target["labels"]
            boxes = torch.cat([props, gt_boxes])
            is_gt = torch.arange(boxes.shape[0], device=boxes.device) >= props.shape[0]
            if gt_boxes.numel() == 0:
                labels = torch.zeros(boxes.shape[0], dtype=torch.int64, device=boxes.device)
                matched = torch.zeros_like(boxes)
                idx = torch.zeros(boxes.shape[0], dtype=torch.int64, device=boxes.device)
            else:
                idx = head.proposal_matcher(box_ops.box_iou(gt_boxes, boxes))
                labels = gt_labels[idx.clamp(min=0)].to(torch.int64)
                labels[idx == det_utils.Matcher.BELOW_LOW_THRESHOLD] = 0
                idx = idx.clamp(min=0)
                matched = gt_boxes[idx]
            pos, neg = head.fg_bg_sampler([labels])
            keep = torch.where(pos[0] | neg[0])[0]
            boxes_out.append(boxes[keep])
            labels_out.append(labels[keep])
            matched_out.append(matched[keep])
            is_gt_out.append(is_gt[keep])
            idx_out.append(idx[keep])
        return boxes_out, labels_out, matched_out, is_gt_out, idx_out

    def _stage_losses(
        self, class_logits: Tensor, deltas: Tensor, labels: Tensor, reg_targets: Tensor
    ) -> tuple[Tensor, Tensor]:
        loss_cls = F.cross_entropy(class_logits, labels)
        pos = labels > 0
        loss_box = (
            F.smooth_l1_loss(deltas[pos], reg_targets[pos], beta=self.box_loss_beta, reduction="sum")
            / labels.numel()
        )
        return loss_cls, loss_box

    def _train_forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        boxes = [p.detach() for p in proposals]
        for t, (head, weight) in enumerate(zip(self.stages, self.loss_weights)):
            sampled, labels, matched, is_gt = self.assign(t, boxes, targets)
            class_logits, deltas = head(self.box_roi_pool(features, sampled, image_shapes))
            reg_targets = head.box_coder.encode(matched, sampled)
            loss_cls, loss_box = self._stage_losses(
                class_logits, deltas, torch.cat(labels), torch.cat(reg_targets)
            )
            losses[f"loss_classifier_{t}"] = weight * loss_cls
            losses[f"loss_box_reg_{t}"] = weight * loss_box
            if t + 1 < len(self.stages):
                refined = self._refine(head, deltas.detach(), sampled, image_shapes)
                boxes = [b[~g] for b, g in zip(refined, is_gt)]
        return losses

    # ---- inference ----

    @staticmethod
    def _refine(
        head: CascadeStage, deltas: Tensor, boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> list[Tensor]:
        """Apply class-agnostic ``deltas [sum N_i, 4]`` to per-image ``boxes``; clip to the images."""
        decoded = head.box_coder.decode(deltas, boxes).reshape(-1, 4)
        per_image = decoded.split([b.shape[0] for b in boxes])
        return [box_ops.clip_boxes_to_image(b, s) for b, s in zip(per_image, image_shapes)]

    def _predict(
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> list[dict[str, Tensor]]:
        boxes = proposals
        logits = []
        for head in self.stages:
            class_logits, deltas = head(self.box_roi_pool(features, boxes, image_shapes))
            logits.append(class_logits)
            boxes = self._refine(head, deltas, boxes, image_shapes)
        return [self._postprocess(b, s) for b, s in zip(boxes, self._mean_scores(logits, boxes))]

    @staticmethod
    def _mean_scores(logits: list[Tensor], boxes: list[Tensor]) -> tuple[Tensor, ...]:
        """Per image ``[N_i, C]``: softmax of the stages' mean class logits (MMDetection v1
        ``cascade_rcnn.py``/``htc.py`` ``simple_test``: ``sum(ms_scores) / num_stages``, then softmax)."""
        return F.softmax(torch.stack(logits).mean(dim=0), dim=-1).split([b.shape[0] for b in boxes])

    def _postprocess(self, boxes: Tensor, scores: Tensor) -> dict[str, Tensor]:
        """One image: ``boxes [N, 4]``, ``scores [N, C]`` -> thresholded, per-class NMS, top-k."""
        num_classes = scores.shape[1]
        labels = torch.arange(1, num_classes, device=scores.device).expand(boxes.shape[0], -1).reshape(-1)
        boxes = boxes[:, None].expand(-1, num_classes - 1, -1).reshape(-1, 4)
        scores = scores[:, 1:].reshape(-1)
        keep = torch.where(scores > self.score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": boxes[keep], "labels": labels[keep], "scores": scores[keep]}

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """torchvision's RoIHeads interface: ``(detections, losses)``; one of them is empty."""
        if self.training:
            if targets is None:
                raise ValueError("CascadeRoIHeads needs targets in training mode")
            return [], self._train_forward(features, proposals, image_shapes, targets)
        return self._predict(features, proposals, image_shapes), {}


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _anchor_generator(sizes: Sequence[int] | None = None) -> AnchorGenerator:
    """One anchor size per pyramid level (strides 4..64; default 32..512), ratios 0.5/1/2."""
    per_level = ANCHOR_SIZES if sizes is None else tuple((int(s),) for s in sizes)
    if len(per_level) != len(FEATURE_NAMES):
        raise ValueError(
            f"anchor_sizes needs one size per pyramid level ({len(FEATURE_NAMES)}), got {list(per_level)}"
        )
    return AnchorGenerator(sizes=per_level, aspect_ratios=ANCHOR_RATIOS)


def _box_roi_pool() -> MultiScaleRoIAlign:
    return MultiScaleRoIAlign(featmap_names=ROI_FEATURE_NAMES, output_size=ROI_SIZE, sampling_ratio=2)


class CascadeRCNN(GeneralizedRCNN):
    """Cascade R-CNN: torchvision's transform and RPN with :class:`CascadeRoIHeads`.

    Same interface as torchvision's ``FasterRCNN``: ``model(images, targets)`` in train mode returns
    the RPN losses plus ``loss_classifier_{t}``/``loss_box_reg_{t}`` per stage; eval mode returns
    a list of ``{"boxes", "labels", "scores"}`` in input-image coordinates.
    """

    def __init__(
        self,
        backbone: HRNetWithHRFPN,
        num_classes: int,
        *,
        min_size: int = 800,
        max_size: int = 1333,
        rpn_post_nms_top_n_train: int = 2000,
        rpn_post_nms_top_n_test: int = 1000,
        box_batch_size_per_image: int = 512,
        representation_size: int = REPRESENTATION_SIZE,
        box_score_thresh: float = 0.05,
        box_detections_per_img: int = 100,
        anchor_sizes: Sequence[int] | None = None,
        roi_heads: CascadeRoIHeads | None = None,
    ) -> None:
        """``roi_heads``: heads built by the caller (a subclass with mask heads); the box
        settings above are then the caller's."""
        anchors = _anchor_generator(anchor_sizes)
        rpn = RegionProposalNetwork(
            anchors,
            RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0]),
            fg_iou_thresh=0.7,
            bg_iou_thresh=0.3,
            batch_size_per_image=256,
            positive_fraction=0.5,
            pre_nms_top_n={"training": 2000, "testing": 1000},
            post_nms_top_n={"training": rpn_post_nms_top_n_train, "testing": rpn_post_nms_top_n_test},
            nms_thresh=0.7,
        )
        if roi_heads is None:
            roi_heads = CascadeRoIHeads(
                _box_roi_pool(),
                backbone.out_channels * ROI_SIZE**2,
                num_classes,
                batch_size_per_image=box_batch_size_per_image,
                representation_size=representation_size,
                score_thresh=box_score_thresh,
                detections_per_img=box_detections_per_img,
            )
        transform = GeneralizedRCNNTransform(min_size, max_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        super().__init__(backbone, rpn, roi_heads, transform)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class DetectionKwargs(TypedDict, total=False):
    """Keyword arguments of the detection builders."""

    num_classes: int  # including the background (torchvision convention); default 81 (COCO)
    min_size: int  # short side the images are resized to (default 800)
    max_size: int  # cap of the long side (default 1333)
    frozen_bn: bool  # backbone BatchNorm -> FrozenBatchNorm2d (the paper recipe with ImageNet weights)
    trainable_stages: int  # backbone stages left trainable, 0..5 (default 5: all)
    rpn_post_nms_top_n_train: int  # proposals per image kept after the RPN's NMS in training (2000)
    rpn_post_nms_top_n_test: int  # same at inference (1000)
    box_batch_size_per_image: int  # RoIs sampled per image for the box head(s) in training (512)
    representation_size: int  # width of the box head's two fc layers (1024, the published head)
    box_score_thresh: float  # minimum score of a returned detection (default 0.05)
    box_detections_per_img: int  # detections kept per image (default 100)
    anchor_sizes: Sequence[int]  # anchor size per level, strides 4..64 (default 32, 64, 128, 256, 512)
    fpn_channels: int  # HRFPN output channels, also the RPN/RoI feature width (default 256)


def _feature_extractor(backbone_name: str, kwargs: DetectionKwargs) -> HRNetWithHRFPN:
    body = HighResolutionNet(
        CONFIGS[backbone_name],
        output="branches",
        norm_layer=FrozenBatchNorm2d if kwargs.get("frozen_bn", False) else None,
    )
    freeze_stages(body, kwargs.get("trainable_stages", len(STAGE_MODULES)))
    return HRNetWithHRFPN(body, kwargs.get("fpn_channels", 256))


def _check(model_name: str, kwargs: DetectionKwargs) -> None:
    for key in kwargs:
        if key not in DetectionKwargs.__annotations__:
            raise TypeError(
                f"{model_name}() got an unexpected keyword argument {key!r}; "
                f"accepted: {', '.join(DetectionKwargs.__annotations__)}"
            )


def _rcnn(kind: str, backbone_name: str, kwargs: DetectionKwargs) -> nn.Module:
    model_name = f"{kind}_hrnetv2p_{backbone_name.removeprefix('hrnet_')}"
    _check(model_name, kwargs)
    backbone = _feature_extractor(backbone_name, kwargs)
    common = {
        "min_size": kwargs.get("min_size", 800),
        "max_size": kwargs.get("max_size", 1333),
        "rpn_post_nms_top_n_train": kwargs.get("rpn_post_nms_top_n_train", 2000),
        "rpn_post_nms_top_n_test": kwargs.get("rpn_post_nms_top_n_test", 1000),
        "box_batch_size_per_image": kwargs.get("box_batch_size_per_image", 512),
        "box_score_thresh": kwargs.get("box_score_thresh", 0.05),
        "box_detections_per_img": kwargs.get("box_detections_per_img", 100),
    }
    num_classes = kwargs.get("num_classes", 81)
    representation_size = kwargs.get("representation_size", REPRESENTATION_SIZE)
    anchor_sizes = kwargs.get("anchor_sizes")
    if kind == "cascadercnn":
        return CascadeRCNN(
            backbone,
            num_classes,
            representation_size=representation_size,
            anchor_sizes=anchor_sizes,
            **common,
        )
    # torchvision's default heads, with the width of the box head's fc layers made a choice
    heads = {
        "rpn_anchor_generator": _anchor_generator(anchor_sizes),
        "box_roi_pool": _box_roi_pool(),
        "box_head": TwoMLPHead(backbone.out_channels * ROI_SIZE**2, representation_size),
        "box_predictor": FastRCNNPredictor(representation_size, num_classes),
    }
    if kind == "maskrcnn":
        # torchvision's default mask head: four 3x3 convs of 256, 2x deconv, 28x28 masks per class
        heads["mask_predictor"] = MaskRCNNPredictor(MASK_HEAD_CHANNELS, MASK_HEAD_CHANNELS, num_classes)
        return MaskRCNN(backbone, **heads, **common)
    return FasterRCNN(backbone, **heads, **common)


def _builder(kind: str, backbone_name: str, doc: str) -> Callable[..., nn.Module]:
    def builder(**kwargs: Unpack[DetectionKwargs]) -> nn.Module:
        return _rcnn(kind, backbone_name, kwargs)

    builder.__name__ = builder.__qualname__ = f"{kind}_hrnetv2p_{backbone_name.removeprefix('hrnet_')}"
    builder.__doc__ = doc
    return builder


_DOCS = {
    "fasterrcnn": "Faster R-CNN on HRNetV2p ({b}): torchvision FasterRCNN with the HRFPN backbone.\n\n"
    "Published (HRNet-Object-Detection, COCO val2017, 81 classes): W18/W32/W40 26.2/45.0/60.5 x 2^20 "
    "params, box AP 1x 36.1/39.5/40.4.",
    "maskrcnn": "Mask R-CNN on HRNetV2p ({b}): torchvision MaskRCNN with the HRFPN backbone.\n\n"
    "Published (HRNet-Object-Detection, COCO val2017): W18 1x 37.3 box / 34.2 mask AP; W32 1x 40.7 / 36.8.",
    "cascadercnn": "Cascade R-CNN on HRNetV2p ({b}): RPN + three box stages at IoU 0.5/0.6/0.7.\n\n"
    "Published (HRNet-Object-Detection, COCO val2017): W32 20e box AP 43.7.",
}

# Registry entries. HRNet-Object-Detection publishes Faster R-CNN's sizes (81 classes): parameters
# in "M" that are units of 2^20, and GFLOPs (multiply-adds / 2^30). Neither the input size nor
# the parts of the detector counted are stated with the table: the counts here take 1200x800
# (width x height, the repository's training img_scale) and the backbone, HRFPN, the RPN head
# and the box head on 1000 proposals (what MMDetection's dummy forward runs); they agree within
# 3% (an assumption about the source's convention, held by the 4% tolerance).
_FASTER_RCNN_COUNTS: dict[str, tuple[float, float]] = {
    "hrnet_w18": (26.2, 159.1),
    "hrnet_w32": (45.0, 245.3),
    "hrnet_w40": (60.5, 314.9),
}
_SUMMARIES = {
    "fasterrcnn": "Faster R-CNN on HRNetV2p ({b}) with HRFPN",
    "maskrcnn": "Mask R-CNN on HRNetV2p ({b}) with HRFPN",
    "cascadercnn": "Cascade R-CNN on HRNetV2p ({b}) with HRFPN, three box stages",
}


def _info(kind: str, backbone_name: str) -> ModelInfo:
    counts = _FASTER_RCNN_COUNTS.get(backbone_name) if kind == "fasterrcnn" else None
    params = gflops = None
    if counts is not None:
        params = Published(
            counts[0],
            MEBI_PARAMS,
            "HRNet-Object-Detection",
            "all parameters with 81 classes (80 COCO classes + background); printed as M, in units of 2^20",
        )
        gflops = Published(
            counts[1],
            GFLOPS,
            "HRNet-Object-Detection",
            "conv + linear multiply-adds; the source states neither the input size nor the parts counted: "
            "counted here at 1200x800 on the backbone, HRFPN, RPN head and box head over 1000 proposals",
            counter="detector",
            input_size=(800, 1200),
            rel_tol=0.04,
        )
    builder = _builder(kind, backbone_name, _DOCS[kind].format(b=backbone_name))
    return ModelInfo(
        name=builder.__name__,
        task="detection",
        builder=builder,
        summary=_SUMMARIES[kind].format(b=backbone_name),
        kwargs={"num_classes": 81},
        params=params,
        gflops=(gflops,) if gflops is not None else (),
        backbone_checkpoints=HRNETV2_CHECKPOINTS[backbone_name],
    )


MODEL_INFOS: tuple[ModelInfo, ...] = tuple(_info(kind, name) for kind in _DOCS for name in CONFIGS)
MODELS: dict[str, Callable[..., nn.Module]] = {info.name: info.builder for info in MODEL_INFOS}
