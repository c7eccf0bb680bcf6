"""Embedded datasets: small, real-format datasets generated deterministically from a seed.

Each generator writes a folder in the layout of a real dataset (docs/ARCHITECTURE.md, "Data")
so that the same readers serve the embedded demo rows and the published benchmarks:

- ``digits``: scikit-learn's bundled handwritten digits (real data, 1797 images of 8x8 with
  values 0..16) as an ImageFolder tree ``{train,val}/<class>/<index>.png``. Images are
  upscaled once to 32x32 8-bit grayscale (bilinear) so that a 32x32 classifier trains on them
  directly without a resize in the input pipeline; the reader converts them to RGB.
- ``shapes``: RGB images with 1-4 circles, squares and triangles on noisy backgrounds, COCO
  instances JSON (polygons, boxes, areas) and semantic label maps (0 background, the category
  id inside a shape, 255 on a one-pixel outline that is ignored).
- ``figures``: stick figures with COCO's 17 keypoints, one or two per image, COCO person
  keypoints JSON (visibility 2 visible, 1 occluded, 0 outside the image).
- ``faces``: synthetic faces with 68 landmarks in the 300W layout (image + ``.pts``).

The same seed gives byte-identical files. A dataset folder is built in a temporary sibling and
renamed into place, so it is either complete or absent; ``dataset.json`` at its root records
the generator, the seed and the counts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hrnet.data.io import atomic_directory, write_json_atomic
from hrnet.errors import HRNetError

__all__ = [
    "COCO_KEYPOINT_NAMES",
    "COCO_SKELETON",
    "EMBEDDED_DATASETS",
    "SHAPES_CATEGORIES",
    "EmbeddedDataset",
    "generate_dataset",
]

# Called as progress(done, total) after each written image.
Progress = Callable[[int, int], None]

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class EmbeddedDataset:
    """What ``hrnet generate NAME`` builds."""

    name: str
    description: str
    num_train: int  # default number of training images
    num_val: int  # default number of validation images
    build: Callable[[Path, np.random.Generator, int, int, int, Progress | None], dict]
    limited: bool = False  # the defaults are all the images there are (digits: scikit-learn's)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _save_png(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png_bytes(img))


# --------------------------------------------------------------------------------------------
# digits


def _build_digits(
    out: Path, rng: np.random.Generator, seed: int, num_train: int, num_val: int, progress: Progress | None
) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images  # [1797, 8, 8] float in 0..16
    labels = digits.target.astype(np.int64)
    # stratified split: shuffle each class with the seed, send the first 20% to val
    train_idx: list[int] = []
    val_idx: list[int] = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = round(0.2 * len(idx))
        val_idx += idx[:n_val].tolist()
        train_idx += idx[n_val:].tolist()
    train_idx = [int(i) for i in np.asarray(train_idx)[rng.permutation(len(train_idx))][:num_train]]
    val_idx = [int(i) for i in np.asarray(val_idx)[rng.permutation(len(val_idx))][:num_val]]
    total = len(train_idx) + len(val_idx)
    done = 0
    for split, indices in (("train", train_idx), ("val", val_idx)):
        for c in range(10):  # every class folder exists even when a small subset misses a class
            (out / split / str(c)).mkdir(parents=True, exist_ok=True)
        for i in sorted(indices):
            pixels = np.round(images[i] * (255.0 / 16.0)).astype(np.uint8)
            img = Image.fromarray(pixels, mode="L").resize((32, 32), Image.Resampling.BILINEAR)
            _save_png(img, out / split / str(labels[i]) / f"{i:04d}.png")
            done += 1
            if progress:
                progress(done, total)
    return {
        "format": "imagefolder",
        "num_classes": 10,
        "image_size": [32, 32],
        "num_train": len(train_idx),
        "num_val": len(val_idx),
    }


# --------------------------------------------------------------------------------------------
# shapes

# COCO categories of the shapes set (ids 1..3 as in a COCO file).
SHAPES_CATEGORIES: list[dict] = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
]


def _noisy_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth two-colour gradient plus Gaussian noise, uint8 ``[H, W, 3]``."""
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    t = (math.cos(angle) * xx / width + math.sin(angle) * yy / height + 1.0) / 2.0
    base = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    noise = rng.normal(0.0, 12.0, size=(height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _shape_polygon(
    category: int, cx: float, cy: float, radius: float, angle: float
) -> list[tuple[float, float]]:
    """Vertices of a circle (24-gon), square or triangle centred on (cx, cy)."""
    sides = {1: 24, 2: 4, 3: 3}[category]
    start = angle + (math.pi / 4 if category == 2 else -math.pi / 2)
    return [
        (
            cx + radius * math.cos(start + 2 * math.pi * k / sides),
            cy + radius * math.sin(start + 2 * math.pi * k / sides),
        )
        for k in range(sides)
    ]


def _render_shapes_image(
    rng: np.random.Generator, height: int, width: int
) -> tuple[Image.Image, Image.Image, list[dict]]:
    """One image, its semantic label map and its instances (polygon, bbox, category)."""
    image = Image.fromarray(_noisy_background(rng, height, width), mode="RGB")
    label = Image.new("L", (width, height), 0)
    draw_img, draw_lbl = ImageDraw.Draw(image), ImageDraw.Draw(label)
    placed: list[tuple[float, float, float]] = []
    instances: list[dict] = []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(20):  # shapes do not overlap, so every polygon is fully visible
            radius = float(rng.uniform(0.10, 0.22) * min(height, width))
            cx = float(rng.uniform(radius + 1, width - radius - 1))
            cy = float(rng.uniform(radius + 1, height - radius - 1))
            if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue
        category = int(rng.integers(1, 4))
        polygon = _shape_polygon(category, cx, cy, radius, float(rng.uniform(0, 2 * math.pi)))
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        draw_img.polygon(polygon, fill=colour)
        draw_lbl.polygon(polygon, fill=category, outline=255, width=1)
        placed.append((cx, cy, radius))
        instances.append({"category_id": category, "polygon": polygon})
    return image, label, instances


def _polygon_annotation(polygon: list[tuple[float, float]], height: int, width: int) -> dict:
    """COCO fields of one polygon: segmentation, bbox [x, y, w, h], area (pycocotools' rasterisation)."""
    from pycocotools import mask as mask_utils

    flat = [round(v, 2) for xy in polygon for v in xy]
    rle = mask_utils.frPyObjects([flat], height, width)
    area = float(mask_utils.area(rle).sum())
    xs, ys = flat[0::2], flat[1::2]
    x0, y0, x1, y1 = (
        max(0.0, min(xs)),
        max(0.0, min(ys)),
        min(float(width), max(xs)),
        min(float(height), max(ys)),
    )
    return {
        "segmentation": [flat],
        "area": area,
        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
    }


def _build_shapes(
    out: Path, rng: np.random.Generator, seed: int, num_train: int, num_val: int, progress: Progress | None
) -> dict:
    height = width = 64
    total, done = num_train + num_val, 0
    for split, count in (("train", num_train), ("val", num_val)):
        images, annotations = [], []
        for i in range(count):
            image_id = i + 1
            file_name = f"{image_id:06d}.png"
            image, label, instances = _render_shapes_image(rng, height, width)
            _save_png(image, out / "images" / split / file_name)
            _save_png(label, out / "masks" / split / file_name)
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for inst in instances:
                ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": inst["category_id"]}
                ann.update(_polygon_annotation(inst["polygon"], height, width))
                ann["iscrowd"] = 0
                annotations.append(ann)
            done += 1
            if progress:
                progress(done, total)
        coco = {
            "info": {
                "description": "hrnet-zoo embedded shapes",
                "version": str(GENERATOR_VERSION),
                "seed": seed,
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": SHAPES_CATEGORIES,
        }
        write_json_atomic(out / "annotations" / f"instances_{split}.json", coco)
    # the label maps' classes (hrnet.data.segmentation.mask_folder_classes)
    names = ["background", *(c["name"] for c in SHAPES_CATEGORIES)]
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return {
        "format": "coco-instances",
        "num_classes": 3,
        "image_size": [height, width],
        "num_train": num_train,
        "num_val": num_val,
    }


# --------------------------------------------------------------------------------------------
# figures (COCO person keypoints)

# COCO's 17 person keypoints in file order and its skeleton (1-based joint pairs), as in the
# "person" category of person_keypoints_*.json.
COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)

# limbs drawn as thick lines (0-based joints); the left side gets a lighter shade so that
# left and right are tellable apart, as faces and clothing tell them apart in photographs
_LIMBS = (
    (5, 7),
    (7, 9),
    (11, 13),
    (13, 15),
    (6, 8),
    (8, 10),
    (12, 14),
    (14, 16),
    (5, 6),
    (11, 12),
    (5, 11),
    (6, 12),
)


def _figure_joints(rng: np.random.Generator, height: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Joint positions ``[17, 2]`` relative to the hip centre, the occluded-by-pose flags, the facing.

    Facing: 0 frontal (the person's left is the image's right), -1 / +1 profile to the image's
    left / right (the far eye and ear are occluded by the head).
    """
    h = height
    joints = np.zeros((17, 2))
    hidden = np.zeros(17, dtype=bool)
    facing = int(rng.choice([-1, 0, 0, 1]))
    shoulder_y, head_y = -0.30 * h, -0.42 * h
    half_shoulder = 0.11 * h * (0.45 if facing else 1.0)
    half_hip = 0.07 * h * (0.45 if facing else 1.0)
    joints[5], joints[6] = (half_shoulder, shoulder_y), (-half_shoulder, shoulder_y)
    joints[11], joints[12] = (half_hip, 0.0), (-half_hip, 0.0)

    def chain(
        start: np.ndarray, angle: float, bend: float, lengths: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        # angles from "straight down", counter-clockwise on screen
        mid = start + lengths[0] * np.array([math.sin(angle), math.cos(angle)])
        end = mid + lengths[1] * np.array([math.sin(angle + bend), math.cos(angle + bend)])
        return mid, end

    for side, (shoulder, elbow, wrist) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):
        angle = side * rng.uniform(-0.3, 2.6)
        joints[elbow], joints[wrist] = chain(
            joints[shoulder], angle, side * rng.uniform(0, 2.0), (0.17 * h, 0.15 * h)
        )
    for side, (hip, knee, ankle) in ((1, (11, 13, 15)), (-1, (12, 14, 16))):
        angle = side * rng.uniform(-0.15, 0.5)
        joints[knee], joints[ankle] = chain(
            joints[hip], angle, -side * rng.uniform(0, 1.0), (0.23 * h, 0.22 * h)
        )
    nose_dx = -facing * 0.06 * h
    joints[0] = (nose_dx, head_y + 0.01 * h)
    eye_dx, ear_dx = 0.03 * h, 0.065 * h
    if facing == 0:
        joints[1], joints[2] = (eye_dx, head_y - 0.015 * h), (-eye_dx, head_y - 0.015 * h)
        joints[3], joints[4] = (ear_dx, head_y), (-ear_dx, head_y)
    else:
        # profile: both eyes toward the nose, the far ones hidden behind the head
        near_eye, far_eye = (2, 1) if facing < 0 else (1, 2)
        near_ear, far_ear = (4, 3) if facing < 0 else (3, 4)
        joints[near_eye] = (-facing * 0.035 * h, head_y - 0.015 * h)
        joints[far_eye] = (-facing * 0.045 * h, head_y - 0.015 * h)
        joints[near_ear] = (facing * 0.01 * h, head_y)
        joints[far_ear] = (facing * 0.02 * h, head_y)
        hidden[[far_eye, far_ear]] = True
    lean = rng.uniform(-0.25, 0.25)
    c, s = math.cos(lean), math.sin(lean)
    joints = joints @ np.array([[c, -s], [s, c]]).T
    return joints, hidden, facing


def _draw_figure(
    draw: ImageDraw.ImageDraw,
    mask_draw: ImageDraw.ImageDraw,
    joints: np.ndarray,
    height: float,
    colour: tuple,
    facing: int,
) -> None:
    """Draw one figure (image pixels in ``joints``) on the image and its silhouette on the mask."""
    width = max(2, round(0.045 * height))
    light = tuple(min(255, v + 70) for v in colour)
    for a, b in _LIMBS:
        fill = light if (a % 2 == 1 and b % 2 == 1 and a >= 5) else colour
        for d, f in ((draw, fill), (mask_draw, 1)):
            d.line([tuple(joints[a]), tuple(joints[b])], fill=f, width=width)
    head_c = (joints[1] + joints[2]) / 2 + np.array([facing * 0.01 * height, 0.015 * height])
    r = 0.075 * height
    box = [head_c[0] - r, head_c[1] - r, head_c[0] + r, head_c[1] + r]
    draw.ellipse(box, fill=(235, 200, 170))
    mask_draw.ellipse(box, fill=1)
    for k, fill in ((1, (20, 20, 120)), (2, (20, 20, 120)), (0, (200, 60, 60))):
        x, y = joints[k]
        draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=fill)


def _build_figures(
    out: Path, rng: np.random.Generator, seed: int, num_train: int, num_val: int, progress: Progress | None
) -> dict:
    from pycocotools import mask as mask_utils

    height = width = 96
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_KEYPOINT_NAMES),
        "skeleton": [list(e) for e in COCO_SKELETON],
    }
    total, done = num_train + num_val, 0
    for split, count in (("train", num_train), ("val", num_val)):
        images, annotations = [], []
        for i in range(count):
            image_id = i + 1
            file_name = f"{image_id:06d}.png"
            image = Image.fromarray(_noisy_background(rng, height, width), mode="RGB")
            draw = ImageDraw.Draw(image)
            n_people = int(rng.integers(1, 3))
            people = []
            for p in range(n_people):
                fig_h = float(rng.uniform(45, 80))
                lo, hi = (0.15, 0.85) if n_people == 1 else ((0.1, 0.45) if p == 0 else (0.55, 0.9))
                hip = np.array([rng.uniform(lo, hi) * width, rng.uniform(0.45, 0.75) * height])
                joints, hidden, facing = _figure_joints(rng, fig_h)
                joints = joints + hip
                silhouette = Image.new("L", (width, height), 0)
                colour = tuple(int(v) for v in rng.integers(0, 150, size=3))
                _draw_figure(draw, ImageDraw.Draw(silhouette), joints, fig_h, colour, facing)
                people.append(
                    {"joints": joints, "hidden": hidden, "mask": np.asarray(silhouette, dtype=bool)}
                )
            occluder = np.zeros((height, width), dtype=bool)
            if rng.random() < 0.3:  # a box in front of the people hides what is behind it
                x0, y0 = rng.uniform(0, width * 0.8), rng.uniform(0, height * 0.8)
                x1, y1 = x0 + rng.uniform(12, 30), y0 + rng.uniform(12, 30)
                draw.rectangle([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, size=3)))
                occluder[int(y0) : math.ceil(y1) + 1, int(x0) : math.ceil(x1) + 1] = True
            _save_png(image, out / "images" / split / file_name)
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for p, person in enumerate(people):
                covered = occluder.copy()
                for later in people[p + 1 :]:
                    covered |= later["mask"]
                visible_mask = person["mask"] & ~covered
                keypoints = []
                for k, (x, y) in enumerate(person["joints"]):
                    xi, yi = round(float(x)), round(float(y))
                    if not (0 <= x < width and 0 <= y < height):
                        keypoints += [0, 0, 0]
                    else:
                        v = (
                            1
                            if person["hidden"][k] or covered[min(yi, height - 1), min(xi, width - 1)]
                            else 2
                        )
                        keypoints += [round(float(x), 2), round(float(y), 2), v]
                ys, xs = np.nonzero(visible_mask)
                if len(xs) == 0:
                    continue
                rle = mask_utils.encode(np.asfortranarray(visible_mask.astype(np.uint8)))
                x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": 1,
                        "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
                        "area": float(visible_mask.sum()),
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "iscrowd": 0,
                        "keypoints": keypoints,
                        "num_keypoints": sum(1 for v in keypoints[2::3] if v > 0),
                    }
                )
            done += 1
            if progress:
                progress(done, total)
        coco = {
            "info": {
                "description": "hrnet-zoo embedded figures",
                "version": str(GENERATOR_VERSION),
                "seed": seed,
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": [category],
        }
        write_json_atomic(out / "annotations" / f"person_keypoints_{split}.json", coco)
    return {
        "format": "coco-person-keypoints",
        "num_joints": 17,
        "image_size": [height, width],
        "num_train": num_train,
        "num_val": num_val,
    }


# --------------------------------------------------------------------------------------------
# faces (300W layout, 68 landmarks)


def _face_points(rng: np.random.Generator, cx: float, cy: float, size: float) -> np.ndarray:
    """68 landmarks of a frontal face in the 300W order, before rotation: ``[68, 2]``.

    Index 0 is the subject's right jaw end (the image's left), as in 300W.
    """
    a, b = 0.42 * size, 0.52 * size  # half width and half height of the face oval
    pts = np.zeros((68, 2))
    t = np.linspace(math.pi + 0.25, -0.25, 17)  # jaw: image left -> chin -> image right
    pts[0:17] = np.stack([cx + a * np.cos(t), cy + 0.15 * b + 0.85 * b * np.sin(t)], axis=1)
    eye_y, eye_dx, eye_w = cy - 0.12 * size, 0.19 * size, 0.13 * size
    brow_y = eye_y - 0.11 * size - rng.uniform(0, 0.04) * size
    for start, side in ((17, -1), (22, 1)):
        xs = cx + side * eye_dx + np.linspace(-0.55, 0.55, 5) * 0.22 * size
        ys = brow_y - 0.03 * size * np.sin(np.linspace(0, math.pi, 5))
        pts[start : start + 5] = np.stack([xs, ys], axis=1)
    pts[27:31] = np.stack([np.full(4, cx), np.linspace(eye_y, cy + 0.12 * size, 4)], axis=1)
    pts[31:36] = np.stack([cx + np.linspace(-0.09, 0.09, 5) * size, np.full(5, cy + 0.16 * size)], axis=1)
    openness = rng.uniform(0.2, 1.0) * 0.035 * size
    for start, side in ((36, -1), (42, 1)):
        ex = cx + side * eye_dx
        # outer corner, two upper, inner corner, two lower (clockwise as in 300W)
        outer, inner = ex + side * eye_w / 2, ex - side * eye_w / 2
        xs = [
            outer,
            ex + side * eye_w / 6,
            ex - side * eye_w / 6,
            inner,
            ex - side * eye_w / 6,
            ex + side * eye_w / 6,
        ]
        ys = [eye_y, eye_y - openness, eye_y - openness, eye_y, eye_y + openness, eye_y + openness]
        if side > 0:  # the image-right eye starts at its inner corner
            xs = [
                inner,
                ex - side * eye_w / 6,
                ex + side * eye_w / 6,
                outer,
                ex + side * eye_w / 6,
                ex - side * eye_w / 6,
            ]
        pts[start : start + 6] = np.stack([xs, ys], axis=1)
    mouth_y, mouth_w = cy + 0.30 * size, rng.uniform(0.28, 0.40) * size
    gap = rng.uniform(0.0, 0.06) * size  # open mouth
    outer_t = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    pts[48:60] = np.stack(
        [cx - mouth_w / 2 * np.cos(outer_t), mouth_y - (0.05 * size + gap / 2) * np.sin(outer_t)], axis=1
    )
    inner_t = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    pts[60:68] = np.stack(
        [cx - 0.35 * mouth_w * np.cos(inner_t), mouth_y - (gap / 2) * np.sin(inner_t)], axis=1
    )
    return pts


def _build_faces(
    out: Path, rng: np.random.Generator, seed: int, num_train: int, num_val: int, progress: Progress | None
) -> dict:
    from hrnet.data.landmarks import write_pts

    height = width = 128
    total, done = num_train + num_val, 0
    for split, count in (("train", num_train), ("val", num_val)):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = Image.fromarray(_noisy_background(rng, height, width), mode="RGB")
            draw = ImageDraw.Draw(image)
            size = float(rng.uniform(60, 90))
            cx, cy = rng.uniform(0.4, 0.6) * width, rng.uniform(0.4, 0.6) * height
            pts = _face_points(rng, cx, cy, size)
            angle = rng.uniform(-0.35, 0.35)
            c, s = math.cos(angle), math.sin(angle)
            pts = (pts - (cx, cy)) @ np.array([[c, -s], [s, c]]).T + (cx, cy)
            skin = tuple(int(v) for v in rng.integers(120, 240, size=3))
            draw.polygon([tuple(p) for p in pts[0:17]] + [tuple(p) for p in pts[26:16:-1]], fill=skin)
            oval_top = (pts[19] + pts[24]) / 2 - (0, 0.15 * size)
            draw.ellipse([pts[0][0], oval_top[1], pts[16][0], pts[8][1] - 0.2 * size], fill=skin)
            dark = (40, 30, 30)
            for a, b in ((17, 22), (22, 27), (27, 31), (31, 36)):
                draw.line([tuple(p) for p in pts[a:b]], fill=dark, width=2)
            for a in (36, 42):
                draw.polygon([tuple(p) for p in pts[a : a + 6]], fill=(250, 250, 250), outline=dark)
                centre = pts[a : a + 6].mean(axis=0)
                draw.ellipse([*(centre - 2), *(centre + 2)], fill=(30, 60, 120))
            draw.polygon([tuple(p) for p in pts[48:60]], fill=(170, 60, 70))
            draw.polygon([tuple(p) for p in pts[60:68]], fill=(60, 20, 20))
            name = f"{i + 1:06d}"
            _save_png(image, folder / f"{name}.png")
            write_pts(folder / f"{name}.pts", pts)
            done += 1
            if progress:
                progress(done, total)
    return {
        "format": "300w",
        "num_points": 68,
        "image_size": [height, width],
        "num_train": num_train,
        "num_val": num_val,
    }


# --------------------------------------------------------------------------------------------
# registry and entry point

EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {
    "digits": EmbeddedDataset(
        "digits", "scikit-learn handwritten digits as ImageFolder PNGs", 1438, 359, _build_digits, limited=True
    ),
    "shapes": EmbeddedDataset(
        "shapes", "shapes with COCO instances and semantic masks", 300, 60, _build_shapes
    ),
    "figures": EmbeddedDataset(
        "figures", "stick figures with COCO person keypoints", 400, 80, _build_figures
    ),
    "faces": EmbeddedDataset(
        "faces", "synthetic faces with 68 landmarks in the 300W layout", 300, 60, _build_faces
    ),
}


def generate_dataset(
    name: str,
    out: str | Path,
    *,
    seed: int = 0,
    num_train: int | None = None,
    num_val: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Generate the embedded dataset ``name`` into the folder ``out`` and return its path.

    Args:
        name: one of :data:`EMBEDDED_DATASETS`.
        out: the dataset folder to create (for example ``data/embedded/digits``).
        seed: the random seed; the same seed gives byte-identical files.
        num_train, num_val: image counts, at least 1 (defaults per dataset; ``digits`` has
            1438/359 images at most, its stratified 80/20 split).
        force: replace an existing folder instead of refusing.
        progress: called as ``progress(done, total)`` after each image.

    Raises:
        HRNetError: unknown name, counts below 1 or above what ``digits`` has, or ``out``
            exists and ``force`` is false.
    """
    if name not in EMBEDDED_DATASETS:
        raise HRNetError(f"unknown embedded dataset {name!r}; choose from {', '.join(EMBEDDED_DATASETS)}")
    spec = EMBEDDED_DATASETS[name]
    num_train = spec.num_train if num_train is None else num_train
    num_val = spec.num_val if num_val is None else num_val
    if num_train < 1 or num_val < 1:
        raise HRNetError(f"generate {name}: image counts must be >= 1 (got {num_train}, {num_val})")
    if spec.limited and (num_train > spec.num_train or num_val > spec.num_val):
        raise HRNetError(
            f"generate {name}: {spec.num_train} training and {spec.num_val} validation images at most "
            f"(got {num_train}, {num_val})"
        )
    out = Path(out)
    rng = np.random.default_rng(seed)
    with atomic_directory(out, force=force) as tmp:
        meta = spec.build(tmp, rng, seed, num_train, num_val, progress)
        manifest = {"name": name, "generator_version": GENERATOR_VERSION, "seed": seed, **meta}
        write_json_atomic(tmp / "dataset.json", manifest, indent=2)
    return out
