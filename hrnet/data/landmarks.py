"""Facial landmark datasets: 300W (68 points), WFLW (98), COFW (29).

Every face becomes ``center`` (pixels) and ``scale`` (units of 200 px, the pose convention of
:mod:`hrnet.ops.keypoints`) as in HRNet-Facial-Landmark-Detection: the box of the points (300W),
the given face rectangle (WFLW) or the given centre/scale (CSV), with ``scale`` = longest
side / 200, then enlarged 1.25x. NME normalises by the inter-ocular distance (outer eye
corners): points 36/45 (300W), 60/72 (WFLW), 8/9 (COFW), 0-based.

Layouts read:

- 300W (:class:`Face300W`): the official iBUG folders with ``<name>.pts`` next to
  ``<name>.jpg``/``.png``; ``root`` holds ``afw/``, ``helen/``, ``lfpw/`` and ``ibug/`` (what
  HRNet-Facial-Landmark-Detection calls ``data/300w/images``). A split is the folder
  ``root/<split>`` when it exists (the embedded ``faces`` set: ``train/``, ``val/``), otherwise
  one of the splits of HRNet-Facial-Landmark-Detection's 300W lists: ``train``
  (``face_landmarks_300w_train.csv``: afw, helen/trainset, lfpw/trainset, the 3,148 training
  faces of the 300W protocol), ``common`` (``..._valid_common.csv``: helen/testset,
  lfpw/testset), ``challenging`` (``..._valid_challenge.csv``: ibug) or ``full``
  (``..._valid.csv``, common + challenging: the set its 300W experiment tests on; its faces of
  each subset are also scored apart, :attr:`LandmarkDataset.subsets`). Any other name is read
  as the folder ``root/<split>``.
- WFLW (:class:`WFLW`): ``WFLW_annotations/list_98pt_rect_attr_train_test/
  list_98pt_rect_attr_{train,test}.txt`` (196 coordinates, face box x_min y_min x_max y_max,
  6 attribute flags, image path) with images under ``WFLW_images/``.
- COFW (:class:`COFW`): the original is a MATLAB file; we read it converted to
  HRNet-Facial-Landmark-Detection's CSV layout: ``root/cofw_{train,test}.csv`` with a header and
  rows ``image_name, scale, center_w, center_h, x0, y0, ..., x28, y28`` (image path relative to
  ``root``). :class:`LandmarkCSV` reads the same layout for any point count
  (HRNet-Facial-Landmark-Detection ships 300W and WFLW in it too).

The file index of each layout -- which faces a split holds, with their images and points -- is
a function (:func:`face300w_faces`, :func:`wflw_faces`, :func:`landmark_csv_faces`,
:func:`cofw_faces`) returning the :class:`FaceRecord` of every face and the
:class:`~hrnet.data.io.DataFileError` of every record that does not parse. The readers raise the
first error; the validators of :mod:`hrnet.data.validation.landmarks` report them all and
validate exactly the faces the readers read.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.data.io import IMAGE_EXTENSIONS, DataFileError, read_image
from hrnet.errors import HRNetError

__all__ = [
    "COFW",
    "COFW_FLIP_PAIRS",
    "FACE300W_FLIP_PAIRS",
    "WFLW",
    "WFLW_FLIP_PAIRS",
    "Face300W",
    "FaceRecord",
    "LandmarkCSV",
    "LandmarkDataset",
    "check_landmark_count",
    "cofw_faces",
    "face300w_faces",
    "face300w_subsets",
    "landmark_csv_faces",
    "read_pts",
    "wflw_faces",
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
_LANDMARK_SETS = {68: "300W", 98: "WFLW", 29: "COFW"}


def check_landmark_count(num_points: int, where: str) -> None:
    """HRNetError unless ``num_points`` is a count this project's landmark models are built for
    (each has its inter-ocular pair and flip pairs): 68 (300W), 98 (WFLW) or 29 (COFW)."""
    if num_points not in _INTEROCULAR:
        known = ", ".join(f"{n} ({name})" for n, name in _LANDMARK_SETS.items())
        raise HRNetError(f"{where}: {num_points} landmarks per face; supported: {known}")


_PIXEL_STD = 200.0
_SCALE_PADDING = 1.25


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG ``.pts`` file (``version: 1``, ``n_points: N``, ``{ x y ... }``) as ``[N, 2]``.

    Coordinates are returned as stored. The one ``.pts`` parser: the 300W reader and the
    ``landmarks_300w`` validator both use it.

    Raises:
        DataFileError: missing or non-text file, malformed header or point line, or a point
            count that differs from ``n_points``.
    """
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise DataFileError(path, "landmark file not found") from None
    except UnicodeDecodeError:
        raise DataFileError(path, "not a text .pts file") from None
    except OSError as exc:
        raise DataFileError(path, f"cannot read: {exc}") from None
    try:
        start, end = lines.index("{"), lines.index("}")
        header = dict(line.split(":", 1) for line in lines[:start])
        count = int(header["n_points"])
        rows = [[float(v) for v in line.split()] for line in lines[start + 1 : end]]
    except (ValueError, KeyError):
        raise DataFileError(
            path, "malformed .pts file (expected n_points and a { ... } block of x y)"
        ) from None
    if any(len(row) != 2 or not all(map(math.isfinite, row)) for row in rows):
        raise DataFileError(path, "malformed .pts file (a point line is not two finite numbers)")
    if len(rows) != count:
        raise DataFileError(path, f"n_points is {count} but {len(rows)} points are listed")
    return np.array(rows, dtype=np.float64).reshape(count, 2)


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write ``points [N, 2]`` as an iBUG ``.pts`` file (two decimals)."""
    body = "\n".join(f"{x:.2f} {y:.2f}" for x, y in np.asarray(points))
    Path(path).write_text(f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n")


@dataclass(frozen=True)
class FaceRecord:
    """One face of a split's file index.

    ``source`` is the annotation file and ``record`` the face in it (``line N``; ``None`` when
    the file holds this one face, as a ``.pts`` does). ``image`` is ``None`` when no image was
    found (a ``.pts`` without a same-named image beside it). ``points`` ``[K, 2]`` as stored;
    ``center`` (pixels) and ``scale`` (200 px units, 1.25x padded) as in the module docstring;
    ``attributes`` the six WFLW flags (empty elsewhere).
    """

    source: Path
    record: str | None
    image: Path | None
    points: np.ndarray
    center: np.ndarray
    scale: float
    attributes: tuple[int, ...] = ()


FaceIndex = tuple[list[FaceRecord], list[DataFileError]]


class LandmarkDataset:
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

    :attr:`subsets` names the published subsets within the split (``{"common": [face
    indices], "challenge": [...]}`` for 300W's full set; empty elsewhere): evaluation scores
    each as ``NME_<name>``.
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
        check_landmark_count(self.num_points, where)
        for path, points, _, _ in self.records:
            if len(points) != self.num_points:
                raise HRNetError(f"{path}: {len(points)} landmarks, the others have {self.num_points}")
        self.flip_pairs = _FLIP_PAIRS[self.num_points]
        self.norm_indices = _INTEROCULAR[self.num_points]
        self.transforms = transforms
        self.subsets: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Any, dict]:
        import torch

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


def _records(index: FaceIndex) -> list[tuple[Path, np.ndarray, np.ndarray, float]]:
    """The reader's records of a file index; raises the first error of the index."""
    faces, errors = index
    if errors:
        raise errors[0]
    for face in faces:
        if face.image is None:
            raise HRNetError(f"{face.source}: no image with the same name beside it")
    return [(face.image, face.points, face.center, face.scale) for face in faces]


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


