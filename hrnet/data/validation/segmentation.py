"""Semantic segmentation: ``mask_segmentation``, ``cityscapes``, ``ade20k``, ``voc``, ``pascal_context``.

Every layout is a list of ``(image, label map)`` pairs -- the file index of its reader in
:mod:`hrnet.data.segmentation`, so that exactly the pairs the reader reads are validated -- and
one set of checks: each image decodes and has a label map of its size, and every stored label
value is one the layout defines (the raw stored values, before the reader's lookup table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.data.validation.core import (
    IMAGE_COLUMNS,
    Table,
    Tables,
    equal,
    image_checks,
    in_set,
    probe_image,
    rel,
)
from hrnet.errors import HRNetError


def label_map_pairs(
    root: Path, pairs: list[tuple[Path, Path]], valid: list[int], label_rule: str, what: str
) -> Tables:
    """Images: non-empty, present, decodable, label map present and decodable with the image's
    size; mask labels: every value in ``valid``."""
    import numpy as np

    from hrnet.data.io import read_label_map

    dataset = Tables(root)
    mask_columns = ("mask_exists", "mask_decodable", "mask_error", "mask_width", "mask_height")
    images = Table("images", (*IMAGE_COLUMNS, *mask_columns))
    labels = Table("mask_labels", ("label", "pixels"))
    dataset.tables += [images, labels]
    images.checks = [
        *image_checks(what),
        in_set("mask_exists", [True], "label map missing"),
        in_set("mask_decodable", [True], "label map not decodable", "mask_error"),
        equal("width", "mask_width", "label map width differs from the image"),
        equal("height", "mask_height", "label map height differs from the image"),
    ]
    labels.checks = [in_set("label", valid, f"mask label out of range ({label_rule})", "label")]

    for path, mask_path in pairs:
        row = {"file": rel(path, root), "record": rel(mask_path, root), **probe_image(path)}
        mask = {
            "mask_exists": mask_path.is_file(),
            "mask_decodable": None,
            "mask_error": "",
            "mask_width": None,
            "mask_height": None,
        }
        if mask["mask_exists"]:
            try:
                array = read_label_map(mask_path)
            except HRNetError as exc:
                mask.update(mask_decodable=False, mask_error=str(exc))
            else:
                mask.update(mask_decodable=True, mask_height=array.shape[0], mask_width=array.shape[1])
                values, counts = np.unique(array, return_counts=True)
                for value, count in zip(values.tolist(), counts.tolist()):
                    labels.rows.append(
                        {
                            "file": rel(mask_path, root),
                            "record": f"label {value}",
                            "label": value,
                            "pixels": count,
                        }
                    )
        if not (row["decodable"] and mask["mask_decodable"]):  # sizes compared only when both decode
            mask["mask_width"], mask["mask_height"] = row["width"], row["height"]
        images.rows.append({**row, **mask})
    return dataset


def _validate_pairs(root: Path, files, valid: list[int], rule: str, what: str) -> Tables:
    """Validates the pairs ``files()`` lists; a missing split folder or file is one failure."""
    from hrnet.data.io import DataFileError

    try:
        pairs = files()
    except DataFileError as exc:
        return Tables(root).fail_from(exc, relative=False)
    return label_map_pairs(root, pairs, valid, rule, what)


def mask_segmentation(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``ROOT/images/SPLIT/<stem>.<ext>`` + ``ROOT/masks/SPLIT/<stem>.png`` (``--images``,
    ``--masks`` override), as :class:`~hrnet.data.segmentation.MaskFolderSegmentation` pairs
    them; labels ``0..num_classes-1`` or ``ignore_index``."""
    from hrnet.data.segmentation import MASK_CLASSES_FILE, mask_folder_classes, mask_folder_files

    num_classes = options.get("num_classes") or 0
    if num_classes < 0 or not (num_classes or (root / MASK_CLASSES_FILE).is_file()):
        raise HRNetError(
            f"validate mask_segmentation: --num-classes is required (background included) "
            f"without {root / MASK_CLASSES_FILE}"
        )
    num_classes = len(mask_folder_classes(root, num_classes))  # the reader's classes
    ignore = options.get("ignore_index", 255)
    image_dir = Path(options.get("images") or root / "images" / split)
    mask_dir = Path(options.get("masks") or root / "masks" / split)
    rule = f"classes 0..{num_classes - 1}, ignore {ignore}"
    return _validate_pairs(
        root,
        lambda: mask_folder_files(image_dir, mask_dir),
        [*range(num_classes), ignore],
        rule,
        f"images in {image_dir}",
    )


def cityscapes(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``leftImg8bit/SPLIT/<city>/<name>_leftImg8bit.png`` with
    ``gtFine/SPLIT/<city>/<name>_gtFine_labelIds.png`` (:func:`~hrnet.data.segmentation.cityscapes_files`)
    holding labelIds 0..33 (and 255)."""
    from hrnet.data.segmentation import cityscapes_files

    return _validate_pairs(
        root,
        lambda: cityscapes_files(root, split),
        [*range(34), 255],  # labelIds; the license plate (id -1) is stored as 255
        "Cityscapes labelIds 0..33, 255",
        f"images under {root / 'leftImg8bit' / split}/<city>/",
    )


def ade20k(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``images/SPLIT/*.jpg`` with ``annotations/SPLIT/*.png``
    (:func:`~hrnet.data.segmentation.ade20k_files`): 0 (other) and classes 1..150."""
    from hrnet.data.segmentation import ade20k_files

    return _validate_pairs(
        root,
        lambda: ade20k_files(root, split),
        list(range(151)),
        "ADE20K 0 (other) and 1..150",
        f"images of split {split!r} in {root / 'images'}",
    )


def voc(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``VOCdevkit/VOC2012``: ids from ``ImageSets/Segmentation/SPLIT.txt``, label maps in
    ``SegmentationClass`` (``SegmentationClassAug`` with ``aug``) as
    :func:`~hrnet.data.segmentation.voc_files` lists them: 0..20 and 255."""
    from hrnet.data.segmentation import VOC_CLASSES, voc_files

    split_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    return _validate_pairs(
        root,
        lambda: voc_files(root, split, aug=bool(options.get("aug"))),
        [*range(len(VOC_CLASSES)), 255],
        "VOC 0..20, 255",
        f"images listed in {split_file}",
    )


def pascal_context(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``VOCdevkit/VOC2010`` after MMSegmentation's converter: ids from
    ``ImageSets/SegmentationContext/SPLIT.txt``, ``SegmentationClassContext/<id>.png`` 0..59
    (:func:`~hrnet.data.segmentation.pascal_context_files`)."""
    from hrnet.data.segmentation import PASCAL_CONTEXT_CLASSES, pascal_context_files

    split_file = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    return _validate_pairs(
        root,
        lambda: pascal_context_files(root, split),
        list(range(len(PASCAL_CONTEXT_CLASSES) + 1)),  # 0 background, 1..59 the classes
        "Pascal Context 0..59",
        f"images listed in {split_file}",
    )
