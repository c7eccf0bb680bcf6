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


def _shape_polygon(category: int, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a circle (24-gon), square or triangle centred on (cx, cy)."""
    sides = {1: 24, 2: 4, 3: 3}[category]
    start = angle + (math.pi / 4 if category == 2 else -math.pi / 2)
    return [
        (cx + radius * math.cos(start + 2 * math.pi * k / sides), cy + radius * math.sin(start + 2 * math.pi * k / sides))
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
    x0, y0, x1, y1 = max(0.0, min(xs)), max(0.0, min(ys)), min(float(width), max(xs)), min(float(height), max(ys))
    return {"segmentation": [flat], "area": area, "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]}


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
            "info": {"description": "hrnet-zoo embedded shapes", "version": str(GENERATOR_VERSION), "seed": seed},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": SHAPES_CATEGORIES,
        }
        write_json_atomic(out / "annotations" / f"instances_{split}.json", coco)
    return {
        "format": "coco-instances",
        "num_classes": 3,
        "image_size": [height, width],
        "num_train": num_train,
        "num_val": num_val,
    }


# --------------------------------------------------------------------------------------------
# registry and entry point

EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {
    "digits": EmbeddedDataset("digits", "scikit-learn handwritten digits as ImageFolder PNGs", 1438, 359, _build_digits),
    "shapes": EmbeddedDataset("shapes", "shapes with COCO instances and semantic masks", 300, 60, _build_shapes),
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
        num_train, num_val: image counts (defaults per dataset; ``digits`` caps them at the
            1438/359 images of its stratified 80/20 split).
        force: replace an existing folder instead of refusing.
        progress: called as ``progress(done, total)`` after each image.

    Raises:
        HRNetError: unknown name, bad counts, or ``out`` exists and ``force`` is false.
    """
    if name not in EMBEDDED_DATASETS:
        raise HRNetError(f"unknown embedded dataset {name!r}; choose from {', '.join(EMBEDDED_DATASETS)}")
    spec = EMBEDDED_DATASETS[name]
    num_train = spec.num_train if num_train is None else num_train
    num_val = spec.num_val if num_val is None else num_val
    if num_train < 0 or num_val < 0:
        raise HRNetError(f"generate {name}: image counts must be >= 0 (got {num_train}, {num_val})")
    out = Path(out)
    rng = np.random.default_rng(seed)
    with atomic_directory(out, force=force) as tmp:
        meta = spec.build(tmp, rng, seed, num_train, num_val, progress)
        manifest = {"name": name, "generator_version": GENERATOR_VERSION, "seed": seed, **meta}
        write_json_atomic(tmp / "dataset.json", manifest, indent=2)
    return out
