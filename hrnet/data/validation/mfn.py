"""MFN (RTFNet's layout): names from ``ROOT/<S>.txt``, ``images/<name>.png`` + ``labels/<name>.png``.

The pairs are the reader's file index (:func:`hrnet.data.mfn.mfn_files`). The checks of every
label-map layout (:mod:`hrnet.data.validation.segmentation`: image and label map present,
decodable, same size, labels 0..8) plus one: each image has four 8-bit channels (RGB + thermal),
decoded as the reader decodes it (:func:`hrnet.data.mfn.read_rgbt`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.data.validation.core import Table, Tables, in_set, rel
from hrnet.errors import HRNetError


def mfn(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """The label-map checks with MFN's classes 0..8, and a 4-channel check per image."""
    from hrnet.data.io import DataFileError
    from hrnet.data.mfn import MFN_CLASSES, mfn_files, read_rgbt
    from hrnet.data.validation.segmentation import label_map_pairs

    try:
        pairs = mfn_files(root, split)
    except DataFileError as exc:
        return Tables(root).fail_from(exc, relative=False)
    dataset = label_map_pairs(
        root, pairs, list(range(len(MFN_CLASSES))), "MFN 0..8", f"images listed in {root / f'{split}.txt'}"
    )
    channels = Table("image_channels", ("rgbt", "rgbt_error"))
    channels.checks = [in_set("rgbt", [True], "image is not RGB + thermal", "rgbt_error")]
    dataset.tables.append(channels)
    for path, _ in pairs:
        if not path.is_file():
            continue  # reported by the images table
        try:
            read_rgbt(path)
        except HRNetError as exc:
            channels.rows.append(
                {"file": rel(path, root), "record": None, "rgbt": False,
                 "rgbt_error": str(exc).removeprefix(f"{path}: ")}
            )  # fmt: skip
        else:
            channels.rows.append({"file": rel(path, root), "record": None, "rgbt": True, "rgbt_error": ""})
    return dataset
