"""Show a model's parameters, GFLOPs (published HRNet convention) and feature maps, and the
published numbers of its registry entry against this project's count of them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from hrnet.models.flops import FlopCount
    from hrnet.models.registry import ModelInfo


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
    from hrnet.models import create_model, list_models, model_info
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
    if height < 1 or width < 1:
        raise HRNetError(f"--input-size {height} {width}: height and width must be positive")
    params = count_params(model)
    if model_info(args.model).task == "detection":
        # a detector resizes its input (its transform), so tracing a forward would count another
        # size; its backbone, neck and heads are counted at exactly the size asked for
        from hrnet.models.flops import count_detector_flops

        flops = count_detector_flops(model, (height, width))
    else:
        try:
            flops = _count(model, (height, width))
        except NotImplementedError:  # data-dependent ops cannot run on meta tensors
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
    _print_metadata(model_info(args.model), overridden=sorted(kwargs))
    return 0


def _print_metadata(info: ModelInfo, *, overridden: list[str]) -> None:
    """The registry entry: task, published numbers (each against our count, in its unit), checkpoints."""
    from hrnet.models.flops import measure_published

    registered = ", ".join(f"{k}={v}" for k, v in info.kwargs.items()) or "no keyword arguments"
    print(f"task         {info.task}: {info.summary}")
    if not info.published:
        print("published    no parameter or FLOP counts published")
    elif overridden:
        print(
            f"published    refer to the registered model ({registered}); not compared for a build "
            f"with {', '.join(overridden)} set"
        )
    else:
        print(
            f"published    (the registered model: {registered}; published / counted here, in the published unit)"
        )
        for published in info.published:
            what = "params" if published.counter == "params" else "GFLOPs"
            counted = measure_published(info, published)
            verdict = "ok" if published.matches(counted) else f"differs by more than {published.rel_tol:.1%}"
            print(f"  {what:<10} {published.describe()}")
            print(f"  {'':<10} counted {counted:.2f} {published.unit.symbol}: {verdict}")
            print(f"  {'':<10} convention: {published.convention}")
    if info.notes:
        print(f"note         {info.notes}")
    if info.checkpoints:
        print(f"checkpoints  {' '.join(info.checkpoints)}  (published weights; hrnet fetch NAME)")
    if info.backbone_checkpoints:
        print(f"pretrained   {' '.join(info.backbone_checkpoints)}  (ImageNet backbone; hrnet fetch NAME)")


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
