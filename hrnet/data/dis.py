"""DIS5K (dichotomous image segmentation): images and binary masks in DIS5K v1.0's layout.

The release unpacks into ``DIS5K/DIS-<S>/im/<name>.jpg`` with ``DIS5K/DIS-<S>/gt/<name>.png`` for
the sets ``S`` = ``TR`` (training), ``VD`` (validation), ``TE1`` .. ``TE4`` (test sets), as the
IS-Net code lists them (xuebinqin/DIS ``IS-Net/train_valid_inference_main.py``). Masks are 8-bit,
foreground 255; a mask stored with three channels is read by its first channel, and the metrics
binarise it at ``> 128`` (IS-Net ``data_loader_cache.py``, PySODMetrics ``prepare_data``).

:func:`dis_files` is the file index the reader and the validator
(:mod:`hrnet.data.validation.dis`) share; :func:`smoke_archive` writes the tiny fixture
``hrnet smoke`` serves in place of ``DIS5K.zip``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hrnet.data.io import DataFileError, _where, image_files, read_image
from hrnet.errors import HRNetError

__all__ = [
    "DIS5K",
    "DIS_SETS",
    "SMOKE_COUNTS",
    "check_same_size",
    "decode_array",
    "dis_files",
    "read_dis_mask",
    "smoke_archive",
    "smoke_members",
]

# the sets of DIS5K v1.0, each a folder DIS-<name>
DIS_SETS: tuple[str, ...] = ("DIS-TR", "DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")

Pairs = list[tuple[Path, Path]]


def dis_files(root: str | Path, split: str) -> Pairs:
    """Every image of ``ROOT/<split>/im`` (sorted) with ``ROOT/<split>/gt/<stem>.png``;
    ``split`` is a set folder name (``DIS-TR``, ``DIS-VD``, ``DIS-TE1`` ..).

    Raises:
        DataFileError: ``ROOT/<split>/im`` is not a folder (reason ``split folder not found``).
    """
    folder = Path(root) / split / "im"
    if not folder.is_dir():
        raise DataFileError(folder, "split folder not found")
    return [(image, folder.parent / "gt" / f"{image.stem}.png") for image in image_files(folder)]


def decode_array(
    path: str | Path, what: str, *, record: str | None = None, missing: str | None = None
) -> tuple[np.ndarray, str]:
    """The pixels of an image file as decoded by PIL, with its mode (shared by the DIS5K and MFN
    readers).

    Raises:
        HRNetError: ``<path> (<record>): <missing>`` (default ``<what> not found``) or
            ``cannot decode <what>: ...``.
    """
    path = Path(path)
    where = _where(path, record)
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img), img.mode
    except FileNotFoundError:
        raise HRNetError(f"{where}: {missing or f'{what} not found'}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise HRNetError(f"{where}: cannot decode {what}: {exc}") from None


def check_same_size(
    mask_path: Path, mask_hw: tuple[int, ...], image_path: Path, image_hw: tuple[int, ...], what: str
) -> None:
    """Raises ``HRNetError("<mask>: <what> is WxH but its image <name> is WxH")`` when the two
    ``(H, W)`` sizes differ."""
    if tuple(mask_hw) != tuple(image_hw):
        raise HRNetError(
            f"{mask_path}: {what} is {mask_hw[1]}x{mask_hw[0]} but its image "
            f"{image_path.name} is {image_hw[1]}x{image_hw[0]}"
        )


def read_dis_mask(path: str | Path, *, record: str | None = None) -> np.ndarray:
    """A DIS mask as ``uint8 [H, W]`` (0..255); a 3- or 4-channel file gives its first channel.

    Raises:
        HRNetError: missing or undecodable file, or values beyond 8 bits.
    """
    array, _ = decode_array(path, "mask", record=record)
    if array.ndim == 3:
        array = array[..., 0]
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        if array.size and (array.min() < 0 or array.max() > 255):
            raise HRNetError(f"{_where(Path(path), record)}: mask values outside 0..255")
        array = array.astype(np.uint8)
    return array


class DIS5K:
    """One DIS5K set as ``(image, mask)`` items: ``tv_tensors.Image`` uint8 ``[3, H, W]`` and
    uint8 ``[H, W]`` (0..255), or what ``transforms(image, mask)`` makes of them.

    Raises:
        HRNetError: no pairs; on access, a missing or undecodable file, or a mask whose size
            differs from its image.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    ) -> None:
        self.samples = dis_files(root, split)
        if not self.samples:
            raise HRNetError(f"{Path(root) / split / 'im'}: no images found")
        for image, mask in self.samples:
            if not mask.is_file():
                raise HRNetError(f"{mask}: mask of {image.name} not found")
        self.split = split
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        image_path, mask_path = self.samples[index]
        image = read_image(image_path)
        mask = read_dis_mask(mask_path, record=f"mask of {image_path.name}")
        check_same_size(mask_path, mask.shape, image_path, tuple(image.shape[-2:]), "mask")
        target = torch.from_numpy(mask.copy())
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"DIS5K(split={self.split!r}, samples={len(self)})"


# --------------------------------------------------------------------------------------------
# the smoke fixture: DIS5K.zip with a few small images per set

SMOKE_COUNTS: dict[str, int] = {
    "DIS-TR": 3,
    "DIS-VD": 2,
    "DIS-TE1": 1,
    "DIS-TE2": 1,
    "DIS-TE3": 1,
    "DIS-TE4": 1,
}
_SMOKE_SIZE = (40, 56)  # height, width (each image is 0-8 px larger, as real sizes vary)


def smoke_members(rng: np.random.Generator, encode_jpeg: Callable, encode_png: Callable) -> dict[str, bytes]:
    """The members of the tiny ``DIS5K.zip``: per set, JPEG images and 0/255 PNG masks holding
    one thin-structured object (a disc with a handle line)."""
    members: dict[str, bytes] = {}
    for split, count in SMOKE_COUNTS.items():
        for k in range(1, count + 1):
            h = _SMOKE_SIZE[0] + int(rng.integers(0, 9))
            w = _SMOKE_SIZE[1] + int(rng.integers(0, 9))
            yy, xx = np.mgrid[:h, :w]
            cy, cx = int(rng.integers(h // 3, 2 * h // 3)), int(rng.integers(w // 3, 2 * w // 3))
            radius = int(rng.integers(6, 11))
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2) | ((yy == cy) & (xx > cx))
            image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
            image[mask] = rng.integers(150, 256, 3, dtype=np.uint8)
            stem = f"{split.removeprefix('DIS-').lower()}#smoke#{k}"
            members[f"DIS5K/{split}/im/{stem}.jpg"] = encode_jpeg(image)
            members[f"DIS5K/{split}/gt/{stem}.png"] = encode_png(mask.astype(np.uint8) * 255)
    return members


def smoke_archive(
    rng: np.random.Generator, encode_jpeg: Callable, encode_png: Callable, pack: Callable
) -> dict[str, bytes]:
    """``{"DIS5K.zip": bytes}``: :func:`smoke_members` packed by ``pack`` (the smoke module's
    deterministic zip writer)."""
    return {"DIS5K.zip": pack(smoke_members(rng, encode_jpeg, encode_png))}
