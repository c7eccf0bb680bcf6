"""Safe file input/output shared by the dataset readers and generators.

Decoding never produces a bare traceback for bad data: a missing, truncated or undecodable
file raises :class:`hrnet.errors.HRNetError` naming the file (and the record when the caller
passes one). Writers are atomic: a file or a dataset folder is either complete or absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from hrnet.errors import HRNetError

if TYPE_CHECKING:  # torch is imported by the readers that decode to tensors, not by the writers
    import torch

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataFileError",
    "atomic_directory",
    "image_files",
    "load_json",
    "open_image",
    "read_image",
    "read_label_map",
    "read_split_file",
    "write_bytes_atomic",
    "write_json_atomic",
]

# File name endings the readers treat as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".ppm",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)


def _where(path: Path, record: str | None) -> str:
    return f"{path} ({record})" if record else str(path)


class DataFileError(HRNetError):
    """A reader's input is missing or malformed: the file, the record in it and the reason.

    The three parts are kept apart so that the validators (:mod:`hrnet.data.validation`) report
    the very error a reader raises as one ``{file, record, reason}`` record. The message is
    ``"<path>: <reason>"`` or ``"<path>: <record>: <reason>"``.
    """

    def __init__(self, path: str | Path, reason: str, *, record: str | None = None) -> None:
        self.path, self.reason, self.record = Path(path), reason, record
        super().__init__(f"{path}: {record}: {reason}" if record else f"{path}: {reason}")


def image_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (below it too with ``recursive``), sorted by path.

    Files whose names do not end in one of :data:`IMAGE_EXTENSIONS` are skipped, and so are
    hidden files and everything inside hidden folders (names starting with ``.``).
    """
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path
        for path in found
        if path.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )


def open_image(path: str | Path, *, record: str | None = None) -> Image.Image:
    """Decode an image file as an 8-bit RGB PIL image.

    The EXIF orientation is applied; grayscale, 16-bit, CMYK, palette and alpha images are
    converted to RGB (alpha is dropped). ``record`` names the annotation that refers to the file
    and is quoted in errors.

    Raises:
        HRNetError: the file is missing, truncated or not a decodable image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now so a truncated file fails here, inside the try
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grayscale: keep the high byte
                array = np.asarray(img, dtype=np.int32)
                img = Image.fromarray((array >> 8).clip(0, 255).astype(np.uint8), mode="L")
            elif img.mode == "F":
                img = Image.fromarray(np.asarray(img).clip(0, 255).astype(np.uint8), mode="L")
            return img.convert("RGB")
    except FileNotFoundError:
        raise HRNetError(f"{_where(path, record)}: image file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise HRNetError(f"{_where(path, record)}: cannot decode image: {exc}") from None


def read_image(path: str | Path, *, record: str | None = None) -> torch.Tensor:
    """Decode an image file to a ``tv_tensors.Image``: uint8 ``[3, H, W]`` RGB.

    See :func:`open_image` for the conversions and errors.
    """
    import torch
    from torchvision import tv_tensors

    array = np.asarray(open_image(path, record=record))
    return tv_tensors.Image(torch.from_numpy(array.copy()).permute(2, 0, 1))


def read_label_map(path: str | Path, *, record: str | None = None) -> np.ndarray:
    """Read a semantic label map as a writable ``uint8 [H, W]`` array of class indices.

    Palette PNGs (Pascal VOC) give their palette indices; grayscale PNGs give their values.
    No EXIF rotation is applied (label maps carry none). RGB colour-coded maps are refused.

    Raises:
        HRNetError: the file is missing, undecodable, colour-coded or has values above 255.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            array = np.array(img)  # writable (np.asarray of a PIL image is read-only)
    except FileNotFoundError:
        raise HRNetError(f"{_where(path, record)}: label map not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise HRNetError(f"{_where(path, record)}: cannot decode label map: {exc}") from None
    if array.ndim != 2:
        raise HRNetError(
            f"{_where(path, record)}: label map has mode {mode!r}; expected a single-channel "
            "(grayscale or palette) PNG of class indices"
        )
    if array.dtype != np.uint8:
        if array.size and (array.min() < 0 or array.max() > 255):
            raise HRNetError(f"{_where(path, record)}: label values outside 0..255")
        array = array.astype(np.uint8)
    return array


def load_json(path: str | Path) -> Any:
    """Load a JSON file, raising :class:`HRNetError` with the line and column on bad syntax."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise HRNetError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise HRNetError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError as exc:
        raise HRNetError(f"{path}: not UTF-8 text: {exc}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_sibling(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a new temporary file beside ``path`` to ``os.replace`` onto it, with the
    mode an ordinary new file gets (0666 less the umask), not mkstemp's private 0600: results
    are read by a team (shared run folders, mirrors)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def temporary_folder(parent: Path, prefix: str, suffix: str = "") -> Path:
    """A new temporary folder in ``parent`` with an ordinary folder's mode (0777 less the umask)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    folder.chmod(0o777 & ~_umask())
    return folder


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_sibling(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """Write ``obj`` as JSON (keys in insertion order, UTF-8) atomically."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and move it to ``target`` when the block succeeds.

    Yields the temporary folder to fill. On success an existing ``target`` is replaced when
    ``force`` is true; on error the temporary folder is removed and ``target`` is untouched.

    Raises:
        HRNetError: ``target`` exists and ``force`` is false.
    """
    target = Path(target)
    if target.exists() and not force:
        raise HRNetError(f"{target}: already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_folder(target.parent, f".{target.name}.", ".tmp")
    try:
        yield tmp
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, trash / target.name)
            os.replace(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_split_file(path: Path) -> list[str]:
    """Names listed one per line in an ``ImageSets`` split file (the first word of each line).

    Raises:
        DataFileError: the file is missing (reason ``split file not found``).
    """
    if not path.is_file():
        raise DataFileError(path, "split file not found")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
