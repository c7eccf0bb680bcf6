"""Generate an embedded dataset (digits, shapes, figures, faces) in its real file format."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="dataset to generate: digits, shapes, figures or faces")
    parser.add_argument(
        "--out", type=Path, default=None, help="dataset folder to create (default: data/embedded/NAME)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives identical files"
    )
    parser.add_argument("--num-train", type=int, default=None, help="training images (default per dataset)")
    parser.add_argument("--num-val", type=int, default=None, help="validation images (default per dataset)")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hrnet.data.embedded import generate_dataset

    out = args.out if args.out is not None else Path("data/embedded") / args.name
    bar = Progress(
        TextColumn(f"generate {args.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=args.quiet,
        transient=False,
    )
    task = None

    def progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:  # shown from the first image: a refused request prints its error alone
            bar.start()
            task = bar.add_task(args.name, total=total)
        bar.update(task, completed=done, total=total)

    try:
        path = generate_dataset(
            args.name,
            out,
            seed=args.seed,
            num_train=args.num_train,
            num_val=args.num_val,
            force=args.force,
            progress=progress,
        )
    finally:
        bar.stop()
    print(f"wrote {path}")
    return 0
