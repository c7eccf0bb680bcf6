"""Semantic segmentation: FCN head on HRNetV2 (the MMSegmentation ``fcn_hr*`` models).

The backbone returns its four branches; the head input is HRNetV2's representation (branches 1-3
bilinearly resized to branch 0 and concatenated, 15C channels for the W family), built here with
the head's ``align_corners`` as MMSegmentation's ``resize_concat`` does. :class:`FCNHead` is
MMSegmentation's FCNHead as configured for HRNet: one 1x1 conv 15C->15C (no bias) + BN + ReLU,
then ``conv_seg`` 1x1 -> classes (no dropout, no input concat). Module names follow MMSegmentation (``backbone.*``, ``decode_head.convs.0.{conv,bn}``,
``decode_head.conv_seg``, ``auxiliary_head.*``), so its checkpoints load 1:1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrnet.models.hrnet import CONFIGS, HRNETV2_CHECKPOINTS, HighResolutionNet
from hrnet.models.registry import ModelInfo

__all__ = ["IGNORE_INDEX", "MODELS", "MODEL_INFOS", "FCNHead", "SegmentationHRNet", "SegmentationKwargs"]

IGNORE_INDEX = 255  # label of pixels that carry no loss


class ConvBNReLU(nn.Module):
    """Conv (no bias) + BN + ReLU with MMSegmentation's ConvModule names (``conv``, ``bn``)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class FCNHead(nn.Module):
    """``num_convs`` conv+BN+ReLU layers, optional dropout, then a 1x1 ``conv_seg`` to classes.

    Input ``[B, in_chs, h, w]`` -> logits ``[B, num_classes, h, w]``.
    """

    def __init__(
        self,
        in_chs: int,
        channels: int,
        num_classes: int,
        *,
        kernel_size: int = 1,
        num_convs: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *(ConvBNReLU(in_chs if i == 0 else channels, channels, kernel_size) for i in range(num_convs))
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        nn.init.normal_(self.conv_seg.weight, std=0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_seg(self.dropout(self.convs(x)))


class SegmentationHRNet(nn.Module):
    """HRNetV2 + FCN head (+ an optional auxiliary FCN head on the 1/16 branch for training).

    ``forward(images, targets=None)``:

    - ``images``: ``float [B, in_chans, H, W]`` (3 channels unless the backbone takes more),
      ImageNet-normalised, any size;
    - without ``targets``: ``{"out": logits float [B, num_classes, H, W]}`` (bilinear upsampling
      of the 1/4 logits with ``align_corners``);
    - with ``targets`` ``int64 [B, H, W]`` (255 = ignore): ``{"loss_seg"[, "loss_aux"]}``, the
      pixel cross-entropy of the upsampled logits; ``loss_aux`` is already multiplied by
      ``aux_weight``, so the total loss is the plain sum of the dict.

    Args:
        backbone: a :class:`HighResolutionNet` with ``output="branches"`` (the head concatenates).
        num_classes: segmentation classes (19 Cityscapes, 150 ADE20K, 21 VOC, 59/60 Context).
        align_corners: bilinear flag of the logit upsampling (False as MMSegmentation; True as
            HRNet-Semantic-Segmentation).
        aux_head: add ``auxiliary_head`` (3x3 conv 4C->256 + BN + ReLU, dropout 0.1, 1x1 to
            classes) on branch 2 (1/16), MMSegmentation's usual auxiliary FCN.
        aux_weight: weight of the auxiliary loss.
        label_smoothing: cross-entropy label smoothing.
        ohem_thresh: online hard example mining (OHEM) as HRNet-Semantic-Segmentation's
            ``OhemCrossEntropy`` when > 0: the loss is the mean over the labelled pixels whose
            true-class probability is below ``ohem_thresh``, widened to the ``ohem_min_kept``
            hardest pixels of the batch when fewer are that hard (HRNet-Semantic-Segmentation's
            Cityscapes recipe: 0.9 and 131072). 0 = plain mean.
        ohem_min_kept: the least number of pixels kept per batch by OHEM.
        binary: one foreground channel (``num_classes`` 1) trained with the binary cross-entropy
            of its logits against soft targets ``float [B, H, W]`` in ``[0, 1]`` (IS-Net's loss,
            xuebinqin/DIS ``IS-Net/models/isnet.py``) instead of the pixel cross-entropy.
    """

    def __init__(
        self,
        backbone: HighResolutionNet,
        num_classes: int,
        *,
        align_corners: bool = False,
        aux_head: bool = False,
        aux_weight: float = 0.4,
        label_smoothing: float = 0.0,
        ohem_thresh: float = 0.0,
        ohem_min_kept: int = 100_000,
        binary: bool = False,
    ) -> None:
        super().__init__()
        if binary and num_classes != 1:
            raise ValueError(f"a binary head has one channel, got num_classes={num_classes}")
        if not 0.0 <= ohem_thresh <= 1.0:
            raise ValueError(f"ohem_thresh must be in [0, 1], got {ohem_thresh}")
        if backbone.output != "branches":
            raise ValueError(
                f"SegmentationHRNet needs a backbone built with output='branches', got {backbone.output!r}"
            )
        self.backbone = backbone
        self.in_chans = backbone.in_chans
        self.num_classes = num_classes
        self.binary = binary
        self.align_corners = align_corners
        self.aux_weight = aux_weight
        self.label_smoothing = label_smoothing
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept
        chs = sum(backbone.branch_channels)
        self.decode_head = FCNHead(chs, chs, num_classes)
        self.auxiliary_head = (
            FCNHead(backbone.branch_channels[2], 256, num_classes, kernel_size=3, dropout=0.1)
            if aux_head
            else None
        )

    def _resize(self, logits: Tensor, size: tuple[int, int]) -> Tensor:
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=self.align_corners)

    def _loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits[:, 0].float(), targets.float())
        if self.ohem_thresh <= 0:
            return F.cross_entropy(
                logits, targets, ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing
            )
        pixel = F.cross_entropy(
            logits, targets, ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing, reduction="none"
        )
        pixel = pixel[targets != IGNORE_INDEX]
        if pixel.numel() == 0:
            return logits.sum() * 0.0
        with torch.no_grad():
            # true-class probability of each labelled pixel, hardest (lowest) first
            prob = torch.gather(
                logits.detach().float().softmax(1), 1, targets.clamp(max=logits.shape[1] - 1)[:, None]
            )[:, 0][targets != IGNORE_INDEX]
            kth = prob.kthvalue(min(self.ohem_min_kept, prob.numel())).values
            keep = prob <= torch.clamp(kth, min=self.ohem_thresh)
        return pixel[keep].mean()

    def forward(self, images: Tensor, targets: Tensor | None = None) -> dict[str, Tensor]:
        size = (images.shape[-2], images.shape[-1])
        branches = self.backbone(images)
        # MMSegmentation's "resize_concat" input transform: every branch bilinearly resized to branch 0
        top = branches[0].shape[-2:]
        features = torch.cat([branches[0], *(self._resize(b, top) for b in branches[1:])], dim=1)
        logits = self._resize(self.decode_head(features), size)
        if targets is None:
            return {"out": logits}
        losses = {"loss_seg": self._loss(logits, targets)}
        if self.auxiliary_head is not None:
            aux = self._resize(self.auxiliary_head(branches[2]), size)
            losses["loss_aux"] = self.aux_weight * self._loss(aux, targets)
        return losses


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class SegmentationKwargs(TypedDict, total=False):
    """Keyword arguments of the ``fcn_hrnetv2_<w>`` builders (see :class:`SegmentationHRNet`)."""

    num_classes: int  # default 19 (Cityscapes)
    align_corners: bool  # default False (MMSegmentation); True reproduces HRNet-Semantic-Segmentation
    aux_head: bool  # default False (MMSegmentation's HRNet configs have none)
    aux_weight: float  # default 0.4
    label_smoothing: float  # default 0.0
    ohem_thresh: float  # default 0.0 (OHEM off); HRNet-Semantic-Segmentation's Cityscapes recipe 0.9
    ohem_min_kept: int  # default 100000 pixels per batch
    bn_momentum: float  # backbone BatchNorm momentum, default 0.1
    # backbone fuse upsampling: "nearest" (MMSegmentation, default) or "bilinear" (the weights of
    # HRNet-Semantic-Segmentation)
    fuse_mode: str
    in_chans: int  # image channels, default 3 (4 for RGB + thermal)
    binary: bool  # default False; True: one channel trained with binary cross-entropy


