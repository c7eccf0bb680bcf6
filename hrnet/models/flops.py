"""Parameter and FLOP counting in the convention of the published HRNet tables.

Unit: the HRNet papers and HRNet-Image-Classification (IC) report "GFLOPs" that are in fact
**multiply-accumulates of the convolutions and linear layers for one image, divided by 2^30**
(BatchNorm, ReLU, additions, pooling and upsampling are not counted). hrnet_w18 at 224x224 gives
4.28e9 MACs = 3.99 "GFLOPs" (HRNET.md §4). MMPretrain's figures are about 1.01x the MACs / 1e9.

Counting uses :class:`torch.utils.flop_counter.FlopCounterMode` (``2 * MACs`` per conv/matmul), so
it works on the meta device: build the model under ``torch.device("meta")`` to count without
allocating or computing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["FlopCount", "count_flops", "count_params"]


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
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(*example_inputs)
    finally:
        model.train(was_training)
    return FlopCount(macs=counter.get_total_flops() // 2, input_size=(int(input_size[0]), int(input_size[1])))
