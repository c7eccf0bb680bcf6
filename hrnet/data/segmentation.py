"""Semantic segmentation datasets: image + label map pairs in each benchmark's layout.

Every dataset here is a list of ``(image, label map)`` file pairs plus a 256-entry lookup
table that turns the stored label values into training ids (``0..C-1``, 255 = ignore):

================  ==========================================================  =========
dataset           stored labels -> training ids                               classes
================  ==========================================================  =========
MaskFolder        as stored (the embedded ``shapes`` masks: 0 background,      given
                  category id, 255 ignore)
Cityscapes        ``*_gtFine_labelIds.png`` ids -> trainIds (cityscapesScripts  19
                  ``helpers/labels.py``), everything else 255
ADE20K            0 (other) -> 255, k -> k - 1 ("reduce zero label")           150
PascalVOC         0..20 kept, 255 (object boundary in SegmentationClass) kept  21
PascalContext     0 (background) -> 255, k -> k - 1 (the 59-class setting)     59
================  ==========================================================  =========

Each layout's file index -- which ``(image, label map)`` pairs a split holds -- is a function
(:func:`mask_folder_files`, :func:`cityscapes_files`, :func:`ade20k_files`, :func:`voc_files`,
:func:`pascal_context_files`) that the reader and the matching validator of
:mod:`hrnet.data.validation.segmentation` both use. It lists the label map each image should
have without checking that it exists: the readers refuse a missing one, the validators report it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.data.io import DataFileError, image_files, read_image, read_label_map, read_split_file
from hrnet.errors import HRNetError

__all__ = [
    "ADE20K",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_ID_TO_TRAIN_ID",
    "PASCAL_CONTEXT_CLASSES",
    "TEST_SCALES",
    "VOC_CLASSES",
    "Cityscapes",
    "MaskFolderSegmentation",
    "PascalContext",
    "PascalVOC",
    "SegmentationDataset",
    "ade20k_files",
    "cityscapes_files",
    "MASK_CLASSES_FILE",
    "mask_folder_classes",
    "mask_folder_files",
    "pascal_context_files",
    "reduce_zero_label_lut",
    "voc_files",
]

# the test scale of the MMSegmentation benchmark sets, (height, width): each test image is
# rescaled, keeping its aspect ratio, to the largest size that fits (long side <= the larger,
# short side <= the smaller number), and a multi-scale ratio r fits it in int(r * scale);
# open-mmlab/mmsegmentation (v0.x) configs/_base_/datasets/{cityscapes,ade20k,pascal_voc12,
# pascal_context}.py, test_pipeline MultiScaleFlipAug img_scale (2048, 1024), (2048, 512),
# (2048, 512), (520, 520). The other sets are scored at their own size.
TEST_SCALES: dict[str, tuple[int, int]] = {
    "cityscapes": (1024, 2048),
    "ade20k": (512, 2048),
    "voc": (512, 2048),
    "pascal_context": (520, 520),
}

Pairs = list[tuple[Path, Path]]

IGNORE_INDEX = 255


def identity_lut() -> np.ndarray:
    """Stored value -> itself."""
    return np.arange(256, dtype=np.uint8)


def reduce_zero_label_lut() -> np.ndarray:
    """0 -> 255 (ignored), k -> k - 1, 255 stays 255 (ADE20K, Pascal Context 59)."""
    lut = (np.arange(256) - 1).astype(np.int64)
    lut[0] = IGNORE_INDEX
    lut[IGNORE_INDEX] = IGNORE_INDEX
    return lut.astype(np.uint8)


class SegmentationDataset:
    """Pairs of image and label map files, with a lookup table to training ids.

    Items are ``(image, mask)``: ``tv_tensors.Image`` uint8 ``[3, H, W]`` and
    ``tv_tensors.Mask`` uint8 ``[H, W]`` of training ids (255 = ignore), or what
    ``transforms(image, mask)`` makes of them (see
    :func:`hrnet.data.transforms.segmentation_train_transforms`).

    Args:
        samples: ``(image path, label map path)`` pairs.
        classes: class names, index = training id.
        lut: ``uint8 [256]`` stored label value -> training id.
        transforms: called as ``transforms(image, mask) -> (image, mask)``.

    Raises:
        HRNetError: no samples; on access, a missing or undecodable file, or an image and
            label map of different sizes.
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, Path]],
        *,
        classes: Sequence[str],
        lut: np.ndarray,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        where: str = "",
    ) -> None:
        if not samples:
            raise HRNetError(f"{where or type(self).__name__}: no image/label pairs found")
        if lut.shape != (256,):
            raise ValueError("lut must have 256 entries")
        self.samples = [(Path(i), Path(m)) for i, m in samples]
        self.classes = list(classes)
        self.lut = lut.astype(np.uint8)
        self.transforms = transforms

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def read_mask(self, index: int) -> np.ndarray:
        """The training-id label map of sample ``index``: uint8 ``[H, W]``.

        Raises:
            HRNetError: a label is neither a class (``0..C-1``) nor the ignore index 255.
        """
        image_path, mask_path = self.samples[index]
        mask = self.lut[read_label_map(mask_path, record=f"label map of {image_path.name}")]
        if int(mask.max(initial=0)) >= self.num_classes:
            bad = np.unique(mask[(mask >= self.num_classes) & (mask != 255)])
            if bad.size:
                raise HRNetError(
                    f"{mask_path}: label map of {image_path.name} holds {', '.join(map(str, bad[:8]))}: "
                    f"neither a class (0..{self.num_classes - 1}) nor the ignore index 255"
                )
        return mask

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch
        from torchvision import tv_tensors

        image_path, mask_path = self.samples[index]
        image = read_image(image_path)
        mask = self.read_mask(index)
        if tuple(image.shape[-2:]) != mask.shape:
            raise HRNetError(
                f"{mask_path}: label map is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{image_path.name} is {image.shape[2]}x{image.shape[1]}"
            )
        mask = tv_tensors.Mask(torch.from_numpy(mask))
        if self.transforms is not None:
            return self.transforms(image, mask)
        return image, mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}(samples={len(self)}, classes={self.num_classes})"


