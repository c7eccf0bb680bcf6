"""Evaluate a trained model on a split: metrics.json, predictions and plots/ in the run folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", type=Path, help="run folder (runs/<row>) holding model.pt")
    source.add_argument("--checkpoint", type=Path, help="a model.pt or checkpoints/last.pt file")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the run folder)")
    parser.add_argument(
        "--data", default=None, help="dataset root (default: the one the model was trained on)"
    )
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=2, help="data loader workers")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0], help="segmentation test scales")
    parser.add_argument("--flip", action="store_true", help="flip test (segmentation, pose, landmarks)")
    parser.add_argument(
        "--person-boxes",
        default="gt",
        help="pose: 'gt' or a COCO detection results JSON of person boxes (then OKS-NMS at 0.9 per image)",
    )
    parser.add_argument("--num-plots", type=int, default=8, help="prediction pictures to draw")
    parser.add_argument("--amp", default="none", help="autocast: none, bf16 or fp16")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to the run's MLflow run")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the run's own)")


def run(args: argparse.Namespace) -> int:
    from hrnet.engine.config import EvalConfig
    from hrnet.engine.evaluate import evaluate_run

    ecfg = EvalConfig(
        split=args.split,
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
        scales=tuple(args.scales),
        flip=args.flip,
        person_boxes=args.person_boxes,
        num_plots=args.num_plots,
        amp=args.amp,
    )
    source = args.run_dir if args.run_dir is not None else args.checkpoint
    out = (
        args.out
        if args.out is not None
        else (args.run_dir if args.run_dir is not None else args.checkpoint.parent)
    )
    metrics = evaluate_run(source, ecfg, out_dir=out, data=args.data)
    summary = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    print(f"wrote {out / 'metrics.json'}")

    if not args.no_mlflow and args.run_dir is not None and (args.run_dir / "mlflow_run.json").is_file():
        try:
            from hrnet.tracking import Tracker
        except ImportError as exc:
            print(f"MLflow is not available ({exc}); metrics not logged")
            return 0
        Tracker.attach(args.run_dir, args.tracking_uri).log_evaluation(metrics, out)
    return 0
