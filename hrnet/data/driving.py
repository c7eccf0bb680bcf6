"""Driving-scene segmentation sets beyond Cityscapes: ACDC, DADA-seg and SynPASS.

================  ==========================================================  =========
dataset           layout (``ROOT`` = the dataset folder, ``S`` = the split)    classes
================  ==========================================================  =========
ACDC              ``rgb_anon/<condition>/S/<seq>/<name>_rgb_anon.png`` with     19
                  ``gt/<condition>/S/<seq>/<name>_gt_labelTrainIds.png``;
                  conditions fog, night, rain, snow; trainIds as stored
                  (Cityscapes order), everything above 18 ignored
DADA-seg          ``leftImg8bit/S/**/*.jpg`` with ``gtFine/S/**/*labelTrainIds  19
                  .png``, paired in sorted order (jamycheung/ISSAFE
                  ``dataloaders/dada.py``); evaluation only. Image and label
                  are cropped to ISSAFE's box (left 162, top 0, right 1422,
                  bottom 600) and resized back to the frame size (label
                  nearest, image bilinear), as its ``CropBlackArea`` does
SynPASS           ``img/<weather>/S/<map>/<NNNNNN>.jpg`` with                   22
                  ``semantic/<weather>/S/<map>/<NNNNNN>_trainID.png``
                  (jamycheung/Trans4PASS ``segmentron/data/dataloader/
                  synpass.py``): stored 0 ignored, k -> k - 1, 255 ignored
================  ==========================================================  =========

Each layout's file index (:func:`acdc_files`, :func:`dada_seg_files`, :func:`synpass_files`)
is shared by the reader and its validator (:mod:`hrnet.data.validation.driving`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hrnet.data.io import DataFileError
from hrnet.data.segmentation import (
    CITYSCAPES_CLASSES,
    IGNORE_INDEX,
    SegmentationDataset,
    _require_label_maps,
)
from hrnet.errors import HRNetError

__all__ = [
    "ACDC",
    "ACDC_CONDITIONS",
    "DADA_CROP",
    "SYNPASS_CLASSES",
    "DADASeg",
    "SynPASS",
    "acdc_files",
    "dada_seg_files",
    "synpass_files",
    "train_id_lut",
]

Pairs = list[tuple[Path, Path]]
Transforms = Callable[[Any, Any], tuple[Any, Any]] | None

ACDC_CONDITIONS: tuple[str, ...] = ("fog", "night", "rain", "snow")
# jamycheung/ISSAFE dataloaders/dada.py transform_val: CropBlackArea(crop=[162, 0, 1422, 600])
DADA_CROP: tuple[int, int, int, int] = (162, 0, 1422, 600)  # left, top, right, bottom
# jamycheung/Trans4PASS segmentron/data/dataloader/synpass.py `classes`, training-id order
SYNPASS_CLASSES: tuple[str, ...] = (
    "Building", "Fence", "Other", "Pedestrian", "Pole", "RoadLine", "Road", "SideWalk",
    "Vegetation", "Vehicles", "Wall", "TrafficSign", "Sky", "Ground", "Bridge", "RailTrack",
    "GroundRail", "TrafficLight", "Static", "Dynamic", "Water", "Terrain",
)  # fmt: skip


def train_id_lut(num_classes: int, *, offset: int = 0) -> np.ndarray:
    """Stored values ``offset .. offset+num_classes-1`` -> training ids ``0..num_classes-1``,
    every other value -> 255 (ignored)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    lut[offset : offset + num_classes] = np.arange(num_classes)
    return lut


# --------------------------------------------------------------------------------------------
# ACDC


def acdc_files(root: str | Path, split: str) -> Pairs:
    """Every ``rgb_anon/<condition>/<split>/**/<name>_rgb_anon.png`` of the four conditions
    (sorted) with ``gt/<condition>/<split>/<same folders>/<name>_gt_labelTrainIds.png``.

    Raises:
        DataFileError: no condition has a ``rgb_anon/<condition>/<split>`` folder.
    """
    root = Path(root)
    folders = [root / "rgb_anon" / c / split for c in ACDC_CONDITIONS]
    if not any(f.is_dir() for f in folders):
        raise DataFileError(
            root / "rgb_anon", f"no <condition>/{split} folder (conditions {', '.join(ACDC_CONDITIONS)})"
        )
    suffix = "_rgb_anon.png"
    pairs = []
    for condition, folder in zip(ACDC_CONDITIONS, folders):
        for image in sorted(folder.rglob(f"*{suffix}")):
            inner = image.parent.relative_to(folder)
            name = image.name.removesuffix(suffix)
            pairs.append((image, root / "gt" / condition / split / inner / f"{name}_gt_labelTrainIds.png"))
    return pairs


class ACDC(SegmentationDataset):
    """ACDC (adverse conditions: fog, night, rain, snow) semantic segmentation: the pairs of
    :func:`acdc_files`, 19 Cityscapes classes stored as trainIds (255 ignored)."""

    def __init__(self, root: str | Path, split: str = "train", *, transforms: Transforms = None) -> None:
        samples = _require_label_maps(acdc_files(root, split))
        super().__init__(
            samples,
            classes=CITYSCAPES_CLASSES,
            lut=train_id_lut(len(CITYSCAPES_CLASSES)),
            transforms=transforms,
            where=str(Path(root) / "rgb_anon"),
        )


