"""The HRNet backbone family (HRNet-W18-Small ... HRNet-W64) and its ImageNet classifier.

Reading order: residual blocks, the multi-resolution module (parallel branches + fusion), the
network, the architecture configs, the builders.

Module names follow the official HRNet-Image-Classification / timm checkpoints exactly
(``conv1 bn1 conv2 bn2 layer1 transition1..3 stage2..4 incre_modules downsamp_modules
final_layer classifier``), so their state dicts load 1:1; see :mod:`hrnet.models.convert` for the
other layouts.

Tensor format everywhere: ``float [B, C, H, W]``. Any input size works; branch ``k`` has the size
of ``k + 2`` stride-2 3x3 convolutions applied to the input (``ceil`` halving, 1/4 ... 1/32).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrnet.models.registry import GFLOPS, GFLOPS_1E9, MEGA_PARAMS, ModelInfo, Published

__all__ = [
    "CONFIGS",
    "FUSE_MODES",
    "HRNETV2_CHECKPOINTS",
    "MODELS",
    "MODEL_INFOS",
    "BasicBlock",
    "Bottleneck",
    "HRNetConfig",
    "HRNetKwargs",
    "HighResolutionModule",
    "HighResolutionNet",
    "OutputMode",
    "StageConfig",
    "hrnet_config",
]

NormLayer = Callable[[int], nn.Module]
OutputMode = Literal["classification", "branches", "v1", "v2"]
OUTPUT_MODES: tuple[str, ...] = ("classification", "branches", "v1", "v2")
FUSE_MODES: tuple[str, ...] = ("nearest", "bilinear")  # upsampling inside the fuse layers

# Classification head (HRNet-Image-Classification, timm): Bottleneck planes of the per-branch
# "incre" blocks (x4 -> 128, 256, 512, 1024 channels) and the width of the final 1x1 conv that
# feeds the pooled classifier.
HEAD_PLANES: tuple[int, ...] = (32, 64, 128, 256)
HEAD_FEATURES = 2048


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------


def _conv3x3(in_chs: int, out_chs: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, kernel_size=3, stride=stride, padding=1, bias=bias)


def _conv1x1(in_chs: int, out_chs: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, kernel_size=1, bias=bias)


def _projection(in_chs: int, out_chs: int, norm_layer: NormLayer) -> nn.Sequential | None:
    """1x1 conv + norm shortcut when the residual changes width, else ``None`` (identity)."""
    if in_chs == out_chs:
        return None
    return nn.Sequential(_conv1x1(in_chs, out_chs), norm_layer(out_chs))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (stages 2-4). Output width ``planes``."""

    expansion = 1

    def __init__(self, in_chs: int, planes: int, *, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_chs, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_chs, planes, norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += shortcut
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block (stage 1 and the classification head).

    Output width ``planes * 4``; the first block of a layer projects the shortcut.
    """

    expansion = 4

    def __init__(self, in_chs: int, planes: int, *, norm_layer: NormLayer) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = _conv1x1(in_chs, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.conv3 = _conv1x1(planes, out_chs)
        self.bn3 = norm_layer(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_chs, out_chs, norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += shortcut
        return self.relu(out)


def _make_layer(
    block: type[BasicBlock] | type[Bottleneck],
    in_chs: int,
    planes: int,
    num_blocks: int,
    norm_layer: NormLayer,
) -> nn.Sequential:
    blocks = [block(in_chs, planes, norm_layer=norm_layer)]
    blocks += [block(planes * block.expansion, planes, norm_layer=norm_layer) for _ in range(1, num_blocks)]
    return nn.Sequential(*blocks)


def _conv_bn(
    in_chs: int,
    out_chs: int,
    *,
    kernel_size: int,
    stride: int,
    relu: bool,
    norm_layer: NormLayer,
    bias: bool = False,
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias),
        norm_layer(out_chs),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------
# Multi-resolution module
# --------------------------------------------------------------------------------------------


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by the all-to-all fusion.

    ``out_i = ReLU(sum_j f_ij(x_j))`` where ``f_ii`` is the identity, ``f_ij`` for ``j > i`` is a
    1x1 conv + norm followed by upsampling to the exact size of ``x_i`` (so any input size works;
    nearest as HRNet-Image-Classification, deep-high-resolution-net.pytorch and MMSegmentation, or
    bilinear as HRNet-Semantic-Segmentation and HRNet-Facial-Landmark-Detection), and ``f_ij`` for
    ``j < i`` is ``i - j`` stride-2 3x3 conv + norm (ReLU between them).

    Args:
        widths: channels of each branch, highest resolution first.
        num_blocks: BasicBlocks per branch.
        multi_scale_output: ``False`` keeps only the highest-resolution output (``fuse_layers.0``).
        norm_layer: normalisation constructor ``norm_layer(num_channels)``.
        fuse_mode: ``"nearest"`` or ``"bilinear"`` upsampling of the lower-resolution paths.
        align_corners: the bilinear flag (``fuse_mode="bilinear"`` only).
    """

    def __init__(
        self,
        widths: tuple[int, ...],
        num_blocks: int,
        *,
        multi_scale_output: bool,
        norm_layer: NormLayer,
        fuse_mode: str = "nearest",
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        if fuse_mode not in FUSE_MODES:
            raise ValueError(f"fuse_mode must be one of {FUSE_MODES}, got {fuse_mode!r}")
        self.fuse_mode = fuse_mode
        self.align_corners = align_corners if fuse_mode == "bilinear" else None
        self.branches = nn.ModuleList(_make_layer(BasicBlock, w, w, num_blocks, norm_layer) for w in widths)
        num_outputs = len(widths) if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse_path(widths, i, j, norm_layer) for j in range(len(widths)))
            for i in range(num_outputs)
        )

    @staticmethod
    def _fuse_path(widths: tuple[int, ...], i: int, j: int, norm_layer: NormLayer) -> nn.Module:
        """The path f_ij from branch j to output i (upsampling happens in ``forward``)."""
        if j == i:
            return nn.Identity()
        if j > i:
            return nn.Sequential(_conv1x1(widths[j], widths[i]), norm_layer(widths[i]))
        steps = [
            _conv_bn(widths[j], widths[j], kernel_size=3, stride=2, relu=True, norm_layer=norm_layer)
            for _ in range(i - j - 1)
        ]
        steps.append(
            _conv_bn(widths[j], widths[i], kernel_size=3, stride=2, relu=False, norm_layer=norm_layer)
        )
        return nn.Sequential(*steps)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        outs = []
        for i, paths in enumerate(self.fuse_layers):
            size = xs[i].shape[-2:]
            y = xs[0] if i == 0 else paths[0](xs[0])
            for j in range(1, len(xs)):
                if j == i:
                    t = xs[j]
                elif j > i:
                    t = F.interpolate(
                        paths[j](xs[j]), size=size, mode=self.fuse_mode, align_corners=self.align_corners
                    )
                else:
                    t = paths[j](xs[j])
                # the first sum allocates a fresh tensor, later terms accumulate into it in place
                y = y + t if j == 1 else y.add_(t)
            outs.append(F.relu(y, inplace=True))
        return outs


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class HighResolutionNet(nn.Module):
    """HRNet: a 1/4 stem, a Bottleneck stage, then three multi-resolution stages of 2, 3, 4 branches.

    Args:
        config: the architecture (see :data:`CONFIGS`).
        num_classes: classifier outputs (``output="classification"`` only); 0 = no classifier
            (``forward`` returns pooled 2048-d features).
        in_chans: input image channels.
        output: what ``forward`` returns for images ``float [B, in_chans, H, W]``:

            - ``"classification"``: logits ``[B, num_classes]`` (ImageNet head of
              HRNet-Image-Classification and timm);
            - ``"branches"``: list of the four stage-4 maps ``[B, C_k, H_k, W_k]``, strides 4..32;
            - ``"v1"``: the 1/4 map ``[B, C_0, H/4, W/4]``; the last stage-4 module only fuses
              into branch 0, as in the pose network (its checkpoint has only ``fuse_layers.0``);
            - ``"v2"``: branches 1-3 bilinearly upsampled to branch 0 and concatenated,
              ``[B, sum(C_k), H/4, W/4]`` (HRNetV2).
        drop_rate: dropout before the classifier.
        align_corners: bilinear upsampling flag of the ``"v2"`` concat (False as MMSegmentation/MMPose,
            True as HRNet-Semantic-Segmentation), and of the fuse layers when they are bilinear.
        fuse_mode: upsampling inside the fuse layers: ``"nearest"`` (HRNet-Image-Classification,
            deep-high-resolution-net.pytorch, timm, MMPretrain, MMSegmentation, MMDetection, MMPose)
            or ``"bilinear"`` (HRNet-Semantic-Segmentation and HRNet-Facial-Landmark-Detection,
            whose weights were trained so).
        bn_momentum: BatchNorm momentum (0.1 as HRNet-Image-Classification; the master branch of
            HRNet-Semantic-Segmentation and HRNet-Facial-Landmark-Detection used 0.01).
        norm_layer: replaces BatchNorm, e.g. ``torchvision.ops.FrozenBatchNorm2d``; called as
            ``norm_layer(num_channels)``. Cannot be combined with a non-default ``bn_momentum``.
    """

    def __init__(
        self,
        config: HRNetConfig,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        output: OutputMode = "classification",
        drop_rate: float = 0.0,
        align_corners: bool = False,
        bn_momentum: float = 0.1,
        norm_layer: NormLayer | None = None,
        fuse_mode: str = "nearest",
    ) -> None:
        super().__init__()
        if output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, got {output!r}")
        if norm_layer is not None and bn_momentum != 0.1:
            raise ValueError("pass either norm_layer or bn_momentum, not both")
        norm = norm_layer or partial(nn.BatchNorm2d, momentum=bn_momentum)
        self.config = config
        self.output = output
        self.in_chans = in_chans
        self.num_classes = num_classes if output == "classification" else 0
        self.align_corners = align_corners

        # stem: two stride-2 3x3 convs -> 1/4
        width = config.stem_width
        self.conv1 = nn.Conv2d(in_chans, width, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = norm(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = norm(width)
        self.relu = nn.ReLU(inplace=True)

        # stage 1: Bottlenecks at 1/4
        self.layer1 = _make_layer(Bottleneck, width, config.stage1_planes, config.stage1_blocks, norm)
        prev: tuple[int, ...] = (config.stage1_planes * Bottleneck.expansion,)

        # stages 2-4, each preceded by a transition that adapts widths and adds one branch
        for s, stage in enumerate((config.stage2, config.stage3, config.stage4), start=2):
            self.add_module(f"transition{s - 1}", self._transition(prev, stage.widths, norm))
            last = s == 4 and output == "v1"
            modules = [
                HighResolutionModule(
                    stage.widths,
                    stage.num_blocks,
                    multi_scale_output=not (last and m == stage.num_modules - 1),
                    norm_layer=norm,
                    fuse_mode=fuse_mode,
                    align_corners=align_corners,
                )
                for m in range(stage.num_modules)
            ]
            self.add_module(f"stage{s}", nn.Sequential(*modules))
            prev = stage.widths
        self.branch_channels: tuple[int, ...] = prev

        # classification head (HRNet-Image-Classification, timm): per-branch Bottleneck, strided
        # aggregation, 1x1 conv to 2048
        if output == "classification":
            head_chs = [p * Bottleneck.expansion for p in HEAD_PLANES]
            self.incre_modules = nn.ModuleList(
                _make_layer(Bottleneck, c, p, 1, norm) for c, p in zip(prev, HEAD_PLANES)
            )
            self.downsamp_modules = nn.ModuleList(
                _conv_bn(a, b, kernel_size=3, stride=2, relu=True, norm_layer=norm, bias=True)
                for a, b in itertools.pairwise(head_chs)
            )
            self.final_layer = _conv_bn(
                head_chs[-1], HEAD_FEATURES, kernel_size=1, stride=1, relu=True, norm_layer=norm, bias=True
            )
            self.head_drop = nn.Dropout(drop_rate)
            self.classifier: nn.Module = self._classifier(num_classes)

        self.feature_info: list[dict[str, int | str]] = self._feature_info()
        self._init_weights()

    # ---- construction helpers ----

    @staticmethod
    def _transition(prev: tuple[int, ...], widths: tuple[int, ...], norm: NormLayer) -> nn.ModuleList:
        """Existing branches: identity or 3x3 conv to the new width; new branch: stride-2 3x3 conv."""
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            if i < len(prev):
                same = prev[i] == w
                layers.append(
                    nn.Identity()
                    if same
                    else _conv_bn(prev[i], w, kernel_size=3, stride=1, relu=True, norm_layer=norm)
                )
            else:  # one new branch per stage, from the lowest-resolution input (key `transitionK.i.0.*`)
                layers.append(
                    nn.Sequential(_conv_bn(prev[-1], w, kernel_size=3, stride=2, relu=True, norm_layer=norm))
                )
        return nn.ModuleList(layers)

    def _classifier(self, num_classes: int) -> nn.Module:
        return nn.Linear(HEAD_FEATURES, num_classes) if num_classes > 0 else nn.Identity()

    def _feature_info(self) -> list[dict[str, int | str]]:
        chs = self.branch_channels
        if self.output == "classification":
            return [{"num_chs": HEAD_FEATURES, "reduction": 32, "module": "final_layer"}]
        if self.output == "branches":
            return [
                {"num_chs": c, "reduction": 4 * 2**k, "module": f"stage4.branch{k}"}
                for k, c in enumerate(chs)
            ]
        if self.output == "v1":
            return [{"num_chs": chs[0], "reduction": 4, "module": "stage4"}]
        return [{"num_chs": sum(chs), "reduction": 4, "module": "stage4.concat"}]

    def _init_weights(self) -> None:
        if self.conv1.weight.is_meta:  # shapes only (counting): there are no values to initialise
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ---- timm-like API ----

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh ``Linear(2048, num_classes)`` (0 = identity)."""
        if self.output != "classification":
            raise ValueError(
                f"reset_classifier needs output='classification', this model has {self.output!r}"
            )
        ref = self.final_layer[0].weight
        self.num_classes = num_classes
        self.classifier = self._classifier(num_classes).to(device=ref.device, dtype=ref.dtype)

    def forward_branches(self, x: Tensor) -> list[Tensor]:
        """Stem and stages: images ``[B, in_chans, H, W]`` -> stage-4 maps, strides 4, 8, 16, 32.

        Four maps, or one (the 1/4 map) for ``output="v1"``.
        """
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for transition, stage in (
            (self.transition1, self.stage2),
            (self.transition2, self.stage3),
            (self.transition3, self.stage4),
        ):
            n = len(xs)
            xs = stage([t(xs[i] if i < n else xs[-1]) for i, t in enumerate(transition)])
        return xs

    def forward_features(self, x: Tensor) -> Tensor | list[Tensor]:
        """Images -> the features of the output mode (before pooling/classifier).

        classification: ``[B, 2048, H/32, W/32]``; branches: list of 4 maps; v1: ``[B, C, H/4, W/4]``;
        v2: ``[B, 15C, H/4, W/4]`` (for the W family).
        """
        xs = self.forward_branches(x)
        if self.output == "classification":
            y = self.incre_modules[0](xs[0])
            for incre, down, x_k in zip(self.incre_modules[1:], self.downsamp_modules, xs[1:]):
                y = incre(x_k) + down(y)
            return self.final_layer(y)
        if self.output == "branches":
            return xs
        if self.output == "v1":
            return xs[0]
        size = xs[0].shape[-2:]
        ups = [F.interpolate(t, size=size, mode="bilinear", align_corners=self.align_corners) for t in xs[1:]]
        return torch.cat([xs[0], *ups], dim=1)

    def forward_head(self, x: Tensor | list[Tensor], pre_logits: bool = False) -> Tensor | list[Tensor]:
        """Classification: global average pool (+ dropout, classifier unless ``pre_logits``).

        Other modes have no head: returns ``x`` unchanged.
        """
        if self.output != "classification":
            return x
        assert isinstance(x, Tensor)
        x = self.head_drop(x.mean(dim=(2, 3)))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        """Images ``float [B, in_chans, H, W]`` -> see ``output`` in the class docstring."""
        return self.forward_head(self.forward_features(x))


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageConfig:
    """One multi-resolution stage (2, 3 or 4 branches of BasicBlocks)."""

    num_modules: int  # HighResolutionModules stacked in the stage
    num_blocks: int  # BasicBlocks per branch in each module
    widths: tuple[int, ...]  # channels per branch, highest resolution (1/4) first


@dataclass(frozen=True)
class HRNetConfig:
    """The architecture of one HRNet variant."""

    stage1_blocks: int  # Bottlenecks in layer1 (stage 1, 1/4 resolution)
    stage1_planes: int  # Bottleneck planes in layer1 (output width is 4x)
    stage2: StageConfig  # 2 branches: 1/4, 1/8
    stage3: StageConfig  # 3 branches: up to 1/16
    stage4: StageConfig  # 4 branches: up to 1/32
    stem_width: int = 64  # channels of both stem convs


def hrnet_config(width: int) -> HRNetConfig:
    """The W-family (W18 ... W64): branch widths W, 2W, 4W, 8W; 1/4/3 modules; 4 blocks per branch."""
    w = (width, 2 * width, 4 * width, 8 * width)
    return HRNetConfig(
        stage1_blocks=4,
        stage1_planes=64,
        stage2=StageConfig(num_modules=1, num_blocks=4, widths=w[:2]),
        stage3=StageConfig(num_modules=4, num_blocks=4, widths=w[:3]),
        stage4=StageConfig(num_modules=3, num_blocks=4, widths=w),
    )


CONFIGS: dict[str, HRNetConfig] = {
    "hrnet_w18_small": HRNetConfig(
        stage1_blocks=1,
        stage1_planes=32,
        stage2=StageConfig(num_modules=1, num_blocks=2, widths=(16, 32)),
        stage3=StageConfig(num_modules=1, num_blocks=2, widths=(16, 32, 64)),
        stage4=StageConfig(num_modules=1, num_blocks=2, widths=(16, 32, 64, 128)),
    ),
    "hrnet_w18_small_v2": HRNetConfig(
        stage1_blocks=2,
        stage1_planes=64,
        stage2=StageConfig(num_modules=1, num_blocks=2, widths=(18, 36)),
        stage3=StageConfig(num_modules=3, num_blocks=2, widths=(18, 36, 72)),
        stage4=StageConfig(num_modules=2, num_blocks=2, widths=(18, 36, 72, 144)),
    ),
    **{f"hrnet_w{w}": hrnet_config(w) for w in (18, 30, 32, 40, 44, 48, 64)},
}


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class HRNetKwargs(TypedDict, total=False):
    """Keyword arguments every backbone builder accepts (see :class:`HighResolutionNet`)."""

    num_classes: int
    in_chans: int
    output: OutputMode
    drop_rate: float
    align_corners: bool
    bn_momentum: float
    norm_layer: NormLayer | None
    fuse_mode: str  # "nearest" (default) or "bilinear"


def _build(name: str, kwargs: HRNetKwargs) -> HighResolutionNet:
    for key in kwargs:
        if key not in HRNetKwargs.__annotations__:
            raise TypeError(
                f"{name}() got an unexpected keyword argument {key!r}; "
                f"accepted: {', '.join(HRNetKwargs.__annotations__)}"
            )
    return HighResolutionNet(CONFIGS[name], **kwargs)


def hrnet_w18_small(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W18-Small (v1): 13.19M params with the 1000-class head, 1.49 GFLOPs at 224."""
    return _build("hrnet_w18_small", kwargs)


def hrnet_w18_small_v2(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W18-Small-v2: 15.60M params with the 1000-class head, 2.42 GFLOPs at 224."""
    return _build("hrnet_w18_small_v2", kwargs)


def hrnet_w18(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W18: 21.30M params with the 1000-class head, 3.99 GFLOPs at 224."""
    return _build("hrnet_w18", kwargs)


def hrnet_w30(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W30: 37.71M params with the 1000-class head, 7.55 GFLOPs at 224."""
    return _build("hrnet_w30", kwargs)


def hrnet_w32(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W32: 41.23M params with the 1000-class head, 8.31 GFLOPs at 224."""
    return _build("hrnet_w32", kwargs)


def hrnet_w40(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W40: 57.55M params with the 1000-class head, 11.8 GFLOPs at 224."""
    return _build("hrnet_w40", kwargs)


def hrnet_w44(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W44: 67.06M params with the 1000-class head, 13.9 GFLOPs at 224."""
    return _build("hrnet_w44", kwargs)


def hrnet_w48(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W48: 77.47M params with the 1000-class head, 16.1 GFLOPs at 224."""
    return _build("hrnet_w48", kwargs)


def hrnet_w64(**kwargs: Unpack[HRNetKwargs]) -> HighResolutionNet:
    """HRNet-W64: 128.06M params with the 1000-class head, 26.9 GFLOPs at 224."""
    return _build("hrnet_w64", kwargs)


# --------------------------------------------------------------------------------------------
# Registry entries: the published ImageNet-1k numbers of each classifier (1000 classes, 224x224)
# --------------------------------------------------------------------------------------------

# name: (params in M and its source, GFLOPs in the HRNet-Image-Classification convention,
#        MMPretrain's "Flops(G)" or None, fetch-catalogue weights of the network)
_PUBLISHED: dict[str, tuple[float, str, float, float | None, tuple[str, ...]]] = {
    "hrnet_w18_small": (13.19, "timm", 1.49, None, ()),
    "hrnet_w18_small_v2": (15.60, "timm", 2.42, None, ("hrnetv2_w18_small_imagenet",)),
    "hrnet_w18": (21.30, "MMPretrain", 3.99, 4.33, ("hrnetv2_w18_imagenet",)),
    "hrnet_w30": (37.71, "MMPretrain", 7.55, 8.17, ()),
    "hrnet_w32": (41.23, "MMPretrain", 8.31, 8.99, ("hrnetv2_w32_imagenet", "hrnet_w32_imagenet_pose")),
    "hrnet_w40": (57.55, "MMPretrain", 11.8, 12.77, ("hrnetv2_w40_imagenet",)),
    "hrnet_w44": (67.06, "MMPretrain", 13.9, 14.96, ()),
    "hrnet_w48": (77.47, "MMPretrain", 16.1, 17.36, ("hrnetv2_w48_imagenet", "hrnet_w48_imagenet_pose")),
    "hrnet_w64": (128.06, "MMPretrain", 26.9, 29.00, ()),
}


def _info(builder: Callable[..., HighResolutionNet]) -> ModelInfo:
    params, params_source, gflops, mmpretrain_gflops, checkpoints = _PUBLISHED[builder.__name__]
    flops = [
        Published(
            gflops,
            GFLOPS,
            "HRNet-Image-Classification",
            "conv + linear multiply-adds of one image, classifier included",
            counter="forward",
            input_size=(224, 224),
        )
    ]
    if mmpretrain_gflops is not None:
        flops.append(
            Published(
                mmpretrain_gflops,
                GFLOPS_1E9,
                "MMPretrain",
                "mmengine's operation counter: about 1.01x the conv + linear multiply-adds, as it "
                "also counts other layers such as BatchNorm",
                counter="forward",
                input_size=(224, 224),
                rel_tol=0.015,
            )
        )
    return ModelInfo(
        name=builder.__name__,
        task="classification",
        builder=builder,
        summary=(builder.__doc__ or "").split(":")[0] + ", ImageNet classifier (or backbone with `output`)",
        kwargs={"num_classes": 1000},
        params=Published(params, MEGA_PARAMS, params_source, "all parameters with the 1000-class classifier"),
        gflops=tuple(flops),
        checkpoints=checkpoints,
    )


MODEL_INFOS: tuple[ModelInfo, ...] = tuple(
    _info(builder)
    for builder in (
        hrnet_w18_small,
        hrnet_w18_small_v2,
        hrnet_w18,
        hrnet_w30,
        hrnet_w32,
        hrnet_w40,
        hrnet_w44,
        hrnet_w48,
        hrnet_w64,
    )
)
MODELS: dict[str, Callable[..., nn.Module]] = {info.name: info.builder for info in MODEL_INFOS}
# HRNet-Image-Classification's ImageNet weights of each backbone (fetch-catalogue names), which the
# detection, segmentation and landmark recipes start from (the pose recipes use their own)
HRNETV2_CHECKPOINTS: dict[str, tuple[str, ...]] = {
    name: tuple(c for c in row[-1] if c.startswith("hrnetv2_")) for name, row in _PUBLISHED.items()
}
