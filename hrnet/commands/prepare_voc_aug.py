"""Build Pascal VOC 2012 aug (SegmentationClassAug + train_aug.txt) from VOC 2012 and SBD."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voc", type=Path, required=True, help="the VOCdevkit/VOC2012 folder")
    parser.add_argument("--sbd", type=Path, required=True, help="SBD's benchmark_RELEASE/dataset folder")
    parser.add_argument("--force", action="store_true", help="replace an existing SegmentationClassAug/")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hrnet.data.voc_aug import build_voc_aug

    if (args.voc / "SegmentationClassAug").is_dir() and not args.force:
        print(f"{args.voc / 'SegmentationClassAug'}: already built (pass --force to rebuild)")
        return 0
    with Progress(
        TextColumn("voc aug"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=args.quiet
    ) as bar:
        task = bar.add_task("voc aug", total=None)
        counts = build_voc_aug(
            args.voc, args.sbd, force=args.force, progress=lambda d, t: bar.update(task, completed=d, total=t)
        )
    print(
        f"wrote {args.voc / 'SegmentationClassAug'}: {counts['voc']} label maps from VOC, {counts['sbd']} "
        f"from SBD; train_aug.txt lists {counts['train_aug']} images"
    )
    return 0
