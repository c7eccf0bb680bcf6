"""Driving scenes: ``acdc``, ``dada_seg``, ``synpass`` (label maps) and ``bdd100k_ins_seg``
(COCO-format instances + RGBA bitmasks).

The segmentation layouts validate the pairs of their readers' file indexes
(:mod:`hrnet.data.driving`) with the checks of :mod:`.segmentation`: each image decodes and has
a label map of its size, and every stored value is one the layout defines. ``bdd100k_ins_seg``
runs the ``coco_instances`` checks on ``jsons/ins_seg_S_cocofmt.json`` with the images of
``images/10k/S``, and checks each image's bitmask: present, an RGBA PNG of the image's size,
categories 0..8 in R.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.data.validation.core import Table, Tables, equal, in_set, rel
from hrnet.data.validation.segmentation import _validate_pairs


def acdc(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``rgb_anon/<condition>/SPLIT/**/<name>_rgb_anon.png`` with ``gt/.../<name>_gt_labelTrainIds.png``
    (:func:`~hrnet.data.driving.acdc_files`): trainIds 0..18 and 255."""
    from hrnet.data.driving import acdc_files

    return _validate_pairs(
        root,
        lambda: acdc_files(root, split),
        [*range(19), 255],
        "Cityscapes trainIds 0..18, 255",
        f"images under {root / 'rgb_anon'}/<condition>/{split}/",
    )


def dada_seg(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``leftImg8bit/SPLIT/**/*.jpg`` paired in order with ``gtFine/SPLIT/**/*labelTrainIds.png``
    (:func:`~hrnet.data.driving.dada_seg_files`): trainIds 0..18 and 255."""
    from hrnet.data.driving import dada_seg_files

    return _validate_pairs(
        root,
        lambda: dada_seg_files(root, split),
        [*range(19), 255],
        "Cityscapes trainIds 0..18, 255",
        f"images under {root / 'leftImg8bit' / split}",
    )


def synpass(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``img/<weather>/SPLIT/<map>/<stem>.jpg`` with ``semantic/.../<stem>_trainID.png``
    (:func:`~hrnet.data.driving.synpass_files`): 0 (ignored), classes 1..22 and 255."""
    from hrnet.data.driving import synpass_files

    return _validate_pairs(
        root,
        lambda: synpass_files(root, split),
        [*range(23), 255],
        "SynPASS 0 (ignored), 1..22, 255",
        f"images under {root / 'img'}/<weather>/{split}/",
    )


def bdd100k_ins_seg(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """The ``coco_instances`` checks on BDD100K's COCO-format file and images, and a
    ``bitmasks`` table: one RGBA bitmask of the image's size per image, R (category) in 0..8."""
    import numpy as np
    from PIL import Image

    from hrnet.data import bdd100k
    from hrnet.data.validation.coco import _coco
    from hrnet.data.validation.core import probe_image

    ann = Path(options.get("annotations") or bdd100k.annotation_file(root, split))
    images = Path(options.get("images") or bdd100k.image_folder(root, split))
    dataset = _coco(root, split, {**options, "annotations": ann, "images": images}, keypoints=False)
    table = Table(
        "bitmasks", ("exists", "mode", "width", "height", "image_width", "image_height", "max_category")
    )
    table.checks = [
        in_set("exists", [True], "bitmask missing"),
        in_set("mode", ["RGBA"], "bitmask is not an RGBA PNG", "mode"),
        equal("width", "image_width", "bitmask width differs from the image"),
        equal("height", "image_height", "bitmask height differs from the image"),
        in_set(
            "max_category",
            list(range(len(bdd100k.BDD100K_CLASSES) + 1)),
            "category id above 8",
            "max_category",
        ),
    ]
    dataset.tables.append(table)
    masks = bdd100k.bitmask_folder(root, split)
    for image in sorted(images.glob("*.jpg")) if images.is_dir() else []:
        path = masks / f"{image.stem}.png"
        probe = probe_image(image)
        row = {"file": rel(path, root), "record": f"bitmask of {image.name}", "exists": path.is_file(),
               "mode": "", "width": None, "height": None, "max_category": 0,
               "image_width": probe["width"], "image_height": probe["height"]}  # fmt: skip
        if row["exists"]:
            try:
                with Image.open(path) as bitmask:
                    row.update(mode=bitmask.mode, width=bitmask.width, height=bitmask.height)
                    if bitmask.mode == "RGBA":
                        row["max_category"] = int(np.asarray(bitmask)[..., 0].max(initial=0))
            except OSError as exc:
                row["mode"] = f"undecodable ({exc})"
        if row["width"] is None or row["image_width"] is None:  # sizes compared only when both decode
            row["width"], row["height"] = row["image_width"], row["image_height"]
        table.rows.append(row)
    return dataset
