"""Train a model (one process, or several through torchrun) and write runs/<row>/model.pt."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hrnet.engine.config import TrainConfig
    from hrnet.mlops.tracking import Tracker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hrnet.engine.config import add_config_arguments

    parser.add_argument("--out", type=Path, required=True, help="run folder (runs/<row>)")
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        help="params file: the recipe of rows.<ROW>.train, and its launch: section as this "
        "machine's defaults for the flags below",
    )
    parser.add_argument(
        "--row", default=None, help="row id under rows: in --params (also the MLflow run name)"
    )
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="continue from <out>/checkpoints/last.pt if present",
    )
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on)"
    )
    mlflow = parser.add_argument_group("tracking")
    mlflow.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    mlflow.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    mlflow.add_argument("--experiment", default=None, help="MLflow experiment name (default: hrnet-zoo)")
    ddp = parser.add_argument_group("distributed (launches torchrun when more than one process)")
    ddp.add_argument("--nproc-per-node", type=int, default=None, help="processes on this node (default: 1)")
    ddp.add_argument("--nnodes", type=int, default=None, help="number of nodes (default: 1)")
    ddp.add_argument("--rdzv-endpoint", default=None, help="HOST:PORT of the c10d rendezvous (several nodes)")
    ddp.add_argument("--rdzv-id", default="hrnet", help="job id shared by the nodes of one run")
    add_config_arguments(parser)


def _resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < the params file's row (and launch section) < flags given on the command line.

    Fills the launch flags left unset (``None``) from the params file's ``launch:`` section, and
    pins the CPU threads and kernels it names before numpy and torch are imported."""
    from hrnet.engine.config import config_from_mapping, config_overrides
    from hrnet.errors import HRNetError
    from hrnet.mlops.rows import Launch

    base, launch = None, Launch()
    if args.params is not None:
        from hrnet.mlops.rows import apply_cpu_settings, launch_settings, train_settings

        if not args.row:
            raise HRNetError(f"{args.params}: --params needs --row ROW_ID")
        # the launch section alone first: reading the rows may import numpy (the fetch catalogue)
        apply_cpu_settings(launch_settings(args.params), where=f"{args.params}: launch")
        values, launch = train_settings(args.params, args.row)
        base = config_from_mapping(values, source=f"{args.params} rows.{args.row}.train")
    for flag in ("resume", "progress", "experiment", "nproc_per_node", "nnodes", "rdzv_endpoint"):
        if getattr(args, flag) is None:
            setattr(args, flag, getattr(launch, flag))
    cfg = config_from_mapping(config_overrides(args), source="command line", base=base)
    if cfg.init_from and not Path(cfg.init_from).is_file():  # a catalogued published checkpoint
        import dataclasses

        from hrnet.engine.published import resolve_weights

        cfg = dataclasses.replace(cfg, init_from=str(resolve_weights(cfg.init_from)))
    return cfg


def _worker_args(args: argparse.Namespace, cfg: TrainConfig) -> list[str]:
    """The ``hrnet train`` arguments each torchrun worker gets (the config fully spelled out)."""
    from hrnet.engine.config import config_to_flags

    argv = ["train", "--out", str(args.out), *config_to_flags(cfg), "--experiment", args.experiment]
    if args.row:
        argv += ["--row", args.row]
    argv.append("--resume" if args.resume else "--no-resume")
    argv.append("--progress" if args.progress else "--no-progress")
    if args.no_mlflow:
        argv.append("--no-mlflow")
    if args.tracking_uri:
        argv += ["--tracking-uri", args.tracking_uri]
    return argv


def run(args: argparse.Namespace) -> int:
    import os

    from hrnet.errors import HRNetError

    cfg = _resolve_config(args)  # first: it pins the CPU kernels before torch is imported
    from hrnet.engine import distributed
    from hrnet.engine.cpu import keep_freed_memory

    keep_freed_memory()  # each step's buffers stay mapped (system time, not results)

    if args.nproc_per_node < 1 or args.nnodes < 1:
        raise HRNetError("train: --nproc-per-node and --nnodes must be >= 1")

    # several processes asked for and we are not a worker yet: become the torchrun launcher
    if args.nproc_per_node * args.nnodes > 1 and not distributed.launched_by_torchrun():
        if not args.no_mlflow:
            _start_tracking(args, cfg, check_only=True)  # a server that is down fails before torchrun
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
        with _terminate_as_interrupt():
            result = train(
                cfg,
                out_dir=args.out,
                resume=args.resume,
                log=tracker.log_metrics if tracker else None,
                progress=args.progress,
            )
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (a scheduler, a cancelled flow run, torchrun)
        if tracker is not None:
            tracker.finish("KILLED")
        print(
            f"train: stopped; the last checkpoint is in {args.out / 'checkpoints'} (--resume)",
            file=sys.stderr,
        )
        raise
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


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and Ctrl-C raise KeyboardInterrupt while training (main thread only), after the
    checkpoint being written, if any, is in place; so the MLflow run is marked KILLED instead of
    staying RUNNING when the process is terminated."""
    import signal
    import threading

    from hrnet.engine.checkpoint import interrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_tracking(
    args: argparse.Namespace, cfg: TrainConfig, *, check_only: bool = False
) -> Tracker | None:
    """The row's MLflow run (``None`` without mlflow). Raises HRNetError, before any training,
    when an http(s) tracking server does not answer; ``check_only``: only that check."""
    try:
        from hrnet.mlops.tracking import Tracker, check_server, resolve_tracking_uri
    except ImportError as exc:  # the GPU image has no mlflow
        if not check_only:
            print(f"MLflow is not available ({exc}); training without tracking (use --no-mlflow to silence)")
        return None
    if check_only:
        check_server(resolve_tracking_uri(args.tracking_uri))
        return None
    from hrnet.engine.cpu import cpu_tags

    return Tracker.start(
        args.out,
        params=cfg.to_dict(),
        row=args.row or args.out.name,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        data=cfg.data,
        tags=cpu_tags(),
        # the same run only for a training that continues from its checkpoint (engine.train)
        resume=args.resume and (args.out / "checkpoints" / "last.pt").is_file(),
    )