def _require_label_maps(pairs: Pairs) -> Pairs:
    """The pairs of a file index, refusing the first image whose label map is missing."""
    for image, mask in pairs:
        if not mask.is_file():
            raise HRNetError(f"{mask}: label map of {image.name} not found")
    return pairs


def _listed_pairs(split_file: Path, image_dir: Path, mask_dir: Path) -> Pairs:
    """VOC-style layouts: the split file lists the ids; ``<id>.jpg`` pairs with ``<id>.png``."""
    return [(image_dir / f"{i}.jpg", mask_dir / f"{i}.png") for i in read_split_file(split_file)]


# --------------------------------------------------------------------------------------------
# the embedded mask folders


def mask_folder_files(image_dir: str | Path, mask_dir: str | Path) -> Pairs:
    """Every image file directly in ``image_dir`` (hidden files skipped, sorted) with
    ``mask_dir/<stem>.png``.

    Raises:
        DataFileError: ``image_dir`` is not a folder (reason ``folder not found``).
    """
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    if not image_dir.is_dir():
        raise DataFileError(image_dir, "folder not found")
    return [(image, mask_dir / f"{image.stem}.png") for image in image_files(image_dir)]


# the class names of a mask folder dataset: ROOT/classes.txt, line i = the name of label i
MASK_CLASSES_FILE = "classes.txt"


def mask_folder_classes(root: str | Path, num_classes: int = 0) -> list[str]:
    """The class names of the mask folder dataset at ``root``: the lines of
    ``root/classes.txt`` (line ``i`` names label ``i``, background included), else
    ``num_classes`` numbered names (``class 0``, ...).

    Raises:
        HRNetError: neither is given, the file names no class or more than 255, or its count
            differs from ``num_classes``.
    """
    path = Path(root) / MASK_CLASSES_FILE
    if path.is_file():
        names = [line.strip() for line in path.read_text(encoding="utf-8").rstrip().splitlines()]
        if "" in names:  # line i names label i: a blank line would shift every label after it
            raise HRNetError(f"{path}: line {names.index('') + 1} is blank (line i names label i)")
        if not names or len(names) > 255:
            raise HRNetError(f"{path}: {len(names)} class names; 1..255 are possible (255 is the ignore index)")
        if num_classes and num_classes != len(names):
            raise HRNetError(f"{path}: {len(names)} classes but num_classes is {num_classes}")
        return names
    if num_classes:
        return [f"class {i}" for i in range(num_classes)]
    raise HRNetError(
        f"{root}: the number of classes is not known: write {path} (line i = the name of label i, "
        "background included) or give --num-classes N"
    )


class MaskFolderSegmentation(SegmentationDataset):
    """Images and same-named PNG label maps in two folders (the embedded ``shapes`` masks, or a
    user's own); the pairs are :func:`mask_folder_files`.

    Labels are used as stored: ``0..C-1`` with 255 ignored, ``C = len(classes)``
    (:func:`mask_folder_classes`: the dataset's ``classes.txt`` or a class count).
    """

    def __init__(
        self,
        image_dir: str | Path,
        mask_dir: str | Path,
        *,
        classes: Sequence[str],
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    ) -> None:
        samples = _require_label_maps(mask_folder_files(image_dir, mask_dir))
        super().__init__(
            samples, classes=classes, lut=identity_lut(), transforms=transforms, where=str(image_dir)
        )


