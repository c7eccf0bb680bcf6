"""Write the benchmark report (BENCHMARKS.md, index.html, plots) for every row of the params files."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir", type=Path, default=Path("reports"), help="output folder (default: reports)"
    )
    parser.add_argument(
        "--params",
        type=Path,
        action="append",
        default=None,
        help="params file with rows (repeatable; default: params.yaml and benchmarks/params.yaml)",
    )
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="project root holding runs/ (default: .)"
    )
    parser.add_argument("--mlflow-ui", default="", help="base URL of the MLflow UI for run links")
    parser.add_argument("--no-flops", action="store_true", help="do not count parameters and GFLOPs")
    parser.add_argument("--no-plots", action="store_true", help="no matplotlib figures")


def run(args: argparse.Namespace) -> int:
    from hrnet.mlops.pipeline import SUITES
    from hrnet.mlops.report import write_report

    files = args.params or [Path(p) for p in SUITES]
    from hrnet.mlops.rows import load_suite

    suites = [(path, load_suite(path).name) for path in files]
    entries = write_report(
        suites,
        args.out_dir,
        root=args.root,
        mlflow_ui=args.mlflow_ui,
        count_flops=not args.no_flops,
        plots=not args.no_plots,
    )
    ran = sum(e.state == "run" for e in entries)
    print(
        f"wrote {args.out_dir / 'BENCHMARKS.md'} and {args.out_dir / 'index.html'}: {len(entries)} rows, {ran} run"
    )
    return 0
