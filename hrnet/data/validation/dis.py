"""DIS5K: ``ROOT/DIS-<S>/im/<name>.jpg`` + ``ROOT/DIS-<S>/gt/<name>.png`` (``--split DIS-TR`` ..).

The pairs are the reader's file index (:func:`hrnet.data.dis.dis_files`). Each image decodes and
has a mask of its size, decoded as the reader decodes it (:func:`hrnet.data.dis.read_dis_mask`);
each mask is binary-ish (at most :data:`MAX_GREY_FRACTION` of its pixels strictly between 0 and
255: anti-aliased edges) and holds a foreground (a value above 128, the metrics' threshold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.data.validation.core import (
    IMAGE_COLUMNS,
    Table,
    Tables,
    at_most,
    equal,
    image_checks,
    in_set,
    positive,
    probe_image,
    rel,
)
from hrnet.errors import HRNetError

# the share of grey (neither 0 nor 255) pixels a mask may hold; ours: DIS5K publishes binary masks
MAX_GREY_FRACTION = 0.05


def dis5k(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """Images: present, decodable, a mask present, decodable, of the image's size, binary-ish and
    with a foreground."""
    import numpy as np

    from hrnet.data.dis import dis_files, read_dis_mask
    from hrnet.data.io import DataFileError

    dataset = Tables(root)
    try:
        pairs = dis_files(root, split)
    except DataFileError as exc:
        return dataset.fail_from(exc, relative=False)
    columns = ("mask_exists", "mask_decodable", "mask_error", "mask_width", "mask_height")
    images = Table("images", (*IMAGE_COLUMNS, *columns, "grey_fraction", "foreground_pixels"))
    dataset.tables.append(images)
    images.checks = [
        *image_checks(f"images in {root / split / 'im'}"),
        in_set("mask_exists", [True], "mask missing"),
        in_set("mask_decodable", [True], "mask not decodable", "mask_error"),
        equal("width", "mask_width", "mask width differs from the image"),
        equal("height", "mask_height", "mask height differs from the image"),
        at_most("grey_fraction", MAX_GREY_FRACTION, "mask is not binary (share of pixels between 0 and 255)"),
        positive("foreground_pixels", "mask has no foreground (no value above 128)"),
    ]
    for path, mask_path in pairs:
        row = {"file": rel(path, root), "record": rel(mask_path, root), **probe_image(path)}
        mask: dict[str, Any] = dict.fromkeys((*columns, "grey_fraction", "foreground_pixels"))
        mask.update(mask_exists=mask_path.is_file(), mask_error="")
        if mask["mask_exists"]:
            try:
                array = read_dis_mask(mask_path)
            except HRNetError as exc:
                mask.update(mask_decodable=False, mask_error=str(exc))
            else:
                grey = float(np.count_nonzero((array > 0) & (array < 255))) / max(1, array.size)
                mask.update(
                    mask_decodable=True,
                    mask_height=array.shape[0],
                    mask_width=array.shape[1],
                    grey_fraction=round(grey, 6),
                    foreground_pixels=int(np.count_nonzero(array > 128)),
                )
        if not (row["decodable"] and mask["mask_decodable"]):  # sizes compared only when both decode
            mask["mask_width"], mask["mask_height"] = row["width"], row["height"]
        images.rows.append({**row, **mask})
    return dataset
