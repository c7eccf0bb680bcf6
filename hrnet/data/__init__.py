"""Datasets in their real file formats, the embedded dataset generators and the input pipelines.

One module per format: :mod:`~hrnet.data.imagefolder` (ImageNet), :mod:`~hrnet.data.coco`
(instances and person keypoints), :mod:`~hrnet.data.segmentation` (mask folders, Cityscapes,
ADE20K, Pascal VOC, Pascal Context), :mod:`~hrnet.data.landmarks` (300W, WFLW, COFW);
:mod:`~hrnet.data.transforms` holds the per-task pipelines and collate functions,
:mod:`~hrnet.data.embedded` the generators, :mod:`~hrnet.data.io` safe decoding and
:mod:`~hrnet.data.validation` the Great Expectations validators (one module per format family,
validating each split from its reader's file index).

The readers are map-style datasets (``len(ds)``, ``ds[i]``) that :class:`torch.utils.data.DataLoader`
takes as they are; they do not subclass ``torch.utils.data.Dataset`` and import torch only where
they make tensors, so a file index (and so ``hrnet validate``) does not load torch.

Names are imported lazily on first use, so ``import hrnet.data`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module under hrnet.data
_EXPORTS: dict[str, str] = {
    "ImageFolderDataset": "imagefolder",
    "CocoDetection": "coco",
    "CocoKeypoints": "coco",
    "MaskFolderSegmentation": "segmentation",
    "Cityscapes": "segmentation",
    "ADE20K": "segmentation",
    "PascalVOC": "segmentation",
    "PascalContext": "segmentation",
    "Face300W": "landmarks",
    "WFLW": "landmarks",
    "COFW": "landmarks",
    "EMBEDDED_DATASETS": "embedded",
    "generate_dataset": "embedded",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hrnet.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hrnet.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
