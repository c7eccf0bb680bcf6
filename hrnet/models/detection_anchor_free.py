"""Anchor-free detectors on HRNetV2: FCOS on an HRFPN with stride-2 level convs, and CenterNet
("Objects as Points") on the 1/4-resolution HRNetV2 representation.

Reading order: the FCOS neck and head, FCOS's target assignment, losses and decoding (the
MMDetection variant), the FCOS model on torchvision's ``FCOS``; CenterNet's backbone, head,
heatmap codec and model; the builders.

Conventions are those of :mod:`hrnet.models.detection` (torchvision's detection contract): a
list of ``float [3, H, W]`` images in 0..1, resized and normalised inside the model; boxes
``xyxy`` in input pixels; labels ``1..K`` with ``num_classes`` counting the background (81 for
COCO). Train mode returns a dict of losses, eval mode a list of ``{"boxes", "labels", "scores"}``.

FCOS facts (MMDetection ``configs/hrnet/fcos_hrnetv2p_w32_gn-head_4x4_1x_coco.py`` and
``mmdet/models/dense_heads/fcos_head.py``; HRNet-FCOS ``maskrcnn_benchmark/config/defaults.py``):
HRFPN(stride=2) gives 5 levels at strides 8..128; the head is 4 conv3x3 + GN(32) + ReLU per tower,
sigmoid focal loss (gamma 2, alpha 0.25), IoU loss (``-log IoU``) weighted by the centerness
targets, centerness (BCE) on the classification tower, boxes ``exp(Scale(x))`` in pixels, no
centre sampling, regress ranges (-1, 64), (64, 128), (128, 256), (256, 512), (512, inf); test:
1000 candidates per level, score 0.05, NMS 0.5, 100 per image. torchvision's ``FCOSHead`` is the
improved FCOS (centerness on the regression tower, GIoU, centre sampling 1.5, boxes normalised by
the stride): ``head="torchvision"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, sigmoid_focal_loss
from torchvision.ops import boxes as box_ops

from hrnet.models.detection import HRFPN, STAGE_MODULES, HRNetWithHRFPN, freeze_stages
from hrnet.models.hrnet import CONFIGS, HRNETV2_CHECKPOINTS, HighResolutionNet
from hrnet.models.registry import GFLOPS, MEGA_PARAMS, ModelInfo, Published

__all__ = [
    "CENTERNET_STRIDE",
    "FCOS_STRIDES",
    "MODELS",
    "MODEL_INFOS",
    "NORMALIZATIONS",
    "REGRESS_RANGES",
    "CenterNet",
    "CenterNetHead",
    "HRNetFCOS",
    "HRNetV2Features",
    "HRNetWithStridedHRFPN",
    "MMDetFCOSHead",
    "centernet_decode",
    "centernet_encode",
    "fcos_assign",
    "gaussian_radius",
]

FCOS_STRIDES: tuple[int, ...] = (8, 16, 32, 64, 128)
INF = 1e8
# the object sizes (max of l, t, r, b in input pixels) each FCOS level is responsible for
REGRESS_RANGES: tuple[tuple[float, float], ...] = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, INF))
FCOS_PRIOR_PROB = 0.01  # initial foreground probability of the classification logits

# (mean, std, channel order) of the model's input normalisation, on 0..255 values
Normalization = Literal["mmdet", "caffe", "imagenet"]
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...], str]] = {
    # MMDetection 2.x configs/hrnet/fcos_hrnetv2p_*: ImageNet statistics in BGR order, to_rgb=False
    # (the published FCOS HRNet checkpoints were trained with it)
    "mmdet": ((103.53, 116.28, 123.675), (57.375, 57.12, 58.395), "bgr"),
    # MMDetection 1.x fcos_hrnetv2p_w32_gn_1x_4gpu.py and HRNet-FCOS (maskrcnn-benchmark defaults)
    "caffe": ((102.9801, 115.9465, 122.7717), (1.0, 1.0, 1.0), "bgr"),
    # torchvision / HRNet-Image-Classification
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), "rgb"),
}

CENTERNET_STRIDE = 4
CENTERNET_MIN_OVERLAP = 0.7  # gaussian_radius: IoU a box shifted by the radius keeps (CornerNet)
CENTERNET_HEATMAP_BIAS = -2.19  # initial heatmap logit (prior 0.1), Zhou et al.
CENTERNET_WH_WEIGHT = 0.1
CENTERNET_OFFSET_WEIGHT = 1.0


# --------------------------------------------------------------------------------------------
# Input normalisation
# --------------------------------------------------------------------------------------------


class NormalizingTransform(GeneralizedRCNNTransform):
    """torchvision's resize/batch transform with a channel order (``"bgr"`` reverses RGB input)
    and statistics on the 0..255 scale, as OpenCV-based codebases normalise."""

    def __init__(self, min_size: int, max_size: int, normalization: str) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}"
            )
        mean, std, order = NORMALIZATIONS[normalization]
        super().__init__(min_size, max_size, [m / 255 for m in mean], [s / 255 for s in std])
        self.bgr = order == "bgr"

    def normalize(self, image: Tensor) -> Tensor:
        return super().normalize(image.flip(0) if self.bgr else image)


# --------------------------------------------------------------------------------------------
# FCOS: neck and head
# --------------------------------------------------------------------------------------------


class StridedHRFPN(HRFPN):
    """:class:`HRFPN` whose level convs have a stride (MMDetection ``HRFPN(stride=2)``): levels at
    strides ``4 * stride * 2^l``, 8..128 for stride 2."""

    def __init__(
        self, in_channels: Sequence[int], out_channels: int = 256, *, num_levels: int = 5, stride: int = 2
    ) -> None:
        super().__init__(in_channels, out_channels, num_levels=num_levels)
        self.fpn_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, stride=stride)
            for _ in range(num_levels)
        )
        for conv in self.fpn_convs:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)


class HRNetWithStridedHRFPN(HRNetWithHRFPN):
    """Backbone + :class:`StridedHRFPN`: ``OrderedDict`` ``"0".."4"`` of ``[B, C, H/8, W/8]`` ..
    ``[B, C, H/128, W/128]``; state-dict keys as :class:`HRNetWithHRFPN`'s."""

    def __init__(self, body: HighResolutionNet, out_channels: int = 256, *, stride: int = 2) -> None:
        super().__init__(body, out_channels)
        self.neck = StridedHRFPN(
            body.branch_channels, out_channels, num_levels=len(FCOS_STRIDES), stride=stride
        )


