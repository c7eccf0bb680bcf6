"""Top-down human pose estimation: SimpleBaseline-style heatmap regression on HRNet
(deep-high-resolution-net.pytorch).

The network is the backbone in ``output="v1"`` mode (its last stage-4 module fuses into the 1/4
branch only) followed by ``final_layer``, a 1x1 conv (with bias) to one heatmap per joint. Module
names match the pose repository's checkpoints (backbone keys + ``final_layer.{weight,bias}``).

The geometry and heatmap helpers (targets, decoding, flip) live in :mod:`hrnet.ops.keypoints`, shared
with the data pipeline; :func:`flip_test` here runs the model on an image batch and its mirror.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict, Unpack

from torch import Tensor, nn

from hrnet.models.hrnet import CONFIGS, HighResolutionNet
from hrnet.models.registry import GFLOPS, MEGA_PARAMS, ModelInfo, Published
from hrnet.ops.keypoints import COCO_FLIP_PAIRS, flip_back

__all__ = ["MODELS", "PoseHRNet", "PoseKwargs", "flip_test", "joints_mse_loss"]

NUM_COCO_JOINTS = 17


def joints_mse_loss(heatmaps: Tensor, target: Tensor, target_weight: Tensor) -> Tensor:
    """deep-high-resolution-net.pytorch's JointsMSELoss: ``0.5 * mean_k MSE(pred_k * w_k, gt_k * w_k)``.

    Args:
        heatmaps: predictions ``float [B, K, h, w]``.
        target: Gaussian targets ``float [B, K, h, w]``.
        target_weight: ``float [B, K]`` (0 for unlabelled joints).

    Returns:
        A scalar. Each joint's MSE averages over batch and pixels, then joints are averaged, which
        equals one mean over all elements.
    """
    w = target_weight.to(heatmaps.dtype)[:, :, None, None]
    return 0.5 * ((heatmaps - target) * w).pow(2).mean()


class PoseHRNet(nn.Module):
    """HRNet backbone (V1) + 1x1 conv to ``num_joints`` heatmaps at 1/4 of the input.

    ``forward(images, targets=None)``:

    - ``images``: ``float [B, 3, H, W]``, ImageNet-normalised crops (256x192 or 384x288 for COCO);
    - without ``targets``: returns heatmaps ``float [B, num_joints, H/4, W/4]``;
    - with ``targets = {"heatmaps": [B, K, H/4, W/4], "target_weight": [B, K]}``: returns
      ``{"loss_heatmap": scalar}`` (:func:`joints_mse_loss`), in train and eval mode alike.

    State-dict keys: ``backbone.<HRNet-Image-Classification names>`` and ``final_layer.*`` (the
    MMPose layout of the backbone); :mod:`hrnet.models.convert_tasks` maps the pose repository's
    names onto them.
    """

    def __init__(self, backbone: HighResolutionNet, num_joints: int) -> None:
        super().__init__()
        if backbone.output != "v1":
            raise ValueError(f"PoseHRNet needs a backbone built with output='v1', got {backbone.output!r}")
        self.backbone = backbone
        self.num_joints = num_joints
        self.final_layer = nn.Conv2d(backbone.branch_channels[0], num_joints, kernel_size=1)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, images: Tensor, targets: dict[str, Tensor] | None = None) -> Tensor | dict[str, Tensor]:
        heatmaps = self.final_layer(self.backbone(images))
        if targets is None:
            return heatmaps
        return {"loss_heatmap": joints_mse_loss(heatmaps, targets["heatmaps"], targets["target_weight"])}


def flip_test(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    *,
    flip_pairs: Sequence[tuple[int, int]] = COCO_FLIP_PAIRS,
    shift: bool = True,
    subpixel: bool = False,
) -> Tensor:
    """deep-high-resolution-net.pytorch's flip test: the mean of the heatmaps of ``images`` and of
    their mirror images mapped back.

    The pose and landmark evaluations (:mod:`hrnet.tasks.pose`, :mod:`hrnet.tasks.landmarks`)
    run their flip test through this function.

    Args:
        model: images ``[B, 3, H, W]`` -> heatmaps ``[B, K, h, w]`` (a model in eval mode).
        images: ``float [B, 3, H, W]``.
        flip_pairs: (left, right) joint pairs swapped by the mirror.
        shift: move the flipped maps one pixel right (deep-high-resolution-net.pytorch's
            ``SHIFT_HEATMAP``, on for COCO).
        subpixel: with ``shift``, move them by the exact 3/4 heatmap pixel instead (the
            sub-pixel codec; :func:`hrnet.ops.keypoints.flip_back`).

    Returns:
        ``float [B, K, h, w]``.
    """
    plain = model(images)
    flipped = flip_back(model(images.flip(-1)), flip_pairs, shift=shift, subpixel=subpixel)
    return 0.5 * (plain + flipped)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class PoseKwargs(TypedDict, total=False):
    """Keyword arguments of the ``pose_hrnet_<w>`` builders."""

    num_joints: int  # heatmap channels (17 for COCO)
    bn_momentum: float  # BatchNorm momentum of the backbone (0.1 as deep-high-resolution-net.pytorch)


def _build(backbone_name: str, kwargs: PoseKwargs) -> PoseHRNet:
    for key in kwargs:
        if key not in PoseKwargs.__annotations__:
            raise TypeError(
                f"pose_{backbone_name}() got an unexpected keyword argument {key!r}; "
                f"accepted: {', '.join(PoseKwargs.__annotations__)}"
            )
    backbone = HighResolutionNet(
        CONFIGS[backbone_name], output="v1", bn_momentum=kwargs.get("bn_momentum", 0.1)
    )
    return PoseHRNet(backbone, kwargs.get("num_joints", NUM_COCO_JOINTS))


def _builder(backbone_name: str, doc: str) -> Callable[..., PoseHRNet]:
    def builder(**kwargs: Unpack[PoseKwargs]) -> PoseHRNet:
        return _build(backbone_name, kwargs)

    builder.__name__ = builder.__qualname__ = f"pose_{backbone_name}"
    builder.__doc__ = doc
    return builder


MODELS: dict[str, Callable[..., nn.Module]] = {
    f"pose_{name}": _builder(
        name,
        f"Top-down pose network on {name} (V1 + 1x1 conv to ``num_joints``, default 17).\n\n"
        "Published (deep-high-resolution-net.pytorch, COCO val2017): w32 256x192 28.5M params, 7.1 GFLOPs, AP 74.4; "
        "w48 256x192 63.6M, 14.6 GFLOPs, AP 75.1.",
    )
    for name in CONFIGS
}

# Registry entries: deep-high-resolution-net.pytorch's COCO table (17 joints): parameters in 10^6 and
# GFLOPs (conv + linear multiply-adds / 2^30) per input crop (H, W)
_POSE_COUNTS: dict[str, tuple[float, dict[tuple[int, int], float]]] = {
    "hrnet_w32": (28.5, {(256, 192): 7.1, (384, 288): 16.0}),
    "hrnet_w48": (63.6, {(256, 192): 14.6, (384, 288): 32.9}),
}
_POSE_SOURCE = "deep-high-resolution-net.pytorch"


def _pose_info(name: str, builder: Callable[..., nn.Module]) -> ModelInfo:
    backbone_name = name.removeprefix("pose_")
    params, gflops = _POSE_COUNTS.get(backbone_name, (None, {}))
    return ModelInfo(
        name=name,
        task="pose",
        builder=builder,
        summary=f"Top-down pose heatmaps on {backbone_name} (V1 representation + 1x1 conv)",
        kwargs={"num_joints": NUM_COCO_JOINTS},
        params=None
        if params is None
        else Published(params, MEGA_PARAMS, _POSE_SOURCE, "all parameters with 17 joint heatmaps"),
        gflops=tuple(
            Published(
                value,
                GFLOPS,
                _POSE_SOURCE,
                "conv + linear multiply-adds of one person crop",
                counter="forward",
                input_size=size,
            )
            for size, value in gflops.items()
        ),
        # the ImageNet-pretrained backbones the pose recipes load (fetch-catalogue names)
        backbone_checkpoints=(f"{backbone_name}_imagenet_pose",) if params is not None else (),
    )


MODEL_INFOS: tuple[ModelInfo, ...] = tuple(_pose_info(name, builder) for name, builder in MODELS.items())
