"""Builders of tiny datasets in the real on-disk layouts, for tests (importable by any test).

Each ``make_*`` function writes into a folder it is given (a pytest ``tmp_path``) and returns
the paths a reader needs. Images are a few pixels wide; contents are chosen so tests can check
label conventions exactly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "make_300w",
    "make_ade20k",
    "make_cityscapes",
    "make_coco_instances",
    "make_coco_keypoints",
    "make_cofw",
    "make_imagefolder",
    "make_pascal_context",
    "make_voc",
    "make_wflw",
    "save_image",
    "write_json",
]


def save_image(path: Path, array_or_image: np.ndarray | Image.Image, **save_kwargs) -> Path:
    """Save an array (uint8 ``[H, W]`` or ``[H, W, 3]``) or PIL image, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    img.save(path, **save_kwargs)
    return path


def _exif_rotated_jpeg(width: int, height: int) -> bytes:
    """A JPEG stored ``width x height`` whose EXIF orientation (6 = rotate 90 CW) swaps the sides."""
    img = Image.new("RGB", (width, height), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def make_imagefolder(root: Path, *, split: str = "train", classes: tuple[str, ...] = ("cat", "dog")) -> Path:
    """An ImageFolder split with images in awkward modes.

    Layout ``root/split/<class>/``: the first class holds an RGB PNG, a grayscale PNG, a palette
    PNG and an RGBA PNG (all 6x4); the second a CMYK JPEG (6x4) and a JPEG stored 6x4 whose EXIF
    orientation makes it 4x6; every further class one RGB PNG. A ``notes.txt`` and a hidden
    ``.DS_Store`` are ignored by readers. Returns ``root``.
    """
    base = root / split
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 1] = 255
    first, second, *rest = classes
    save_image(base / first / "rgb.png", rgb)
    save_image(base / first / "gray.png", np.full((4, 6), 128, np.uint8))
    save_image(
        base / first / "palette.png", Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
    )
    save_image(base / first / "alpha.png", Image.fromarray(rgb).convert("RGBA"))
    save_image(base / second / "cmyk.jpg", Image.new("CMYK", (6, 4), (0, 255, 255, 0)))
    (base / second / "rotated.jpg").write_bytes(_exif_rotated_jpeg(6, 4))
    for cls in rest:
        save_image(base / cls / "only.png", rgb)
    (base / first / "notes.txt").write_text("not an image\n")
    (base / first / ".DS_Store").write_bytes(b"\0")
    return root