class ConvGNReLU(nn.Module):
    """conv3x3 (no bias) + GroupNorm + ReLU; the attribute names of MMDetection's ConvModule."""

    def __init__(self, in_channels: int, out_channels: int, num_groups: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.gn = nn.GroupNorm(num_groups, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.gn(self.conv(x)))


class Scale(nn.Module):
    """A learnable scalar multiplier (one per FCOS level)."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class MMDetFCOSHead(nn.Module):
    """MMDetection's FCOSHead (``norm_on_bbox=False``, ``centerness_on_reg=False``).

    ``forward(features)`` -> ``{"cls_logits" [B, P, K], "bbox_regression" [B, P, 4] (l, t, r, b
    distances in input pixels, ``exp(Scale(x))``), "bbox_ctrness" [B, P, 1]}``, P the locations of
    all levels (level-major, row-major), K the foreground classes. Module names are MMDetection's
    ``bbox_head.*`` names.
    """

    def __init__(
        self, in_channels: int, num_classes: int, *, num_levels: int = 5, num_convs: int = 4
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_convs = nn.ModuleList(ConvGNReLU(in_channels, in_channels) for _ in range(num_convs))
        self.reg_convs = nn.ModuleList(ConvGNReLU(in_channels, in_channels) for _ in range(num_convs))
        self.conv_cls = nn.Conv2d(in_channels, num_classes, kernel_size=3, padding=1)
        self.conv_reg = nn.Conv2d(in_channels, 4, kernel_size=3, padding=1)
        self.conv_centerness = nn.Conv2d(in_channels, 1, kernel_size=3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - FCOS_PRIOR_PROB) / FCOS_PRIOR_PROB))

    def forward(self, features: list[Tensor]) -> dict[str, Tensor]:
        cls_out, reg_out, ctr_out = [], [], []
        for feature, scale in zip(features, self.scales):
            cls_feat, reg_feat = feature, feature
            for conv in self.cls_convs:
                cls_feat = conv(cls_feat)
            for conv in self.reg_convs:
                reg_feat = conv(reg_feat)
            cls_out.append(_flatten(self.conv_cls(cls_feat)))
            ctr_out.append(_flatten(self.conv_centerness(cls_feat)))
            reg_out.append(_flatten(scale(self.conv_reg(reg_feat)).float().exp()))
        return {
            "cls_logits": torch.cat(cls_out, dim=1),
            "bbox_regression": torch.cat(reg_out, dim=1),
            "bbox_ctrness": torch.cat(ctr_out, dim=1),
        }


def _flatten(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, H*W, C]``."""
    return x.flatten(2).permute(0, 2, 1)


# --------------------------------------------------------------------------------------------
# FCOS: targets, losses, decoding (MMDetection's variant)
# --------------------------------------------------------------------------------------------


def fcos_assign(points: Tensor, ranges: Tensor, gt_boxes: Tensor) -> tuple[Tensor, Tensor]:
    """MMDetection's FCOS assignment (no centre sampling).

    A location is a candidate of a ground-truth box when it lies strictly inside the box and the
    largest of its distances to the box sides lies in the location's regress range
    ``[lo, hi]``; among candidates the box of smallest area wins.

    Args:
        points: ``[P, 2]`` location coordinates (x, y) in input pixels.
        ranges: ``[P, 2]`` the regress range ``(lo, hi)`` of each location's level.
        gt_boxes: ``[M, 4]`` xyxy.

    Returns:
        ``matched [P]`` int64 index of the assigned box (-1: background) and ``targets [P, 4]``
        the (l, t, r, b) distances to it (zeros for the background).
    """
    num_points = points.shape[0]
    if gt_boxes.numel() == 0:
        return (
            torch.full((num_points,), -1, dtype=torch.int64, device=points.device),
            points.new_zeros(num_points, 4),
        )
    x, y = points[:, 0:1], points[:, 1:2]
    dist = torch.stack(
        [
            x - gt_boxes[None, :, 0],
            y - gt_boxes[None, :, 1],
            gt_boxes[None, :, 2] - x,
            gt_boxes[None, :, 3] - y,
        ],
        dim=2,
    )  # [P, M, 4]
    inside = dist.min(dim=2).values > 0
    longest = dist.max(dim=2).values
    in_range = (longest >= ranges[:, 0:1]) & (longest <= ranges[:, 1:2])
    areas = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1]))[None].expand(
        num_points, -1
    )
    areas = areas.masked_fill(~(inside & in_range), INF)
    min_area, matched = areas.min(dim=1)
    matched[min_area == INF] = -1
    targets = dist[torch.arange(num_points, device=points.device), matched.clamp(min=0)]
    targets[matched < 0] = 0
    return matched, targets


