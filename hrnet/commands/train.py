"""Train a model (one process, or several through torchrun) and write runs/<row>/model.pt."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hrnet.engine.config import TrainConfig
    from hrnet.tracking import Tracker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hrnet.engine.config import add_config_arguments

    parser.add_argument("--out", type=Path, required=True, help="run folder (runs/<row>)")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml holding rows.<ROW>")
    parser.add_argument(
        "--row", default=None, help="row id under rows: in --params (also the MLflow run name)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from <out>/checkpoints/last.pt if present"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    mlflow = parser.add_argument_group("tracking")
    mlflow.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    mlflow.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    mlflow.add_argument("--experiment", default="hrnet-zoo", help="MLflow experiment name")
    ddp = parser.add_argument_group("distributed (launches torchrun when more than one process)")
    ddp.add_argument("--nproc-per-node", type=int, default=1, help="processes on this node")
    ddp.add_argument("--nnodes", type=int, default=1, help="number of nodes")
    ddp.add_argument("--rdzv-endpoint", default="", help="HOST:PORT of the c10d rendezvous (several nodes)")
    ddp.add_argument("--rdzv-id", default="hrnet", help="job id shared by the nodes of one run")
    add_config_arguments(parser)


def _resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < the params.yaml row < flags given on the command line."""
    from hrnet.engine.config import config_from_mapping, config_overrides, load_params_row
    from hrnet.errors import HRNetError

    base = None
    if args.params is not None:
        if not args.row:
            raise HRNetError(f"{args.params}: --params needs --row ROW_ID")
        row = load_params_row(str(args.params), args.row)
        base = config_from_mapping(row, source=f"{args.params} rows.{args.row}")
    return config_from_mapping(config_overrides(args), source="command line", base=base)


def _worker_args(args: argparse.Namespace, cfg: TrainConfig) -> list[str]:
    """The ``hrnet train`` arguments each torchrun worker gets (the config fully spelled out)."""
    from hrnet.engine.config import config_to_flags

    argv = ["train", "--out", str(args.out), *config_to_flags(cfg), "--experiment", args.experiment]
    if args.row:
        argv += ["--row", args.row]
    for flag in ("resume", "no_progress", "no_mlflow"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    if args.tracking_uri:
        argv += ["--tracking-uri", args.tracking_uri]
    return argv


def run(args: argparse.Namespace) -> int:
    import os

    from hrnet.engine import distributed
    from hrnet.errors import HRNetError

    if args.nproc_per_node < 1 or args.nnodes < 1:
        raise HRNetError("train: --nproc-per-node and --nnodes must be >= 1")
    cfg = _resolve_config(args)

    # several processes asked for and we are not a worker yet: become the torchrun launcher
    if args.nproc_per_node * args.nnodes > 1 and not distributed.launched_by_torchrun():
        cmd = distributed.torchrun_command(
            _worker_args(args, cfg),
            nproc_per_node=args.nproc_per_node,
            nnodes=args.nnodes,
            rdzv_endpoint=args.rdzv_endpoint,
            rdzv_id=args.rdzv_id,
        )
        code = distributed.launch(cmd)
        if code != 0:
            raise HRNetError(f"train: torchrun exited with status {code}")
        return 0

    from hrnet.engine.train import train

    is_main = int(os.environ.get("RANK", "0")) == 0
    tracker = None
    if is_main and not args.no_mlflow:
        tracker = _start_tracking(args, cfg)
    try:
        result = train(
            cfg,
            out_dir=args.out,
            resume=args.resume,
            log=tracker.log_metrics if tracker else None,
            progress=not args.no_progress,
        )
    except BaseException:
        if tracker is not None:
            tracker.finish("FAILED")
        raise
    if is_main:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items())
        print(f"wrote {result.model_path} after {result.steps} steps in {result.seconds:.1f} s ({losses})")
    if tracker is not None:
        tracker.log_training_outputs(args.out)
        tracker.finish("FINISHED")
    return 0


def _start_tracking(args: argparse.Namespace, cfg: TrainConfig) -> Tracker | None:
    try:
        from hrnet.tracking import Tracker
    except ImportError as exc:  # the GPU image has no mlflow
        print(f"MLflow is not available ({exc}); training without tracking (use --no-mlflow to silence)")
        return None
    return Tracker.start(
        args.out,
        params=cfg.to_dict(),
        row=args.row or args.out.name,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        data=cfg.data,
    )
