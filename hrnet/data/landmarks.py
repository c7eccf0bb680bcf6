"""Facial landmark datasets: 300W (68 points), WFLW (98), COFW (29).

Every face becomes ``center`` (pixels) and ``scale`` (units of 200 px, the pose convention of
:mod:`hrnet.pose_utils`) as in the HRNet facial landmark code (FL): the box of the points (300W),
the given face rectangle (WFLW) or the given centre/scale (CSV), with ``scale`` = longest
side / 200, then enlarged 1.25x. NME normalises by the inter-ocular distance (outer eye
corners): points 36/45 (300W), 60/72 (WFLW), 8/9 (COFW), 0-based.

Layouts read:

- 300W (:class:`Face300W`): the official folders with ``<name>.pts`` next to ``<name>.jpg``/
  ``.png``; a split is the folder ``root/<split>`` when it exists (the embedded ``faces`` set:
  ``train/``, ``val/``), otherwise ``train`` (afw, helen/trainset, lfpw/trainset), ``common``
  (helen/testset, lfpw/testset), ``challenging`` (ibug) or ``full`` (common + challenging).
- WFLW (:class:`WFLW`): ``WFLW_annotations/list_98pt_rect_attr_train_test/
  list_98pt_rect_attr_{train,test}.txt`` (196 coordinates, face box x_min y_min x_max y_max,
  6 attribute flags, image path) with images under ``WFLW_images/``.
- COFW (:class:`COFW`): the original is a MATLAB file; we read it converted to FL's CSV layout:
  ``root/cofw_{train,test}.csv`` with a header and rows ``image_name, scale, center_w,
  center_h, x0, y0, ..., x28, y28`` (image path relative to ``root``). :class:`LandmarkCSV` reads
  the same layout for any point count (FL ships 300W and WFLW in it too).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hrnet.data.io import IMAGE_EXTENSIONS, read_image
from hrnet.errors import HRNetError

__all__ = [
    "COFW",
    "COFW_FLIP_PAIRS",
    "FACE300W_FLIP_PAIRS",
    "WFLW",
    "WFLW_FLIP_PAIRS",
    "Face300W",
    "LandmarkCSV",
    "LandmarkDataset",
    "read_pts",
    "write_pts",
]

# Left/right point pairs swapped by a horizontal flip (0-based), from the point layouts.
FACE300W_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    *((i, 16 - i) for i in range(8)),  # jaw
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),  # brows
    (31, 35), (32, 34),  # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),  # outer lips
    (60, 64), (61, 63), (65, 67),  # inner lips
)  # fmt: skip
WFLW_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    *((i, 32 - i) for i in range(16)),  # contour
    (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47),  # brows
    (55, 59), (56, 58),  # nose
    (60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73),  # eyes
    (76, 82), (77, 81), (78, 80), (87, 83), (86, 84),  # outer lips
    (88, 92), (89, 91), (95, 93),  # inner lips
    (96, 97),  # pupils
)  # fmt: skip
COFW_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 1), (4, 6), (2, 3), (5, 7), (8, 9), (10, 11), (12, 14), (16, 17), (13, 15), (18, 19), (22, 23),
)  # fmt: skip

# outer eye corners used for the inter-ocular normalisation, per point count
_INTEROCULAR: dict[int, tuple[int, int]] = {68: (36, 45), 98: (60, 72), 29: (8, 9)}
_FLIP_PAIRS: dict[int, tuple[tuple[int, int], ...]] = {
    68: FACE300W_FLIP_PAIRS,
    98: WFLW_FLIP_PAIRS,
    29: COFW_FLIP_PAIRS,
}
_PIXEL_STD = 200.0
_SCALE_PADDING = 1.25


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG ``.pts`` file (``version: 1``, ``n_points: N``, ``{ x y ... }``) as ``[N, 2]``.

    Coordinates are returned as stored.

    Raises:
        HRNetError: missing file, malformed header, or a point count that differs from ``n_points``.
    """
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise HRNetError(f"{path}: landmark file not found") from None
    except UnicodeDecodeError:
        raise HRNetError(f"{path}: not a text .pts file") from None
    try:
        header = dict(line.split(":", 1) for line in lines[: lines.index("{")])
        count = int(header["n_points"])
        points = np.array(
            [[float(v) for v in line.split()] for line in lines[lines.index("{") + 1 : lines.index("}")]]
        )
    except (ValueError, KeyError):
        raise HRNetError(
            f"{path}: malformed .pts file (expected n_points and a {{ ... }} block of x y)"
        ) from None
    if points.shape != (count, 2):
        raise HRNetError(f"{path}: n_points is {count} but {len(points)} points are listed")
    return points


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write ``points [N, 2]`` as an iBUG ``.pts`` file (two decimals)."""
    body = "\n".join(f"{x:.2f} {y:.2f}" for x, y in np.asarray(points))
    Path(path).write_text(f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n")


class LandmarkDataset(Dataset):
    """Faces with a fixed number of landmarks; one item per face.

    Items are ``(image, target)``. Without ``transforms``: ``tv_tensors.Image`` uint8
    ``[3, H, W]`` (the whole image) and ``target`` = ``{"keypoints" float32 [K, 3] (x, y, 2),
    "points" float32 [K, 2] (image pixels, for the NME), "center" float32 [2], "scale" float32
    [2] (200 px units, 1.25x padded), "norm_dist" float (inter-ocular distance), "image_id" int
    (the index)}``. Pass :func:`hrnet.data.transforms.landmark_train_transforms` (with
    :attr:`flip_pairs`) to get 256x256 crops and 64x64 heatmaps.

    Args:
        records: ``(image path, points [K, 2], center [2], scale)`` per face.
        transforms: called as ``transforms(image, target) -> (image, target)``.
    """

    def __init__(
        self,
        records: Sequence[tuple[Path, np.ndarray, np.ndarray, float]],
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
        where: str = "",
    ) -> None:
        if not records:
            raise HRNetError(f"{where or type(self).__name__}: no faces found")
        self.records = list(records)
        self.num_points = len(self.records[0][1])
        if self.num_points not in _INTEROCULAR:
            raise HRNetError(
                f"{where}: {self.num_points} landmarks; supported: 68 (300W), 98 (WFLW), 29 (COFW)"
            )
        for path, points, _, _ in self.records:
            if len(points) != self.num_points:
                raise HRNetError(f"{path}: {len(points)} landmarks, the others have {self.num_points}")
        self.flip_pairs = _FLIP_PAIRS[self.num_points]
        self.norm_indices = _INTEROCULAR[self.num_points]
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Any, dict]:
        path, points, center, scale = self.records[index]
        image = read_image(path, record=f"face {index}")
        a, b = self.norm_indices
        keypoints = np.concatenate([points, np.full((len(points), 1), 2.0)], axis=1)
        target = {
            "keypoints": torch.from_numpy(keypoints).to(torch.float32),
            "points": torch.from_numpy(np.asarray(points)).to(torch.float32),
            "center": torch.tensor(center, dtype=torch.float32),
            "scale": torch.tensor([scale, scale], dtype=torch.float32),
            "norm_dist": float(np.linalg.norm(points[a] - points[b])),
            "image_id": index,
        }
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"{type(self).__name__}(faces={len(self)}, points={self.num_points})"


def _box_center_scale(x0: float, y0: float, x1: float, y1: float) -> tuple[np.ndarray, float]:
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return center, max(x1 - x0, y1 - y0) / _PIXEL_STD * _SCALE_PADDING


# --------------------------------------------------------------------------------------------
# 300W

_300W_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "common": ("helen/testset", "lfpw/testset"),
    "challenging": ("ibug",),
    "full": ("helen/testset", "lfpw/testset", "ibug"),
}


class Face300W(LandmarkDataset):
    """300W (68 points): ``.pts`` files beside their images (see the module docstring for splits)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    ) -> None:
        root = Path(root)
        if (root / split).is_dir():  # a plain split folder (the embedded set) takes precedence
            folders = [root / split]
        else:
            folders = [root / sub for sub in _300W_SPLITS.get(split, (split,))]
        records = []
        for folder in folders:
            if not folder.is_dir():
                raise HRNetError(f"{folder}: folder of 300W split {split!r} not found")
            for pts in sorted(folder.rglob("*.pts")):
                image = next(
                    (pts.with_suffix(ext) for ext in IMAGE_EXTENSIONS if pts.with_suffix(ext).is_file()), None
                )
                if image is None:
                    raise HRNetError(f"{pts}: no image with the same name beside it")
                points = read_pts(pts)
                center, scale = _box_center_scale(*points.min(axis=0), *points.max(axis=0))
                records.append((image, points, center, scale))
        super().__init__(records, transforms=transforms, where=f"{root} ({split})")


