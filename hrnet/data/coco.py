"""COCO datasets: instances (detection, instance masks) and person keypoints (top-down pose).

Annotation files are the official COCO JSON (``instances_*.json``, ``person_keypoints_*.json``)
read with ``pycocotools``; images are looked up as ``image_dir / images[i]["file_name"]``.
Every record is checked when the dataset is built, so bad data fails early with an
:class:`~hrnet.errors.HRNetError` naming the file and the record instead of a traceback
deep inside a data loader worker.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hrnet.data.io import load_json, read_image, read_label_map
from hrnet.errors import HRNetError

if TYPE_CHECKING:
    import torch

__all__ = ["STUFF_IGNORE", "STUFF_NUM_CLASSES", "CocoDetection", "CocoKeypoints", "load_coco", "stuff_map_path"]

# COCO-stuff stuffthingmaps (nightrome/cocostuff README.md): one PNG of class indices per COCO
# image, 255 the unlabelled pixels; MMDetection's FusedSemanticHead reads 183 classes
STUFF_NUM_CLASSES = 183
STUFF_IGNORE = 255


def coco_image_folder(root: str | Path, split: str) -> Path:
    """The image folder of a COCO split: ``<root>/<split>`` as the published zips unpack
    (``train2017/``, ``val2017/``), or ``<root>/images/<split>`` (the embedded sets)."""
    root = Path(root)
    for candidate in (root / "images" / split, root / split):
        if candidate.is_dir():
            return candidate
    return root / split


def stuff_map_path(stuff_dir: str | Path, file_name: str) -> Path:
    """The stuffthingmaps PNG of a COCO image: ``stuff_dir/<file_name stem>.png``."""
    return Path(stuff_dir) / Path(file_name).with_suffix(".png").name


def load_coco(ann_file: str | Path, *, keypoints: bool = False) -> Any:
    """Load and check a COCO annotation file; return a ``pycocotools.coco.COCO`` index.

    Checks: a JSON object with ``images``, ``annotations`` and ``categories`` lists; unique image
    and category ids; every annotation names a known image and category and has a
    ``[x, y, w, h]`` box with ``w, h >= 0``; with ``keypoints=True`` every non-crowd annotation
    has ``3 * K`` keypoint values (K from its category).

    Raises:
        HRNetError: naming the file and the offending record.
    """
    from pycocotools.coco import COCO

    ann_file = Path(ann_file)
    data = load_json(ann_file)
    if not isinstance(data, dict):
        raise HRNetError(f"{ann_file}: expected a JSON object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HRNetError(f"{ann_file}: missing or non-list {key!r}")
    image_ids = _unique_ids(ann_file, data["images"], "images", ("id", "file_name", "height", "width"))
    categories = {c["id"]: c for c in data["categories"]}
    _unique_ids(ann_file, data["categories"], "categories", ("id", "name"))
    for ann in data["annotations"]:
        where = f"{ann_file}: annotation id {ann.get('id')!r}"
        for key in ("id", "image_id", "category_id", "bbox"):
            if key not in ann:
                raise HRNetError(f"{where}: missing {key!r}")
        if ann["image_id"] not in image_ids:
            raise HRNetError(f"{where}: unknown image_id {ann['image_id']!r}")
        if ann["category_id"] not in categories:
            raise HRNetError(f"{where}: unknown category_id {ann['category_id']!r} (not in 'categories')")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            raise HRNetError(f"{where}: bbox must be [x, y, w, h], got {box!r}")
        if box[2] < 0 or box[3] < 0 or not all(math.isfinite(v) for v in box):
            raise HRNetError(f"{where}: bbox has a negative or non-finite size: {box!r}")
        if keypoints and not ann.get("iscrowd", 0):
            num = len(categories[ann["category_id"]].get("keypoints", []))
            values = ann.get("keypoints")
            if not isinstance(values, list) or len(values) != 3 * num:
                raise HRNetError(f"{where}: expected {3 * num} keypoint values (x, y, v per joint)")
            bad = [v for v in values[2::3] if v not in (0, 1, 2)]
            if bad:
                raise HRNetError(f"{where}: keypoint visibility {bad[0]!r} is not 0, 1 or 2")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress messages
        coco.createIndex()
    return coco


def _polygon_ok(polygon: Any) -> bool:
    """A flat list of finite numbers, x, y pairs of at least three points."""
    return (
        isinstance(polygon, list)
        and len(polygon) >= 6
        and len(polygon) % 2 == 0
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in polygon)
    )


def usable_segmentation(seg: Any) -> Any:
    """The part of a COCO ``segmentation`` pycocotools can draw: an RLE as it is, a polygon list
    without its degenerate polygons (fewer than 3 points, odd length, not numbers: dropped, as
    Detectron and MMDetection drop them); None for none at all (``[]``, ``null``: a box only)."""
    if isinstance(seg, dict):
        return seg
    if isinstance(seg, list):
        kept = [polygon for polygon in seg if _polygon_ok(polygon)]
        return kept or None
    return None


def segmentation_problem(seg: Any) -> str | None:
    """Why a COCO ``segmentation`` cannot give an instance mask, in words; None if it can, or
    if it is absent (``[]``, ``null``: a box-only annotation). Degenerate polygons beside a
    good one are dropped (:func:`usable_segmentation`), not a problem."""
    if seg is None or seg == []:
        return None
    if isinstance(seg, dict):
        size = seg.get("size")
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v >= 0 for v in size)):
            return f"RLE 'size' must be [height, width], got {size!r}"
        if not isinstance(seg.get("counts"), str | list):
            return "RLE 'counts' must be a string or a list of run lengths"
        return None
    if not isinstance(seg, list):
        return f"expected a list of polygons or an RLE object, got {seg!r:.40}"
    if usable_segmentation(seg) is None:
        return "no polygon of at least 3 points (flat x, y pairs of numbers)"
    return None


def _unique_ids(path: Path, records: list, section: str, required: tuple[str, ...]) -> set:
    ids: set = set()
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or any(k not in rec for k in required):
            raise HRNetError(f"{path}: {section}[{i}] must be an object with {', '.join(required)}")
        if rec["id"] in ids:
            raise HRNetError(f"{path}: {section}[{i}] repeats id {rec['id']!r}")
        ids.add(rec["id"])
    return ids


def _read_checked_image(image_dir: Path, info: dict, ann_file: Path) -> torch.Tensor:
    """Decode the image of a COCO ``images`` record and check its declared size."""
    record = f"image id {info['id']} of {ann_file.name}"
    image = read_image(image_dir / info["file_name"], record=record)
    height, width = image.shape[-2:]
    if (height, width) != (info["height"], info["width"]):
        raise HRNetError(
            f"{image_dir / info['file_name']} ({record}): image is {width}x{height} but the "
            f"annotation says {info['width']}x{info['height']}"
        )
    return image


# --------------------------------------------------------------------------------------------
# instances


class CocoDetection:
    """COCO instances for torchvision-style detection (Faster/Mask/Cascade R-CNN).

    Items are ``(image, target)``. Without ``transforms`` ``image`` is a ``tv_tensors.Image``
    uint8 ``[3, H, W]`` and ``target`` holds:

    - ``boxes``: ``tv_tensors.BoundingBoxes`` float32 ``[N, 4]`` xyxy in pixels (clipped to the
      image; boxes with no area dropped),
    - ``labels``: int64 ``[N]`` in ``1..K`` (contiguous; :attr:`label_to_cat_id` and
      :attr:`cat_id_to_label` convert to and from the file's category ids),
    - ``masks``: ``tv_tensors.Mask`` uint8 ``[N, H, W]`` when ``with_masks``,
    - ``semantic``: ``tv_tensors.Mask`` uint8 ``[H, W]`` when ``semantic_dir`` is given: the
      COCO-stuff map ``semantic_dir/<file stem>.png`` (MMDetection's ``gt_semantic_seg`` before
      its ``SegRescale(1/8)``, which the HTC model applies after its resize),
    - ``iscrowd`` int64 ``[N]``, ``area`` float32 ``[N]``, ``ann_id`` int64 ``[N]``,
    - ``image_id``: int, ``orig_size``: int64 ``[2]`` (H, W).

    Crowd annotations are left out of the targets unless ``include_crowd`` (COCO evaluation
    reads them from the annotation file). With ``transforms`` the pair goes through
    ``transforms(image, target)`` (torchvision v2: boxes and masks follow the image).

    Args:
        image_dir: folder of the images (``file_name`` is relative to it).
        ann_file: the instances JSON.
        transforms: called as ``transforms(image, target) -> (image, target)``.
        with_masks: also decode instance masks (polygons or RLE).
        include_crowd: keep ``iscrowd=1`` annotations in the targets.
        skip_empty: drop images without a (non-crowd) annotation, for training (said in
            :attr:`notes`, which the training engine prints).
        semantic_dir: folder of the COCO-stuff stuffthingmaps of the split (HTC).
    """

    def __init__(
        self,
        image_dir: str | Path,
        ann_file: str | Path,
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
        with_masks: bool = False,
        include_crowd: bool = False,
        skip_empty: bool = False,
        semantic_dir: str | Path | None = None,
    ) -> None:
        self.image_dir = Path(image_dir)
        self.ann_file = Path(ann_file)
        self.semantic_dir = Path(semantic_dir) if semantic_dir is not None else None
        self.transforms = transforms
        self.with_masks = with_masks
        self.include_crowd = include_crowd
        self.coco = load_coco(self.ann_file)
        self.cat_ids: list[int] = sorted(self.coco.getCatIds())
        self.cat_id_to_label: dict[int, int] = {cid: i + 1 for i, cid in enumerate(self.cat_ids)}
        self.label_to_cat_id: dict[int, int] = {v: k for k, v in self.cat_id_to_label.items()}
        self.classes: list[str] = [self.coco.cats[cid]["name"] for cid in self.cat_ids]
        ids = sorted(self.coco.imgs)
        self.notes: list[str] = []  # what a training run should say about the data it reads
        if skip_empty:
            kept = [i for i in ids if any(not a.get("iscrowd", 0) for a in self.coco.imgToAnns[i])]
            if len(kept) < len(ids):
                self.notes.append(
                    f"{self.ann_file}: {len(ids) - len(kept)} of {len(ids)} images have no non-crowd "
                    "annotation and are left out of training (torchvision's and MMDetection's "
                    "filter_empty_gt); evaluation scores every image"
                )
            ids = kept
        self.ids: list[int] = ids

    @property
    def num_classes(self) -> int:
        """Number of object categories K (labels are 1..K, 0 is the background)."""
        return len(self.cat_ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, dict]:
        import torch
        from torchvision import tv_tensors

        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        image = _read_checked_image(self.image_dir, info, self.ann_file)
        height, width = image.shape[-2:]
        anns = [a for a in self.coco.imgToAnns[image_id] if self.include_crowd or not a.get("iscrowd", 0)]
        boxes, kept = [], []
        for ann in anns:
            x, y, w, h = ann["bbox"]
            x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
            x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
            if x1 > x0 and y1 > y0:
                boxes.append([x0, y0, x1, y1])
                kept.append(ann)
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                format=tv_tensors.BoundingBoxFormat.XYXY,
                canvas_size=(height, width),
            ),
            "labels": torch.tensor([self.cat_id_to_label[a["category_id"]] for a in kept], dtype=torch.int64),
            "iscrowd": torch.tensor([int(a.get("iscrowd", 0)) for a in kept], dtype=torch.int64),
            "area": torch.tensor([float(a.get("area", 0.0)) for a in kept], dtype=torch.float32),
            "ann_id": torch.tensor([a["id"] for a in kept], dtype=torch.int64),
            "image_id": int(image_id),
            "orig_size": torch.tensor([height, width], dtype=torch.int64),
        }
        if self.with_masks:
            masks = np.zeros((len(kept), height, width), dtype=np.uint8)
            for i, ann in enumerate(kept):
                if "segmentation" not in ann:
                    raise HRNetError(
                        f"{self.ann_file}: annotation id {ann['id']}: no 'segmentation' for masks"
                    )
                problem = segmentation_problem(ann["segmentation"])
                if problem is not None:
                    raise HRNetError(f"{self.ann_file}: annotation id {ann['id']}: bad segmentation: {problem}")
                usable = usable_segmentation(ann["segmentation"])
                if usable is None:
                    raise HRNetError(f"{self.ann_file}: annotation id {ann['id']}: no mask ('segmentation' is empty)")
                try:
                    masks[i] = self.coco.annToMask({**ann, "segmentation": usable})
                except Exception as exc:  # pycocotools raises assorted types on bad polygons/RLE
                    raise HRNetError(
                        f"{self.ann_file}: annotation id {ann['id']}: bad segmentation: {exc}"
                    ) from None
            target["masks"] = tv_tensors.Mask(torch.from_numpy(masks))
        if self.semantic_dir is not None:
            target["semantic"] = tv_tensors.Mask(torch.from_numpy(self._stuff_map(info, height, width)))
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    def _stuff_map(self, info: dict, height: int, width: int) -> np.ndarray:
        assert self.semantic_dir is not None
        path = stuff_map_path(self.semantic_dir, info["file_name"])
        label_map = read_label_map(path, record=f"image id {info['id']} of {self.ann_file.name}")
        if label_map.shape != (height, width):
            raise HRNetError(
                f"{path}: stuff map is {label_map.shape[1]}x{label_map.shape[0]} but image id "
                f"{info['id']} is {width}x{height}"
            )
        return label_map

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ann_file={str(self.ann_file)!r}, images={len(self)}, classes={self.num_classes})"


# --------------------------------------------------------------------------------------------
# person keypoints


class CocoKeypoints:
    """COCO person keypoints as top-down samples: one item per person box.

    Boxes come from the ground truth (non-crowd person annotations whose box has an area) or,
    for evaluation, from a detection results file (``detections``: a COCO results JSON list of
    ``{"image_id", "category_id", "bbox", "score"}``; person boxes with ``score >= min_score``).
    A box becomes ``center`` (pixels) and ``scale`` (in units of 200 px, the convention of
    deep-high-resolution-net.pytorch; see :func:`hrnet.ops.keypoints.box_to_center_scale`) grown
    to the aspect ratio of ``input_size`` and padded by 1.25.

    Items are ``(image, target)``. Without ``transforms``: the whole image (``tv_tensors.Image``
    uint8 ``[3, H, W]``) and ``target`` = ``{"keypoints" float32 [K, 3] (x, y, v) in image
    pixels (zeros for detected boxes), "center" float32 [2], "scale" float32 [2],
    "bbox_score" float, "area" float, "image_id" int}``. Pass
    :class:`hrnet.data.transforms.TopDownTransform` to get the crop and heatmap targets.

    Args:
        image_dir: folder of the images.
        ann_file: the person_keypoints JSON.
        transforms: called as ``transforms(image, target) -> (image, target)``.
        input_size: network input ``(width, height)``, for the box aspect ratio.
        padding: box enlargement factor.
        detections: optional detection results JSON (evaluation with detected boxes).
        min_score: detections below this score are dropped.
        skip_invisible: drop ground-truth persons with no labelled keypoint (training).
    """

    def __init__(
        self,
        image_dir: str | Path,
        ann_file: str | Path,
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
        input_size: Sequence[int] = (192, 256),
        padding: float = 1.25,
        detections: str | Path | None = None,
        min_score: float = 0.0,
        skip_invisible: bool = True,
    ) -> None:
        from hrnet.ops.keypoints import box_to_center_scale

        self.image_dir = Path(image_dir)
        self.ann_file = Path(ann_file)
        self.transforms = transforms
        self.coco = load_coco(self.ann_file, keypoints=True)
        person_ids = [c["id"] for c in self.coco.dataset["categories"] if c.get("keypoints")]
        if not person_ids:
            raise HRNetError(f"{self.ann_file}: no category with 'keypoints' (not a person keypoints file)")
        self.category = self.coco.cats[person_ids[0]]
        self.keypoint_names: list[str] = list(self.category["keypoints"])
        self.skeleton: list[list[int]] = [list(e) for e in self.category.get("skeleton", [])]
        self.num_joints = len(self.keypoint_names)
        aspect = float(input_size[0]) / float(input_size[1])
        self.samples: list[dict[str, Any]] = []
        if detections is None:
            for image_id in sorted(self.coco.imgs):
                info = self.coco.imgs[image_id]
                for ann in self.coco.imgToAnns[image_id]:
                    if ann["category_id"] != self.category["id"] or ann.get("iscrowd", 0):
                        continue
                    keypoints = np.asarray(ann["keypoints"], dtype=np.float32).reshape(-1, 3)
                    if skip_invisible and not (keypoints[:, 2] > 0).any():
                        continue
                    box = _clean_box(ann["bbox"], info["width"], info["height"])
                    if box is None:
                        continue
                    center, scale = box_to_center_scale(box, aspect_ratio=aspect, padding=padding)
                    self.samples.append(
                        self._sample(image_id, keypoints, center, scale, 1.0, float(ann.get("area", 0.0)))
                    )
        else:
            for i, det in enumerate(self._load_detections(Path(detections))):
                if det["category_id"] != self.category["id"] or det["score"] < min_score:
                    continue
                info = self.coco.imgs[det["image_id"]]
                box = _clean_box(det["bbox"], info["width"], info["height"])
                if box is None:
                    continue
                center, scale = box_to_center_scale(box, aspect_ratio=aspect, padding=padding)
                zeros = np.zeros((self.num_joints, 3), dtype=np.float32)
                area = float(box[2] * box[3])
                self.samples.append(
                    self._sample(det["image_id"], zeros, center, scale, float(det["score"]), area)
                )
                self.samples[-1]["det_index"] = i

    @staticmethod
    def _sample(image_id, keypoints, center, scale, score, area) -> dict[str, Any]:
        return {
            "image_id": int(image_id),
            "keypoints": keypoints,
            "center": np.asarray(center, dtype=np.float32),
            "scale": np.asarray(scale, dtype=np.float32),
            "bbox_score": score,
            "area": area,
        }

    def _load_detections(self, path: Path) -> list[dict]:
        dets = load_json(path)
        if not isinstance(dets, list):
            raise HRNetError(f"{path}: expected a COCO results list of detections")
        for i, det in enumerate(dets):
            if not isinstance(det, dict) or any(
                k not in det for k in ("image_id", "category_id", "bbox", "score")
            ):
                raise HRNetError(f"{path}: detection [{i}] needs image_id, category_id, bbox and score")
            if det["image_id"] not in self.coco.imgs:
                raise HRNetError(
                    f"{path}: detection [{i}]: image_id {det['image_id']!r} not in {self.ann_file}"
                )
        return dets

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, dict]:
        import torch

        sample = self.samples[index]
        info = self.coco.imgs[sample["image_id"]]
        image = _read_checked_image(self.image_dir, info, self.ann_file)
        target = {
            "keypoints": torch.from_numpy(sample["keypoints"].copy()),
            "center": torch.from_numpy(sample["center"].copy()),
            "scale": torch.from_numpy(sample["scale"].copy()),
            "bbox_score": float(sample["bbox_score"]),
            "area": float(sample["area"]),
            "image_id": sample["image_id"],
        }
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ann_file={str(self.ann_file)!r}, samples={len(self)})"


def _clean_box(bbox: Sequence[float], width: int, height: int) -> list[float] | None:
    """A box ``[x, y, w, h]`` clipped to the image, or None when nothing of it is left."""
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(width - 1.0, x0 + max(0.0, w - 1.0)), min(height - 1.0, y0 + max(0.0, h - 1.0))
    if w * h <= 0 or x1 < x0 or y1 < y0:
        return None
    return [x0, y0, x1 - x0, y1 - y0]