def centerness_target(ltrb: Tensor) -> Tensor:
    """``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of ``[N, 4]`` distances."""
    lr, tb = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
    return torch.sqrt(
        (lr.min(dim=1).values / lr.max(dim=1).values) * (tb.min(dim=1).values / tb.max(dim=1).values)
    )


def _ltrb_iou(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """IoU of two boxes given as (l, t, r, b) distances from the same point, ``[N, 4]`` each."""
    area_p = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    area_t = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    inter_w = torch.min(pred[:, 0], target[:, 0]) + torch.min(pred[:, 2], target[:, 2])
    inter_h = torch.min(pred[:, 1], target[:, 1]) + torch.min(pred[:, 3], target[:, 3])
    inter = inter_w.clamp(min=0) * inter_h.clamp(min=0)
    return (inter / (area_p + area_t - inter).clamp(min=eps)).clamp(min=eps)


def _points_and_ranges(anchors: Tensor, num_per_level: list[int]) -> tuple[Tensor, Tensor]:
    """Location centres ``(x + 1/2) * stride`` from torchvision's one-anchor-per-location boxes
    (centred on ``x * stride``, width = stride) and each location's regress range."""
    sizes = anchors[:, 2] - anchors[:, 0]
    points = (anchors[:, :2] + anchors[:, 2:]) / 2 + sizes[:, None] / 2
    ranges = torch.cat([anchors.new_tensor(r).expand(n, 2) for r, n in zip(REGRESS_RANGES, num_per_level)])
    return points, ranges


def _distance_to_boxes(points: Tensor, ltrb: Tensor, image_shape: tuple[int, int]) -> Tensor:
    boxes = torch.cat([points - ltrb[:, :2], points + ltrb[:, 2:]], dim=1)
    return box_ops.clip_boxes_to_image(boxes, image_shape)


class HRNetFCOS(FCOS):
    """FCOS on :class:`HRNetWithStridedHRFPN`: torchvision's ``FCOS`` (transform, anchors as
    locations, the improved head) or, with ``head="mmdet"``, MMDetection's head, targets, losses
    (``loss_classifier``, ``loss_bbox_iou``, ``loss_centerness``) and decoding.

    ``model(images, targets)`` in train mode returns the losses; eval mode a list of
    ``{"boxes", "labels", "scores"}`` in input-image coordinates (labels 1..K).
    """

    def __init__(
        self,
        backbone: HRNetWithStridedHRFPN,
        num_classes: int,
        *,
        head: Literal["mmdet", "torchvision"] = "mmdet",
        normalization: Normalization = "mmdet",
        min_size: int = 800,
        max_size: int = 1333,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        topk_candidates: int = 1000,
    ) -> None:
        if head not in ("mmdet", "torchvision"):
            raise ValueError(f"head must be 'mmdet' or 'torchvision', got {head!r}")
        anchors = AnchorGenerator(tuple((s,) for s in FCOS_STRIDES), ((1.0,),) * len(FCOS_STRIDES))
        if head == "mmdet":  # sigmoid over the foreground classes: column c is label c + 1
            head_module: nn.Module = MMDetFCOSHead(
                backbone.out_channels, num_classes - 1, num_levels=len(FCOS_STRIDES)
            )
        else:  # torchvision's: one column per label, column 0 (background) never a target
            head_module = FCOSHead(backbone.out_channels, 1, num_classes)
        super().__init__(
            backbone,
            num_classes,
            min_size=min_size,
            max_size=max_size,
            anchor_generator=anchors,
            head=head_module,
            score_thresh=score_thresh,
            nms_thresh=nms_thresh,
            detections_per_img=detections_per_img,
            topk_candidates=topk_candidates,
        )
        self.transform = NormalizingTransform(min_size, max_size, normalization)
        self.head_variant = head

    def compute_loss(
        self,
        targets: list[dict[str, Tensor]],
        head_outputs: dict[str, Tensor],
        anchors: list[Tensor],
        num_anchors_per_level: list[int],
    ) -> dict[str, Tensor]:
        if self.head_variant == "torchvision":
            return super().compute_loss(targets, head_outputs, anchors, num_anchors_per_level)
        cls_logits = head_outputs["cls_logits"]
        labels, box_targets = [], []
        for anchors_per_image, target in zip(anchors, targets):
            points, ranges = _points_and_ranges(anchors_per_image, num_anchors_per_level)
            matched, ltrb = fcos_assign(points, ranges, target["boxes"])
            label = torch.zeros_like(matched)
            label[matched >= 0] = target["labels"][matched[matched >= 0]]
            labels.append(label)
            box_targets.append(ltrb)
        label = torch.stack(labels).flatten()
        pos = torch.where(label > 0)[0]
        num_pos = max(float(pos.numel()), 1.0)
        one_hot = torch.zeros_like(cls_logits.flatten(0, 1))
        one_hot[pos, label[pos] - 1] = 1.0
        loss_cls = sigmoid_focal_loss(
            cls_logits.flatten(0, 1), one_hot, alpha=0.25, gamma=2.0, reduction="sum"
        )
        pred_ltrb = head_outputs["bbox_regression"].flatten(0, 1)[pos]
        pred_ctr = head_outputs["bbox_ctrness"].flatten()[pos]
        if pos.numel() == 0:  # keep the graph connected
            zero = head_outputs["bbox_regression"].sum() * 0 + head_outputs["bbox_ctrness"].sum() * 0
            return {"loss_classifier": loss_cls / num_pos, "loss_bbox_iou": zero, "loss_centerness": zero}
        target_ltrb = torch.stack(box_targets).flatten(0, 1)[pos]
        ctr_target = centerness_target(target_ltrb)
        loss_iou = (
            -torch.log(_ltrb_iou(pred_ltrb, target_ltrb)) * ctr_target
        ).sum() / ctr_target.sum().clamp(min=1e-6)
        loss_ctr = F.binary_cross_entropy_with_logits(pred_ctr, ctr_target, reduction="sum") / num_pos
        return {"loss_classifier": loss_cls / num_pos, "loss_bbox_iou": loss_iou, "loss_centerness": loss_ctr}

    def postprocess_detections(
        self,
        head_outputs: dict[str, list[Tensor]],
        anchors: list[list[Tensor]],
        image_shapes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """MMDetection's dense-head decoding: per level the ``topk_candidates`` (location, class)
        pairs with sigmoid score above ``score_thresh``; score x centerness; class-wise NMS."""
        if self.head_variant == "torchvision":
            # column 0 is the background (never a target): no detection may take label 0
            logits = [level.clone() for level in head_outputs["cls_logits"]]
            for level in logits:
                level[..., 0] = float("-inf")
            return super().postprocess_detections(
                {**head_outputs, "cls_logits": logits}, anchors, image_shapes
            )
        detections = []
        for index, image_shape in enumerate(image_shapes):
            boxes_all, scores_all, labels_all = [], [], []
            for level, level_anchors in enumerate(anchors[index]):
                scores = torch.sigmoid(head_outputs["cls_logits"][level][index])  # [P_l, K]
                num_classes = scores.shape[1]
                flat = scores.flatten()
                candidates = torch.where(flat > self.score_thresh)[0]
                top = flat[candidates].topk(min(self.topk_candidates, candidates.numel())).indices
                candidates = candidates[top]
                point_idx = torch.div(candidates, num_classes, rounding_mode="floor")
                sizes = level_anchors[:, 2] - level_anchors[:, 0]
                points = (level_anchors[point_idx, :2] + level_anchors[point_idx, 2:]) / 2 + sizes[
                    point_idx, None
                ] / 2
                ltrb = head_outputs["bbox_regression"][level][index][point_idx]
                ctr = torch.sigmoid(head_outputs["bbox_ctrness"][level][index][point_idx, 0])
                boxes_all.append(_distance_to_boxes(points, ltrb, image_shape))
                scores_all.append(flat[candidates] * ctr)
                labels_all.append(candidates % num_classes + 1)
            boxes, scores, labels = torch.cat(boxes_all), torch.cat(scores_all), torch.cat(labels_all)
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            detections.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return detections


# --------------------------------------------------------------------------------------------
# CenterNet ("Objects as Points", Zhou et al. 2019) on the 1/4 HRNetV2 representation
# --------------------------------------------------------------------------------------------


class HRNetV2Features(nn.Module):
    """The HRNetV2 representation: the four branches bilinearly upsampled to the 1/4 map and
    concatenated, ``[B, sum(C_k), H/4, W/4]`` (HRNetV2 of the HRNet paper, without its 1x1 fuse)."""

    def __init__(self, body: HighResolutionNet) -> None:
        super().__init__()
        if body.output != "branches":
            raise ValueError(
                f"HRNetV2Features needs a backbone built with output='branches', got {body.output!r}"
            )
        self.body = body
        self.out_channels = sum(body.branch_channels)

    def forward(self, images: Tensor) -> Tensor:
        branches = self.body(images)
        size = branches[0].shape[-2:]
        ups = [F.interpolate(b, size=size, mode="bilinear", align_corners=False) for b in branches[1:]]
        return torch.cat([branches[0], *ups], dim=1)


class CenterNetHead(nn.Module):
    """Three heads of conv3x3 + ReLU + conv1x1: class heatmap logits ``[B, K, h, w]``, box size
    ``[B, 2, h, w]`` (w, h in output pixels) and centre offset ``[B, 2, h, w]`` (MMDetection's
    CenterNetHead names: ``heatmap_head``, ``wh_head``, ``offset_head``)."""

    def __init__(self, in_channels: int, num_classes: int, head_channels: int = 64) -> None:
        super().__init__()

        def branch(out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(in_channels, head_channels, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(head_channels, out, kernel_size=1),
            )

        self.heatmap_head, self.wh_head, self.offset_head = branch(num_classes), branch(2), branch(2)
        for head in (self.wh_head, self.offset_head):  # Zhou et al.: regression heads N(0, 0.001), bias 0
            for m in head:
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=0.001)
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.heatmap_head[2].bias, CENTERNET_HEATMAP_BIAS)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"heatmap": self.heatmap_head(x), "wh": self.wh_head(x), "offset": self.offset_head(x)}


