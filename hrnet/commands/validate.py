"""Validate a dataset on disk with Great Expectations; write summary.json and Data Docs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

MAX_PRINTED = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hrnet.data.validation import FORMATS  # light: Great Expectations is imported when it runs

    parser.add_argument(
        "format",
        nargs="+",
        choices=sorted(FORMATS),
        help="the on-disk format(s) (docs/DATA.md); several read the same root in one process",
    )
    parser.add_argument("--root", type=Path, required=True, help="the dataset folder")
    parser.add_argument(
        "--split", nargs="+", default=["train"], help="split name(s) (train, val, val2017, ...)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for summary.json and data_docs/ (one subfolder per format, then per split, when "
        "several are given)",
    )
    parser.add_argument("--num-classes", type=int, help="mask_segmentation: classes incl. background; "
                        "imagefolder: expected class folders")  # fmt: skip
    parser.add_argument("--ignore-index", type=int, default=255, help="mask_segmentation: ignored label")
    parser.add_argument(
        "--num-points",
        type=int,
        help="landmark formats: points per face (default 68 for 300W, 98 WFLW, 29 COFW)",
    )
    parser.add_argument(
        "--annotations", type=Path, help="COCO formats: the annotation JSON (default by layout)"
    )
    parser.add_argument("--images", type=Path, help="override the image folder")
    parser.add_argument("--masks", type=Path, help="mask_segmentation: override the label-map folder")
    parser.add_argument(
        "--aug", action="store_true", help="voc: label maps from SegmentationClassAug (the SBD-augmented set)"
    )


def run(args: argparse.Namespace) -> int:
    """Validate every requested format and split in one process (Great Expectations is imported
    once): ``out[/<format>][/<split>]``, a level only where several are given."""
    formats, splits = list(dict.fromkeys(args.format)), list(dict.fromkeys(args.split))
    codes = [
        _validate_split(
            args,
            fmt,
            split,
            args.out / (fmt if len(formats) > 1 else "") / (split if len(splits) > 1 else ""),
        )
        for fmt in formats
        for split in splits
    ]
    return max(codes)


def _validate_split(args: argparse.Namespace, fmt: str, split: str, out: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    from hrnet.data.validation import validate_dataset

    report = validate_dataset(
        fmt,
        root=args.root,
        split=split,
        out=out,
        num_classes=args.num_classes,
        ignore_index=args.ignore_index,
        num_points=args.num_points,
        annotations=args.annotations,
        images=args.images,
        masks=args.masks,
        aug=args.aug,
    )
    console = Console()
    rows = ", ".join(f"{count} {name}" for name, count in report.rows.items())
    if report.success:
        console.print(f"[green]valid[/green] {fmt} {args.root} ({split}): {rows}")
        console.print(f"summary: {out / 'summary.json'}{_docs(report)}")
        return 0
    table = Table(title=f"{fmt} {args.root} ({split}): {len(report.failures)} failing records")
    for column in ("file", "record", "reason"):
        table.add_column(column, overflow="fold")
    for failure in report.failures[:MAX_PRINTED]:
        table.add_row(failure.file, failure.record or "-", failure.reason)
    console.print(table)
    if len(report.failures) > MAX_PRINTED:
        console.print(f"... and {len(report.failures) - MAX_PRINTED} more in {out / 'summary.json'}")
    console.print(f"[red]invalid[/red]: summary {out / 'summary.json'}{_docs(report)}")
    return 1


def _docs(report: Any) -> str:
    """``; data docs: PATH``, or why there are none (no suite ran on a file that could not be read)."""
    if report.data_docs is None:
        return "; no data docs (nothing to check in what could not be read)"
    return f"; data docs: {report.data_docs}"