# --------------------------------------------------------------------------------------------
# DADA-seg


def dada_seg_files(root: str | Path, split: str) -> Pairs:
    """The ``*.jpg`` below ``leftImg8bit/<split>`` and the ``*labelTrainIds.png`` below
    ``gtFine/<split>``, each list sorted and paired by position (as ISSAFE's loader pairs them).

    Raises:
        DataFileError: ``leftImg8bit/<split>`` is not a folder, or the two lists differ in length.
    """
    root = Path(root)
    image_root, label_root = root / "leftImg8bit" / split, root / "gtFine" / split
    if not image_root.is_dir():
        raise DataFileError(image_root, "split folder not found")
    images = sorted(image_root.rglob("*.jpg"), key=str)  # string order, as ISSAFE sorts its list
    labels = sorted(label_root.rglob("*labelTrainIds.png"), key=str) if label_root.is_dir() else []
    if len(images) != len(labels):
        raise DataFileError(
            label_root,
            f"{len(labels)} *labelTrainIds.png label maps for {len(images)} images in {image_root}",
        )
    return list(zip(images, labels))


class DADASeg(SegmentationDataset):
    """DADA-seg (accident scenes of DADA-2000, evaluation only): the pairs of
    :func:`dada_seg_files`, 19 Cityscapes trainIds; each image and label map is cropped to
    :data:`DADA_CROP` and resized back to the frame size before ``transforms``.

    Raises:
        HRNetError: on access, a frame smaller than the crop box.
    """

    def __init__(self, root: str | Path, split: str = "val", *, transforms: Transforms = None) -> None:
        super().__init__(
            dada_seg_files(root, split),
            classes=CITYSCAPES_CLASSES,
            lut=train_id_lut(len(CITYSCAPES_CLASSES)),
            transforms=transforms,
            where=str(Path(root) / "leftImg8bit" / split),
        )

    def read_mask(self, index: int) -> np.ndarray:
        """The cropped and resized training-id label map of sample ``index``."""
        mask = super().read_mask(index)
        return np.asarray(self._crop(Image.fromarray(mask), Image.Resampling.NEAREST, self.samples[index][1]))

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch
        from torchvision import tv_tensors

        from hrnet.data.io import open_image

        image_path, mask_path = self.samples[index]
        picture = self._crop(open_image(image_path), Image.Resampling.BILINEAR, image_path)
        mask = self.read_mask(index)
        if (picture.height, picture.width) != mask.shape:
            raise HRNetError(
                f"{mask_path}: label map is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{image_path.name} is {picture.width}x{picture.height}"
            )
        image = tv_tensors.Image(torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1))
        target = tv_tensors.Mask(torch.from_numpy(mask.copy()))
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    @staticmethod
    def _crop(picture: Image.Image, resample: Image.Resampling, path: Path) -> Image.Image:
        _, _, right, bottom = DADA_CROP
        if picture.width < right or picture.height < bottom:
            raise HRNetError(
                f"{path}: {picture.width}x{picture.height} is smaller than the DADA-seg crop box {DADA_CROP}"
            )
        return picture.crop(DADA_CROP).resize((picture.width, picture.height), resample)


# --------------------------------------------------------------------------------------------
# SynPASS


def synpass_files(root: str | Path, split: str) -> Pairs:
    """Every ``img/<weather>/<split>/<map>/<stem>.jpg`` (sorted) with
    ``semantic/<weather>/<split>/<map>/<stem>_trainID.png``.

    Raises:
        DataFileError: no ``img/<weather>/<split>`` folder.
    """
    root = Path(root)
    folders = sorted(p for p in (root / "img").glob(f"*/{split}") if p.is_dir())
    if not folders:
        raise DataFileError(root / "img", f"no <weather>/{split} folder")
    pairs = []
    for image in sorted(p for folder in folders for p in folder.glob("*/*.jpg")):
        weather, _, map_name = image.parts[-4:-1]
        pairs.append((image, root / "semantic" / weather / split / map_name / f"{image.stem}_trainID.png"))
    return pairs


class SynPASS(SegmentationDataset):
    """SynPASS synthetic panoramas (Trans4PASS+): the pairs of :func:`synpass_files`, 22 classes;
    stored 1..22 -> 0..21, every other value (0, 255) ignored."""

    def __init__(self, root: str | Path, split: str = "train", *, transforms: Transforms = None) -> None:
        samples = _require_label_maps(synpass_files(root, split))
        super().__init__(
            samples,
            classes=SYNPASS_CLASSES,
            # Trans4PASS's _key: 0 -> ignored, k -> k - 1; values it has no key for
            # (23..254) are ignored too rather than becoming ids beyond the 22 classes
            lut=train_id_lut(len(SYNPASS_CLASSES), offset=1),
            transforms=transforms,
            where=str(Path(root) / "img"),
        )
