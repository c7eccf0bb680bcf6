"""Parameter and FLOP counting in the convention of the published HRNet tables.

Unit: the HRNet papers and HRNet-Image-Classification report "GFLOPs" that are in fact
**multiply-accumulates of the convolutions and linear layers for one image, divided by 2^30**
(BatchNorm, ReLU, additions, pooling and upsampling are not counted). hrnet_w18 at 224x224 gives
4.28e9 MACs = 3.99 "GFLOPs", as HRNet-Image-Classification publishes. MMPretrain's figures are
about 1.01x the MACs / 1e9.

Counting uses :class:`torch.utils.flop_counter.FlopCounterMode` (``2 * MACs`` per conv/matmul), so
it works on the meta device: build the model under ``torch.device("meta")`` to count without
allocating or computing anything. :func:`count_published` reproduces a registry entry's published
figure (:class:`hrnet.models.registry.Published`) in that figure's unit and convention.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from hrnet.models.registry import ModelInfo, Published

__all__ = [
    "DETECTOR_PROPOSALS",
    "FlopCount",
    "count_detector_flops",
    "count_flops",
    "count_params",
    "count_published",
    "measure_published",
]

# RoIs the box head is counted on by count_detector_flops (MMDetection's dummy forward uses 1000)
DETECTOR_PROPOSALS = 1000


@dataclass(frozen=True)
class FlopCount:
    """Conv + linear multiply-accumulates of one forward pass of one image (eval mode)."""

    macs: int  # multiply-accumulates, batch size 1
    input_size: tuple[int, int]  # (H, W) of the counted input

    @property
    def gflops(self) -> float:
        """The published HRNet "GFLOPs": MACs / 2^30."""
        return self.macs / 2**30

    @property
    def gmacs(self) -> float:
        """MACs / 1e9."""
        return self.macs / 1e9


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (BatchNorm running statistics are buffers and not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(
    model: nn.Module,
    input_size: tuple[int, int] = (224, 224),
    *,
    in_chans: int | None = None,
    example_inputs: tuple[object, ...] | None = None,
) -> FlopCount:
    """Count conv + linear MACs of ``model(images)`` for one ``[1, in_chans, H, W]`` image.

    Args:
        model: any module; runs in eval mode under ``torch.no_grad`` (its mode is restored).
        input_size: ``(H, W)``.
        in_chans: image channels; defaults to ``model.in_chans`` or 3.
        example_inputs: positional arguments to call the model with instead of the image
            (e.g. a list of images for a detection model); ``input_size`` is then only recorded.

    The input is created on the model's device, so a meta-device model is counted for free.
    """
    if example_inputs is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        dtype = first.dtype if first is not None else torch.float32
        chans = in_chans if in_chans is not None else int(getattr(model, "in_chans", 3))
        example_inputs = (torch.zeros(1, chans, *input_size, device=device, dtype=dtype),)
    with _counting(model) as counter:
        model(*example_inputs)
    return FlopCount(macs=counter.get_total_flops() // 2, input_size=(int(input_size[0]), int(input_size[1])))


@contextlib.contextmanager
def _counting(model: nn.Module) -> Iterator[FlopCounterMode]:
    """Count what runs inside the block: ``model`` in eval mode (restored after), no gradients,
    every BatchNorm / GroupNorm / LayerNorm run as the identity and every ``F.interpolate`` (and
    so ``nn.Upsample``) replaced by an empty tensor of its output's shape. The convention counts
    neither, FlopCounterMode has no formula for either, and both keep the shapes the next layers
    see; but under FlopCounterMode each runs through PyTorch's Python decomposition. Norms were
    nearly all of the report's 40 s on 2 CPU threads (22 s without); interpolation was 1.5 s of the
    11.4 s left (a fresh ``hrnet report`` of the embedded suite: 9.9 s now)."""
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    norms = [m for m in model.modules() if isinstance(m, norm_types)]
    was_training = model.training
    model.eval()
    for module in norms:
        module.forward = _identity  # an instance attribute shadows the class's forward
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad(), _ShapeOnlyInterpolation():
            yield counter
    finally:
        for module in norms:
            del module.forward
        model.train(was_training)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class _ShapeOnlyInterpolation(TorchFunctionMode):
    """``F.interpolate`` returns an uninitialised tensor of the size it would compute (what the
    counted layers need of it); every other function runs as usual."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.interpolate:
            return _interpolated_empty(*args, **kwargs)
        return func(*args, **kwargs)