def gaussian_radius(height: float, width: float, min_overlap: float = CENTERNET_MIN_OVERLAP) -> float:
    """CornerNet's radius: the smallest of the three corner shifts (both corners inside, both
    outside, one of each) at which a box keeps IoU ``min_overlap`` with the ``height x width`` box,
    each the larger root of its quadratic (divided by 2, as CornerNet and CenterNet compute it)."""
    hw, s = height * width, height + width
    r1 = (s + math.sqrt(s**2 - 4 * hw * (1 - min_overlap) / (1 + min_overlap))) / 2
    r2 = (2 * s + math.sqrt(4 * s**2 - 16 * (1 - min_overlap) * hw)) / 2
    r3 = (
        -2 * min_overlap * s
        + math.sqrt(4 * min_overlap**2 * s**2 - 16 * min_overlap * (min_overlap - 1) * hw)
    ) / 2
    return min(r1, r2, r3)


def _draw_gaussian(heatmap: Tensor, cx: int, cy: int, radius: int) -> None:
    """``heatmap [h, w] = max(heatmap, exp(-d^2 / (2 sigma^2)))`` on the (2r+1)^2 square around
    (cx, cy), sigma = (2r + 1) / 6."""
    sigma = (2 * radius + 1) / 6
    h, w = heatmap.shape
    x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
    y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
    ys = torch.arange(y0, y1, dtype=heatmap.dtype, device=heatmap.device)[:, None] - cy
    xs = torch.arange(x0, x1, dtype=heatmap.dtype, device=heatmap.device)[None, :] - cx
    g = torch.exp(-(xs**2 + ys**2) / (2 * sigma**2))
    heatmap[y0:y1, x0:x1] = torch.maximum(heatmap[y0:y1, x0:x1], g)


