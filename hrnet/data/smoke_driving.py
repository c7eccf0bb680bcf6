"""Tiny copies of the driving-scene sets, packaged under their catalogue file names (the writers
of :mod:`hrnet.data.smoke` for ``bdd100k``, ``acdc``, ``dada_seg`` and ``synpass``).

Layouts (sizes width x height):

- ``bdd100k``: ``10k_images_{train,val}.zip`` (``bdd100k/images/10k/<split>/<name>.jpg``, 2 + 2,
  128x72) and ``bdd100k_ins_seg_labels_trainval.zip`` (``bdd100k/labels/ins_seg/bitmasks/<split>/
  <name>.png``: RGBA bitmasks, 2 or 3 rectangles of categories 1..8 each, one crowd instance).
- ``acdc``: ``rgb_anon_trainvaltest.zip`` (``rgb_anon/<condition>/<split>/<seq>/<seq>_frame_<6>_
  rgb_anon.png``: train 2, val 2, test 1; 96x54) and ``gt_trainval.zip`` (``gt/...
  _gt_labelTrainIds.png`` 0..18 and 255, with ``_gt_labelIds.png`` beside them).
- ``dada_seg``: ``DADA_seg.zip`` (``DADA_seg/leftImg8bit/val/<seq>/<frame>.jpg`` 1584x660 frames
  with black borders outside the crop box, ``DADA_seg/gtFine/val/<seq>/<frame>_labelTrainIds.png``;
  2 frames). The frame size and the file names inside the folders are ours (not re-read).
- ``synpass``: ``SynPASS.zip`` (``SynPASS/img/<weather>/<split>/MAP_<m>_point<p>/<6>.jpg`` with
  ``SynPASS/semantic/.../<6>_trainID.png`` 0..22; train 2, val 1, test 2; 96x48).
"""

from __future__ import annotations

import numpy as np

from hrnet.data.smoke_files import _blobs, _jpeg, _noise, _png, _zip

__all__ = [
    "ACDC_SPLITS",
    "BDD100K_SPLITS",
    "DADA_FRAMES",
    "SYNPASS_SPLITS",
    "acdc",
    "bdd100k",
    "dada_seg",
    "synpass",
]

Members = dict[str, bytes]

BDD100K_SPLITS = {"train": 2, "val": 2}
BDD100K_SIZE = (72, 128)  # height, width


def bdd100k(rng: np.random.Generator) -> dict[str, bytes]:
    height, width = BDD100K_SIZE
    images: dict[str, Members] = {split: {} for split in BDD100K_SPLITS}
    labels: Members = {}
    for split, count in BDD100K_SPLITS.items():
        for k in range(count):
            name = f"{int(rng.integers(16**7, 16**8)):08x}-{int(rng.integers(16**7, 16**8)):08x}"
            pixels = _noise(rng, height, width)
            bitmask = np.zeros((height, width, 4), dtype=np.uint8)
            for index in range(1, 3 + k % 2):
                category = int(rng.integers(1, 9))
                h, w = int(rng.integers(12, 30)), int(rng.integers(16, 40))
                y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
                crowd = 2 if (split == "train" and k == 1 and index == 1) else 0
                bitmask[y : y + h, x : x + w] = (category, crowd, 0, index)
                pixels[y : y + h, x : x + w] = pixels[y : y + h, x : x + w] // 2 + category * 29 % 128
            images[split][f"bdd100k/images/10k/{split}/{name}.jpg"] = _jpeg(pixels)
            labels[f"bdd100k/labels/ins_seg/bitmasks/{split}/{name}.png"] = _png(bitmask)
    return {
        "10k_images_train.zip": _zip(images["train"]),
        "10k_images_val.zip": _zip(images["val"]),
        "bdd100k_ins_seg_labels_trainval.zip": _zip(labels),
    }


# split -> (condition, sequence, frames)
ACDC_SPLITS = {"train": (("fog", "GOPR0475", 1), ("night", "GOPR0351", 1)),
               "val": (("rain", "GOPR0400", 1), ("snow", "GOPR0122", 1)),
               "test": (("fog", "GOPR0478", 1),)}  # fmt: skip
