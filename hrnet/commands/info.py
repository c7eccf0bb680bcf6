"""Show a model's parameters, GFLOPs (published HRNet convention) and feature maps."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from hrnet.models.flops import FlopCount


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model name (an unknown name lists the known ones)")
    parser.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        default=(224, 224),
        metavar=("H", "W"),
        help="input height and width for the FLOP count (default: 224 224)",
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, help="classifier outputs (default: the model's)"
    )
    parser.add_argument(
        "--output",
        choices=("classification", "branches", "v1", "v2"),
        default=None,
        help="backbone output mode (backbone names only)",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from hrnet.errors import HRNetError
    from hrnet.models import create_model, list_models
    from hrnet.models.flops import count_params

    if args.model not in list_models():
        raise HRNetError(f"model {args.model!r}: unknown; known models: {', '.join(list_models())}")
    kwargs: dict[str, object] = {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.output is not None:
        kwargs["output"] = args.output
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated or computed
            model = create_model(args.model, **kwargs)
    except TypeError as exc:
        raise HRNetError(f"model {args.model!r}: {exc}") from exc

    height, width = args.input_size
    params = count_params(model)
    try:
        flops = _count(model, (height, width))
    except NotImplementedError:  # data-dependent ops (a detector's RPN) cannot run on meta tensors
        flops = _count(create_model(args.model, **kwargs), (height, width))

    print(f"model        {args.model}")
    print(f"parameters   {params / 1e6:.2f} M ({params:,})")
    print(
        f"GFLOPs       {flops.gflops:.2f} at {height}x{width} (conv+linear multiply-adds / 2^30, as published)"
    )
    print(f"GMACs        {flops.gmacs:.2f} (multiply-adds / 1e9)")
    feature_info = getattr(model, "feature_info", None) or getattr(
        getattr(model, "backbone", None), "feature_info", None
    )
    if feature_info:
        print("features     num_chs  reduction  module")
        for info in feature_info:
            print(f"             {info['num_chs']:>7}  {info['reduction']:>9}  {info['module']}")
    return 0


def _count(model: nn.Module, size: tuple[int, int]) -> FlopCount:
    """FLOPs of ``model`` for one image: a batch tensor, or a list of images (detection models)."""
    import torch

    from hrnet.models.flops import count_flops

    try:
        return count_flops(model, size)
    except (RuntimeError, TypeError, ValueError, AssertionError):
        device = next(model.parameters()).device
        image = torch.zeros(getattr(model, "in_chans", 3), *size, device=device)
        return count_flops(model, size, example_inputs=([image],))