def centernet_encode(
    boxes: Tensor, labels: Tensor, num_classes: int, out_size: tuple[int, int], stride: int = CENTERNET_STRIDE
) -> dict[str, Tensor]:
    """One image's targets at the output resolution.

    Args:
        boxes: ``[M, 4]`` xyxy in (padded) input pixels.
        labels: ``[M]`` in 1..K.
        num_classes: K, the foreground classes.
        out_size: ``(h, w)`` of the output maps.

    Returns:
        ``heatmap [K, h, w]`` (a Gaussian per object, 1 at its integer centre), ``wh [M, 2]`` box
        sizes and ``offset [M, 2]`` sub-pixel centre offsets in output pixels, ``index [M]`` the flat
        position ``y * w + x`` of each centre and ``label [M]`` (0-based class).
    """
    h, w = out_size
    heatmap = boxes.new_zeros(num_classes, h, w)
    centers = (boxes[:, :2] + boxes[:, 2:]) / (2 * stride)
    sizes = (boxes[:, 2:] - boxes[:, :2]) / stride
    ints = centers.floor().long()
    ints[:, 0].clamp_(0, w - 1)
    ints[:, 1].clamp_(0, h - 1)
    for (cx, cy), (bw, bh), label in zip(ints.tolist(), sizes.tolist(), labels.tolist()):
        radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw))))
        _draw_gaussian(heatmap[label - 1], cx, cy, radius)
    return {
        "heatmap": heatmap,
        "wh": sizes,
        "offset": centers - ints.to(centers.dtype),
        "index": ints[:, 1] * w + ints[:, 0],
        "label": labels - 1,
    }


