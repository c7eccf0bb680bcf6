"""MFN (MFNet RGB-thermal urban scenes) in RTFNet's preprocessed layout.

RTFNet's dataset (yuxiangsun/RTFNet ``util/MF_dataset.py``) holds ``images/<name>.png``, 4-channel
PNGs (R, G, B, thermal), ``labels/<name>.png`` with class indices 0..8 and the split lists
``<split>.txt`` (``train``, ``val``, ``test``, ``test_day``, ``test_night``), one name per line.
The 9 classes (``util/util.py``) include ``unlabeled`` (0), which RTFNet's mIoU counts.

:func:`mfn_files` is the file index the reader and the validator (:mod:`hrnet.data.validation.mfn`)
share; :func:`read_rgbt` decodes a 4-channel image; :func:`smoke_archive` writes the tiny fixture
``hrnet smoke`` serves in place of RTFNet's ``dataset.zip``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hrnet.data.dis import check_same_size, decode_array
from hrnet.data.io import _where, read_label_map, read_split_file
from hrnet.errors import HRNetError

__all__ = ["MFN", "MFN_CLASSES", "SMOKE_SPLITS", "mfn_files", "read_rgbt", "smoke_archive"]

# RTFNet util/util.py: 0 unlabeled, then the eight object classes
MFN_CLASSES: tuple[str, ...] = (
    "unlabeled",
    "car",
    "person",
    "bike",
    "curve",
    "car_stop",
    "guardrail",
    "color_cone",
    "bump",
)

Pairs = list[tuple[Path, Path]]


def mfn_files(root: str | Path, split: str) -> Pairs:
    """The names of ``ROOT/<split>.txt`` as ``(images/<name>.png, labels/<name>.png)``.

    Raises:
        DataFileError: the split list is missing (reason ``split file not found``).
    """
    root = Path(root)
    return [
        (root / "images" / f"{name}.png", root / "labels" / f"{name}.png")
        for name in read_split_file(root / f"{split}.txt")
    ]


def read_rgbt(path: str | Path, *, record: str | None = None) -> np.ndarray:
    """A 4-channel (RGB + thermal) PNG as ``uint8 [H, W, 4]``.

    Raises:
        HRNetError: missing or undecodable file, or an image without four 8-bit channels.
    """
    array, mode = decode_array(path, "image", record=record, missing="image file not found")
    if array.ndim != 3 or array.shape[2] != 4 or array.dtype != np.uint8:
        raise HRNetError(
            f"{_where(Path(path), record)}: image has mode {mode!r}; expected 4 channels (RGB + thermal), 8 bits each"
        )
    return array


class MFN:
    """One MFN split as ``(image, label map)`` items: uint8 ``[4, H, W]`` (R, G, B, thermal) and
    uint8 ``[H, W]`` class indices 0..8, or what ``transforms(image, mask)`` makes of them.

    Raises:
        HRNetError: an empty split; on access, a missing or bad file, a label above 8, or a
            label map whose size differs from its image.
    """

    classes = MFN_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    ) -> None:
        self.samples = mfn_files(root, split)
        if not self.samples:
            raise HRNetError(f"{Path(root) / f'{split}.txt'}: lists no images")
        self.split = split
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        image_path, label_path = self.samples[index]
        image = read_rgbt(image_path)
        label = read_label_map(label_path, record=f"label map of {image_path.name}")
        if label.size and int(label.max()) >= len(MFN_CLASSES):
            raise HRNetError(
                f"{label_path} (label map of {image_path.name}): label {int(label.max())} "
                f"outside MFN's 0..{len(MFN_CLASSES) - 1}"
            )
        check_same_size(label_path, label.shape, image_path, image.shape[:2], "label map")
        image_t = torch.from_numpy(image.copy()).permute(2, 0, 1).contiguous()
        label_t = torch.from_numpy(label.copy())
        if self.transforms is not None:
            return self.transforms(image_t, label_t)
        return image_t, label_t

    def __repr__(self) -> str:
        return f"MFN(split={self.split!r}, samples={len(self)})"


# --------------------------------------------------------------------------------------------
# the smoke fixture: dataset.zip with a few small 4-channel images

SMOKE_SPLITS: dict[str, int] = {"train": 3, "val": 2, "test": 2}
_SMOKE_SIZE = (48, 64)  # height, width (RTFNet's are 480x640)


def smoke_archive(rng: np.random.Generator, encode_png: Callable, pack: Callable) -> dict[str, bytes]:
    """``{"dataset.zip": bytes}``: ``dataset/images/<name>.png`` (RGBA = RGB + thermal),
    ``dataset/labels/<name>.png`` (0..8, every class present in the set) and the split lists."""
    h, w = _SMOKE_SIZE
    members: dict[str, bytes] = {}
    k = 0
    for split, count in SMOKE_SPLITS.items():
        names = []
        for _ in range(count):
            k += 1
            name = f"{k:05d}{'D' if k % 2 else 'N'}"  # RTFNet's names: 5 digits + D(ay) / N(ight)
            label = np.zeros((h, w), np.uint8)
            for cls in range(1, len(MFN_CLASSES)):
                y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
                label[y : y + 8, x : x + 8] = cls
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            thermal = (label * 28).astype(np.uint8)  # warm objects
            members[f"dataset/images/{name}.png"] = encode_png(
                Image.fromarray(np.dstack([rgb, thermal]))  # [H, W, 4] uint8: an RGBA PNG
            )
            members[f"dataset/labels/{name}.png"] = encode_png(label)
            names.append(name)
        members[f"dataset/{split}.txt"] = "".join(f"{n}\n" for n in names).encode()
    return {"dataset.zip": pack(members)}
