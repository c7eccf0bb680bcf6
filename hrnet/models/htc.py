"""Cascade Mask R-CNN and Hybrid Task Cascade (HTC) on HRNetV2p: the Cascade R-CNN of
:mod:`hrnet.models.detection` with one mask head per stage.

Reading order: the mask head, the fused semantic head, the RoI heads, the model, the builders.
torchvision supplies the parts it has (RPN, MultiScaleRoIAlign, roi_align, the 4-conv mask head
and its predictor, the mask loss and the mask pasting of its transform); what it lacks is here:
per-stage mask heads with the stage loss weights, the test-time average of the stages' masks,
HTC's interleaved training, its mask information flow and its semantic branch.

Sources (MMDetection configs/hrnet/cascade_mask_rcnn_hrnetv2p_w32_20e.py and
configs/hrnet/htc_hrnetv2p_w32_20e.py, v1; heads in mmdet/models/roi_heads/mask_heads/
htc_mask_head.py and fused_semantic_head.py):

- Mask heads: RoIAlign 14x14 (sampling 2) on strides 4-32, 4 conv3x3 x256 + ReLU, 2x deconv + ReLU,
  1x1 to 28x28 class-specific logits, BCE on the ground-truth class; stage loss weights 1/0.5/0.25
  (as the box losses). Test: the final boxes' masks from every stage's head, sigmoid, averaged.
- Box regression loss: smooth L1 with beta 1.0 (``SmoothL1Loss(beta=1.0)`` in both configs).
- HTC: ``interleaved`` (stage t's mask head is trained on the boxes stage t regressed, re-assigned
  and re-sampled with stage t's assigner), ``mask_info_flow`` (the mask head of stage t adds
  ``ReLU(conv_res(f))`` of the previous stage's 4-conv feature ``f``, recomputed through heads
  0..t-1), and the semantic branch: 1x1 conv + ReLU per HRFPN level, bilinear (align_corners True)
  to stride 8, summed, 4 conv3x3 + ReLU, then ``conv_logits`` (183 COCO-stuff classes, ignore 255,
  loss weight 0.2) and ``conv_embedding`` (1x1 + ReLU): the semantic feature. Its RoIAlign 14x14 at
  stride 8 is added to the mask RoI features and, average-pooled to 7x7, to the box RoI features.
  Test score threshold 0.001.

Targets are torchvision's (``boxes``, ``labels``, ``masks`` ``uint8 [N, H, W]``), for HTC with the
semantic branch also ``semantic``: ``uint8 [H, W]`` COCO-stuff labels at the input image's
resolution (what the dataset reads). The model resizes it with the image (nearest), pads it with
255 and takes every 8th pixel: MMDetection's ``Resize``, ``Pad`` and ``SegRescale(1/8)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import maskrcnn_loss
from torchvision.ops import MultiScaleRoIAlign, roi_align

from hrnet.models.detection import (
    MASK_HEAD_CHANNELS,
    REPRESENTATION_SIZE,
    ROI_FEATURE_NAMES,
    ROI_SIZE,
    CascadeRCNN,
    CascadeRoIHeads,
    DetectionKwargs,
    HRNetWithHRFPN,
    _box_roi_pool,
    _feature_extractor,
)
from hrnet.models.hrnet import CONFIGS, HRNETV2_CHECKPOINTS
from hrnet.models.registry import ModelInfo

__all__ = [
    "MODELS",
    "MODEL_INFOS",
    "CascadeMaskKwargs",
    "CascadeMaskRCNN",
    "CascadeMaskRoIHeads",
    "FusedSemanticHead",
    "HTCKwargs",
    "StageMaskHead",
    "semantic_targets",
]

MASK_ROI_SIZE = 14  # RoIAlign output of the mask heads (28x28 masks after the 2x deconv)
MASK_NUM_CONVS = 4
BOX_LOSS_BETA = 1.0  # SmoothL1Loss(beta=1.0) of the box stages in both source configs
CASCADE_MASK_SCORE_THRESH = 0.05  # cascade_mask_rcnn_hrnetv2p_w32_20e.py test_cfg.rcnn.score_thr
HTC_SCORE_THRESH = 0.001  # htc_hrnetv2p_w32_20e.py test_cfg.rcnn.score_thr
SEMANTIC_CLASSES = 183  # FusedSemanticHead num_classes (COCO-stuff stuffthingmaps)
SEMANTIC_IGNORE = 255
SEMANTIC_LOSS_WEIGHT = 0.2
SEMANTIC_FUSION_LEVEL = 1  # HRFPN level "1": stride 8
SEMANTIC_STRIDE = 8


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------


class StageMaskHead(nn.Module):
    """One stage's mask head: torchvision's 4-conv ``MaskRCNNHeads`` and ``MaskRCNNPredictor``
    (2x deconv + ReLU + 1x1 logits), plus HTC's 1x1 ``conv_res`` when ``with_conv_res``.

    ``forward(x [N, C, 14, 14], res_feat [N, 256, 14, 14] | None)`` -> ``(logits [N, K, 28, 28],
    feature [N, 256, 14, 14])``; the feature (after the 4 convs) is the next stage's ``res_feat``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        with_conv_res: bool = False,
        channels: int = MASK_HEAD_CHANNELS,
    ) -> None:
        super().__init__()
        self.mask_head = MaskRCNNHeads(in_channels, [channels] * MASK_NUM_CONVS, 1)
        self.mask_predictor = MaskRCNNPredictor(channels, channels, num_classes)
        self.conv_res = nn.Conv2d(channels, in_channels, kernel_size=1) if with_conv_res else None
        if self.conv_res is not None:
            nn.init.kaiming_normal_(self.conv_res.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(self.conv_res.bias)

    def features(self, x: Tensor, res_feat: Tensor | None = None) -> Tensor:
        """The 4-conv feature (``x + ReLU(conv_res(res_feat))`` first when ``res_feat`` is given)."""
        if res_feat is not None:
            if self.conv_res is None:
                raise ValueError("this mask head has no conv_res: it takes no previous-stage feature")
            x = x + F.relu(self.conv_res(res_feat))
        return self.mask_head(x)

    def forward(self, x: Tensor, res_feat: Tensor | None = None) -> tuple[Tensor, Tensor]:
        feat = self.features(x, res_feat)
        return self.mask_predictor(feat), feat


class FusedSemanticHead(nn.Module):
    """HTC's semantic branch on the HRFPN levels (names as MMDetection's without ``ConvModule``).

    ``forward(levels)`` with ``levels[l]`` ``[B, C, H/2^(l+2), W/2^(l+2)]`` -> ``(logits [B, K, H/8,
    W/8], feature [B, channels, H/8, W/8])`` (at level ``fusion_level``'s size).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        num_levels: int = 5,
        fusion_level: int = SEMANTIC_FUSION_LEVEL,
        num_convs: int = 4,
        channels: int = 256,
        num_classes: int = SEMANTIC_CLASSES,
        ignore_index: int = SEMANTIC_IGNORE,
        loss_weight: float = SEMANTIC_LOSS_WEIGHT,
    ) -> None:
        super().__init__()
        self.fusion_level = fusion_level
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self.lateral_convs = nn.ModuleList(nn.Conv2d(in_channels, in_channels, 1) for _ in range(num_levels))
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1) for i in range(num_convs)
        )
        self.conv_embedding = nn.Conv2d(channels, channels, 1)
        self.conv_logits = nn.Conv2d(channels, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, levels: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        x = F.relu(self.lateral_convs[self.fusion_level](levels[self.fusion_level]))
        size = x.shape[-2:]
        for i, level in enumerate(levels):
            if i != self.fusion_level:
                up = F.interpolate(level, size=size, mode="bilinear", align_corners=True)
                x = x + F.relu(self.lateral_convs[i](up))
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.conv_logits(x), F.relu(self.conv_embedding(x))

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """``loss_weight`` x cross entropy over the pixels not labelled ``ignore_index``."""
        return self.loss_weight * F.cross_entropy(logits, labels.long(), ignore_index=self.ignore_index)


def semantic_targets(
    maps: Sequence[Tensor], image_shapes: Sequence[tuple[int, int]], size: tuple[int, int]
) -> Tensor:
    """Per-image label maps at input resolution -> ``int64 [B, h, w]`` at the semantic feature size.

    Each map ``[H, W]`` (or ``[1, H, W]``) is resized (nearest) to its resized image's size
    ``image_shapes[i]``, padded with 255 to ``(SEMANTIC_STRIDE * h, SEMANTIC_STRIDE * w)`` (the
    padded batch) and subsampled by 8 (every 8th pixel from 0: nearest 1/8 rescale).
    """
    h, w = size
    out = maps[0].new_full(
        (len(maps), h * SEMANTIC_STRIDE, w * SEMANTIC_STRIDE), SEMANTIC_IGNORE, dtype=torch.int64
    )
    for i, (label_map, (ih, iw)) in enumerate(zip(maps, image_shapes)):
        m = label_map.reshape(1, 1, *label_map.shape[-2:]).float()
        m = F.interpolate(m, size=(ih, iw), mode="nearest")[0, 0].long()
        out[i, :ih, :iw] = m[: out.shape[1], : out.shape[2]]
    return out[:, ::SEMANTIC_STRIDE, ::SEMANTIC_STRIDE]


# --------------------------------------------------------------------------------------------
# RoI heads
# --------------------------------------------------------------------------------------------


class CascadeMaskRoIHeads(CascadeRoIHeads):
    """Cascade box stages (:class:`CascadeRoIHeads`) with one :class:`StageMaskHead` per stage.

    ``interleaved=False, mask_info_flow=False, semantic_head=None``: Cascade Mask R-CNN. Stage
    t's mask head is trained on the positives of stage t's sampled boxes (before its regression).
    ``interleaved=True, mask_info_flow=True`` (+ a :class:`FusedSemanticHead`): HTC. Stage t's
    boxes are regressed by its box head, re-assigned and re-sampled with its assigner, and its mask
    head is trained on the new positives; those regressed boxes feed stage t+1.

    Losses: the box losses of :class:`CascadeRoIHeads`, ``loss_mask_{t}`` (weighted as the
    stage), ``loss_semantic_seg``. Inference: detections as :class:`CascadeRoIHeads`, then
    ``masks [N, 1, 28, 28]``: the mean of the stages' sigmoid masks on the final boxes, at the
    detected class (the transform pastes them into the image).
    """

    def __init__(
        self,
        box_roi_pool: MultiScaleRoIAlign,
        mask_roi_pool: MultiScaleRoIAlign,
        in_channels: int,
        num_classes: int,
        *,
        interleaved: bool = False,
        mask_info_flow: bool = False,
        semantic_head: FusedSemanticHead | None = None,
        mask_channels: int = MASK_HEAD_CHANNELS,
        **box_kwargs: object,
    ) -> None:
        super().__init__(box_roi_pool, in_channels * ROI_SIZE**2, num_classes, **box_kwargs)  # type: ignore[arg-type]
        self.mask_roi_pool = mask_roi_pool
        self.mask_heads = nn.ModuleList(
            StageMaskHead(
                in_channels, num_classes, with_conv_res=mask_info_flow and t > 0, channels=mask_channels
            )
            for t in range(len(self.stages))
        )
        self.interleaved = interleaved
        self.mask_info_flow = mask_info_flow
        self.semantic_head = semantic_head

    def has_mask(self) -> bool:
        """torchvision's ``RoIHeads.has_mask`` (the detection task asks it)."""
        return True

    # ---- features ----

    @staticmethod
    def _semantic_rois(semantic_feat: Tensor, boxes: list[Tensor]) -> Tensor:
        return roi_align(
            semantic_feat, boxes, MASK_ROI_SIZE, spatial_scale=1 / SEMANTIC_STRIDE, sampling_ratio=2
        )

    def box_features(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
        semantic_feat: Tensor | None,
    ) -> Tensor:
        """RoIAlign 7x7 of the pyramid (+ the semantic RoI feature average-pooled to 7x7)."""
        x = self.box_roi_pool(features, boxes, image_shapes)
        if semantic_feat is not None:
            x = x + F.adaptive_avg_pool2d(self._semantic_rois(semantic_feat, boxes), x.shape[-2:])
        return x

    def mask_features(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
        semantic_feat: Tensor | None,
    ) -> Tensor:
        """RoIAlign 14x14 of the pyramid (+ the semantic RoI feature)."""
        x = self.mask_roi_pool(features, boxes, image_shapes)
        if semantic_feat is not None:
            x = x + self._semantic_rois(semantic_feat, boxes)
        return x

    def mask_logits(self, stage: int, mask_feats: Tensor) -> Tensor:
        """Stage ``stage``'s mask logits; with the information flow, heads 0..stage-1 first run on
        the same RoI features, each passing its 4-conv feature on."""
        res_feat = None
        if self.mask_info_flow:
            for head in self.mask_heads[:stage]:
                res_feat = head.features(mask_feats, res_feat)
        return self.mask_heads[stage](mask_feats, res_feat)[0]

    # ---- training ----

    def _train_forward(  # type: ignore[override]
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        semantic_feat = None
        if self.semantic_head is not None:
            if any("semantic" not in t for t in targets):
                raise ValueError("HTC with the semantic branch needs targets['semantic'] (COCO-stuff labels)")
            logits, semantic_feat = self.semantic_head(list(features.values()))
            labels_map = semantic_targets(
                [t["semantic"] for t in targets], image_shapes, tuple(logits.shape[-2:])
            )
            losses["loss_semantic_seg"] = self.semantic_head.loss(logits, labels_map)
        gt_masks = [t["masks"] for t in targets]
        gt_labels = [t["labels"] for t in targets]
        boxes = [p.detach() for p in proposals]
        for t, (head, weight) in enumerate(zip(self.stages, self.loss_weights)):
            sampled, labels, matched, is_gt, idx = self.assign_with_indices(t, boxes, targets)
            class_logits, deltas = head(self.box_features(features, sampled, image_shapes, semantic_feat))
            reg_targets = head.box_coder.encode(matched, sampled)
            loss_cls, loss_box = self._stage_losses(
                class_logits, deltas, torch.cat(labels), torch.cat(reg_targets)
            )
            losses[f"loss_classifier_{t}"] = weight * loss_cls
            losses[f"loss_box_reg_{t}"] = weight * loss_box
            refined = None
            if self.interleaved or t + 1 < len(self.stages):
                regressed = self._refine(head, deltas.detach(), sampled, image_shapes)
                refined = [b[~g] for b, g in zip(regressed, is_gt)]
            if self.interleaved:  # re-assign the regressed boxes with this stage's assigner
                assert refined is not None
                sampled, labels, _, _, idx = self.assign_with_indices(t, refined, targets)
            pos = [torch.where(lab > 0)[0] for lab in labels]
            pos_boxes = [b[p] for b, p in zip(sampled, pos)]
            mask_feats = self.mask_features(features, pos_boxes, image_shapes, semantic_feat)
            loss_mask = maskrcnn_loss(
                self.mask_logits(t, mask_feats),
                pos_boxes,
                gt_masks,
                gt_labels,
                [i[p] for i, p in zip(idx, pos)],
            )
            losses[f"loss_mask_{t}"] = weight * loss_mask
            if refined is not None:
                boxes = refined
        return losses

    # ---- inference ----

    def _predict(  # type: ignore[override]
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> list[dict[str, Tensor]]:
        semantic_feat = None
        if self.semantic_head is not None:
            semantic_feat = self.semantic_head(list(features.values()))[1]
        boxes = proposals
        logits = []
        for head in self.stages:
            class_logits, deltas = head(self.box_features(features, boxes, image_shapes, semantic_feat))
            logits.append(class_logits)
            boxes = self._refine(head, deltas, boxes, image_shapes)
        detections = [self._postprocess(b, s) for b, s in zip(boxes, self._mean_scores(logits, boxes))]
        det_boxes = [d["boxes"] for d in detections]
        mask_feats = self.mask_features(features, det_boxes, image_shapes, semantic_feat)
        probs = []
        res_feat = None
        for head in self.mask_heads:
            stage_logits, feat = head(mask_feats, res_feat if self.mask_info_flow else None)
            res_feat = feat
            probs.append(stage_logits.sigmoid())
        mean = torch.stack(probs).mean(dim=0) if probs else mask_feats.new_zeros(0)
        labels = torch.cat([d["labels"] for d in detections])
        masks = mean[torch.arange(labels.numel(), device=labels.device), labels][:, None]
        for d, m in zip(detections, masks.split([b.shape[0] for b in det_boxes])):
            d["masks"] = m
        return detections


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class CascadeMaskRCNN(CascadeRCNN):
    """Cascade Mask R-CNN / HTC: :class:`~hrnet.models.detection.CascadeRCNN` (torchvision's
    transform and RPN) with :class:`CascadeMaskRoIHeads`.

    Train mode: ``model(images, targets)`` -> RPN losses, ``loss_classifier_{t}``,
    ``loss_box_reg_{t}``, ``loss_mask_{t}`` (and ``loss_semantic_seg`` with the semantic branch).
    Eval mode: ``[{"boxes" xyxy, "labels", "scores", "masks" float [N, 1, H, W] in 0..1}]`` in
    input-image coordinates.
    """

    def __init__(
        self,
        backbone: HRNetWithHRFPN,
        num_classes: int,
        *,
        htc: bool,
        semantic: bool = False,
        box_batch_size_per_image: int = 512,
        representation_size: int = REPRESENTATION_SIZE,
        box_score_thresh: float = CASCADE_MASK_SCORE_THRESH,
        box_detections_per_img: int = 100,
        mask_channels: int = MASK_HEAD_CHANNELS,
        **kwargs: object,
    ) -> None:
        if semantic and not htc:
            raise ValueError("the semantic branch belongs to HTC (htc=True)")
        channels = backbone.out_channels
        roi_heads = CascadeMaskRoIHeads(
            _box_roi_pool(),
            MultiScaleRoIAlign(featmap_names=ROI_FEATURE_NAMES, output_size=MASK_ROI_SIZE, sampling_ratio=2),
            channels,
            num_classes,
            interleaved=htc,
            mask_info_flow=htc,
            semantic_head=FusedSemanticHead(channels, channels=channels) if semantic else None,
            batch_size_per_image=box_batch_size_per_image,
            representation_size=representation_size,
            score_thresh=box_score_thresh,
            detections_per_img=box_detections_per_img,
            box_loss_beta=BOX_LOSS_BETA,
            mask_channels=mask_channels,
        )
        super().__init__(backbone, num_classes, roi_heads=roi_heads, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class CascadeMaskKwargs(DetectionKwargs, total=False):
    """Keyword arguments of the Cascade Mask R-CNN builders: the other detectors', plus the mask width."""

    mask_channels: int  # width of the mask heads' convs (256, the published heads)


class HTCKwargs(CascadeMaskKwargs, total=False):
    """Keyword arguments of the HTC builders: Cascade Mask R-CNN's, plus ``semantic``."""

    semantic: bool  # the fused semantic branch (needs COCO-stuff maps); default: the registered name's


_KINDS: dict[str, tuple[bool, bool]] = {  # name prefix -> (htc, semantic by default)
    "cascade_mask_rcnn": (False, False),
    "htc": (True, True),
    "htc_without_semantic": (True, False),
}


def _build(kind: str, backbone_name: str, kwargs: HTCKwargs) -> nn.Module:
    name = f"{kind}_hrnetv2p_{backbone_name.removeprefix('hrnet_')}"
    accepted = HTCKwargs.__annotations__ if _KINDS[kind][0] else CascadeMaskKwargs.__annotations__
    for key in kwargs:
        if key not in accepted:
            raise TypeError(
                f"{name}() got an unexpected keyword argument {key!r}; accepted: {', '.join(accepted)}"
            )
    htc, semantic = _KINDS[kind]
    default_thresh = HTC_SCORE_THRESH if htc else CASCADE_MASK_SCORE_THRESH
    return CascadeMaskRCNN(
        _feature_extractor(backbone_name, kwargs),
        kwargs.get("num_classes", 81),
        htc=htc,
        semantic=kwargs.get("semantic", semantic),
        box_batch_size_per_image=kwargs.get("box_batch_size_per_image", 512),
        representation_size=kwargs.get("representation_size", REPRESENTATION_SIZE),
        box_score_thresh=kwargs.get("box_score_thresh", default_thresh),
        box_detections_per_img=kwargs.get("box_detections_per_img", 100),
        mask_channels=kwargs.get("mask_channels", MASK_HEAD_CHANNELS),
        min_size=kwargs.get("min_size", 800),
        max_size=kwargs.get("max_size", 1333),
        rpn_post_nms_top_n_train=kwargs.get("rpn_post_nms_top_n_train", 2000),
        rpn_post_nms_top_n_test=kwargs.get("rpn_post_nms_top_n_test", 1000),
        anchor_sizes=kwargs.get("anchor_sizes"),
    )


_DOCS = {
    "cascade_mask_rcnn": "Cascade Mask R-CNN on HRNetV2p ({b}): three box stages at IoU 0.5/0.6/0.7, "
    "one 4-conv mask head per stage.\n\nPublished (HRNet-Object-Detection README, COCO val2017, 20e): "
    "W18/W32/W48 box AP 41.9/44.5/46.0, mask AP 36.4/38.5/39.5.",
    "htc": "Hybrid Task Cascade on HRNetV2p ({b}): interleaved box/mask stages, mask information flow, "
    "fused semantic branch (``semantic=False`` drops it).\n\nPublished (HRNet-Object-Detection README, "
    "COCO val2017): W18/W32 20e box AP 43.1/45.3, mask 37.9/39.6; W48 28e box 47.0, mask 41.0.",
    "htc_without_semantic": "Hybrid Task Cascade on HRNetV2p ({b}) without the semantic branch "
    "(MMDetection configs/htc/htc-without-semantic_r50_fpn_1x_coco.py): needs no COCO-stuff maps.",
}
_SUMMARIES = {
    "cascade_mask_rcnn": "Cascade Mask R-CNN on HRNetV2p ({b}) with HRFPN, three box + mask stages",
    "htc": "Hybrid Task Cascade on HRNetV2p ({b}) with HRFPN and the fused semantic branch",
    "htc_without_semantic": "Hybrid Task Cascade on HRNetV2p ({b}) with HRFPN, no semantic branch",
}


def _builder(kind: str, backbone_name: str) -> Callable[..., nn.Module]:
    def builder(**kwargs: Unpack[HTCKwargs]) -> nn.Module:
        return _build(kind, backbone_name, kwargs)

    builder.__name__ = builder.__qualname__ = f"{kind}_hrnetv2p_{backbone_name.removeprefix('hrnet_')}"
    builder.__doc__ = _DOCS[kind].format(b=backbone_name)
    return builder


def _info(kind: str, backbone_name: str) -> ModelInfo:
    builder = _builder(kind, backbone_name)
    return ModelInfo(
        name=builder.__name__,
        task="detection",
        builder=builder,
        summary=_SUMMARIES[kind].format(b=backbone_name),
        kwargs={"num_classes": 81},
        backbone_checkpoints=HRNETV2_CHECKPOINTS[backbone_name],
        notes="no parameter or FLOP count is published for this detector (MMDetection, HRNet-Object-Detection)",
    )


MODEL_INFOS: tuple[ModelInfo, ...] = tuple(_info(kind, name) for kind in _KINDS for name in CONFIGS)
MODELS: dict[str, Callable[..., nn.Module]] = {info.name: info.builder for info in MODEL_INFOS}