def centernet_decode(
    heatmap: Tensor, wh: Tensor, offset: Tensor, *, topk: int = 100, stride: int = CENTERNET_STRIDE
) -> tuple[Tensor, Tensor, Tensor]:
    """Heatmap peaks -> boxes: 3x3 max-pool NMS on the sigmoid heatmap, the ``topk`` peaks over
    all classes, boxes ``(x + dx -+ w/2, y + dy -+ h/2) * stride``.

    Args:
        heatmap: ``[K, h, w]`` logits; wh, offset: ``[2, h, w]``.

    Returns:
        ``boxes [T, 4]`` xyxy in input pixels, ``scores [T]``, ``labels [T]`` in 1..K.
    """
    heat = torch.sigmoid(heatmap)
    peaks = heat * (F.max_pool2d(heat[None], 3, stride=1, padding=1)[0] == heat)
    _, h, w = heat.shape
    scores, idx = peaks.flatten().topk(min(topk, peaks.numel()))
    labels = torch.div(idx, h * w, rounding_mode="floor") + 1
    pos = idx % (h * w)
    ys, xs = torch.div(pos, w, rounding_mode="floor"), pos % w
    cx = xs.to(heat.dtype) + offset[0].flatten()[pos]
    cy = ys.to(heat.dtype) + offset[1].flatten()[pos]
    bw, bh = wh[0].flatten()[pos], wh[1].flatten()[pos]
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1) * stride
    return boxes, scores, labels


def _gaussian_focal_loss(logits: Tensor, target: Tensor, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """CornerNet's focal loss on Gaussian heatmaps, summed over all pixels (normalise outside)."""
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).to(pred.dtype)
    pos_loss = -torch.log(pred) * (1 - pred) ** alpha * pos
    neg_loss = -torch.log(1 - pred) * pred**alpha * (1 - target) ** beta * (1 - pos)
    return (pos_loss + neg_loss).sum()


