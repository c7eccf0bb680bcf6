"""Register a run's model in the MLflow registry; move @champion only when the metric improves."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir", type=Path, required=True, help="run folder with mlflow_run.json and metrics.json"
    )
    parser.add_argument("--name", required=True, help="registered model name")
    parser.add_argument(
        "--metric", required=True, help="key of metrics.json that ranks versions (e.g. top1, mIoU)"
    )
    parser.add_argument(
        "--mode", choices=("max", "min"), default="max", help="higher (max) or lower (min) is better"
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the run's own)")


def run(args: argparse.Namespace) -> int:
    from hrnet.mlops.tracking import register

    record = register(
        args.run_dir, name=args.name, metric=args.metric, mode=args.mode, tracking_uri=args.tracking_uri
    )
    state = (
        "is now @champion"
        if record["champion"] and record["champion_version"] == record["version"]
        else (f"did not beat @champion (version {record['champion_version']})")
    )
    print(f"{record['uri']}: {args.metric}={record['value']:.4f} {state}")
    print(f"wrote {args.run_dir / 'registered.json'}")
    return 0
