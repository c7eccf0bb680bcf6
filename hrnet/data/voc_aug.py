"""Build Pascal VOC 2012's augmented segmentation set ("VOC aug", 10,582 training images) from
VOC 2012 and the Semantic Boundaries Dataset (SBD), the set the VOC rows of the segmentation
table train on.

Input layouts, as `hrnet fetch voc2012` and `hrnet fetch sbd` publish them:

- VOC: ``VOCdevkit/VOC2012`` with ``JPEGImages/``, ``SegmentationClass/<id>.png`` (palette PNGs,
  indices 0..20, 255 on boundaries) and ``ImageSets/Segmentation/{train,val}.txt``.
- SBD: ``benchmark_RELEASE/dataset`` with ``cls/<id>.mat`` (MATLAB files whose
  ``GTcls.Segmentation`` holds the class indices 0..20) and ``{train,val}.txt``.

Output, inside the VOC folder: ``SegmentationClassAug/<id>.png`` (grayscale class indices; the
VOC label map where VOC has one, else SBD's) and ``ImageSets/Segmentation/train_aug.txt`` = (VOC
train + SBD train + SBD val) minus VOC val, sorted. VOC val stays the evaluation split. The
folder is written to a temporary sibling and moved in place when complete.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from hrnet.data.io import atomic_directory, read_label_map, read_split_file, write_bytes_atomic
from hrnet.errors import HRNetError

__all__ = ["build_voc_aug", "read_sbd_mat"]

NUM_VOC_CLASSES = 21
IGNORE = 255


def read_sbd_mat(path: Path) -> np.ndarray:
    """The class-index map ``uint8 [H, W]`` of one SBD ``cls/<id>.mat`` file."""
    from scipy.io import loadmat

    if not path.is_file():
        raise HRNetError(f"{path}: SBD label file not found")
    try:
        gt = loadmat(path, squeeze_me=True, struct_as_record=False)["GTcls"]
        label = np.asarray(gt.Segmentation)
    except (KeyError, AttributeError, ValueError, TypeError, OSError) as exc:
        raise HRNetError(f"{path}: not an SBD class file (GTcls.Segmentation): {exc}") from None
    if label.ndim != 2 or label.size == 0:
        raise HRNetError(f"{path}: GTcls.Segmentation is not a 2-D label map (shape {label.shape})")
    bad = np.setdiff1d(np.unique(label), [*range(NUM_VOC_CLASSES), IGNORE])
    if bad.size:
        raise HRNetError(f"{path}: GTcls.Segmentation has labels outside 0..20/255: {bad[:5].tolist()}")
    return label.astype(np.uint8)


def build_voc_aug(
    voc_root: str | Path,
    sbd_root: str | Path,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write ``SegmentationClassAug/`` and ``train_aug.txt`` into ``voc_root``.

    Returns counts: ``train_aug`` images, label maps taken from ``voc`` and from ``sbd``.

    Raises:
        HRNetError: a missing list, image or label file, or a label map that is not a class-index
            map; nothing is written then.
    """
    voc_root, sbd_root = Path(voc_root), Path(sbd_root)
    sets = voc_root / "ImageSets" / "Segmentation"
    voc_train, voc_val = read_split_file(sets / "train.txt"), read_split_file(sets / "val.txt")
    sbd_ids = read_split_file(sbd_root / "train.txt") + read_split_file(sbd_root / "val.txt")
    voc_labelled = set(voc_train) | set(voc_val)
    train_aug = sorted((set(voc_train) | set(sbd_ids)) - set(voc_val))
    wanted = sorted(set(train_aug) | set(voc_val))  # every image either split reads

    counts = {"train_aug": len(train_aug), "voc": 0, "sbd": 0}
    with atomic_directory(voc_root / "SegmentationClassAug", force=force) as out:
        for done, image_id in enumerate(wanted, 1):
            if not (voc_root / "JPEGImages" / f"{image_id}.jpg").is_file():
                raise HRNetError(f"{voc_root / 'JPEGImages' / image_id}.jpg: image of {image_id} not found")
            if image_id in voc_labelled:
                label = read_label_map(voc_root / "SegmentationClass" / f"{image_id}.png", record=image_id)
                counts["voc"] += 1
            else:
                label = read_sbd_mat(sbd_root / "cls" / f"{image_id}.mat")
                counts["sbd"] += 1
            Image.fromarray(label, mode="L").save(out / f"{image_id}.png")
            if progress is not None:
                progress(done, len(wanted))
    write_bytes_atomic(sets / "train_aug.txt", "".join(f"{i}\n" for i in train_aug).encode())
    return counts
