"""Export a trained model to ONNX (BatchNorm folded), checked against PyTorch in ONNX Runtime.

MODEL_OR_RUN is a run folder or a model.pt of this project, or a model name with --weights
(published weights, loaded as `hrnet evaluate --weights` does: --data/--dataset or
--params/--row give the classes). The file is run in ONNX Runtime on the CPU and compared with
the PyTorch model; the largest relative error is printed and must stay below 1e-4 (fp32).
`hrnet predict FILE.onnx IMAGES --out DIR` runs the file with the task's own pre- and
post-processing (the same pictures and predictions.json as the .pt).

What the graph takes and returns (NCHW float32, RGB):
  classification  images [N,3,H,W] normalised -> logits [N,classes]          (softmax outside)
  segmentation    images [N,3,H,W] normalised -> out [N,classes,h,w] logits  (resize to the
                  image, softmax, argmax outside; aux too when the model has that head)
  pose            images [N,3,H,W] person crop, normalised -> heatmaps [N,joints,H/4,W/4]
  landmarks       images [N,3,H,W] face crop, normalised -> heatmaps [N,points,H/4,W/4]
                  (pose/landmarks: the crop's affine warp before, the heatmap peak decoding
                  and the crop-to-image mapping after, as hrnet.tasks.pose does)
  detection       image [3,H,W] in [0,1], one image per call (resize and normalisation are
                  inside the graph) -> boxes [D,4] xyxy input pixels, labels [D] (1..classes),
                  scores [D] (Mask R-CNN: and masks [D,1,H,W] probabilities)
"Normalised" = (pixel/255 - mean) / std, ImageNet mean (0.485, 0.456, 0.406) and std
(0.229, 0.224, 0.225). --dynamic frees the batch (not for detection) and the spatial size;
keep H and W multiples of 32. The file's metadata (hrnet.config, hrnet.info) carries the
training configuration and the class/keypoint names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "model",
        metavar="MODEL_OR_RUN",
        help="a run folder or model.pt of this project; with --weights: a model name "
        "(hrnet.models.list_models()), or - with --params/--row",
    )
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="the export format (onnx)")
    parser.add_argument("--out", type=Path, required=True, help="the file to write (e.g. model.onnx)")
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="free batch and spatial axes (default: fixed to the example input's shape)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1, help="the example batch traced (fixed without --dynamic)"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--weights",
        default=None,
        help="published weights (a file in any supported layout, or a catalogued name) loaded strictly "
        "into MODEL_OR_RUN; --data/--dataset (or --params/--row) give the classes",
    )
    parser.add_argument("--data", default=None, help="with --weights: a dataset root in --dataset's format")
    tracking = parser.add_argument_group("tracking (MODEL_OR_RUN a run folder with mlflow_run.json)")
    tracking.add_argument(
        "--mlflow",
        action="store_true",
        help="log the file to the run's MLflow run as a model in MLflow's onnx flavour",
    )
    tracking.add_argument(
        "--register",
        metavar="NAME",
        default=None,
        help="with --mlflow: also register it as a version of NAME",
    )
    tracking.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the run's own)")
    from hrnet.commands._published import add_published_arguments

    # gives --input-size H [W]: the example input's size (default: the model's input_size)
    add_published_arguments(parser, model_flag=False)


def run(args: argparse.Namespace) -> int:
    import tempfile

    import torch

    from hrnet.engine.evaluate import load_model
    from hrnet.errors import HRNetError
    from hrnet.models.export import export_onnx

    if args.register is not None and not args.mlflow:
        raise HRNetError("--register NAME needs --mlflow")
    if args.mlflow and not (Path(args.model).is_dir() and (Path(args.model) / "mlflow_run.json").is_file()):
        raise HRNetError(f"--mlflow: {args.model} is not a run folder with an MLflow run (mlflow_run.json)")
    if args.mlflow:  # a server that is down fails before the export, not after
        from hrnet.mlops.tracking import check_server, read_run_file, recorded_uri, resolve_tracking_uri

        recorded = recorded_uri(read_run_file(Path(args.model)))
        check_server(
            args.tracking_uri or recorded or resolve_tracking_uri(), offline_flag="leave out --mlflow"
        )

    with tempfile.TemporaryDirectory(prefix="hrnet-export-") as tmp:
        source: str | Path = args.model
        if args.weights is not None:
            from hrnet.commands._published import import_published

            args.split = ""
            source, _ = import_published(
                args,
                model=None if args.model == "-" else args.model,
                out=Path(tmp) / "published",
                size_is_the_models=False,  # --input-size: the example input's size
            )
        elif not Path(args.model).exists():
            raise HRNetError(f"{args.model}: no such run folder or model file (a model name needs --weights)")
        loaded = load_model(source, device=torch.device("cpu"), fast=False)
    cfg = loaded.config
    if args.input_size:
        size = tuple(args.input_size) * (2 if len(args.input_size) == 1 else 1)
    else:
        size = tuple(cfg.input_size)
    if len(size) != 2:
        raise HRNetError(f"--input-size takes H [W], got {args.input_size}")
    report = export_onnx(
        loaded.model,
        args.out,
        task=cfg.task,
        input_size=(int(size[0]), int(size[1])),
        dynamic=args.dynamic,
        batch_size=args.batch_size,
        opset=args.opset,
        metadata={"config": cfg.to_dict(), "info": loaded.info, "source": str(loaded.path)},
    )
    axes = ", ".join(f"{k}: {sorted(v.values())}" for k, v in report.dynamic_axes.items() if v) or "none"
    print(
        f"wrote {report.path} ({cfg.task}, {cfg.model}; inputs {report.inputs}, outputs {report.outputs}; "
        f"{report.folded_batchnorms} BatchNorms folded; dynamic axes: {axes})"
    )
    for shape, error in report.max_rel_error.items():
        print(f"ONNX Runtime vs PyTorch at {shape}: max relative error {error:.2e}")
    if report.detections_compared == 0:
        print(
            "warning: the check's random images gave no box above the detector's score threshold, so no "
            "box, score or mask was compared (only that both keep none); compare the file on real images: "
            f"hrnet evaluate --checkpoint {report.path} --out {report.path.with_suffix('')}-eval, beside the "
            f"same evaluation of {loaded.path}",
            file=sys.stderr,
        )
    elif report.detections_compared is not None:
        print(f"ONNX Runtime vs PyTorch: {report.detections_compared} boxes compared")
    if args.mlflow:
        from hrnet.mlops.tracking import log_onnx

        logged = log_onnx(
            args.model, report.path, tracking_uri=args.tracking_uri, registered_name=args.register
        )
        print(
            f"logged {logged['model_uri']} (onnx flavour)"
            + (f"; registered {logged['registered']}" if logged["registered"] else "")
        )
    return 0