class CenterNet(nn.Module):
    """CenterNet ("Objects as Points") on :class:`HRNetV2Features` (output stride 4).

    Train mode: losses ``loss_heatmap`` (Gaussian focal loss / objects), ``loss_wh`` (L1 x 0.1)
    and ``loss_offset`` (L1 x 1), both over the objects' centres and divided by 2 x objects.
    Eval mode: :func:`centernet_decode` per image, boxes clipped and mapped to input coordinates.
    With ``test_keep_res`` evaluation follows CenterNet's ``--keep_res`` test instead
    (xingyizhou/CenterNet ``src/lib/detectors/base_detector.py`` ``pre_process``,
    ``ctdet.py`` ``post_process``): each image keeps its size, centred (its ``(w // 2, h // 2)``
    on the canvas' centre) on a black canvas of ``(side | 31) + 1`` per side, and the boxes are
    moved back by that offset, unclipped.
    """

    def __init__(
        self,
        backbone: HRNetV2Features,
        num_classes: int,
        *,
        min_size: int = 512,
        max_size: int = 512,
        head_channels: int = 64,
        detections_per_img: int = 100,
        score_thresh: float = 0.0,
        test_keep_res: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.test_keep_res = test_keep_res
        self.head = CenterNetHead(backbone.out_channels, num_classes - 1, head_channels)
        self.transform = NormalizingTransform(min_size, max_size, "imagenet")
        self.detections_per_img = detections_per_img
        self.score_thresh = score_thresh

    def compute_loss(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        _, k, h, w = outputs["heatmap"].shape
        loss_hm = outputs["heatmap"].new_zeros(())
        loss_wh = outputs["wh"].new_zeros(())
        loss_off = outputs["offset"].new_zeros(())
        num = 0
        for i, target in enumerate(targets):
            enc = centernet_encode(target["boxes"], target["labels"], k, (h, w))
            loss_hm = loss_hm + _gaussian_focal_loss(outputs["heatmap"][i], enc["heatmap"])
            wh = outputs["wh"][i].flatten(1)[:, enc["index"]].t()
            off = outputs["offset"][i].flatten(1)[:, enc["index"]].t()
            loss_wh = loss_wh + (wh - enc["wh"]).abs().sum()
            loss_off = loss_off + (off - enc["offset"]).abs().sum()
            num += int(enc["index"].numel())
        num = max(num, 1)
        return {
            "loss_heatmap": loss_hm / num,
            "loss_wh": CENTERNET_WH_WEIGHT * loss_wh / (2 * num),
            "loss_offset": CENTERNET_OFFSET_WEIGHT * loss_off / (2 * num),
        }

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        if self.test_keep_res and not self.training:
            return self._keep_res_detections(images)
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batch, targets = self.transform(images, targets)
        outputs = self.head(self.backbone(batch.tensors))
        if self.training:
            if targets is None:
                raise ValueError("CenterNet needs targets in training mode")
            return self.compute_loss(outputs, targets)
        detections = []
        for i, shape in enumerate(batch.image_sizes):
            found = self._decode(outputs, i)
            found["boxes"] = box_ops.clip_boxes_to_image(found["boxes"], shape)
            detections.append(found)
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes)

    def _decode(self, outputs: dict[str, Tensor], i: int) -> dict[str, Tensor]:
        """Image ``i``'s detections in batch-input pixels: the top peaks above ``score_thresh``."""
        boxes, scores, labels = centernet_decode(
            outputs["heatmap"][i], outputs["wh"][i], outputs["offset"][i], topk=self.detections_per_img
        )
        keep = scores > self.score_thresh
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}

    def _keep_res_detections(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        """CenterNet's ``--keep_res`` test of 0..1 RGB images ``[3, h, w]``: black canvases of
        ``(h | 31) + 1`` x ``(w | 31) + 1`` with the image centred, normalised, batched (a larger
        canvas of the batch extends black to the bottom right), decoded and moved back."""
        canvases, offsets = [], []
        for img in images:
            h, w = int(img.shape[-2]), int(img.shape[-1])
            ch, cw = (h | 31) + 1, (w | 31) + 1
            top, left = ch // 2 - h // 2, cw // 2 - w // 2
            canvas = img.new_zeros((img.shape[0], ch, cw))
            canvas[:, top : top + h, left : left + w] = img
            canvases.append(canvas)
            offsets.append((left, top))
        height = max(c.shape[-2] for c in canvases)
        width = max(c.shape[-1] for c in canvases)
        batch = torch.stack(
            [
                self.transform.normalize(F.pad(c, (0, width - c.shape[-1], 0, height - c.shape[-2])))
                for c in canvases
            ]
        )
        outputs = self.head(self.backbone(batch))
        detections = []
        for i, (left, top) in enumerate(offsets):
            found = self._decode(outputs, i)
            found["boxes"] = found["boxes"] - found["boxes"].new_tensor([left, top, left, top])
            detections.append(found)
        return detections


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class FCOSKwargs(TypedDict, total=False):
    """Keyword arguments of the FCOS builders."""

    num_classes: int  # including the background (torchvision convention); default 81 (COCO)
    min_size: int  # short side the images are resized to (default 800)
    max_size: int  # cap of the long side (default 1333)
    frozen_bn: bool  # backbone BatchNorm -> FrozenBatchNorm2d
    trainable_stages: int  # backbone stages left trainable, 0..5 (default 5: all)
    fpn_channels: int  # HRFPN output channels = head width (default 256; a multiple of 32 for GN)
    head: Literal["mmdet", "torchvision"]  # head, targets, losses, decoding (default "mmdet")
    normalization: Normalization  # input statistics and channel order (default "mmdet")
    box_score_thresh: float  # minimum score of a returned detection (default 0.05)
    box_nms_thresh: float  # class-wise NMS IoU (default 0.5)
    box_detections_per_img: int  # detections kept per image (default 100)
    topk_candidates: int  # candidates per level before NMS (default 1000)


class CenterNetKwargs(TypedDict, total=False):
    """Keyword arguments of the CenterNet builders."""

    num_classes: int  # including the background (torchvision convention); default 81 (COCO)
    min_size: int  # short side the images are resized to (default 512)
    max_size: int  # cap of the long side (default 512)
    frozen_bn: bool  # backbone BatchNorm -> FrozenBatchNorm2d
    trainable_stages: int  # backbone stages left trainable, 0..5 (default 5: all)
    head_channels: int  # width of each head's 3x3 conv (default 64)
    box_score_thresh: float  # minimum score of a returned detection (default 0: all top-k)
    box_detections_per_img: int  # heatmap peaks kept per image (default 100)
    test_keep_res: bool  # evaluate as CenterNet's --keep_res test (default False: resize)


def _check(name: str, kwargs: dict[str, object], accepted: type) -> None:
    for key in kwargs:
        if key not in accepted.__annotations__:
            raise TypeError(
                f"{name}() got an unexpected keyword argument {key!r}; accepted: {', '.join(accepted.__annotations__)}"
            )


def _body(backbone_name: str, kwargs: FCOSKwargs | CenterNetKwargs) -> HighResolutionNet:
    body = HighResolutionNet(
        CONFIGS[backbone_name],
        output="branches",
        norm_layer=FrozenBatchNorm2d if kwargs.get("frozen_bn", False) else None,
    )
    freeze_stages(body, kwargs.get("trainable_stages", len(STAGE_MODULES)))
    return body


def build_fcos(backbone_name: str, **kwargs: Unpack[FCOSKwargs]) -> HRNetFCOS:
    """FCOS on HRNetV2p ``backbone_name`` (any key of :data:`hrnet.models.hrnet.CONFIGS`)."""
    _check(f"fcos_hrnetv2p_{backbone_name.removeprefix('hrnet_')}", dict(kwargs), FCOSKwargs)
    backbone = HRNetWithStridedHRFPN(_body(backbone_name, kwargs), kwargs.get("fpn_channels", 256))
    return HRNetFCOS(
        backbone,
        kwargs.get("num_classes", 81),
        head=kwargs.get("head", "mmdet"),
        normalization=kwargs.get("normalization", "mmdet"),
        min_size=kwargs.get("min_size", 800),
        max_size=kwargs.get("max_size", 1333),
        score_thresh=kwargs.get("box_score_thresh", 0.05),
        nms_thresh=kwargs.get("box_nms_thresh", 0.5),
        detections_per_img=kwargs.get("box_detections_per_img", 100),
        topk_candidates=kwargs.get("topk_candidates", 1000),
    )


def build_centernet(backbone_name: str, **kwargs: Unpack[CenterNetKwargs]) -> CenterNet:
    """CenterNet on HRNetV2 ``backbone_name`` (any key of :data:`hrnet.models.hrnet.CONFIGS`)."""
    _check(f"centernet_hrnetv2_{backbone_name.removeprefix('hrnet_')}", dict(kwargs), CenterNetKwargs)
    return CenterNet(
        HRNetV2Features(_body(backbone_name, kwargs)),
        kwargs.get("num_classes", 81),
        min_size=kwargs.get("min_size", 512),
        max_size=kwargs.get("max_size", 512),
        head_channels=kwargs.get("head_channels", 64),
        detections_per_img=kwargs.get("box_detections_per_img", 100),
        score_thresh=kwargs.get("box_score_thresh", 0.0),
        test_keep_res=kwargs.get("test_keep_res", False),
    )


FCOS_WIDTHS: tuple[str, ...] = ("hrnet_w18", "hrnet_w32", "hrnet_w40", "hrnet_w48")
CENTERNET_WIDTHS: tuple[str, ...] = ("hrnet_w18", "hrnet_w32", "hrnet_w48")


# HRNet-FCOS's README (5-level FCOS on HRNetV2p, 81 classes): parameters (M) and GFLOPs
_HRNET_FCOS_COUNTS: dict[str, tuple[float, float]] = {"hrnet_w18": (17.5, 180.3), "hrnet_w32": (37.3, 273.3)}


def _fcos_counts(backbone_name: str) -> tuple[Published | None, tuple[Published, ...]]:
    counts = _HRNET_FCOS_COUNTS.get(backbone_name)
    if counts is None:
        return None, ()
    params = Published(counts[0], MEGA_PARAMS, "HRNet-FCOS", "all parameters of the detector (80 classes)")
    gflops = Published(
        counts[1],
        GFLOPS,
        "HRNet-FCOS",
        "conv multiply-adds of backbone, HRFPN and head; the source states no input size: counted here "
        "at 800x1312 (41 x 32, the multiple of 32 below 1333), where both published figures "
        "are met (at 800x1333 the count is 183.7 / 278.7)",
        counter="detector",
        input_size=(800, 1312),
    )
    return params, (gflops,)


def _info(
    name: str,
    backbone_name: str,
    build: Callable[..., nn.Module],
    accepted: type,
    *,
    doc: str,
    summary: str,
    **extra: Any,
) -> ModelInfo:
    """The registry entry of one detector of this module: ``name`` built by
    ``build(backbone_name, **kwargs)``, the keyword arguments of the TypedDict ``accepted``."""

    def builder(**kwargs: Any) -> nn.Module:
        return build(backbone_name, **kwargs)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = doc
    builder.accepted_kwargs = frozenset(accepted.__annotations__)  # type: ignore[attr-defined]
    return ModelInfo(
        name=name,
        task="detection",
        builder=builder,
        summary=summary,
        kwargs={"num_classes": 81},
        backbone_checkpoints=HRNETV2_CHECKPOINTS[backbone_name],
        **extra,
    )


def _fcos_info(backbone_name: str) -> ModelInfo:
    params, gflops = _fcos_counts(backbone_name)
    return _info(
        f"fcos_hrnetv2p_{backbone_name.removeprefix('hrnet_')}",
        backbone_name,
        build_fcos,
        FCOSKwargs,
        doc=f"FCOS on HRNetV2p ({backbone_name}): HRFPN with stride-2 level convs (strides 8..128) and "
        "MMDetection's GN head (head='torchvision': torchvision's improved FCOS head).",
        summary=f"FCOS on HRNetV2p ({backbone_name}) with a stride-2 HRFPN, 5 levels",
        params=params,
        gflops=gflops,
    )


def _centernet_info(backbone_name: str) -> ModelInfo:
    return _info(
        f"centernet_hrnetv2_{backbone_name.removeprefix('hrnet_')}",
        backbone_name,
        build_centernet,
        CenterNetKwargs,
        doc=f"CenterNet (Objects as Points) on HRNetV2 ({backbone_name}): heatmap / size / offset heads "
        "on the concatenated 1/4-resolution branches.",
        summary=f"CenterNet (Objects as Points, stride 4) on HRNetV2 ({backbone_name})",
        notes="no HRNet CenterNet code or weights were published; the architecture and recipe are this project's",
    )


MODEL_INFOS: tuple[ModelInfo, ...] = (
    *(_fcos_info(name) for name in FCOS_WIDTHS),
    *(_centernet_info(name) for name in CENTERNET_WIDTHS),
)
MODELS: dict[str, Callable[..., nn.Module]] = {info.name: info.builder for info in MODEL_INFOS}