# the subsets a split's score is also given for: HRNet-Facial-Landmark-Detection's
# face_landmarks_300w_valid_common.csv and _valid_challenge.csv, which make up _valid.csv (full)
_300W_SUBSETS: dict[str, dict[str, tuple[str, ...]]] = {
    "full": {"common": _300W_SPLITS["common"], "challenge": _300W_SPLITS["challenging"]},
}


def face300w_subsets(root: str | Path, split: str, faces: Sequence[FaceRecord]) -> dict[str, list[int]]:
    """The indices of ``faces`` (of ``split``) in each published subset of that split, by the
    folder of their ``.pts`` (``{}`` for a split without subsets or read as a plain folder)."""
    root = Path(root)
    if (root / split).is_dir():
        return {}
    return {
        name: [i for i, face in enumerate(faces) if any(face.source.is_relative_to(root / f) for f in folders)]
        for name, folders in _300W_SUBSETS.get(split, {}).items()
    }


def _300w_folders(root: Path, split: str) -> list[Path]:
    if (root / split).is_dir():  # a plain split folder (the embedded set) takes precedence
        return [root / split]
    return [root / sub for sub in _300W_SPLITS.get(split, (split,))]


def face300w_faces(root: str | Path, split: str) -> FaceIndex:
    """The faces of a 300W split (module docstring): every ``.pts`` below the split's folders,
    sorted per folder, with the same-named image beside it (``.jpg``, ``.png``, ...).

    Raises:
        DataFileError: a folder of the split is missing.
    """
    root = Path(root)
    faces, errors = [], []
    for folder in _300w_folders(root, split):
        if not folder.is_dir():
            raise DataFileError(folder, f"folder of 300W split {split!r} not found")
        for pts in sorted(folder.rglob("*.pts")):
            image = next(
                (pts.with_suffix(ext) for ext in IMAGE_EXTENSIONS if pts.with_suffix(ext).is_file()), None
            )
            try:
                points = read_pts(pts)
            except DataFileError as exc:
                errors.append(exc)
                continue
            box = (*points.min(axis=0), *points.max(axis=0)) if len(points) else (0.0, 0.0, 0.0, 0.0)
            faces.append(FaceRecord(pts, None, image, points, *_box_center_scale(*box)))
    return faces, errors


