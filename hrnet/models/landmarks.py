"""Facial landmark detection: HRNetV2 + a heatmap head (HRNet-Facial-Landmark-Detection).

The network is the backbone in ``output="v2"`` mode (four branches upsampled to 1/4 and
concatenated, 15C channels) followed by ``head``: 1x1 conv 15C->15C (bias) + BN + ReLU + 1x1 conv
(bias) to one heatmap per landmark, at 1/4 of the 256x256 input (64x64). Heatmaps are decoded with
:func:`hrnet.ops.keypoints.decode_heatmaps` and scored with :func:`landmark_nme`.

Facts checked against HRNet-Facial-Landmark-Detection (lib/models/hrnet.py,
experiments/*/face_alignment_*_hrnet_w18.yaml): the backbone configuration and the head are the same
as here, so W18 with 68 points counts 9,654,398 parameters, as its own network does; its printed
"9.3M" matches the count of the V1 (pose-style) W18, 9,319,184 (see
tests/models/test_tasks_landmarks.py). One difference remains in the shared backbone: its fuse
layers upsample bilinearly (align_corners False) where HRNet-Image-Classification and
deep-high-resolution-net.pytorch use nearest, so these builders default to ``fuse_mode="bilinear"``
and its checkpoints compute what it computes (``fuse_mode="nearest"`` starts from the
HRNet-Image-Classification ImageNet weights' own convention).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict, Unpack

from torch import Tensor, nn

from hrnet.models.hrnet import CONFIGS, HRNETV2_CHECKPOINTS, HighResolutionNet
from hrnet.models.registry import GFLOPS, MEGA_PARAMS, ModelInfo, Published

__all__ = [
    "MODELS",
    "NME_NORMALISATION",
    "LandmarkHRNet",
    "LandmarkKwargs",
    "landmark_nme",
    "normalising_distance",
]

# Points whose distance normalises the NME, per landmark scheme (0-based indices), as in
# HRNet-Facial-Landmark-Detection's lib/core/evaluation.py `compute_nme`:
#   300W (68 points): inter-ocular = outer eye corners 36 and 45;
#   WFLW (98 points): inter-ocular = outer eye corners 60 and 72;
#   COFW (29 points): inter-pupil = pupils 8 and 9.
NME_NORMALISATION: dict[int, tuple[int, int]] = {68: (36, 45), 98: (60, 72), 29: (8, 9)}


def normalising_distance(points: Tensor) -> Tensor:
    """The NME normaliser of ground-truth landmarks ``[N, L, 2]`` -> ``[N]`` (see NME_NORMALISATION).

    Raises:
        ValueError: ``L`` is not one of 68 (300W), 98 (WFLW), 29 (COFW); other schemes (AFLW: box
            size) must pass their distance to :func:`landmark_nme` explicitly.
    """
    num = points.shape[1]
    if num not in NME_NORMALISATION:
        raise ValueError(
            f"no NME normalisation known for {num} landmarks (known: {sorted(NME_NORMALISATION)}); "
            "pass `norm` explicitly"
        )
    a, b = NME_NORMALISATION[num]
    return (points[:, a] - points[:, b]).norm(dim=-1)


def landmark_nme(pred: Tensor, target: Tensor, norm: Tensor | None = None) -> Tensor:
    """Normalised mean error per face: ``mean_l ||pred_l - target_l|| / norm``.

    Args:
        pred: predicted landmarks ``float [N, L, 2]`` in image pixels.
        target: ground truth ``float [N, L, 2]`` in the same pixels.
        norm: ``[N]`` normalising distances; default :func:`normalising_distance` of ``target``.

    Returns:
        ``[N]`` per-face NME (a fraction: multiply by 100 for the published percentages).
    """
    if norm is None:
        norm = normalising_distance(target)
    return (pred - target).norm(dim=-1).mean(dim=-1) / norm


class LandmarkHRNet(nn.Module):
    """HRNetV2 backbone + HRNet-Facial-Landmark-Detection's heatmap head.

    ``forward(images, targets=None)``:

    - ``images``: ``float [B, 3, H, W]`` ImageNet-normalised face crops (256x256);
    - without ``targets``: heatmaps ``float [B, num_points, H/4, W/4]``;
    - with ``targets = {"heatmaps": [B, K, H/4, W/4], "target_weight": [B, K]}``:
      ``{"loss_heatmap"}``, the mean squared error of the weighted maps (the
      ``MSELoss`` of HRNet-Facial-Landmark-Detection; all weights 1 gives exactly its loss).

    State-dict keys: ``backbone.<HRNet-Image-Classification names>``, ``head.{0,1,3}.*`` (the head
    indices of HRNet-Facial-Landmark-Detection).
    """

    def __init__(self, backbone: HighResolutionNet, num_points: int, *, bn_momentum: float = 0.01) -> None:
        super().__init__()
        if backbone.output != "v2":
            raise ValueError(
                f"LandmarkHRNet needs a backbone built with output='v2', got {backbone.output!r}"
            )
        self.backbone = backbone
        self.num_points = num_points
        chs = sum(backbone.branch_channels)
        self.head = nn.Sequential(
            nn.Conv2d(chs, chs, kernel_size=1),
            nn.BatchNorm2d(chs, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(chs, num_points, kernel_size=1),
        )

    def forward(self, images: Tensor, targets: dict[str, Tensor] | None = None) -> Tensor | dict[str, Tensor]:
        heatmaps = self.head(self.backbone(images))
        if targets is None:
            return heatmaps
        w = targets["target_weight"].to(heatmaps.dtype)[:, :, None, None]
        return {"loss_heatmap": ((heatmaps - targets["heatmaps"]) * w).pow(2).mean()}


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


class LandmarkKwargs(TypedDict, total=False):
    """Keyword arguments of the ``landmark_hrnetv2_<w>`` builders."""

    num_points: int  # 68 (300W), 98 (WFLW), 29 (COFW), 19 (AFLW)
    # (the reference below: HRNet-Facial-Landmark-Detection)
    bn_momentum: float  # BatchNorm momentum (the reference trained with 0.01)
    align_corners: bool  # bilinear flag of the V2 concat and fuse layers (the reference: False)
    fuse_mode: str  # upsampling in the fuse layers: "bilinear" (the reference, the default) or "nearest"


def _build(backbone_name: str, kwargs: LandmarkKwargs) -> LandmarkHRNet:
    for key in kwargs:
        if key not in LandmarkKwargs.__annotations__:
            raise TypeError(
                f"landmark_{backbone_name}() got an unexpected keyword argument {key!r}; "
                f"accepted: {', '.join(LandmarkKwargs.__annotations__)}"
            )
    bn_momentum = kwargs.get("bn_momentum", 0.01)
    backbone = HighResolutionNet(
        CONFIGS[backbone_name],
        output="v2",
        bn_momentum=bn_momentum,
        align_corners=kwargs.get("align_corners", False),
        fuse_mode=kwargs.get("fuse_mode", "bilinear"),
    )
    return LandmarkHRNet(backbone, kwargs.get("num_points", 68), bn_momentum=bn_momentum)


def _builder(backbone_name: str) -> Callable[..., LandmarkHRNet]:
    def builder(**kwargs: Unpack[LandmarkKwargs]) -> LandmarkHRNet:
        return _build(backbone_name, kwargs)

    name = "landmark_hrnetv2_" + backbone_name.removeprefix("hrnet_")
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (
        f"Facial landmarks on HRNetV2 ({backbone_name}), ``num_points`` heatmaps (default 68) at 1/4.\n\n"
        "Published (HRNet-Facial-Landmark-Detection) for W18: 4.3 GFLOPs at 256x256 (ours 4.34); NME 300W full 3.32, WFLW 4.60, COFW 3.45.\n"
        "Its README prints 9.3M params (the V1 W18's count); this network, like its code, has 9.654M (68 points)."
    )
    return builder


MODELS: dict[str, Callable[..., nn.Module]] = {
    "landmark_hrnetv2_" + name.removeprefix("hrnet_"): _builder(name) for name in CONFIGS
}

# Registry entries: HRNet-Facial-Landmark-Detection publishes HRNetV2-W18's size (68 points, 256x256).
# Its "9.3M" parameters are not the count of its own network (9.654M, as here): they are the count
# of the V1 (pose-style) W18 with a 1x1 conv to 68 heatmaps, i.e. pose_hrnet_w18 with 68 joints.
_LANDMARK_SOURCE = "HRNet-Facial-Landmark-Detection"
_LANDMARK_W18_PARAMS = Published(
    9.3,
    MEGA_PARAMS,
    _LANDMARK_SOURCE,
    "printed for HRNetV2-W18; equals the count of the V1 W18 with a 1x1 conv to 68 heatmaps, "
    "not of the HRNetV2 network the repository builds (9.654M)",
    counted_on="pose_hrnet_w18",
    counted_on_kwargs={"num_joints": 68},
)
_LANDMARK_W18_GFLOPS = Published(
    4.3,
    GFLOPS,
    _LANDMARK_SOURCE,
    "conv + linear multiply-adds of one 256x256 face crop",
    counter="forward",
    input_size=(256, 256),
)


def _landmark_info(backbone_name: str) -> ModelInfo:
    w18 = backbone_name == "hrnet_w18"
    return ModelInfo(
        name="landmark_hrnetv2_" + backbone_name.removeprefix("hrnet_"),
        task="landmarks",
        builder=MODELS["landmark_hrnetv2_" + backbone_name.removeprefix("hrnet_")],
        summary=f"Facial landmark heatmaps on HRNetV2 ({backbone_name})",
        kwargs={"num_points": 68},
        params=_LANDMARK_W18_PARAMS if w18 else None,
        gflops=(_LANDMARK_W18_GFLOPS,) if w18 else (),
        backbone_checkpoints=HRNETV2_CHECKPOINTS[backbone_name],
        notes="the published 9.3M parameters are the V1 W18's count; this network has 9.654M" if w18 else "",
    )


MODEL_INFOS: tuple[ModelInfo, ...] = tuple(_landmark_info(name) for name in CONFIGS)
