"""Top-down human pose estimation: SimpleBaseline-style heatmap regression on HRNet (PE).

The network is the backbone in ``output="v1"`` mode (its last stage-4 module fuses into the 1/4
branch only) followed by ``final_layer``, a 1x1 conv (with bias) to one heatmap per joint. Module
names match the pose repository's checkpoints (backbone keys + ``final_layer.{weight,bias}``).

The geometry and heatmap helpers (targets, decoding, flip) live in :mod:`hrnet.pose_utils`, shared
with the data pipeline; :func:`flip_test` here runs the model on an image batch and its mirror.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict, Unpack

from torch import Tensor, nn

from hrnet.models.hrnet import CONFIGS, HighResolutionNet
from hrnet.pose_utils import COCO_FLIP_PAIRS, flip_back

__all__ = ["MODELS", "PoseHRNet", "PoseKwargs", "flip_test", "joints_mse_loss"]

NUM_COCO_JOINTS = 17


def joints_mse_loss(heatmaps: Tensor, target: Tensor, target_weight: Tensor) -> Tensor:
    """PE's JointsMSELoss: ``0.5 * mean_k MSE(pred_k * w_k, gt_k * w_k)``.

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

    State-dict keys: ``backbone.<IC names>`` and ``final_layer.*`` (the MMPOSE layout of the
    backbone); :mod:`hrnet.models.convert_tasks` maps the pose repository's names onto them.
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
) -> Tensor:
    """PE's flip test: the mean of the heatmaps of ``images`` and of their mirror images mapped back.

    Args:
        model: images ``[B, 3, H, W]`` -> heatmaps ``[B, K, h, w]`` (a model in eval mode).
        images: ``float [B, 3, H, W]``.
        flip_pairs: (left, right) joint pairs swapped by the mirror.
        shift: move the flipped maps one pixel right (PE's ``SHIFT_HEATMAP``, on for COCO).

    Returns:
        ``float [B, K, h, w]``.
    """
    plain = model(images)
    flipped = flip_back(model(images.flip(-1)), flip_pairs, shift=shift)
    return 0.5 * (plain + flipped)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class PoseKwargs(TypedDict, total=False):
    """Keyword arguments of the ``pose_hrnet_<w>`` builders."""

    num_joints: int  # heatmap channels (17 for COCO)
    bn_momentum: float  # BatchNorm momentum of the backbone (0.1 as PE)


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
        "Published (PE, COCO val2017): w32 256x192 28.5M params, 7.1 GFLOPs, AP 74.4; "
        "w48 256x192 63.6M, 14.6 GFLOPs, AP 75.1.",
    )
    for name in CONFIGS
}