# --------------------------------------------------------------------------------------------
# Cityscapes

# (name, labelId, trainId) of the 19 evaluated classes, from cityscapesScripts
# (github.com/mcordts/cityscapesScripts, cityscapesscripts/helpers/labels.py); every other
# labelId (void classes, -1 license plate) is ignored.
_CITYSCAPES = (
    ("road", 7),
    ("sidewalk", 8),
    ("building", 11),
    ("wall", 12),
    ("fence", 13),
    ("pole", 17),
    ("traffic light", 19),
    ("traffic sign", 20),
    ("vegetation", 21),
    ("terrain", 22),
    ("sky", 23),
    ("person", 24),
    ("rider", 25),
    ("car", 26),
    ("truck", 27),
    ("bus", 28),
    ("train", 31),
    ("motorcycle", 32),
    ("bicycle", 33),
)
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(name for name, _ in _CITYSCAPES)
CITYSCAPES_ID_TO_TRAIN_ID: dict[int, int] = {
    label_id: train_id for train_id, (_, label_id) in enumerate(_CITYSCAPES)
}


def cityscapes_files(root: str | Path, split: str) -> Pairs:
    """Every ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` (sorted) with
    ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``.

    Raises:
        DataFileError: ``leftImg8bit/<split>`` is not a folder (reason ``split folder not found``).
    """
    root = Path(root)
    image_root, label_root = root / "leftImg8bit" / split, root / "gtFine" / split
    if not image_root.is_dir():
        raise DataFileError(image_root, "split folder not found")
    suffix = "_leftImg8bit.png"
    return [
        (image, label_root / image.parent.name / f"{image.name.removesuffix(suffix)}_gtFine_labelIds.png")
        for image in sorted(image_root.glob(f"*/*{suffix}"))
    ]


