"""The test protocol on the command line (``hrnet evaluate`` and ``hrnet predict``): its flags,
and a row's ``evaluate:`` entry for what the flags leave out."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def add_protocol_arguments(parser: argparse.ArgumentParser, *, person_boxes: bool = True) -> None:
    """The protocol flags (None when not given, so that a row's entry can fill them in)."""
    parser.add_argument(
        "--scales", type=float, nargs="+", default=None, help="segmentation test scales (default: 1.0)"
    )
    sizes = {
        "--test-scale": "segmentation: rescale each test image, keeping its aspect ratio, to the largest "
        "size whose long side is at most the larger and short side at most the smaller number (--scales "
        "multiply them; default: the dataset's, Cityscapes 1024 2048, ADE20K and VOC 512 2048, Pascal "
        "Context 520 520; other sets at their own size)",
        "--slide-crop": "segmentation: predict from windows of this size (with --slide-stride; default: "
        "whole images)",
        "--slide-stride": "window stride",
    }
    for flag, text in sizes.items():
        parser.add_argument(flag, type=int, nargs=2, default=None, metavar=("HEIGHT", "WIDTH"), help=text)
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="flip test (segmentation, pose, landmarks; default: off)",
    )
    if person_boxes:
        parser.add_argument(
            "--person-boxes",
            default=None,
            help="pose: 'gt' or a COCO detection results JSON of person boxes (then OKS-NMS at 0.9 per image)",
        )


def row_protocol(params: Path, row: str) -> dict[str, Any]:
    """The ``evaluate:`` entry of ``row`` in ``params`` (HRNetError for an unknown row)."""
    from hrnet.mlops.rows import load_suite

    return dict(load_suite(params).row(row).evaluate)


def protocol_from(
    args: argparse.Namespace, row: Mapping[str, Any] | None = None, *, source: str
) -> dict[str, Any]:
    """The protocol's :class:`~hrnet.engine.config.EvalConfig` fields: the flags given, then
    ``row`` (a row's ``evaluate:`` entry, named ``source`` in errors), then the defaults."""
    from hrnet.engine.config import PROTOCOL_FIELDS, protocol_fields

    flags = {name: getattr(args, name, None) for name in PROTOCOL_FIELDS}
    return protocol_fields(flags, row or {}, source=source)