class Face300W(LandmarkDataset):
    """300W (68 points): ``.pts`` files beside their images (:func:`face300w_faces`; see the
    module docstring for the splits)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    ) -> None:
        index = face300w_faces(root, split)
        super().__init__(_records(index), transforms=transforms, where=f"{root} ({split})")
        self.subsets = face300w_subsets(root, split, index[0])


# --------------------------------------------------------------------------------------------
# WFLW


WFLW_NUM_POINTS = 98


def wflw_annotation_file(root: str | Path, split: str) -> Path:
    """``root/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_<split>.txt``."""
    lists = Path(root) / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    return lists / f"list_98pt_rect_attr_{split}.txt"


def wflw_faces(root: str | Path, split: str, *, num_points: int | None = WFLW_NUM_POINTS) -> FaceIndex:
    """The faces of a WFLW annotation list, one per non-empty line: ``2K`` coordinates, the face
    box (x_min y_min x_max y_max), six attribute flags and the image path under ``WFLW_images/``.

    ``num_points`` is ``K`` (98); with ``None`` any ``K`` is accepted, so that a validator can
    report a wrong landmark count as such. A line with the wrong number of fields or a
    non-numeric value is an error naming the line.

    Raises:
        DataFileError: the annotation list is missing.
    """
    root = Path(root)
    ann = wflw_annotation_file(root, split)
    if not ann.is_file():
        raise DataFileError(ann, "WFLW annotation list not found")
    faces, errors = [], []
    for lineno, line in enumerate(ann.read_text().splitlines(), start=1):
        fields, record = line.split(), f"line {lineno}"
        if not fields:
            continue
        n = len(fields)
        if num_points is None and (n < 11 or (n - 11) % 2):
            errors.append(DataFileError(ann, f"{n} fields, expected 2K + 11", record=record))
            continue
        if num_points is not None and n != 2 * num_points + 11:
            errors.append(DataFileError(ann, f"{n} fields, expected {2 * num_points + 11}", record=record))
            continue
        try:
            values = [float(v) for v in fields[:-1]]
        except ValueError:
            errors.append(DataFileError(ann, "non-numeric coordinate or flag", record=record))
            continue
        points = np.array(values[:-10]).reshape(-1, 2)
        center, scale = _box_center_scale(*values[-10:-6])
        attributes = tuple(int(v) for v in values[-6:])
        faces.append(
            FaceRecord(ann, record, root / "WFLW_images" / fields[-1], points, center, scale, attributes)
        )
    return faces, errors


class WFLW(LandmarkDataset):
    """WFLW (98 points) from its official annotation lists (:func:`wflw_faces`); ``split`` is
    ``train`` or ``test``.

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
        index = wflw_faces(root, split)
        records = _records(index)
        self.attributes = np.array([face.attributes for face in index[0]], dtype=np.int64).reshape(-1, 6)
        super().__init__(records, transforms=transforms, where=str(wflw_annotation_file(root, split)))