class Cityscapes(SegmentationDataset):
    """Cityscapes fine annotations: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with
    ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` (:func:`cityscapes_files`); 19 classes,
    labelIds mapped to trainIds.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    ) -> None:
        samples = _require_label_maps(cityscapes_files(root, split))
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        for label_id, train_id in CITYSCAPES_ID_TO_TRAIN_ID.items():
            lut[label_id] = train_id
        super().__init__(
            samples,
            classes=CITYSCAPES_CLASSES,
            lut=lut,
            transforms=transforms,
            where=str(Path(root) / "leftImg8bit" / split),
        )


# --------------------------------------------------------------------------------------------
# ADE20K (SceneParsing / ADEChallengeData2016)


def _ade20k_split(split: str) -> str:
    return {"train": "training", "val": "validation"}.get(split, split)


def ade20k_files(root: str | Path, split: str) -> Pairs:
    """Every ``images/<split>/<stem>.jpg`` (sorted) with ``annotations/<split>/<stem>.png``;
    ``split`` is ``training``/``validation`` (``train``/``val`` accepted).

    Raises:
        DataFileError: ``images/<split>`` is not a folder (reason ``split folder not found``).
    """
    root, split = Path(root), _ade20k_split(split)
    image_dir = root / "images" / split
    if not image_dir.is_dir():
        raise DataFileError(image_dir, "split folder not found")
    return [
        (image, root / "annotations" / split / f"{image.stem}.png")
        for image in sorted(image_dir.glob("*.jpg"))
    ]


class ADE20K(SegmentationDataset):
    """ADE20K scene parsing: ``ADEChallengeData2016/images/{training,validation}/*.jpg`` with
    ``annotations/{training,validation}/*.png``; 150 classes, label 0 ("other") ignored and the
    rest shifted down by one. ``root`` is the ``ADEChallengeData2016`` folder; ``split`` is
    ``training``/``validation`` (``train``/``val`` accepted). The pairs are :func:`ade20k_files`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        *,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    ) -> None:
        root = Path(root)
        samples = _require_label_maps(ade20k_files(root, split))
        classes = [f"class_{i}" for i in range(150)]  # names live in objectInfo150.csv
        info = root / "objectInfo150.csv"
        if info.is_file():
            rows = [line.split(",") for line in info.read_text().splitlines()[1:] if line.strip()]
            if len(rows) == 150:
                classes = [row[-1].split(";")[0].strip() for row in rows]
        super().__init__(
            samples, classes=classes, lut=reduce_zero_label_lut(), transforms=transforms, where=str(root)
        )


# --------------------------------------------------------------------------------------------
# Pascal VOC 2012 (+ SBD augmentation) and Pascal Context

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def voc_files(root: str | Path, split: str, *, aug: bool = False) -> Pairs:
    """The ids of ``ImageSets/Segmentation/<split>.txt``: ``JPEGImages/<id>.jpg`` with
    ``SegmentationClass/<id>.png`` (``SegmentationClassAug/<id>.png`` with ``aug``).

    Raises:
        DataFileError: the split file is missing (reason ``split file not found``).
    """
    root = Path(root)
    mask_dir = root / ("SegmentationClassAug" if aug else "SegmentationClass")
    split_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    return _listed_pairs(split_file, root / "JPEGImages", mask_dir)


class PascalVOC(SegmentationDataset):
    """Pascal VOC 2012 segmentation, optionally with the SBD augmented labels.

    ``root`` is ``VOCdevkit/VOC2012``. Images ``JPEGImages/<id>.jpg``; names from
    ``ImageSets/Segmentation/<split>.txt``. Label maps from ``SegmentationClass/<id>.png``
    (palette PNGs: index 0..20, 255 on object boundaries and difficult regions, ignored) or, with
    ``aug=True``, from ``SegmentationClassAug/<id>.png`` (the 10,582-image ``train_aug`` set made
    from SBD, same values). 21 classes including background. The pairs are :func:`voc_files`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        aug: bool = False,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    ) -> None:
        samples = _require_label_maps(voc_files(root, split, aug=aug))
        super().__init__(
            samples, classes=VOC_CLASSES, lut=identity_lut(), transforms=transforms, where=str(Path(root))
        )


# The 59 most frequent Pascal Context classes in label order 1..59 (as in MMSegmentation's
# PascalContextDataset59 and the HRNet segmentation repo's 59-class setting).
PASCAL_CONTEXT_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bag",
    "bed",
    "bedclothes",
    "bench",
    "bicycle",
    "bird",
    "boat",
    "book",
    "bottle",
    "building",
    "bus",
    "cabinet",
    "car",
    "cat",
    "ceiling",
    "chair",
    "cloth",
    "computer",
    "cow",
    "cup",
    "curtain",
    "dog",
    "door",
    "fence",
    "floor",
    "flower",
    "food",
    "grass",
    "ground",
    "horse",
    "keyboard",
    "light",
    "motorbike",
    "mountain",
    "mouse",
    "person",
    "plate",
    "platform",
    "pottedplant",
    "road",
    "rock",
    "sheep",
    "shelves",
    "sidewalk",
    "sign",
    "sky",
    "snow",
    "sofa",
    "table",
    "track",
    "train",
    "tree",
    "truck",
    "tvmonitor",
    "wall",
    "water",
    "window",
    "wood",
)


def pascal_context_files(root: str | Path, split: str) -> Pairs:
    """The ids of ``ImageSets/SegmentationContext/<split>.txt``: ``JPEGImages/<id>.jpg`` with
    ``SegmentationClassContext/<id>.png``.

    Raises:
        DataFileError: the split file is missing (reason ``split file not found``).
    """
    root = Path(root)
    split_file = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    return _listed_pairs(split_file, root / "JPEGImages", root / "SegmentationClassContext")


class PascalContext(SegmentationDataset):
    """Pascal Context in the layout of MMSegmentation's converter
    (``tools/dataset_converters/pascal_context.py``): ``root`` is ``VOCdevkit/VOC2010``, images
    ``JPEGImages/<id>.jpg``, label maps ``SegmentationClassContext/<id>.png`` with 0 =
    background and 1..59 the classes, names from ``ImageSets/SegmentationContext/<split>.txt``.
    The pairs are :func:`pascal_context_files`.

    Two benchmarks read these files: 60 classes with background as class 0 (MMSegmentation's
    ``PascalContextDataset``, ``reduce_zero_label=False``: ``background=True``), and 59 classes
    with background ignored and the classes shifted to 0..58 (``PascalContextDataset59``, "reduce
    zero label": the default).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        background: bool = False,
    ) -> None:
        samples = _require_label_maps(pascal_context_files(root, split))
        if background:
            lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
            lut[: len(PASCAL_CONTEXT_CLASSES) + 1] = np.arange(len(PASCAL_CONTEXT_CLASSES) + 1)
            classes: tuple[str, ...] = ("background", *PASCAL_CONTEXT_CLASSES)
        else:
            lut, classes = reduce_zero_label_lut(), tuple(PASCAL_CONTEXT_CLASSES)
        super().__init__(
            samples,
            classes=classes,
            lut=lut,
            transforms=transforms,
            where=str(Path(root)),
        )
