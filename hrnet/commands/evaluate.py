"""Evaluate a trained model on a split: metrics.json, predictions and plots/ in the run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", type=Path, help="run folder (runs/<row>) holding model.pt")
    source.add_argument("--checkpoint", type=Path, help="a model.pt or checkpoints/last.pt file")
    source.add_argument(
        "--weights",
        help="a published checkpoint (a file in any supported layout, or a catalogued name: hrnet fetch "
        "--list), evaluated as the model of --params/--row or of --model/--data/--dataset",
    )
    from hrnet.commands._published import add_published_arguments

    add_published_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the run folder, the checkpoint's folder, or for --weights "
        "runs/published/<row or model>, which also holds the imported model.pt); with --run-dir, an "
        "evaluation written elsewhere is logged to the run's MLflow run under eval-<folder name>/",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace a metrics.json of the output folder that holds another evaluation (another split, "
        "dataset or test protocol); without it that is refused, as the run folder's metrics.json is the "
        "run's result in the report, the registry and MLflow",
    )
    parser.add_argument(
        "--data", default=None, help="dataset root (default: the one the model was trained on)"
    )
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: 16)")
    parser.add_argument("--workers", type=int, default=None, help="data loader workers (default: 2)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--launch",
        type=Path,
        default=None,
        help="params file whose launch: section gives this machine's defaults for --batch-size "
        "(eval_batch_size), --workers and --device, and pins the CPU threads and kernels (threads, cpu_isa)",
    )
    # the test protocol: with --weights --params --row, the row's evaluate: entry gives what is not given here
    from hrnet.commands._protocol import add_protocol_arguments

    add_protocol_arguments(parser)
    parser.add_argument("--num-plots", type=int, default=8, help="prediction pictures to draw")
    parser.add_argument("--amp", default="none", help="autocast: none, bf16 or fp16")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="run the model as trained (default: the inference path, BatchNorm folded + channels_last)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar over the batches (default: on; --launch sets it from the params file)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to the run's MLflow run")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the run's own)")


def run(args: argparse.Namespace) -> int:
    _launch_defaults(args)  # first: it pins the CPU kernels before torch is imported
    from hrnet.engine.cpu import keep_freed_memory

    keep_freed_memory()  # each batch's buffers stay mapped (system time, not results)
    from hrnet.engine.config import EvalConfig
    from hrnet.engine.evaluate import evaluate_run

    published = None
    if args.weights is not None:
        from hrnet.commands._published import import_published

        if args.row is not None and args.split == "val":
            args.split = ""  # the row's split
        published, split = import_published(args)
        args.split = split
    ecfg = EvalConfig(
        split=args.split,
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
        **_protocol(args),
        num_plots=args.num_plots,
        amp=args.amp,
        progress=args.progress,
    )
    if published is not None:
        source = out = published
    else:
        source = args.run_dir if args.run_dir is not None else args.checkpoint
        out = (
            args.out
            if args.out is not None
            else (args.run_dir if args.run_dir is not None else args.checkpoint.parent)
        )
    tracker = _attach_tracking(args)  # before evaluating: a server that is down fails fast
    # --data with --dataset: score a run on another dataset (the row's evaluate.dataset)
    dataset = args.dataset if published is None else None
    metrics = evaluate_run(
        source, ecfg, out_dir=out, data=args.data, fast=not args.eager, dataset=dataset, replace=args.replace
    )
    summary = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    print(f"wrote {out / 'metrics.json'}")

    if tracker is not None:
        try:
            # a failure is a warning: metrics.json is written
            tracker.log_evaluation(metrics, out, name=_logged_as(args.run_dir, out))
        finally:
            tracker.close()
    return 0


def _logged_as(run_dir: Path, out: Path) -> str:
    """The MLflow name of an evaluation of ``run_dir`` written to ``out``: ``eval`` (the run's
    own, which the registry compares) in the run folder, else ``eval-<folder name>``."""
    import re

    if out.resolve() == run_dir.resolve():
        return "eval"
    name = re.sub(r"[^\w.\- ]", "_", out.resolve().name)
    return name if name.startswith("eval-") else f"eval-{name}"  # never the run's own "eval"


def _protocol(args: argparse.Namespace) -> dict[str, Any]:
    """The test protocol's EvalConfig fields: the flags given, then (published weights evaluated
    as a row) the row's ``evaluate:`` entry, then the defaults."""
    from hrnet.commands._protocol import protocol_from, row_protocol

    if args.weights is not None and args.params is not None and args.row is not None:
        source = f"{args.params} rows.{args.row}.evaluate"
        return protocol_from(args, row_protocol(args.params, args.row), source=source)
    return protocol_from(args, source="evaluate")


def _attach_tracking(args: argparse.Namespace):  # -> Tracker | None
    """The run's MLflow run when it has one and tracking is on; raises HRNetError when its
    server does not answer."""
    if args.no_mlflow or args.run_dir is None or not (args.run_dir / "mlflow_run.json").is_file():
        return None
    try:
        from hrnet.mlops.tracking import Tracker
    except ImportError as exc:
        print(f"MLflow is not available ({exc}); metrics not logged")
        return None
    return Tracker.attach(args.run_dir, args.tracking_uri)


def _launch_defaults(args: argparse.Namespace) -> None:
    """Fill --batch-size/--workers/--device/--progress left unset from ``--launch`` (or the
    defaults), and pin the CPU threads and kernels it names."""
    if args.launch is not None:
        from hrnet.mlops.rows import launch_settings

        launch = launch_settings(args.launch)
        from hrnet.mlops.rows import apply_cpu_settings

        apply_cpu_settings(launch, where=f"{args.launch}: launch")
        defaults = {
            "batch_size": launch.eval_batch_size,
            "workers": launch.workers,
            "device": launch.device,
            "progress": launch.progress,
        }
    else:
        defaults = {"batch_size": 16, "workers": 2, "device": "auto", "progress": True}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