def write_json(path: Path, obj: object) -> Path:
    """Write ``obj`` as JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


# --------------------------------------------------------------------------------------------
# COCO


def make_coco_instances(root: Path) -> tuple[Path, Path]:
    """A COCO instances set of three 32x24 images; returns ``(image_dir, ann_file)``.

    Categories have non-contiguous ids 5 ("box") and 9 ("bar"). Image 1 holds a white 8x6 box
    at x 4..12, y 2..8 (category 5, polygon) and a grey bar at x 20..28, y 10..20 (category 9),
    plus a crowd region (RLE) at x 0..4, y 16..24; image 2 has no annotation; image 3 only a
    crowd annotation. Pixels are drawn exactly where the polygons are, so masks match the image.
    """
    from pycocotools import mask as mask_utils

    image_dir, ann_file = root / "images", root / "annotations" / "instances.json"
    height, width = 24, 32
    img1 = np.zeros((height, width, 3), np.uint8)
    img1[2:8, 4:12] = 255
    img1[10:20, 20:28] = 128
    save_image(image_dir / "a.png", img1)
    save_image(image_dir / "b.png", np.zeros((height, width, 3), np.uint8))
    save_image(image_dir / "c.png", np.zeros((height, width, 3), np.uint8))
    crowd = np.zeros((height, width), np.uint8)
    crowd[16:24, 0:4] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    crowd_seg = {"size": [height, width], "counts": rle["counts"].decode("ascii")}

    def rect(ann_id, image_id, cat, x0, y0, x1, y1):
        return {
            "id": ann_id,
            "image_id": image_id,
            "category_id": cat,
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": float((x1 - x0) * (y1 - y0)),
            "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
            "iscrowd": 0,
        }

    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": height, "width": width},
            {"id": 2, "file_name": "b.png", "height": height, "width": width},
            {"id": 3, "file_name": "c.png", "height": height, "width": width},
        ],
        "annotations": [
            rect(10, 1, 5, 4, 2, 12, 8),
            rect(11, 1, 9, 20, 10, 28, 20),
            {
                "id": 12,
                "image_id": 1,
                "category_id": 5,
                "bbox": [0, 16, 4, 8],
                "area": 32.0,
                "segmentation": crowd_seg,
                "iscrowd": 1,
            },
            {
                "id": 13,
                "image_id": 3,
                "category_id": 9,
                "bbox": [0, 16, 4, 8],
                "area": 32.0,
                "segmentation": crowd_seg,
                "iscrowd": 1,
            },
        ],
        "categories": [{"id": 5, "name": "box"}, {"id": 9, "name": "bar"}],
    }
    write_json(ann_file, data)
    return image_dir, ann_file


def make_coco_keypoints(root: Path, *, num_joints: int = 17) -> tuple[Path, Path, Path]:
    """A COCO person keypoints set of one 64x48 image; returns ``(image_dir, ann_file, det_file)``.

    Annotation 1: a person with box (10, 5, 20, 30), joint 0 at (15, 10) visible, joint 1 at
    (25, 12) occluded (v=1), the rest unlabelled. Annotation 2: a person with no labelled joint.
    Annotation 3: a crowd person. The detections file holds two person boxes (scores 0.9, 0.1)
    and one box of another category.
    """
    image_dir = root / "images"
    ann_file = root / "annotations" / "person_keypoints.json"
    det_file = root / "detections.json"
    save_image(image_dir / "p.png", np.zeros((48, 64, 3), np.uint8))
    kps = [0.0] * (3 * num_joints)
    kps[0:3] = [15, 10, 2]
    kps[3:6] = [25, 12, 1]
    names = [f"j{i}" for i in range(num_joints)]
    data = {
        "images": [{"id": 7, "file_name": "p.png", "height": 48, "width": 64}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 1,
                "bbox": [10, 5, 20, 30],
                "area": 400.0,
                "iscrowd": 0,
                "keypoints": kps,
                "num_keypoints": 2,
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 1,
                "bbox": [40, 5, 10, 20],
                "area": 150.0,
                "iscrowd": 0,
                "keypoints": [0] * (3 * num_joints),
                "num_keypoints": 0,
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 1,
                "bbox": [0, 0, 64, 48],
                "area": 900.0,
                "iscrowd": 1,
                "keypoints": [0] * (3 * num_joints),
                "num_keypoints": 0,
            },
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": [[1, 2]]}],
    }
    write_json(ann_file, data)
    dets = [
        {"image_id": 7, "category_id": 1, "bbox": [10, 5, 20, 30], "score": 0.9},
        {"image_id": 7, "category_id": 1, "bbox": [40, 5, 10, 20], "score": 0.1},
        {"image_id": 7, "category_id": 2, "bbox": [0, 0, 5, 5], "score": 0.99},
    ]
    write_json(det_file, dets)
    return image_dir, ann_file, det_file


# --------------------------------------------------------------------------------------------
# segmentation benchmarks (label maps hold every value the conventions treat specially)


def _label_image(values: list[int], *, size: tuple[int, int] = (4, 8)) -> np.ndarray:
    """A ``size`` uint8 map whose first row cycles through ``values`` (the rest is values[0])."""
    label = np.full(size, values[0], np.uint8)
    for i, v in enumerate(values[: size[1]]):
        label[0, i] = v
    return label


def make_cityscapes(root: Path) -> Path:
    """Cityscapes layout, split ``val``, city ``lindau``, one 8x4 image; labelIds row 0 =
    ``[7, 26, 33, 0, 1, 6, 255, 24]`` (road, car, bicycle, unlabeled, ego vehicle, ground,
    license-plate-as-255, person). Returns ``root``."""
    stem = "lindau_000000_000019"
    save_image(
        root / "leftImg8bit" / "val" / "lindau" / f"{stem}_leftImg8bit.png", np.zeros((4, 8, 3), np.uint8)
    )
    save_image(
        root / "gtFine" / "val" / "lindau" / f"{stem}_gtFine_labelIds.png",
        _label_image([7, 26, 33, 0, 1, 6, 255, 24]),
    )
    return root


def make_ade20k(root: Path) -> Path:
    """``ADEChallengeData2016`` with one validation pair; labels row 0 = ``[0, 1, 150, 75, ...]``.
    Returns the ``ADEChallengeData2016`` folder."""
    base = root / "ADEChallengeData2016"
    save_image(base / "images" / "validation" / "ADE_val_00000001.jpg", np.zeros((4, 8, 3), np.uint8))
    save_image(base / "annotations" / "validation" / "ADE_val_00000001.png", _label_image([0, 1, 150, 75]))
    return base


def _voc_palette_png(path: Path, label: np.ndarray) -> Path:
    img = Image.fromarray(label, mode="P")
    palette = [0] * 768
    for i in range(256):
        palette[3 * i : 3 * i + 3] = [(i * 37) % 256, (i * 91) % 256, (i * 53) % 256]
    img.putpalette(palette)
    return save_image(path, img)


def make_voc(root: Path) -> Path:
    """``VOCdevkit/VOC2012`` with images ``2007_000032`` (train, val) and ``2011_000001``
    (train_aug only). ``SegmentationClass`` is a palette PNG with row 0 = ``[0, 15, 255, 20]``
    (background, person, boundary, tvmonitor); ``SegmentationClassAug`` a grayscale PNG with
    ``[0, 1, 255]``. Returns the ``VOC2012`` folder."""
    base = root / "VOCdevkit" / "VOC2012"
    for stem in ("2007_000032", "2011_000001"):
        save_image(base / "JPEGImages" / f"{stem}.jpg", np.zeros((4, 8, 3), np.uint8))
        save_image(base / "SegmentationClassAug" / f"{stem}.png", _label_image([0, 1, 255]))
    _voc_palette_png(base / "SegmentationClass" / "2007_000032.png", _label_image([0, 15, 255, 20]))
    sets = base / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("2007_000032\n")
    (sets / "val.txt").write_text("2007_000032\n")
    (sets / "train_aug.txt").write_text("2007_000032\n2011_000001\n")
    return base


def make_pascal_context(root: Path) -> Path:
    """``VOCdevkit/VOC2010`` in MMSegmentation's converted layout, one val image with labels
    row 0 = ``[0, 1, 59, 30]``. Returns the ``VOC2010`` folder."""
    base = root / "VOCdevkit" / "VOC2010"
    save_image(base / "JPEGImages" / "2008_000002.jpg", np.zeros((4, 8, 3), np.uint8))
    save_image(base / "SegmentationClassContext" / "2008_000002.png", _label_image([0, 1, 59, 30]))
    sets = base / "ImageSets" / "SegmentationContext"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("2008_000002\n")
    return base


# --------------------------------------------------------------------------------------------
# facial landmarks


def _face_points(num: int, *, x0: float = 10.0, y0: float = 8.0) -> np.ndarray:
    """``num`` distinct points on a grid starting at (x0, y0), 2 px apart, 10 per row."""
    return np.array([[x0 + 2 * (i % 10), y0 + 2 * (i // 10)] for i in range(num)], dtype=np.float64)


def make_300w(root: Path) -> Path:
    """Official 300W folders with one face each in ``helen/testset``, ``lfpw/testset`` and
    ``ibug`` (64x48 images, 68 grid points from (10, 8)). Returns ``root``."""
    from hrnet.data.landmarks import write_pts

    for sub in ("helen/testset", "lfpw/testset", "ibug"):
        folder = root / sub
        save_image(folder / "face_1.jpg", np.zeros((48, 64, 3), np.uint8))
        folder.mkdir(parents=True, exist_ok=True)
        write_pts(folder / "face_1.pts", _face_points(68))
    return root


def make_wflw(root: Path) -> Path:
    """WFLW annotation list ``test`` with two faces of one 64x48 image in a sub-folder; the
    second face has the occlusion flag set. Returns ``root``."""
    save_image(root / "WFLW_images" / "0--Parade" / "a.jpg", np.zeros((48, 64, 3), np.uint8))
    lines = []
    for occluded in (0, 1):
        pts = _face_points(98, x0=5.0 + 10 * occluded).reshape(-1)
        box = [4, 6, 30, 40]
        attrs = [0, 0, 0, 0, occluded, 0]
        lines.append(" ".join(str(v) for v in [*pts.tolist(), *box, *attrs, "0--Parade/a.jpg"]))
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_test.txt"
    ann.parent.mkdir(parents=True)
    ann.write_text("\n".join(lines) + "\n")
    return root


def make_cofw(root: Path) -> Path:
    """COFW converted to HRNet-Facial-Landmark-Detection's CSV layout: ``cofw_test.csv`` with
    one face (29 points, scale 0.2, centre (20, 15)) of ``images/test/1.png``. Returns ``root``."""
    save_image(root / "images" / "test" / "1.png", np.zeros((48, 64, 3), np.uint8))
    header = ["image_name", "scale", "center_w", "center_h"] + [f"{a}{i}" for i in range(29) for a in "xy"]
    row = ["images/test/1.png", "0.2", "20", "15", *(str(v) for v in _face_points(29).reshape(-1))]
    (root / "cofw_test.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    return root
