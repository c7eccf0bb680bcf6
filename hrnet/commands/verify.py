"""Verify a paper row from its published checkpoint: strict load, the row's protocol, compare, register."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", type=Path, default=None, help="params file of the row (default: the paper rows)"
    )
    parser.add_argument("--row", required=True, help="row id (rows.<id> of the params file)")
    parser.add_argument("--checkpoint", required=True, help="catalogued checkpoint name (hrnet fetch --list)")
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="the checkpoint file (default: data/checkpoints/<name>/<file>)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: runs/<row>/verify-<checkpoint name>)"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log or register in MLflow")
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)"
    )


def run(args: argparse.Namespace) -> int:
    from hrnet.mlops.verify import verify_row

    record = verify_row(
        args.params,
        args.row,
        args.checkpoint,
        out=args.out,
        weights=args.weights,
        tracking_uri=args.tracking_uri,
        mlflow=not args.no_mlflow,
    )
    ours = "-" if record["ours"] is None else f"{record['ours']:.2f}"
    delta = (
        "" if record["delta"] is None else f" (delta {record['delta']:+.2f}, tolerance {record['tolerance']})"
    )
    print(
        f"{record['row']} from {record['source']} {record['checkpoint']}: {record['metric']} {ours} "
        f"vs published {record['published']:.2f}: {record['outcome']}{delta}"
    )
    if record["registered"]:
        print(f"registered {record['registered']} @published")
    return 0
