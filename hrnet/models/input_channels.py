"""RGB weights into a stem that takes more (or fewer) input channels.

An HRNet built with ``in_chans != 3`` (RGB + thermal: 4) has a first convolution
``conv1.weight [64, in_chans, 3, 3]``; ImageNet checkpoints hold ``[64, 3, 3, 3]``.
:func:`adapt_input_conv` follows the rule of timm's ``adapt_input_conv``
(``timm/models/_manipulate.py``): one channel takes the sum of the RGB filters; any other count
repeats the RGB filters cyclically (R, G, B, R, ...) up to ``in_chans`` and scales all of them
by ``3 / in_chans``, which keeps the scale of the activations: an input whose channels are alike
gives exactly the RGB model's activations when ``in_chans`` is a multiple of 3 (or the filters
weigh R, G and B alike), about them otherwise. For 4 channels the thermal filter is a copy of
the red one and every filter is multiplied by 3/4.

:func:`load_pretrained_adapting_input` is :func:`hrnet.models.load_pretrained` (strict) with that
one tensor adapted (logged with the rule); every other tensor must load as usual.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn

from hrnet.errors import HRNetError

__all__ = ["ADAPTED_STEM", "adapt_input_conv", "load_pretrained_adapting_input"]

logger = logging.getLogger(__name__)

ADAPTED_STEM = (
    "RGB stem filters adapted to {in_chans} input channels (timm's adapt_input_conv rule: "
    "RGB filters repeated cyclically, all scaled by 3/{in_chans})"
)


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """``[O, 3, kh, kw]`` RGB filters -> ``[O, in_chans, kh, kw]`` (module docstring); the dtype
    is kept."""
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected RGB conv filters [O, 3, kh, kw], got {tuple(weight.shape)}")
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    if in_chans == 3:
        return weight
    dtype = weight.dtype
    w = weight.float()
    if in_chans == 1:
        out = w.sum(dim=1, keepdim=True)
    else:
        repeats = math.ceil(in_chans / 3)
        out = w.repeat(1, repeats, 1, 1)[:, :in_chans] * (3.0 / in_chans)
    return out.to(dtype)


def load_pretrained_adapting_input(backbone: nn.Module, source: str) -> object:
    """Load an RGB checkpoint (any layout :func:`hrnet.models.load_pretrained` reads) strictly
    into a :class:`~hrnet.models.hrnet.HighResolutionNet` whose stem takes ``in_chans`` channels;
    returns the :class:`~hrnet.models.convert.LoadReport`.

    Raises:
        HRNetError: as :func:`~hrnet.models.load_pretrained` (missing, unused or mismatched
            tensors), or a checkpoint whose stem is not an RGB ``conv1.weight``.
    """
    from hrnet.models.convert import load_state_dict_checked, read_source
    from hrnet.models.convert_tasks import convert_for

    in_chans = int(getattr(backbone, "in_chans", 3))
    checkpoint = read_source(source)
    converted = convert_for(backbone, checkpoint.state_dict)
    state = dict(converted.state_dict)
    stem = state.get("conv1.weight")
    if stem is None:
        raise HRNetError(f"{checkpoint.name}: no stem conv1.weight to adapt to {in_chans} channels")
    if stem.shape[1] != in_chans:
        with torch.no_grad():
            state["conv1.weight"] = adapt_input_conv(stem, in_chans)
        logger.info("%s: conv1.weight: %s", checkpoint.name, ADAPTED_STEM.format(in_chans=in_chans))
    return load_state_dict_checked(
        backbone,
        state,
        source=checkpoint.name,
        layout=converted.layout,
        ignorable=converted.ignorable,
        unused=converted.unused,
        ignored=checkpoint.ignored + converted.ignored,
    )