def _build(backbone_name: str, kwargs: SegmentationKwargs) -> SegmentationHRNet:
    for key in kwargs:
        if key not in SegmentationKwargs.__annotations__:
            raise TypeError(
                f"fcn_hrnetv2_{backbone_name.removeprefix('hrnet_')}() got an unexpected keyword argument "
                f"{key!r}; accepted: {', '.join(SegmentationKwargs.__annotations__)}"
            )
    backbone = HighResolutionNet(
        CONFIGS[backbone_name],
        output="branches",
        bn_momentum=kwargs.get("bn_momentum", 0.1),
        fuse_mode=kwargs.get("fuse_mode", "nearest"),
        align_corners=kwargs.get("align_corners", False),
        in_chans=kwargs.get("in_chans", 3),
    )
    return SegmentationHRNet(
        backbone,
        kwargs.get("num_classes", 19),
        align_corners=kwargs.get("align_corners", False),
        aux_head=kwargs.get("aux_head", False),
        aux_weight=kwargs.get("aux_weight", 0.4),
        label_smoothing=kwargs.get("label_smoothing", 0.0),
        ohem_thresh=kwargs.get("ohem_thresh", 0.0),
        ohem_min_kept=kwargs.get("ohem_min_kept", 100_000),
        binary=kwargs.get("binary", False),
    )


def _builder(backbone_name: str) -> Callable[..., SegmentationHRNet]:
    def builder(**kwargs: Unpack[SegmentationKwargs]) -> SegmentationHRNet:
        return _build(backbone_name, kwargs)

    builder.__name__ = builder.__qualname__ = "fcn_hrnetv2_" + backbone_name.removeprefix("hrnet_")
    builder.__doc__ = (
        f"FCN on HRNetV2 ({backbone_name}) in the MMSegmentation layout; see :class:`SegmentationHRNet`."
    )
    return builder


# Registry entries. MMSegmentation publishes mIoU, memory and speed for these models, no parameter
# or FLOP counts, so there are no counts to check.
MODEL_INFOS: tuple[ModelInfo, ...] = tuple(
    ModelInfo(
        name="fcn_hrnetv2_" + name.removeprefix("hrnet_"),
        task="segmentation",
        builder=_builder(name),
        summary=f"FCN head on HRNetV2 ({name}), MMSegmentation's fcn_hr* layout",
        kwargs={"num_classes": 19},
        backbone_checkpoints=HRNETV2_CHECKPOINTS[name],
    )
    for name in CONFIGS
)
MODELS: dict[str, Callable[..., nn.Module]] = {info.name: info.builder for info in MODEL_INFOS}