# --------------------------------------------------------------------------------------------
# WFLW


class WFLW(LandmarkDataset):
    """WFLW (98 points) from its official annotation lists; ``split`` is ``train`` or ``test``.

    ``attributes`` holds each face's six 0/1 flags (pose, expression, illumination, make-up,
    occlusion, blur) for the subset NMEs.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    ) -> None:
        root = Path(root)
        ann = (
            root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / f"list_98pt_rect_attr_{split}.txt"
        )
        if not ann.is_file():
            raise HRNetError(f"{ann}: WFLW annotation list not found")
        records, attributes = [], []
        for lineno, line in enumerate(ann.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 196 + 4 + 6 + 1:
                raise HRNetError(f"{ann}: line {lineno}: {len(fields)} fields, expected 207")
            try:
                values = [float(v) for v in fields[:206]]
            except ValueError:
                raise HRNetError(f"{ann}: line {lineno}: non-numeric coordinate or flag") from None
            points = np.array(values[:196]).reshape(98, 2)
            center, scale = _box_center_scale(*values[196:200])
            records.append((root / "WFLW_images" / fields[206], points, center, scale))
            attributes.append([int(v) for v in values[200:206]])
        self.attributes = np.array(attributes, dtype=np.int64).reshape(-1, 6)
        super().__init__(records, transforms=transforms, where=str(ann))


# --------------------------------------------------------------------------------------------
# CSV (FL's layout) and COFW


class LandmarkCSV(LandmarkDataset):
    """FL's CSV layout: header, then ``image_name, scale, center_w, center_h, x0, y0, ...``.

    ``scale`` is in 200 px units before the 1.25 padding (which this reader applies, as FL does).
    """

    def __init__(
        self,
        root: str | Path,
        csv_file: str | Path,
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    ) -> None:
        root, csv_file = Path(root), Path(csv_file)
        if not csv_file.is_file():
            raise HRNetError(f"{csv_file}: landmark CSV not found")
        records = []
        with csv_file.open(newline="") as f:
            rows = list(csv.reader(f))
        for lineno, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            try:
                scale, cx, cy, *coords = (float(v) for v in row[1:])
            except ValueError:
                raise HRNetError(f"{csv_file}: line {lineno}: non-numeric value") from None
            if len(coords) % 2:
                raise HRNetError(f"{csv_file}: line {lineno}: odd number of coordinates")
            points = np.array(coords).reshape(-1, 2)
            records.append((root / row[0], points, np.array([cx, cy]), scale * _SCALE_PADDING))
        super().__init__(records, transforms=transforms, where=str(csv_file))


class COFW(LandmarkCSV):
    """COFW (29 points) converted to FL's CSV layout: ``root/cofw_{train,test}.csv``."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    ) -> None:
        super().__init__(root, Path(root) / f"cofw_{split}.csv", transforms=transforms)
