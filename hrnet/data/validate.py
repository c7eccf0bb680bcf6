"""Dataset validation with Great Expectations: one suite per on-disk format.

A dataset is turned into pandas tables of records (one row per image, annotation or mask label),
each row naming its ``file`` and ``record``. Great Expectations runs a suite per table in an
ephemeral context; every unexpected row becomes a :class:`Failure` (file, record, reason).
What GX cannot express because there is no row to check -- a malformed JSON file, a record
missing a key, an unparsable ``.pts`` -- is found while building the tables and reported the
same way. Nothing in a bad dataset produces a traceback.

Formats and their layouts (``ROOT`` = ``--root``, ``S`` = ``--split``):

==================  =======================================================================
``imagefolder``     ``ROOT/S/<class>/<image>``
``coco_instances``  ``ROOT/annotations/instances_S.json``; images in ``ROOT/images/S`` or
                    ``ROOT/S`` (COCO's own ``val2017/``)
``coco_keypoints``  ``ROOT/annotations/person_keypoints_S.json``; images as above
``mask_segmentation`` ``ROOT/images/S/<stem>.<ext>`` + ``ROOT/masks/S/<stem>.png``
``landmarks_300w``  ``<image>`` + ``<stem>.pts`` anywhere under ``ROOT/S`` or ``ROOT/images/S``
==================  =======================================================================

Image sizes are compared after the EXIF orientation is applied (the size the readers produce,
see :func:`hrnet.data.io.open_image`): annotations describe the image as it is displayed.

``great_expectations`` is imported inside :func:`validate_dataset` only (it costs 6-7 s).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hrnet.errors import HRNetError

__all__ = [
    "BOX_TOLERANCE",
    "FORMATS",
    "ExpectationOutcome",
    "Failure",
    "ValidationReport",
    "validate_dataset",
]

# a box or landmark may overhang the image border by this many pixels (float rounding in
# real annotation files) before it counts as outside the image
BOX_TOLERANCE = 1.0
COCO_NUM_KEYPOINTS = 17
VISIBILITY_FLAGS = (0, 1, 2)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One bad record: the file it is in (or refers to), the record in it, and why."""

    file: str
    record: str | None
    reason: str


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation on one table."""

    table: str
    expectation: str
    columns: tuple[str, ...]
    reason: str
    success: bool
    unexpected_count: int


@dataclass(frozen=True)
class ValidationReport:
    """What ``hrnet validate`` writes to ``summary.json``."""

    format: str
    root: str
    split: str
    success: bool
    rows: dict[str, int]
    expectations: list[ExpectationOutcome]
    failures: list[Failure]
    data_docs: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Tables of records and the checks on them
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    """One expectation: a GX expectation class name, its arguments, and the reason it reports.

    ``detail`` names a column whose value is appended to the reason of each failing row.
    """

    expectation: str
    kwargs: dict[str, Any]
    reason: str
    detail: str | None = None


@dataclass
class _Table:
    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    checks: list[_Check] = field(default_factory=list)

    def frame(self):
        import pandas as pd

        columns = ("file", "record", *self.columns)
        return pd.DataFrame(self.rows, columns=list(columns)).astype(object)


@dataclass
class _Dataset:
    """The tables of one dataset plus what was found before GX could run."""

    root: Path
    tables: list[_Table] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def _non_empty(what: str) -> _Check:
    return _Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, f"dataset is empty: no {what} found")


def _in_set(column: str, values, reason: str, detail: str | None = None) -> _Check:
    return _Check(
        "ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)}, reason, detail
    )


def _unique(column: str, reason: str) -> _Check:
    return _Check("ExpectColumnValuesToBeUnique", {"column": column}, reason, column)


def _equal(column_a: str, column_b: str, reason: str) -> _Check:
    return _Check("ExpectColumnPairValuesToBeEqual", {"column_A": column_a, "column_B": column_b}, reason)


def _at_most(column: str, value: float, reason: str) -> _Check:
    return _Check("ExpectColumnValuesToBeBetween", {"column": column, "max_value": value}, reason, column)


def _positive(column: str, reason: str) -> _Check:
    return _Check(
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": 0, "strict_min": True},
        reason,
        column,
    )


# --------------------------------------------------------------------------------------------
# Probing files
# --------------------------------------------------------------------------------------------


def _probe_image(path: Path) -> dict[str, Any]:
    """``exists``, ``decodable`` (None when missing), ``error`` and the oriented ``width``/``height``."""
    from hrnet.data.io import open_image

    if not path.is_file():
        return {"exists": False, "decodable": None, "error": "file not found", "width": None, "height": None}
    try:
        image = open_image(path)
    except HRNetError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        return {"exists": True, "decodable": False, "error": reason, "width": None, "height": None}
    return {"exists": True, "decodable": True, "error": "", "width": image.width, "height": image.height}


def _image_checks(what: str) -> list[_Check]:
    return [
        _non_empty(what),
        _in_set("exists", [True], "image file missing"),
        _in_set("decodable", [True], "image not decodable", "error"),
    ]


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _image_files(folder: Path) -> list[Path]:
    from hrnet.data.io import IMAGE_EXTENSIONS

    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(s.startswith(".") for s in p.parts[-2:])
    )


def _first_dir(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


# --------------------------------------------------------------------------------------------
# imagefolder
# --------------------------------------------------------------------------------------------


def _imagefolder(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    dataset = _Dataset(root)
    folder = root / split
    table = _Table("images", ("class", "exists", "decodable", "error", "width", "height"))
    table.checks = [*_image_checks(f"images under {folder}/<class>/"), _unique("file", "duplicate file")]
    dataset.tables.append(table)
    if not folder.is_dir():
        dataset.failures.append(Failure(str(folder), None, "split folder not found"))
        return dataset
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in _image_files(class_dir):
            table.rows.append(
                {
                    "file": _rel(path, root),
                    "record": f"class {class_dir.name}",
                    "class": class_dir.name,
                    **_probe_image(path),
                }
            )
    classes = options.get("num_classes")
    if classes is not None:
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(names) != classes:
            dataset.failures.append(
                Failure(str(folder), None, f"expected {classes} class folders, found {len(names)}")
            )
    return dataset


# --------------------------------------------------------------------------------------------
# COCO instances and keypoints
# --------------------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _load_coco(path: Path, dataset: _Dataset) -> dict | None:
    from hrnet.data.io import load_json

    try:
        coco = load_json(path)
    except HRNetError as exc:
        dataset.failures.append(Failure(_rel(path, dataset.root), None, str(exc).removeprefix(f"{path}: ")))
        return None
    if not isinstance(coco, dict):
        dataset.failures.append(Failure(_rel(path, dataset.root), None, "top level is not a JSON object"))
        return None
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            dataset.failures.append(
                Failure(_rel(path, dataset.root), None, f"'{key}' is missing or not a list")
            )
            return None
    return coco


def _coco(root: Path, split: str, options: dict[str, Any], *, keypoints: bool) -> _Dataset:
    dataset = _Dataset(root)
    prefix = "person_keypoints" if keypoints else "instances"
    ann_path = Path(options.get("annotations") or root / "annotations" / f"{prefix}_{split}.json")
    image_dir = Path(options.get("images") or _first_dir(root / "images" / split, root / split))
    json_name = _rel(ann_path, root)

    images = _Table(
        "images",
        ("image_id", "claimed_width", "claimed_height", "exists", "decodable", "error", "width", "height"),
    )
    annotations = _Table(
        "annotations",
        ("ann_id", "image_id", "category_id", "box_width", "box_height", "box_overflow", "iscrowd")
        + (
            ("keypoints_length", "bad_visibility", "num_keypoints", "labelled_keypoints") if keypoints else ()
        ),
    )
    categories = _Table("categories", ("category_id",))
    dataset.tables += [images, annotations, categories]
    images.checks = [
        *_image_checks(f"images in {json_name}"),
        _unique("image_id", "duplicate image id"),
        _equal("claimed_width", "width", "image width differs from the annotation file"),
        _equal("claimed_height", "height", "image height differs from the annotation file"),
    ]
    categories.checks = [_unique("category_id", "duplicate category id")]

    coco = _load_coco(ann_path, dataset)
    if coco is None:
        images.checks = categories.checks = []  # nothing to check in a file that could not be read
        return dataset

    category_ids, expected_length = [], 3 * COCO_NUM_KEYPOINTS
    for index, category in enumerate(coco["categories"]):
        if not isinstance(category, dict) or not isinstance(category.get("id"), int):
            dataset.failures.append(
                Failure(json_name, f"categories[{index}]", "category without an integer 'id'")
            )
            continue
        category_ids.append(category["id"])
        categories.rows.append(
            {"file": json_name, "record": f"category id={category['id']}", "category_id": category["id"]}
        )
        if keypoints and isinstance(category.get("keypoints"), list) and category["keypoints"]:
            expected_length = 3 * len(category["keypoints"])

    sizes: dict[Any, tuple[float, float]] = {}
    for index, image in enumerate(coco["images"]):
        missing = [
            k for k in ("id", "file_name", "width", "height") if not isinstance(image, dict) or k not in image
        ]
        if missing:
            dataset.failures.append(
                Failure(json_name, f"images[{index}]", f"image record lacks {', '.join(map(repr, missing))}")
            )
            continue
        path = image_dir / str(image["file_name"])
        probe = _probe_image(path)
        if not probe["decodable"]:  # compare sizes only where the file could be read
            probe["width"], probe["height"] = image["width"], image["height"]
        sizes.setdefault(image["id"], (image["width"], image["height"]))
        images.rows.append(
            {
                "file": _rel(path, root),
                "record": f"image id={image['id']}",
                "image_id": image["id"],
                "claimed_width": image["width"],
                "claimed_height": image["height"],
                **probe,
            }
        )

    for index, ann in enumerate(coco["annotations"]):
        record = f"annotation id={ann.get('id') if isinstance(ann, dict) else None}"
        if not isinstance(ann, dict) or any(k not in ann for k in ("id", "image_id", "category_id", "bbox")):
            dataset.failures.append(
                Failure(
                    json_name, f"annotations[{index}]", "annotation lacks id, image_id, category_id or bbox"
                )
            )
            continue
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            dataset.failures.append(Failure(json_name, record, f"bbox is not four finite numbers: {bbox!r}"))
            continue
        x, y, w, h = bbox
        width, height = sizes.get(ann["image_id"], (math.inf, math.inf))
        row = {
            "file": json_name,
            "record": f"{record} (image id={ann['image_id']})",
            "ann_id": ann["id"],
            "image_id": ann["image_id"],
            "category_id": ann["category_id"],
            "box_width": w,
            "box_height": h,
            "box_overflow": round(max(-x, -y, x + w - width, y + h - height, 0.0), 3),
            "iscrowd": ann.get("iscrowd", 0),
        }
        if keypoints:
            points = ann.get("keypoints", [])
            points = points if isinstance(points, list) else []
            flags = points[2::3]
            row["keypoints_length"] = len(points)
            row["bad_visibility"] = sum(1 for v in flags if v not in VISIBILITY_FLAGS)
            row["num_keypoints"] = ann.get("num_keypoints")
            row["labelled_keypoints"] = sum(1 for v in flags if v != 0)  # COCO: num_keypoints counts v > 0
        annotations.rows.append(row)

    annotations.checks = [
        _unique("ann_id", "duplicate annotation id"),
        _in_set(
            "image_id", sorted(sizes, key=str), "annotation refers to an image id not in 'images'", "image_id"
        ),
        _in_set("category_id", sorted(category_ids), "unknown category id", "category_id"),
        _positive("box_width", "box of zero area (width <= 0)"),
        _positive("box_height", "box of zero area (height <= 0)"),
        _at_most("box_overflow", BOX_TOLERANCE, "box outside the image (pixels beyond the border)"),
        _in_set("iscrowd", [0, 1], "iscrowd is not 0 or 1", "iscrowd"),
    ]
    if keypoints:
        annotations.checks += [
            _in_set(
                "keypoints_length",
                [expected_length],
                f"keypoints array length is not {expected_length}",
                "keypoints_length",
            ),
            _in_set(
                "bad_visibility", [0], "keypoint visibility flag not in {0, 1, 2} (count)", "bad_visibility"
            ),
            _equal(
                "num_keypoints",
                "labelled_keypoints",
                "num_keypoints differs from the number of labelled keypoints",
            ),
        ]
    return dataset


# --------------------------------------------------------------------------------------------
# semantic segmentation: images + label maps
# --------------------------------------------------------------------------------------------


def _label_map_pairs(
    root: Path, pairs: list[tuple[Path, Path]], valid: list[int], label_rule: str, what: str
) -> _Dataset:
    """The checks shared by every segmentation layout: each image decodes, has a label map of
    its size, and every stored label value is in ``valid`` (the raw values of the layout)."""
    from hrnet.data.io import read_label_map

    dataset = _Dataset(root)
    images = _Table(
        "images",
        (
            "exists",
            "decodable",
            "error",
            "width",
            "height",
            "mask_exists",
            "mask_decodable",
            "mask_error",
            "mask_width",
            "mask_height",
        ),
    )
    labels = _Table("mask_labels", ("label", "pixels"))
    dataset.tables += [images, labels]
    images.checks = [
        *_image_checks(what),
        _in_set("mask_exists", [True], "label map missing"),
        _in_set("mask_decodable", [True], "label map not decodable", "mask_error"),
        _equal("width", "mask_width", "label map width differs from the image"),
        _equal("height", "mask_height", "label map height differs from the image"),
    ]
    labels.checks = [_in_set("label", valid, f"mask label out of range ({label_rule})", "label")]

    import numpy as np

    for path, mask_path in pairs:
        row = {"file": _rel(path, root), "record": _rel(mask_path, root), **_probe_image(path)}
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
                            "file": _rel(mask_path, root),
                            "record": f"label {value}",
                            "label": value,
                            "pixels": count,
                        }
                    )
        if not (row["decodable"] and mask["mask_decodable"]):  # sizes compared only when both decode
            mask["mask_width"], mask["mask_height"] = row["width"], row["height"]
        images.rows.append({**row, **mask})
    return dataset


def _mask_segmentation(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    num_classes = options.get("num_classes")
    if num_classes is None or num_classes < 1:
        raise HRNetError("validate mask_segmentation: --num-classes is required (background included)")
    ignore = options.get("ignore_index", 255)
    image_dir = Path(options.get("images") or root / "images" / split)
    mask_dir = Path(options.get("masks") or root / "masks" / split)
    pairs = [
        (path, mask_dir / f"{path.relative_to(image_dir).with_suffix('')}.png")
        for path in (_image_files(image_dir) if image_dir.is_dir() else [])
    ]
    rule = f"classes 0..{num_classes - 1}, ignore {ignore}"
    return _label_map_pairs(root, pairs, [*range(num_classes), ignore], rule, f"images in {image_dir}")


def _listed_pairs(
    root: Path, split_file: Path, image_dir: Path, mask_dir: Path, valid: list[int], rule: str
) -> _Dataset:
    """VOC-style layouts: the split file lists the ids; ``<id>.jpg`` pairs with ``<id>.png``."""
    if not split_file.is_file():
        dataset = _Dataset(root)
        dataset.failures.append(Failure(str(split_file), None, "split file not found"))
        return dataset
    from hrnet.data.io import read_split_file

    ids = read_split_file(split_file)
    pairs = [(image_dir / f"{i}.jpg", mask_dir / f"{i}.png") for i in ids]
    return _label_map_pairs(root, pairs, valid, rule, f"images listed in {split_file}")


def _cityscapes(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    """``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with
    ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` holding labelIds 0..33 (and 255)."""
    image_root, label_root = root / "leftImg8bit" / split, root / "gtFine" / split
    if not image_root.is_dir():
        dataset = _Dataset(root)
        dataset.failures.append(Failure(str(image_root), None, "split folder not found"))
        return dataset
    pairs = []
    for image in sorted(image_root.glob("*/*_leftImg8bit.png")):
        stem = image.name.removesuffix("_leftImg8bit.png")
        pairs.append((image, label_root / image.parent.name / f"{stem}_gtFine_labelIds.png"))
    return _label_map_pairs(
        root,
        pairs,
        [*range(34), 255],  # labelIds; the license plate (id -1) is stored as 255
        "Cityscapes labelIds 0..33, 255",
        f"images under {image_root}/<city>/",
    )


def _ade20k(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    """``images/<split>/*.jpg`` with ``annotations/<split>/*.png``: 0 (other) and classes 1..150."""
    split = {"train": "training", "val": "validation"}.get(split, split)
    image_dir = root / "images" / split
    if not image_dir.is_dir():
        dataset = _Dataset(root)
        dataset.failures.append(Failure(str(image_dir), None, "split folder not found"))
        return dataset
    pairs = [(p, root / "annotations" / split / f"{p.stem}.png") for p in sorted(image_dir.glob("*.jpg"))]
    return _label_map_pairs(
        root, pairs, list(range(151)), "ADE20K 0 (other) and 1..150", f"images in {image_dir}"
    )


def _voc(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    """``VOCdevkit/VOC2012``: ids from ``ImageSets/Segmentation/<split>.txt``, label maps in
    ``SegmentationClass`` (``SegmentationClassAug`` with ``--aug``): 0..20 and 255."""
    masks = root / ("SegmentationClassAug" if options.get("aug") else "SegmentationClass")
    split_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    return _listed_pairs(root, split_file, root / "JPEGImages", masks, [*range(21), 255], "VOC 0..20, 255")


def _pascal_context(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    """``VOCdevkit/VOC2010`` after MMSegmentation's converter: ids from
    ``ImageSets/SegmentationContext/<split>.txt``, ``SegmentationClassContext/<id>.png`` 0..59."""
    split_file = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    masks = root / "SegmentationClassContext"
    return _listed_pairs(
        root, split_file, root / "JPEGImages", masks, list(range(60)), "Pascal Context 0..59"
    )


# --------------------------------------------------------------------------------------------
# facial landmarks, 300W layout (.pts)
# --------------------------------------------------------------------------------------------


def _read_pts(path: Path) -> list[tuple[float, float]]:
    """Points of a 300W ``.pts`` file (``version``, ``n_points``, ``{``, ``x y`` lines, ``}``)."""
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise HRNetError(f"cannot read: {exc}") from None
    try:
        start, end = lines.index("{"), lines.index("}")
        header = dict(line.split(":", 1) for line in lines[:start])
        declared = int(header["n_points"])
        points = [tuple(float(v) for v in line.split()) for line in lines[start + 1 : end]]
    except (ValueError, KeyError) as exc:
        raise HRNetError(f"malformed .pts file ({exc})") from None
    if any(len(p) != 2 or not all(map(math.isfinite, p)) for p in points):
        raise HRNetError("malformed .pts file (a point line is not two finite numbers)")
    if declared != len(points):
        raise HRNetError(f"n_points says {declared} but {len(points)} points follow")
    return points


def _faces_table(dataset: _Dataset, num_points: int, what: str) -> _Table:
    table = _Table("faces", ("exists", "decodable", "error", "width", "height", "n_points", "point_overflow"))
    dataset.tables.append(table)
    table.checks = [
        *_image_checks(what),
        _in_set("n_points", [num_points], f"landmark count is not {num_points}", "n_points"),
        _at_most("point_overflow", BOX_TOLERANCE, "landmark outside the image (pixels beyond the border)"),
    ]
    return table


def _face_row(root: Path, image: Path, record: str, points: list[tuple[float, float]]) -> dict[str, Any]:
    """One face: the image probe, the landmark count and how far the farthest point lies outside."""
    probe = _probe_image(image)
    overflow = 0.0
    if probe["decodable"]:
        w, h = probe["width"], probe["height"]
        overflow = round(max([max(-x, -y, x - w, y - h, 0.0) for x, y in points], default=0.0), 3)
    return {
        "file": _rel(image, root),
        "record": record,
        **probe,
        "n_points": len(points),
        "point_overflow": overflow,
    }


def _landmarks_300w(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    from hrnet.data.io import IMAGE_EXTENSIONS

    dataset = _Dataset(root)
    folder = _first_dir(root / split, root / "images" / split, root)
    table = _faces_table(dataset, options.get("num_points") or 68, f"images with .pts under {folder}")
    for pts in sorted(folder.rglob("*.pts")) if folder.is_dir() else []:
        image = next(
            (pts.with_suffix(ext) for ext in IMAGE_EXTENSIONS if pts.with_suffix(ext).is_file()), None
        )
        try:
            points = _read_pts(pts)
        except HRNetError as exc:
            dataset.failures.append(Failure(_rel(pts, root), None, str(exc)))
            continue
        table.rows.append(_face_row(root, image or pts.with_suffix(".jpg"), pts.name, points))
    return dataset


def _landmarks_wflw(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    """WFLW's lists: 98 x/y, a box, six attribute flags and the image path per line."""
    dataset = _Dataset(root)
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / f"list_98pt_rect_attr_{split}.txt"
    table = _faces_table(dataset, options.get("num_points") or 98, f"faces listed in {ann}")
    if not ann.is_file():
        dataset.failures.append(Failure(_rel(ann, root), None, "WFLW annotation list not found"))
        return dataset
    for lineno, line in enumerate(ann.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"line {lineno}"
        if len(fields) < 8 or (len(fields) - 11) % 2:  # 2K coordinates + 4 box + 6 flags + path
            dataset.failures.append(
                Failure(_rel(ann, root), where, f"{len(fields)} fields, expected 2K + 11")
            )
            continue
        try:
            values = [float(v) for v in fields[:-1]]
        except ValueError:
            dataset.failures.append(Failure(_rel(ann, root), where, "non-numeric coordinate or flag"))
            continue
        coords = values[:-10]
        points = list(zip(coords[0::2], coords[1::2]))
        table.rows.append(_face_row(root, root / "WFLW_images" / fields[-1], where, points))
    return dataset


def _landmarks_cofw(root: Path, split: str, options: dict[str, Any]) -> _Dataset:
    """COFW in HRNet-Facial-Landmark-Detection's CSV layout: ``cofw_<split>.csv`` with a header,
    then image name, scale, centre x, centre y and the x/y pairs."""
    import csv

    dataset = _Dataset(root)
    path = root / f"cofw_{split}.csv"
    table = _faces_table(dataset, options.get("num_points") or 29, f"faces listed in {path}")
    if not path.is_file():
        dataset.failures.append(Failure(_rel(path, root), None, "landmark CSV not found"))
        return dataset
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        where = f"line {lineno}"
        try:
            coords = [float(v) for v in row[4:]]
            float(row[1]), float(row[2]), float(row[3])
        except (ValueError, IndexError):
            dataset.failures.append(Failure(_rel(path, root), where, "non-numeric or missing value"))
            continue
        if len(coords) % 2:
            dataset.failures.append(Failure(_rel(path, root), where, "odd number of coordinates"))
            continue
        table.rows.append(_face_row(root, root / row[0], where, list(zip(coords[0::2], coords[1::2]))))
    return dataset


# --------------------------------------------------------------------------------------------
# Running the suites
# --------------------------------------------------------------------------------------------

FORMATS: dict[str, Callable[[Path, str, dict[str, Any]], _Dataset]] = {
    "imagefolder": _imagefolder,
    "coco_instances": lambda root, split, options: _coco(root, split, options, keypoints=False),
    "coco_keypoints": lambda root, split, options: _coco(root, split, options, keypoints=True),
    "mask_segmentation": _mask_segmentation,
    "cityscapes": _cityscapes,
    "ade20k": _ade20k,
    "voc": _voc,
    "pascal_context": _pascal_context,
    "landmarks_300w": _landmarks_300w,
    "landmarks_wflw": _landmarks_wflw,
    "landmarks_cofw": _landmarks_cofw,
}


def _context(docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="hrnet",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _run_suites(fmt: str, tables: list[_Table], docs_dir: Path | None, root: Path):
    """Runs one GX suite per table; returns outcomes and per-row failures."""
    outcomes: list[ExpectationOutcome] = []
    failures: list[Failure] = []
    if not any(table.checks for table in tables):
        return outcomes, failures

    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = _context(docs_dir)
    source = context.data_sources.add_pandas(name=f"hrnet_{fmt}")
    for table in tables:
        if not table.checks:
            continue
        frame = table.frame()
        asset = source.add_dataframe_asset(name=table.name)
        batch = asset.add_batch_definition_whole_dataframe(name=f"{table.name}_all")
        suite = context.suites.add(gx.ExpectationSuite(name=f"{fmt}.{table.name}"))
        for number, check in enumerate(table.checks):
            meta = {"check": number, "reason": check.reason}
            suite.add_expectation(getattr(gxe, check.expectation)(**check.kwargs, meta=meta))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{fmt}.{table.name}", data=batch, suite=suite)
        )
        actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_dir is not None else []
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{fmt}.{table.name}.checkpoint",
                validation_definitions=[definition],
                actions=actions,
                result_format={"result_format": "COMPLETE"},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        (suite_result,) = result.run_results.values()
        # results do not come back in suite order: match them by the number in their meta
        by_number = {int(r.expectation_config.meta["check"]): r for r in suite_result.results}
        for number, check in enumerate(table.checks):
            outcome = by_number[number]
            unexpected = outcome.result.get("unexpected_index_list") or []
            columns = tuple(str(v) for k, v in check.kwargs.items() if k.startswith("column"))
            count = int(outcome.result.get("unexpected_count") or len(unexpected))
            outcomes.append(
                ExpectationOutcome(
                    table.name, check.expectation, columns, check.reason, bool(outcome.success), count
                )
            )
            if outcome.success:
                continue
            if not unexpected:  # a table-level expectation (row count)
                failures.append(Failure(str(root), None, check.reason))
            for index in unexpected:
                row = frame.loc[index]
                reason = check.reason
                if check.detail is not None:
                    reason = f"{reason}: {row[check.detail]}"
                failures.append(Failure(str(row["file"]), row["record"], reason))
    return outcomes, failures


def validate_dataset(
    fmt: str,
    *,
    root: str | Path,
    split: str = "train",
    out: str | Path | None = None,
    num_classes: int | None = None,
    ignore_index: int = 255,
    num_points: int | None = None,
    annotations: str | Path | None = None,
    images: str | Path | None = None,
    masks: str | Path | None = None,
    aug: bool = False,
) -> ValidationReport:
    """Validates the dataset at ``root`` in format ``fmt`` and returns the report.

    With ``out``, writes ``out/summary.json`` (atomically) and the Data Docs site under
    ``out/data_docs/``. Bad data never raises: it is in ``report.failures``. Raises
    :class:`HRNetError` only for bad arguments (unknown format, missing ``num_classes``).

    Args:
        fmt: one of :data:`FORMATS`.
        root: the dataset folder; split: the split name (``train``, ``val``, ``val2017``...).
        num_classes: mask_segmentation: labels ``0..num_classes-1`` are valid (background
            included); imagefolder: the expected number of class folders.
        ignore_index: mask_segmentation: the label that marks ignored pixels.
        num_points: landmarks_300w: points per face (68).
        annotations, images, masks: override the default file/folder locations.
        aug: voc: read SegmentationClassAug (the SBD-augmented label maps).
    """
    if fmt not in FORMATS:
        raise HRNetError(f"validate: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    root = Path(root)
    if not root.is_dir():
        raise HRNetError(f"{root}: dataset root not found")
    options = {
        "num_classes": num_classes,
        "ignore_index": ignore_index,
        "num_points": num_points,
        "annotations": annotations,
        "images": images,
        "masks": masks,
        "aug": aug,
    }
    dataset = FORMATS[fmt](root, split, options)

    docs_dir = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        docs_dir = out / "data_docs"
        shutil.rmtree(docs_dir, ignore_errors=True)  # this run's docs only
    outcomes, failures = _run_suites(fmt, dataset.tables, docs_dir, root)
    failures = dataset.failures + failures
    index = docs_dir / "index.html" if docs_dir is not None else None
    report = ValidationReport(
        format=fmt,
        root=str(root),
        split=split,
        success=not failures and all(o.success for o in outcomes),
        rows={table.name: len(table.rows) for table in dataset.tables},
        expectations=outcomes,
        failures=failures,
        data_docs=str(index) if index is not None and index.exists() else None,
    )
    if out is not None:
        from hrnet.data.io import write_json_atomic

        write_json_atomic(out / "summary.json", report.to_dict(), indent=2)
    return report
