"""ImageNet / ImageFolder classification datasets: ``root/<split>/<class>/<image>``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hrnet.data.io import DataFileError, image_files, read_image
from hrnet.errors import HRNetError

if TYPE_CHECKING:
    import torch

__all__ = ["ImageFolderDataset", "imagefolder_files"]


def imagefolder_files(root: str | Path, split: str) -> tuple[list[str], list[tuple[Path, int]]]:
    """The file index of ``root/split``: the class names and the ``(image, label)`` samples.

    Classes are the sorted sub-folder names (hidden ones skipped), labels their positions; the
    samples of a class are its image files at any depth, sorted (see
    :func:`hrnet.data.io.image_files`). :class:`ImageFolderDataset` reads exactly these and the
    ``imagefolder`` validator validates exactly these.

    Raises:
        DataFileError: ``root/split`` is not a folder (reason ``split folder not found``).
    """
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataFileError(folder, "split folder not found")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    samples = [
        (path, label)
        for label, name in enumerate(classes)
        for path in image_files(folder / name, recursive=True)
    ]
    return classes, samples


class ImageFolderDataset:
    """Images sorted into one folder per class, as ImageNet's ``train/`` and ``val/`` trees.

    Classes are the sorted sub-folder names of ``root/split``; ``class_to_idx`` maps them to
    labels ``0..C-1``. Files whose names do not end in an image extension are ignored; hidden
    files and folders (starting with ``.``) too.

    Items are ``(image, label)``: without ``transforms`` the image is a ``tv_tensors.Image``
    uint8 ``[3, H, W]`` RGB (grayscale, CMYK, palette and alpha converted, EXIF orientation
    applied) and the label an ``int``; with ``transforms`` both go through
    ``transforms(image, label)`` (a torchvision v2 transform passes the label through).

    Args:
        root: the dataset folder (holding ``train/`` and ``val/``).
        split: the sub-folder to read.
        transforms: called as ``transforms(image, label) -> (image, label)``.
        classes: the class names labels index (a model's training classes, to score it on
            another split): each class folder of the split must be one of them, and a class
            without a folder there has no images. Default: the split's own folders.

    Raises:
        HRNetError: the split folder is missing or holds no class folder with images, or (with
            ``classes``) a folder is not one of the classes.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transforms: Callable[[Any, int], tuple[Any, int]] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        self.classes, self.samples = imagefolder_files(self.root, split)
        folder = self.root / split
        if not self.classes:
            raise HRNetError(f"{folder}: no class folders")
        if classes is not None and list(classes) != self.classes:
            index = {name: i for i, name in enumerate(classes)}
            unknown = [name for name in self.classes if name not in index]
            if unknown:
                raise HRNetError(
                    f"{folder}: class folders {', '.join(unknown)} are not among the model's {len(index)} "
                    f"classes ({', '.join(list(index)[:10])}{', ...' if len(index) > 10 else ''})"
                )
            own = self.classes
            self.samples = [(path, index[own[label]]) for path, label in self.samples]
            self.classes = list(classes)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        if not self.samples:
            raise HRNetError(f"{folder}: no images in the class folders")

    @property
    def targets(self) -> list[int]:
        """The label of every sample, in order."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = read_image(path, record=f"class {self.classes[label]!r}")
        if self.transforms is not None:
            return self.transforms(image, label)
        return image, label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, images={len(self)}, classes={len(self.classes)})"