# --------------------------------------------------------------------------------------------
# CSV (HRNet-Facial-Landmark-Detection's layout) and COFW


def landmark_csv_faces(root: str | Path, csv_file: str | Path) -> FaceIndex:
    """The faces of a landmark CSV (HRNet-Facial-Landmark-Detection's layout): a header, then
    one face per non-empty row ``image_name, scale, center_w, center_h, x0, y0, ...`` with the
    image path relative to ``root`` and ``scale`` in 200 px units before the 1.25 padding (which
    is applied here, as HRNet-Facial-Landmark-Detection does). A row with a non-numeric or
    missing value or an odd number of coordinates is an error naming the line.

    Raises:
        DataFileError: the CSV is missing.
    """
    root, csv_file = Path(root), Path(csv_file)
    if not csv_file.is_file():
        raise DataFileError(csv_file, "landmark CSV not found")
    with csv_file.open(newline="") as f:
        rows = list(csv.reader(f))
    faces, errors = [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        record = f"line {lineno}"
        try:
            scale, cx, cy = float(row[1]), float(row[2]), float(row[3])
            coords = [float(v) for v in row[4:]]
        except (ValueError, IndexError):
            errors.append(DataFileError(csv_file, "non-numeric or missing value", record=record))
            continue
        if len(coords) % 2:
            errors.append(DataFileError(csv_file, "odd number of coordinates", record=record))
            continue
        points = np.array(coords).reshape(-1, 2)
        faces.append(
            FaceRecord(csv_file, record, root / row[0], points, np.array([cx, cy]), scale * _SCALE_PADDING)
        )
    return faces, errors


def cofw_faces(root: str | Path, split: str) -> FaceIndex:
    """The faces of ``root/cofw_<split>.csv`` (:func:`landmark_csv_faces`)."""
    return landmark_csv_faces(root, Path(root) / f"cofw_{split}.csv")


class LandmarkCSV(LandmarkDataset):
    """HRNet-Facial-Landmark-Detection's CSV layout (:func:`landmark_csv_faces`): a header, then
    ``image_name, scale, center_w, center_h, x0, y0, ...``.

    ``scale`` is in 200 px units before the 1.25 padding (which this reader applies, as
    HRNet-Facial-Landmark-Detection does).
    """

    def __init__(
        self,
        root: str | Path,
        csv_file: str | Path,
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    ) -> None:
        records = _records(landmark_csv_faces(root, csv_file))
        super().__init__(records, transforms=transforms, where=str(csv_file))


class COFW(LandmarkCSV):
    """COFW (29 points) converted to HRNet-Facial-Landmark-Detection's CSV layout:
    ``root/cofw_{train,test}.csv`` (:func:`cofw_faces`)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    ) -> None:
        super().__init__(root, Path(root) / f"cofw_{split}.csv", transforms=transforms)
