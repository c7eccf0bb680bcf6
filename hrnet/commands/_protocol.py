"""The test protocol on the command line (``hrnet evaluate`` and ``hrnet predict``): its flags,
and a row's ``evaluate:`` entry for what the flags leave out."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Numbers(argparse.Action):
    """``nargs="+"`` numbers of one ``kind`` (``int`` or ``float``), at most ``most`` of them
    (0: any number). An option of variable length takes the positionals that follow it too
    (``--scales 0.5 1 images/``): the error then says so, instead of argparse's bare ``invalid
    float value``."""

    def __init__(self, *args: Any, kind: type = float, most: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, nargs="+", **kwargs)
        self.kind, self.most = kind, most

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None
    ) -> None:
        values = list(values)
        word = "integer" if self.kind is int else "number"
        try:
            numbers = [self.kind(v) for v in values]
            if self.most and len(numbers) > self.most:
                raise ValueError
        except ValueError:
            want = f"at most {self.most} {word}s" if self.most else f"{word}s"
            parser.error(
                f"{option} takes {want}, got {' '.join(values)!r}; "
                "put the model and image paths before the option"
            )
        setattr(namespace, self.dest, numbers)


def add_protocol_arguments(parser: argparse.ArgumentParser, *, person_boxes: bool = True) -> None:
    """The protocol flags (None when not given, so that a row's entry can fill them in)."""
    parser.add_argument(
        "--scales", action=Numbers, kind=float, default=None, help="segmentation test scales (default: 1.0)"
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


def row_given(args: argparse.Namespace) -> bool:
    """Whether ``--params`` and ``--row`` are given (HRNetError when only one of them is)."""
    from hrnet.errors import HRNetError

    params, row = getattr(args, "params", None), getattr(args, "row", None)
    if (params is None) != (row is None):
        raise HRNetError("--params and --row go together")
    return params is not None


def row_protocol(params: Path, row: str, *, task: str | None = None) -> dict[str, Any]:
    """The ``evaluate:`` entry of ``row`` in ``params``; with ``task``, the row must be one of
    that task (HRNetError for an unknown row or a row of another task)."""
    from hrnet.errors import HRNetError
    from hrnet.mlops.rows import load_suite

    entry = load_suite(params).row(row)
    if task is not None and entry.task != task:
        raise HRNetError(
            f"{params} rows.{row}: a {entry.task} row; its test protocol is not one for a {task} model"
        )
    return dict(entry.evaluate)


def protocol_from(
    args: argparse.Namespace, row: Mapping[str, Any] | None = None, *, source: str
) -> dict[str, Any]:
    """The protocol's :class:`~hrnet.engine.config.EvalConfig` fields: the flags given, then
    ``row`` (a row's ``evaluate:`` entry, named ``source`` in errors), then the defaults."""
    from hrnet.engine.config import PROTOCOL_FIELDS, protocol_fields

    flags = {name: getattr(args, name, None) for name in PROTOCOL_FIELDS}
    return protocol_fields(flags, row or {}, source=source)
