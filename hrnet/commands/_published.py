"""Published weights on the command line (``--weights`` of ``hrnet evaluate`` and ``hrnet
predict``): the model they are loaded into comes from a row (``--params/--row``) or from flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hrnet.commands._protocol import Numbers, row_given


def add_published_arguments(parser: argparse.ArgumentParser, *, model_flag: bool = True) -> None:
    group = parser.add_argument_group("published weights (with --weights)")
    group.add_argument("--params", type=Path, default=None, help="params file of --row: its model and data")
    group.add_argument(
        "--row",
        default=None,
        help="row id whose model, data, split and test protocol are used (hrnet predict: the protocol "
        "also for a model that is not --weights)",
    )
    if model_flag:
        group.add_argument("--model", default=None, help="model name (hrnet.models.list_models())")
    group.add_argument(
        "--dataset",
        default=None,
        help="the data's format (imagefolder, coco_instances, ...); hrnet evaluate --run-dir with --data: "
        "score the run on a dataset of this format",
    )
    group.add_argument("--num-classes", type=int, default=0, help="classes (0 = from the data)")
    group.add_argument(
        "--input-size", action=Numbers, kind=int, most=2, default=None, help="input height [width]"
    )
    group.add_argument("--partial", action="store_true", help="load what fits and report the rest")


def published_config(
    args: argparse.Namespace, model: str | None, *, size_is_the_models: bool = True
) -> Any:  # -> TrainConfig
    """The model and data published weights are evaluated as: a row's, or the flags'.
    ``size_is_the_models``: ``--input-size`` sizes the model (not only, as in ``hrnet export``,
    the example input), so with a row it must agree with the row's."""
    from hrnet.engine.config import config_from_mapping
    from hrnet.errors import HRNetError

    device = getattr(args, "device", None) or "auto"
    workers = getattr(args, "workers", None)
    workers = 0 if workers is None else workers
    if row_given(args):
        from hrnet.mlops.rows import train_settings

        values, _ = train_settings(args.params, args.row)
        _refuse_unused(args, model, values, size_is_the_models=size_is_the_models)
        values = {**values, "device": device, "workers": workers}
        if args.data is not None:
            values["data"] = args.data
        return config_from_mapping(values, source=f"{args.params} rows.{args.row}.train")
    if not (model and args.data and args.dataset):
        raise HRNetError("--weights: give --params and --row, or the model name, --data and --dataset")
    from hrnet.models import model_info

    values = {"task": model_info(model).task, "model": model, "data": args.data, "dataset": args.dataset}
    values |= {"num_classes": args.num_classes, "device": device, "workers": workers}
    if getattr(args, "split", ""):
        values["val_split"] = args.split
    if args.input_size:
        values["input_size"] = args.input_size
    return config_from_mapping(values, source="command line")


def _refuse_unused(
    args: argparse.Namespace, model: str | None, row: dict[str, Any], *, size_is_the_models: bool
) -> None:
    """HRNetError when a model flag given with --params/--row says other than the row: the row
    decides the model, and a flag it overrides silently would be a wrong evaluation."""
    from hrnet.errors import HRNetError

    given = {
        "the model name": (model, row.get("model")),
        "--dataset": (args.dataset, row.get("dataset")),
        "--num-classes": (args.num_classes or None, row.get("num_classes")),
    }
    if size_is_the_models:
        given["--input-size"] = (args.input_size, row.get("input_size"))
    for flag, (value, theirs) in given.items():
        if value is None or _as_list(value) == _as_list(theirs):
            continue
        shown = " ".join(map(str, value)) if isinstance(value, list | tuple) else value
        key = "model" if flag == "the model name" else flag.lstrip("-").replace("-", "_")
        raise HRNetError(
            f"{flag} {shown}: the model is the one of {args.params} row {args.row} "
            f"({key}: {'its default' if theirs is None else theirs}); give --params/--row or {flag}, not both"
        )


def _as_list(value: Any) -> Any:
    """A size as [height, width] (one number: square); other values as they are."""
    if isinstance(value, list | tuple):
        return list(value) * (2 if len(value) == 1 else 1)
    return value


def import_published(
    args: argparse.Namespace,
    model: str | None = None,
    out: Path | None = None,
    *,
    size_is_the_models: bool = True,
) -> tuple[Path, str]:
    """Load ``args.weights`` (a file or a catalogued checkpoint, fetched once) strictly into the
    configured model, write ``<out>/model.pt``; return the folder and the split it reads."""
    from hrnet.engine.published import import_weights, resolve_weights

    chosen = model if model is not None else getattr(args, "model", None)
    # "-": hrnet predict/export's placeholder for "the model of --params/--row"
    cfg = published_config(args, None if chosen == "-" else chosen, size_is_the_models=size_is_the_models)
    split = getattr(args, "split", "") or cfg.val_split
    weights = resolve_weights(args.weights)
    out = out or args.out or Path("runs") / "published" / (args.row or cfg.model)
    import_weights(cfg, weights, out, partial=args.partial, split=split)
    print(f"loaded {weights} into {cfg.model} ({out / 'model.pt'})")
    return out, split