def _interpolated_empty(
    input: torch.Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    *_: object,
    **__: object,
) -> torch.Tensor:
    """The output of ``F.interpolate(input, size, scale_factor, ...)`` without its values: the
    spatial size is ``size``, or ``floor(in * scale_factor)`` per dimension as PyTorch computes it."""
    spatial = input.shape[2:]
    if size is not None:
        out = [int(size)] * len(spatial) if isinstance(size, int) else [int(s) for s in size]
    elif scale_factor is not None:
        scales = (
            [float(scale_factor)] * len(spatial)
            if isinstance(scale_factor, (int, float))
            else list(scale_factor)
        )
        out = [math.floor(float(n) * s) for n, s in zip(spatial, scales, strict=True)]
    else:
        raise ValueError("either size or scale_factor should be defined")
    return input.new_empty((*input.shape[:2], *out))


def count_detector_flops(
    model: nn.Module, input_size: tuple[int, int] = (800, 1333), *, num_proposals: int = DETECTOR_PROPOSALS
) -> FlopCount:
    """Conv + linear MACs of a torchvision-style detector for one image, on any device.

    Counted: ``model.backbone`` (backbone + neck) on one ``[1, 3, H, W]`` image, the RPN head on
    every pyramid level, and the box head(s) + predictor(s) on ``num_proposals`` RoIs (every stage
    of a Cascade R-CNN). Not counted: the resize/normalise transform, proposal selection, RoIAlign
    and a mask head. The selection is data-dependent, so this is the part of the detector that a
    meta-device model can run; it is what MMDetection's dummy forward counts for the box branch.
    A one-stage detector (no ``roi_heads``: FCOS, CenterNet) counts its backbone, neck and dense
    head on the whole image.
    """
    backbone = model.backbone
    first = next(model.parameters())
    image = torch.zeros(1, 3, *input_size, device=first.device, dtype=first.dtype)
    if not hasattr(model, "roi_heads"):  # one-stage (FCOS, CenterNet): backbone + neck + dense head
        return _count_dense_detector(model, image)
    roi_heads = model.roi_heads
    heads = (
        [(s.box_head, s.box_predictor) for s in roi_heads.stages]
        if hasattr(roi_heads, "stages")
        else [(roi_heads.box_head, roi_heads.box_predictor)]
    )
    pool = roi_heads.box_roi_pool.output_size
    pool_hw = (pool, pool) if isinstance(pool, int) else tuple(pool)
    rois = torch.zeros(num_proposals, backbone.out_channels, *pool_hw, device=first.device, dtype=first.dtype)
    with _counting(model) as counter:
        features = list(backbone(image).values())
        model.rpn.head(features)
        for box_head, box_predictor in heads:
            box_predictor(box_head(rois))
    return FlopCount(macs=counter.get_total_flops() // 2, input_size=(int(input_size[0]), int(input_size[1])))


def _count_dense_detector(model: nn.Module, image: torch.Tensor) -> FlopCount:
    """Backbone (+ neck) and ``model.head`` on every level: a one-stage detector's whole network
    without the transform and the decoding."""
    with _counting(model) as counter:
        features = model.backbone(image)
        model.head(list(features.values()) if isinstance(features, dict) else features)
    return FlopCount(
        macs=counter.get_total_flops() // 2, input_size=(int(image.shape[-2]), int(image.shape[-1]))
    )


def count_published(model: nn.Module, published: Published) -> float:
    """This project's count of what ``published`` reports, in ``published.unit``.

    ``model`` must be the network the figure refers to (see :func:`measure_published`); it may
    live on the meta device.
    """
    if published.counter == "params":
        count = count_params(model)
    else:
        assert published.input_size is not None
        counter = count_detector_flops if published.counter == "detector" else count_flops
        count = counter(model, published.input_size).macs
    return count / published.unit.scale


def measure_published(info: ModelInfo, published: Published, *, device: str = "meta") -> float:
    """Build the network ``published`` refers to (the model, or ``published.counted_on``) on
    ``device`` and return :func:`count_published` of it."""
    from hrnet.models import create_model

    with torch.device(device):
        model = (
            create_model(published.counted_on, **published.counted_on_kwargs)
            if published.counted_on
            else info.build()
        )
    return count_published(model, published)
