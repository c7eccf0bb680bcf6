"""Input pipeline throughput: images per second for one data-loading worker (one thread).

Builds, in a temporary folder, an ImageNet-like ImageFolder of JPEGs (500x375, quality 90)
and a COCO-like instances set of 640x480 JPEGs with 1-4 polygon objects each, then times
(after a warm-up pass) decoding + transforms in the main process, single-threaded, as one
DataLoader worker does:

- classification train: RandomResizedCrop 224 + flip + normalise,
- classification eval: resize 256 + centre crop 224 + normalise,
- detection train: boxes, resize to short side 800 (long <= 1333) + flip, with and without
  instance masks.

Usage: ``python bench/data_throughput.py [--images 64] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def _make_imagefolder(root: Path, count: int, rng: np.random.Generator) -> None:
    for i in range(count):
        folder = root / "train" / f"class_{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(375 // 8, 500 // 8, 3), dtype=np.uint8)
        img = Image.fromarray(pixels).resize((500, 375), Image.Resampling.BICUBIC)
        img.save(folder / f"{i:05d}.jpg", quality=90)


def _make_coco(root: Path, count: int, rng: np.random.Generator) -> tuple[Path, Path]:
    images, annotations = [], []
    for i in range(count):
        pixels = rng.integers(0, 256, size=(480 // 8, 640 // 8, 3), dtype=np.uint8)
        img = Image.fromarray(pixels).resize((640, 480), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            x, y = rng.uniform(0, 500), rng.uniform(0, 350)
            w, h = rng.uniform(20, 140), rng.uniform(20, 130)
            poly = [x, y, x + w, y, x + w, y + h, x, y + h]
            draw.polygon(poly, fill=(255, 0, 0))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "segmentation": [poly],
                    "iscrowd": 0,
                }
            )
        (root / "images").mkdir(parents=True, exist_ok=True)
        img.save(root / "images" / f"{i:05d}.jpg", quality=90)
        images.append({"id": i + 1, "file_name": f"{i:05d}.jpg", "height": 480, "width": 640})
    ann_file = root / "instances.json"
    ann_file.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]})
    )
    return root / "images", ann_file


def _images_per_second(dataset: torch.utils.data.Dataset, passes: int = 2) -> float:
    for i in range(min(len(dataset), 8)):  # warm-up
        dataset[i]
    start = time.perf_counter()
    for _ in range(passes):
        for i in range(len(dataset)):
            dataset[i]
    return passes * len(dataset) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="images per synthetic dataset")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from hrnet.data.coco import CocoDetection
    from hrnet.data.imagefolder import ImageFolderDataset
    from hrnet.data.transforms import (
        classification_eval_transforms,
        classification_train_transforms,
        detection_train_transforms,
    )

    rng = np.random.default_rng(0)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _make_imagefolder(root / "cls", args.images, rng)
        image_dir, ann_file = _make_coco(root / "det", args.images, rng)
        cases = {
            "classification_train_224": ImageFolderDataset(
                root / "cls", "train", transforms=classification_train_transforms(size=224)
            ),
            "classification_eval_224": ImageFolderDataset(
                root / "cls", "train", transforms=classification_eval_transforms(size=224)
            ),
            "detection_train_800_boxes": CocoDetection(
                image_dir, ann_file, transforms=detection_train_transforms(min_size=800, max_size=1333)
            ),
            "detection_train_800_masks": CocoDetection(
                image_dir,
                ann_file,
                with_masks=True,
                transforms=detection_train_transforms(min_size=800, max_size=1333),
            ),
        }
        for name, dataset in cases.items():
            results[name] = round(_images_per_second(dataset), 1)
            print(f"{name:28s} {results[name]:8.1f} images/s per worker")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
