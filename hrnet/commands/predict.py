"""Predict with a trained model on images: pictures with the predictions drawn, and JSON.

Pose and landmark models take each whole image as the crop of one person or one face (crop
them out first, e.g. with a detector's boxes); detection boxes are COCO's x, y, width, height.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/model, a run folder, a .pt file or an "
        ".onnx file of hrnet export (run by ONNX Runtime on the CPU); "
        "with --weights: a model name (hrnet.models.list_models()), or - with --params/--row",
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders of images")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for the pictures and predictions.json"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="run the model as trained (default: the inference path, BatchNorm folded + channels_last)",
    )
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI for models:/ and runs:/ URIs"
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="published weights (a file in any supported layout, or a catalogued name) loaded strictly "
        "into MODEL; --data/--dataset (or --params/--row) give the classes",
    )
    parser.add_argument("--data", default=None, help="with --weights: a dataset root in --dataset's format")
    from hrnet.commands._protocol import add_protocol_arguments
    from hrnet.commands._published import add_published_arguments

    add_published_arguments(parser, model_flag=False)
    # the test protocol: --params/--row (with or without --weights) give the row's for what is not given
    add_protocol_arguments(parser, person_boxes=False)


def _image_files(inputs: list[Path]) -> list[Path]:
    from hrnet.data.io import IMAGE_EXTENSIONS
    from hrnet.errors import HRNetError

    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files += sorted(
                p for p in item.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
            )
        elif item.is_file():
            files.append(item)
        else:
            raise HRNetError(f"{item}: no such image file or folder")
    if not files:
        raise HRNetError(f"{', '.join(map(str, inputs))}: no images found")
    return files


def run(args: argparse.Namespace) -> int:
    import tempfile

    from hrnet.data.io import write_json_atomic
    from hrnet.engine.distributed import resolve_device
    from hrnet.engine.evaluate import load_model, predict_images

    files = _image_files(args.inputs)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="hrnet-predict-") as tmp:
        source: str | Path = args.model
        if args.weights is not None:
            from hrnet.commands._published import import_published

            args.out_model = Path(tmp) / "published"
            source, _ = import_published(
                args, model=None if args.model == "-" else args.model, out=args.out_model
            )
        elif args.model.startswith(("models:/", "runs:/")):
            from hrnet.mlops.tracking import download_model

            source = download_model(args.model, tmp, args.tracking_uri)
        loaded = load_model(source, device=device, fast=not args.eager)
        ecfg = _protocol(args, loaded.config)
        records = predict_images(loaded, files, args.out, device=device, fast=not args.eager, ecfg=ecfg)
    write_json_atomic(args.out / "predictions.json", records, indent=2)
    print(f"wrote {len(records)} predictions to {args.out}")
    return 0


def _protocol(args: argparse.Namespace, cfg: Any) -> Any:  # (TrainConfig) -> EvalConfig
    """The test protocol predictions are made under: the flags given, then the ``evaluate:``
    entry of ``--params/--row``, then the defaults. A segmentation row's scales and flip make its
    second number (``mIoU_ms_flip``); its headline ``mIoU`` is single scale, and so are its
    predictions unless ``--scales``/``--flip`` ask for more."""
    import sys

    from hrnet.commands._protocol import protocol_from, row_given, row_protocol
    from hrnet.engine.config import EvalConfig

    row: dict[str, Any] = {}
    if row_given(args):
        row = row_protocol(args.params, args.row, task=cfg.task)
        if cfg.task == "segmentation":
            row = {k: v for k, v in row.items() if k not in ("scales", "flip")}
    source = f"{args.params} rows.{args.row}.evaluate" if row else "predict"
    ecfg = EvalConfig(**protocol_from(args, row, source=source))
    if cfg.task == "segmentation":
        from hrnet.tasks.segmentation import protocol_description

        described = protocol_description(cfg, ecfg)
        scales = "" if ecfg.scales == (1.0,) else f", scales {' '.join(map(str, ecfg.scales))}"
        flip = ", flip" if ecfg.flip else ""
        print(f"predict: {described['test_resize']}, {described['test_mode']}{scales}{flip}", file=sys.stderr)
    elif ecfg.flip:
        print("predict: flip test", file=sys.stderr)
    return ecfg