_CITYSCAPES_TRAIN_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


def acdc(rng: np.random.Generator) -> dict[str, bytes]:
    height, width = 54, 96
    rgb: Members = {}
    gt: Members = {}
    for split, entries in ACDC_SPLITS.items():
        for condition, sequence, frames in entries:
            for f in range(frames):
                stem = f"{sequence}_frame_{41 + 7 * f:06d}"
                rgb[f"rgb_anon/{condition}/{split}/{sequence}/{stem}_rgb_anon.png"] = _png(
                    _noise(rng, height, width)
                )
                if split == "test":
                    continue
                values = [int(v) for v in rng.permutation(19)[:5]] + [255]
                train_ids = _blobs(rng, height, width, values)
                lut = np.zeros(256, dtype=np.uint8)
                lut[:19] = _CITYSCAPES_TRAIN_TO_LABEL_ID
                base = f"gt/{condition}/{split}/{sequence}/{stem}_gt"
                gt[f"{base}_labelTrainIds.png"] = _png(train_ids)
                gt[f"{base}_labelIds.png"] = _png(lut[train_ids])
    return {"rgb_anon_trainvaltest.zip": _zip(rgb), "gt_trainval.zip": _zip(gt)}


DADA_FRAMES = (("1_002", "000041"), ("5_017", "000231"))
DADA_SIZE = (660, 1584)  # height, width of a DADA-2000 frame


def dada_seg(rng: np.random.Generator) -> dict[str, bytes]:
    from hrnet.data.driving import DADA_CROP

    height, width = DADA_SIZE
    left, top, right, bottom = DADA_CROP
    members: Members = {}
    for sequence, frame in DADA_FRAMES:
        pixels = np.zeros((height, width, 3), dtype=np.uint8)  # black outside the crop box
        pixels[top:bottom, left:right] = _noise(rng, bottom - top, right - left)
        label = np.full((height, width), 255, dtype=np.uint8)
        label[top:bottom, left:right] = _blobs(rng, bottom - top, right - left, [0, 2, 8, 10, 13])
        members[f"DADA_seg/leftImg8bit/val/{sequence}/{frame}.jpg"] = _jpeg(pixels)
        members[f"DADA_seg/gtFine/val/{sequence}/{frame}_labelTrainIds.png"] = _png(label)
    return {"DADA_seg.zip": _zip(members)}


# split -> (weather, map folder, frames)
SYNPASS_SPLITS = {"train": (("cloud", "MAP_1_point2", 1), ("rain", "MAP_3_point7", 1)),
                  "val": (("fog", "MAP_6_point10", 1),),
                  "test": (("sun", "MAP_8_point103", 2),)}  # fmt: skip


def synpass(rng: np.random.Generator) -> dict[str, bytes]:
    height, width = 48, 96
    members: Members = {}
    for split, entries in SYNPASS_SPLITS.items():
        for weather, map_name, frames in entries:
            for f in range(frames):
                members[f"SynPASS/img/{weather}/{split}/{map_name}/{f:06d}.jpg"] = _jpeg(
                    _noise(rng, height, width)
                )
                values = [0, *(int(v) for v in rng.permutation(np.arange(1, 23))[:5])]
                label = _blobs(rng, height, width, values)
                members[f"SynPASS/semantic/{weather}/{split}/{map_name}/{f:06d}_trainID.png"] = _png(label)
    return {"SynPASS.zip": _zip(members)}


def smoke_counts() -> dict[str, dict[str, int]]:
    """Items per split the readers read from these copies, by params dataset id."""
    return {
        "bdd100k": dict(BDD100K_SPLITS),
        "acdc": {s: sum(n for *_, n in e) for s, e in ACDC_SPLITS.items() if s != "test"},
        "dada_seg": {"val": len(DADA_FRAMES)},
        "synpass": {s: sum(n for *_, n in e) for s, e in SYNPASS_SPLITS.items()},
    }
