"""Predict with a trained model on images: pictures with the predictions drawn, and JSON."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/model, a run folder or a .pt file"
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders of images")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for the pictures and predictions.json"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI for models:/ and runs:/ URIs"
    )


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
        if args.model.startswith(("models:/", "runs:/")):
            from hrnet.tracking import download_model

            source = download_model(args.model, tmp, args.tracking_uri)
        loaded = load_model(source, device=device)
        records = predict_images(loaded, files, args.out, device=device)
    write_json_atomic(args.out / "predictions.json", records, indent=2)
    print(f"wrote {len(records)} predictions to {args.out}")
    return 0
