"""COCO ``coco_instances``, ``coco_keypoints`` (one annotation JSON and its image folder) and
``coco_stuff`` (the COCO-stuff label maps of a split's images).

Layout: ``ROOT/annotations/instances_SPLIT.json`` (``person_keypoints_SPLIT.json``) with images
in ``ROOT/images/SPLIT`` or ``ROOT/SPLIT`` (COCO's own ``val2017/``); ``--annotations`` and
``--images`` override them. Image sizes are compared after the EXIF orientation is applied.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hrnet.data.validation.core import (
    BOX_TOLERANCE,
    IMAGE_COLUMNS,
    Failure,
    Table,
    Tables,
    at_most,
    equal,
    image_checks,
    in_set,
    positive,
    probe_image,
    rel,
    unique,
)
from hrnet.errors import HRNetError

COCO_NUM_KEYPOINTS = 17
VISIBILITY_FLAGS = (0, 1, 2)


def coco_instances(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """Images: non-empty, present, decodable, ids unique, width/height equal to the file's;
    annotations: ids unique, image id known, category known, box width and height > 0, box
    inside the image (:data:`~hrnet.data.validation.core.BOX_TOLERANCE`), ``iscrowd`` in {0, 1};
    categories: ids unique."""
    return _coco(root, split, options, keypoints=False)


def coco_keypoints(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """As :func:`coco_instances`, plus a keypoints array of length 3 x K (51 for COCO's 17),
    visibility flags in {0, 1, 2} and ``num_keypoints`` equal to the number of flags > 0."""
    return _coco(root, split, options, keypoints=True)


def coco_stuff(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """COCO-stuff stuffthingmaps beside a COCO split: ``ROOT/stuffthingmaps/SPLIT/<stem>.png``
    (``--masks`` overrides the folder) for every image of ``instances_SPLIT.json``, decodable, of
    the image's size, values 0..182 or 255 (the 183 classes and the ignore label of the HTC
    semantic branch)."""
    from hrnet.data.coco import STUFF_IGNORE, STUFF_NUM_CLASSES, coco_image_folder, stuff_map_path
    from hrnet.data.validation.segmentation import label_map_pairs

    dataset = Tables(root)
    ann_path = Path(options.get("annotations") or root / "annotations" / f"instances_{split}.json")
    coco = _load_coco(ann_path, dataset)
    if coco is None:
        return dataset
    image_dir = Path(options.get("images") or coco_image_folder(root, split))
    stuff_dir = Path(options.get("masks") or root / "stuffthingmaps" / split)
    pairs = []
    for index, image in enumerate(coco["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str):
            dataset.failures.append(Failure(rel(ann_path, root), f"images[{index}]", "image record lacks 'file_name'"))
            continue
        pairs.append((image_dir / image["file_name"], stuff_map_path(stuff_dir, image["file_name"])))
    tables = label_map_pairs(
        root,
        pairs,
        [*range(STUFF_NUM_CLASSES), STUFF_IGNORE],
        f"COCO-stuff 0..{STUFF_NUM_CLASSES - 1}, {STUFF_IGNORE}",
        f"images in {rel(ann_path, root)}",
    )
    tables.failures[:0] = dataset.failures
    return tables


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _load_coco(path: Path, dataset: Tables) -> dict | None:
    from hrnet.data.io import load_json

    try:
        coco = load_json(path)
    except HRNetError as exc:
        dataset.failures.append(Failure(rel(path, dataset.root), None, str(exc).removeprefix(f"{path}: ")))
        return None
    if not isinstance(coco, dict):
        dataset.failures.append(Failure(rel(path, dataset.root), None, "top level is not a JSON object"))
        return None
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            dataset.failures.append(
                Failure(rel(path, dataset.root), None, f"'{key}' is missing or not a list")
            )
            return None
    return coco


def _coco(root: Path, split: str, options: dict[str, Any], *, keypoints: bool) -> Tables:
    dataset = Tables(root)
    prefix = "person_keypoints" if keypoints else "instances"
    ann_path = Path(options.get("annotations") or root / "annotations" / f"{prefix}_{split}.json")
    from hrnet.data.coco import coco_image_folder, segmentation_problem

    image_dir = Path(options.get("images") or coco_image_folder(root, split))
    json_name = rel(ann_path, root)

    images = Table(
        "images",
        ("image_id", "claimed_width", "claimed_height", *IMAGE_COLUMNS),
    )
    annotations = Table(
        "annotations",
        ("ann_id", "image_id", "category_id", "box_width", "box_height", "box_overflow", "iscrowd")
        + (
            ("keypoints_length", "bad_visibility", "num_keypoints", "labelled_keypoints") if keypoints else ()
        ),
    )
    categories = Table("categories", ("category_id",))
    dataset.tables += [images, annotations, categories]
    images.checks = [
        *image_checks(f"images in {json_name}"),
        unique("image_id", "duplicate image id"),
        equal("claimed_width", "width", "image width differs from the annotation file"),
        equal("claimed_height", "height", "image height differs from the annotation file"),
    ]
    categories.checks = [unique("category_id", "duplicate category id")]

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
            {"file": json_name, "record": f"category id={category['id']!r}", "category_id": category["id"]}
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
        claimed = [k for k in ("width", "height") if not (_number(image[k]) and image[k] > 0)]
        if claimed:  # a size that is not a positive number: nothing to compare the file and boxes with
            what = ", ".join(f"{k} {image[k]!r}" for k in claimed)
            dataset.failures.append(
                Failure(json_name, f"image id={image['id']!r}", f"{what}: not a positive number")
            )
            continue
        path = image_dir / str(image["file_name"])
        probe = probe_image(path)
        if not probe["decodable"]:  # compare sizes only where the file could be read
            probe["width"], probe["height"] = image["width"], image["height"]
        sizes.setdefault(image["id"], (image["width"], image["height"]))
        images.rows.append(
            {
                "file": rel(path, root),
                "record": f"image id={image['id']!r}",
                "image_id": image["id"],
                "claimed_width": image["width"],
                "claimed_height": image["height"],
                **probe,
            }
        )

    for index, ann in enumerate(coco["annotations"]):
        record = f"annotation id={ann.get('id') if isinstance(ann, dict) else None!r}"
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
            "record": f"{record} (image id={ann['image_id']!r})",
            "ann_id": ann["id"],
            "image_id": ann["image_id"],
            "category_id": ann["category_id"],
            "box_width": w,
            "box_height": h,
            "box_overflow": round(max(-x, -y, x + w - width, y + h - height, 0.0), 3),
            "iscrowd": ann.get("iscrowd", 0),
        }
        if "segmentation" in ann:
            problem = segmentation_problem(ann["segmentation"])
            if problem is not None:  # what the instance-mask reader would refuse
                dataset.failures.append(Failure(json_name, record, f"segmentation: {problem}"))
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
        unique("ann_id", "duplicate annotation id"),
        in_set(
            "image_id", sorted(sizes, key=str), "annotation refers to an image id not in 'images'", "image_id"
        ),
        in_set("category_id", sorted(category_ids), "unknown category id", "category_id"),
        positive("box_width", "box of zero area (width <= 0)"),
        positive("box_height", "box of zero area (height <= 0)"),
        at_most("box_overflow", BOX_TOLERANCE, "box outside the image (pixels beyond the border)"),
        in_set("iscrowd", [0, 1], "iscrowd is not 0 or 1", "iscrowd"),
    ]
    if keypoints:
        annotations.checks += [
            in_set(
                "keypoints_length",
                [expected_length],
                f"keypoints array length is not {expected_length}",
                "keypoints_length",
            ),
            in_set(
                "bad_visibility", [0], "keypoint visibility flag not in {0, 1, 2} (count)", "bad_visibility"
            ),
            equal(
                "num_keypoints",
                "labelled_keypoints",
                "num_keypoints differs from the number of labelled keypoints",
            ),
        ]
    return dataset
