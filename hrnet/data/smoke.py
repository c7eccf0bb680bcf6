"""Tiny copies of the public datasets and weights, packaged as their publishers package them.

For every catalogue dataset the paper rows fetch, a writer produces the catalogue's file names
(``train2017.zip``, ``VOCtrainval_11-May-2012.tar``, ``benchmark.tgz``, ...) holding a few small
images in the real on-disk format, so that ``hrnet fetch NAME --source <folder>/ --checksums
<json>`` (file://, http:// or s3://) followed by the catalogue's layout step gives exactly the
tree the readers and validators read at the dataset's ``root`` in benchmarks/params.yaml. The
weights writer does the same for the ImageNet-pretrained backbone files.

Everything is deterministic from ``seed``: archive members are sorted and carry fixed
timestamps, owners and modes, gzip headers carry no time, and MATLAB file headers a fixed text,
so the same call writes the same bytes. Each writer returns ``{filename: sha256}`` of what it
wrote: the ``--checksums`` file of that mirror.

Layouts (members of the archives; sizes in pixels, width x height):

- ``coco2017``: ``train2017/<12 digits>.jpg`` (3 images), ``val2017/`` (2), 96x80, each with two
  or three objects (COCO's 80 categories and ids) and one person with 17 keypoints;
  ``annotations/{instances,person_keypoints,captions}_{train,val}2017.json``.
- ``cityscapes``: ``leftImg8bit/{train,val,test}/<city>/<city>_<6>_<6>_leftImg8bit.png`` and
  ``gtFine/...`` ``_gtFine_{color,instanceIds,labelIds,labelTrainIds}.png`` + ``_polygons.json``
  (2 train, 2 val, 1 test; 96x48).
- ``ade20k``: ``ADEChallengeData2016/{images,annotations}/{training,validation}/`` (3 + 2, 64x64,
  labels 0..150).
- ``voc2012``: ``VOCdevkit/VOC2012/`` with ``JPEGImages`` (also the images only SBD labels),
  palette ``SegmentationClass`` with 255 borders, ``SegmentationObject``, ``Annotations`` and
  ``ImageSets/{Segmentation,Main}`` (segmentation train 2, val 2).
- ``sbd``: ``benchmark_RELEASE/dataset/{img,cls,inst}`` (MATLAB ``GTcls``/``GTinst`` structs) with
  ``train.txt``/``val.txt``, plus ``train_noval.txt``; with VOC it makes ``train_aug`` of 5.
- ``pascal_context``: ``VOCdevkit/VOC2010`` (JPEGImages, ImageSets/Segmentation) and PASCAL in
  Detail's ``trainval_merged.json`` (COCO RLE segmentations, phases train 2 / val 2).
- ``300w``: ``afw.zip``, ``helen.zip`` (``trainset/``, ``testset/``), ``lfpw.zip`` (same),
  ``ibug.zip``: images with 68-point ``.pts``; splits ``train`` 3, ``full`` 3 faces.
- ``wflw``: ``WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt``
  (3 and 2 faces) and ``WFLW_images/<event>/<name>.jpg``.
- ``cofw``: ``COFW_{train,test}_color.mat`` (``IsTr``/``phisTr``/``bboxesTr``, ``IsT``/...;
  3 and 2 faces, 29 points). Written as MATLAB 5 files (scipy); the published ones are MATLAB
  7.3, which the layout step reads with h5py.
- ``imagenet``: ``ILSVRC2012_devkit_t12.tar.gz`` (``data/meta.mat`` with 1000 leaf synsets and
  a few inner ones, ``data/ILSVRC2012_validation_ground_truth.txt``), ``ILSVRC2012_img_train.tar``
  (one ``<wnid>.tar`` per class, one 16x16 JPEG each) and ``ILSVRC2012_img_val.tar`` (1000
  ``ILSVRC2012_val_<8 digits>.JPEG``, one per class in a shuffled order).
- ``dis5k``: ``DIS5K.zip`` with ``DIS5K/DIS-{TR,VD,TE1..TE4}/{im/*.jpg, gt/*.png}`` (3, 2 and 1
  each; about 56x40, 0/255 masks of a disc with a one-pixel handle) (:mod:`hrnet.data.dis`).
- ``mfn``: RTFNet's ``dataset.zip``: ``dataset/images/*.png`` RGBA (RGB + thermal),
  ``dataset/labels/*.png`` (0..8) and ``train``/``val``/``test.txt`` (3, 2, 2; 64x48)
  (:mod:`hrnet.data.mfn`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from hrnet.data.smoke_files import (  # the encoders and pictures shared with smoke_driving
    _blobs,
    _jpeg,
    _json,
    _mat,
    _noise,
    _palette_png,
    _png,
    _tar,
    _zip,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "COCO_CATEGORIES",
    "COCO_KEYPOINTS",
    "COCO_SKELETON",
    "SMOKE_DATASETS",
    "SMOKE_FETCH",
    "SMOKE_WEIGHT_MODELS",
    "smoke_counts",
    "write_smoke_dataset",
    "write_smoke_mirror",
    "write_smoke_weights",
]

Members = dict[str, bytes]

# COCO 2017's 80 categories: (id, name), ids as in the official annotation files
COCO_CATEGORIES: tuple[tuple[int, str], ...] = tuple(
    zip(
        (*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
         *range(72, 83), *range(84, 91)),
        ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
         "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
         "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
         "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
         "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
         "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
         "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
         "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
         "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
         "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"),
        strict=True,
    )
)  # fmt: skip
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip

# the datasets of benchmarks/params.yaml -> the catalogue names their fetch@ stage fetches
SMOKE_FETCH: dict[str, tuple[str, ...]] = {
    "imagenet": ("imagenet",),
    "coco": ("coco2017",),
    "coco_stuff": ("coco2017_stuff",),
    "cityscapes": ("cityscapes",),
    "ade20k": ("ade20k",),
    "voc_aug": ("voc2012", "sbd"),
    "pascal_context": ("pascal_context",),
    "300w": ("300w",),
    "wflw": ("wflw",),
    "cofw": ("cofw",),
    "dis5k": ("dis5k",),
    "mfn": ("mfn",),
    "bdd100k": ("bdd100k",),
    "acdc": ("acdc",),
    "dada_seg": ("dada_seg",),
    "synpass": ("synpass",),
}

# ImageNet weights entries of the catalogue -> the classification model of that width
SMOKE_WEIGHT_MODELS: dict[str, str] = {
    "hrnetv2_w18_small_imagenet": "hrnet_w18_small_v2",
    "hrnetv2_w18_imagenet": "hrnet_w18",
    "hrnetv2_w32_imagenet": "hrnet_w32",
    "hrnetv2_w40_imagenet": "hrnet_w40",
    "hrnetv2_w48_imagenet": "hrnet_w48",
    "hrnet_w32_imagenet_pose": "hrnet_w32",
    "hrnet_w48_imagenet_pose": "hrnet_w48",
}

# --------------------------------------------------------------------------------------------
# COCO 2017
# --------------------------------------------------------------------------------------------

_COCO_SIZE = (80, 96)  # height, width
_COCO_SPLITS = {"train2017": 3, "val2017": 2}


def _coco(rng: np.random.Generator) -> dict[str, bytes]:
    height, width = _COCO_SIZE
    images: Members = {}
    annotations: Members = {}
    categories = [{"id": cid, "name": name, "supercategory": name} for cid, name in COCO_CATEGORIES]
    person = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_KEYPOINTS),
        "skeleton": [list(pair) for pair in COCO_SKELETON],
    }
    ann_id = 100
    for split_index, (split, count) in enumerate(_COCO_SPLITS.items()):
        image_records, instances, keypoints, captions = [], [], [], []
        for k in range(count):
            image_id = 1000 * (split_index + 1) + k + 1
            file_name = f"{image_id:012d}.jpg"
            pixels = _noise(rng, height, width)
            image_records.append(
                {"id": image_id, "file_name": file_name, "height": height, "width": width, "license": 1}
            )
            boxes = [(1, 8 + 4 * k, 10, 40, 60)]  # (category, x, y, w, h): one person, then others
            for _ in range(1 + k % 2):
                cid = COCO_CATEGORIES[int(rng.integers(1, len(COCO_CATEGORIES)))][0]
                w, h = int(rng.integers(12, 30)), int(rng.integers(12, 30))
                boxes.append((cid, int(rng.integers(0, width - w)), int(rng.integers(0, height - h)), w, h))
            for cid, x, y, w, h in boxes:
                ann_id += 1
                pixels[y : y + h, x : x + w] = (pixels[y : y + h, x : x + w] // 2) + (cid * 37 % 128)
                polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
                record = {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": cid,
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "area": float(w * h),
                    "segmentation": [[float(v) for v in polygon]],
                    "iscrowd": 0,
                }
                instances.append(record)
                if cid == 1:
                    joints = []
                    for j in range(len(COCO_KEYPOINTS)):
                        jx = x + 4 + (j % 4) * (w - 8) / 3
                        jy = y + 4 + (j // 4) * (h - 8) / 4
                        joints += [round(jx, 1), round(jy, 1), 2 if j % 5 else 1]
                    visible = sum(1 for v in joints[2::3] if v > 0)
                    keypoints.append({**record, "keypoints": joints, "num_keypoints": visible})
            captions.append({"id": ann_id * 10, "image_id": image_id, "caption": "a few boxes and a person"})
            images[f"{split}/{file_name}"] = _jpeg(pixels)
        info = {"description": "COCO 2017 smoke copy", "version": "1.0", "year": 2017}
        licenses = [{"id": 1, "name": "smoke", "url": ""}]
        base = {"info": info, "licenses": licenses, "images": image_records}
        annotations[f"annotations/instances_{split}.json"] = _json(
            {**base, "annotations": instances, "categories": categories}
        )
        annotations[f"annotations/person_keypoints_{split}.json"] = _json(
            {**base, "annotations": keypoints, "categories": [person]}
        )
        annotations[f"annotations/captions_{split}.json"] = _json({**base, "annotations": captions})
    return {
        "annotations_trainval2017.zip": _zip(annotations),
        "train2017.zip": _zip({k: v for k, v in images.items() if k.startswith("train2017/")}),
        "val2017.zip": _zip({k: v for k, v in images.items() if k.startswith("val2017/")}),
    }


def _coco_stuff(rng: np.random.Generator) -> dict[str, bytes]:
    """COCO 2017 plus ``stuffthingmaps_trainval2017.zip``: ``<split>/<stem>.png`` per image (two
    stuff classes of 91..181 split at a random row, a thing class 0..90 in a box, a 255 border)."""
    height, width = _COCO_SIZE
    files = _coco(rng)
    maps: Members = {}
    for split_index, (split, count) in enumerate(_COCO_SPLITS.items()):
        for k in range(count):
            image_id = 1000 * (split_index + 1) + k + 1  # the ids and names _coco writes
            label = np.full((height, width), int(rng.integers(91, 182)), dtype=np.uint8)
            label[int(rng.integers(height // 4, 3 * height // 4)) :] = int(rng.integers(91, 182))
            label[10:70, 8 + 4 * k : 48 + 4 * k] = 0  # the person box of _coco
            label[:, :2] = 255
            maps[f"{split}/{image_id:012d}.png"] = _png(label)
    files["stuffthingmaps_trainval2017.zip"] = _zip(maps)
    return files


# --------------------------------------------------------------------------------------------
# Segmentation benchmarks
# --------------------------------------------------------------------------------------------

_CITYSCAPES_SPLITS = {"train": ("aachen", 2), "val": ("frankfurt", 2), "test": ("berlin", 1)}
_CITYSCAPES_LABEL_IDS = [7, 8, 11, 21, 23, 24, 26, 0, 1, 4]  # road ... car, unlabeled, ego, static


def _cityscapes(rng: np.random.Generator) -> dict[str, bytes]:
    from hrnet.data.segmentation import CITYSCAPES_ID_TO_TRAIN_ID

    height, width = 48, 96
    left: Members = {"license.txt": b"smoke copy\n", "README": b"Cityscapes smoke copy\n"}
    fine: Members = {"license.txt": b"smoke copy\n", "README": b"Cityscapes smoke copy\n"}
    for split, (city, count) in _CITYSCAPES_SPLITS.items():
        for k in range(count):
            stem = f"{city}_{k:06d}_{19 + k:06d}"
            left[f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"] = _png(_noise(rng, height, width))
            values = [int(v) for v in rng.permutation(_CITYSCAPES_LABEL_IDS)[:5]]
            label = (
                _blobs(rng, height, width, values) if split != "test" else np.zeros((height, width), np.uint8)
            )
            train_ids = np.full_like(label, 255)
            for label_id, train_id in CITYSCAPES_ID_TO_TRAIN_ID.items():
                train_ids[label == label_id] = train_id
            instances = label.astype(np.int32) * 1000
            prefix = f"gtFine/{split}/{city}/{stem}_gtFine"
            fine[f"{prefix}_labelIds.png"] = _png(label)
            fine[f"{prefix}_labelTrainIds.png"] = _png(train_ids)
            fine[f"{prefix}_instanceIds.png"] = _png(Image.fromarray(instances.astype(np.uint16)))
            fine[f"{prefix}_color.png"] = _png(np.stack([label * 9, label * 5, label * 3], axis=-1))
            polygons = {"imgHeight": height, "imgWidth": width, "objects": []}
            fine[f"{prefix}_polygons.json"] = _json(polygons)
    return {"leftImg8bit_trainvaltest.zip": _zip(left), "gtFine_trainvaltest.zip": _zip(fine)}


_ADE20K_SPLITS = {"training": ("ADE_train", 3), "validation": ("ADE_val", 2)}


def _ade20k(rng: np.random.Generator) -> dict[str, bytes]:
    size = 64
    members: Members = {}
    base = "ADEChallengeData2016"
    for split, (prefix, count) in _ADE20K_SPLITS.items():
        for k in range(1, count + 1):
            stem = f"{prefix}_{k:08d}"
            members[f"{base}/images/{split}/{stem}.jpg"] = _jpeg(_noise(rng, size, size))
            values = [0, *(int(v) for v in rng.choice(np.arange(1, 151), 3, replace=False)), 150]
            members[f"{base}/annotations/{split}/{stem}.png"] = _png(_blobs(rng, size, size, values))
    members[f"{base}/sceneCategories.txt"] = b"".join(
        f"{stem.rsplit('/', 1)[-1][:-4]} smoke\n".encode()
        for stem in sorted(m for m in members if m.endswith(".jpg"))
    )
    return {"ADEChallengeData2016.zip": _zip(members)}


# VOC 2012: segmentation train / val ids; SBD train / val ids (one overlaps VOC val, as in the
# real sets); VOC's JPEGImages holds every one of them
_VOC_TRAIN = ("2007_000032", "2007_000039")
_VOC_VAL = ("2007_000033", "2007_000042")
_SBD_TRAIN = ("2008_000002", "2008_000003", "2007_000039")
_SBD_VAL = ("2008_000008", "2007_000033")
_VOC_SIZE = (48, 64)


def _voc_label(rng: np.random.Generator, classes: int) -> np.ndarray:
    height, width = _VOC_SIZE
    values = [0, *(int(v) for v in rng.choice(np.arange(1, classes), 2, replace=False))]
    label = _blobs(rng, height, width, values)
    # VOC marks object borders (and difficult regions) 255
    edges = np.zeros_like(label, bool)
    edges[1:, :] |= label[1:, :] != label[:-1, :]
    edges[:, 1:] |= label[:, 1:] != label[:, :-1]
    label[edges] = 255
    return label


def _voc_xml(stem: str, height: int, width: int) -> bytes:
    return (
        f"<annotation><folder>VOC2012</folder><filename>{stem}.jpg</filename><size><width>{width}"
        f"</width><height>{height}</height><depth>3</depth></size><segmented>1</segmented></annotation>\n"
    ).encode()


def _voc2012(rng: np.random.Generator) -> dict[str, bytes]:
    height, width = _VOC_SIZE
    base = "VOCdevkit/VOC2012"
    members: Members = {}
    for stem in sorted({*_VOC_TRAIN, *_VOC_VAL, *_SBD_TRAIN, *_SBD_VAL}):
        members[f"{base}/JPEGImages/{stem}.jpg"] = _jpeg(_noise(rng, height, width))
        members[f"{base}/Annotations/{stem}.xml"] = _voc_xml(stem, height, width)
    for stem in (*_VOC_TRAIN, *_VOC_VAL):
        label = _voc_label(rng, 21)
        members[f"{base}/SegmentationClass/{stem}.png"] = _palette_png(label)
        objects = np.where((label > 0) & (label < 255), 1, label)
        members[f"{base}/SegmentationObject/{stem}.png"] = _palette_png(objects)
    lines = lambda ids: "".join(f"{i}\n" for i in ids).encode()  # noqa: E731
    seg = f"{base}/ImageSets/Segmentation"
    members[f"{seg}/train.txt"] = lines(_VOC_TRAIN)
    members[f"{seg}/val.txt"] = lines(_VOC_VAL)
    members[f"{seg}/trainval.txt"] = lines(sorted((*_VOC_TRAIN, *_VOC_VAL)))
    everything = sorted({*_VOC_TRAIN, *_VOC_VAL, *_SBD_TRAIN, *_SBD_VAL})
    members[f"{base}/ImageSets/Main/trainval.txt"] = lines(everything)
    return {"VOCtrainval_11-May-2012.tar": _tar(members)}


def _sbd(rng: np.random.Generator) -> dict[str, bytes]:
    height, width = _VOC_SIZE
    base = "benchmark_RELEASE/dataset"
    members: Members = {}
    for stem in sorted({*_SBD_TRAIN, *_SBD_VAL}):
        members[f"{base}/img/{stem}.jpg"] = _jpeg(_noise(rng, height, width))
        label = _voc_label(rng, 21)
        label[label == 255] = 0  # SBD has no boundary label
        present = np.setdiff1d(np.unique(label), [0]).astype(np.float64)
        cls = {"Segmentation": label, "CategoriesPresent": present, "Boundaries": np.zeros((1, 1))}
        members[f"{base}/cls/{stem}.mat"] = _mat({"GTcls": cls})
        inst = {"Segmentation": (label > 0).astype(np.uint8), "Categories": present}
        members[f"{base}/inst/{stem}.mat"] = _mat({"GTinst": inst})
    members[f"{base}/train.txt"] = "".join(f"{i}\n" for i in _SBD_TRAIN).encode()
    members[f"{base}/val.txt"] = "".join(f"{i}\n" for i in _SBD_VAL).encode()
    noval = sorted(set(_SBD_TRAIN) | set(_SBD_VAL) - set(_VOC_VAL))
    return {
        "benchmark.tgz": _tar(members, gz=True),
        "train_noval.txt": "".join(f"{i}\n" for i in noval).encode(),
    }


_CONTEXT_PHASES = {"train": ("2008_000002", "2008_000003"), "val": ("2008_000008", "2008_000009")}


def _pascal_context(rng: np.random.Generator) -> dict[str, bytes]:
    from pycocotools import mask as mask_utils

    from hrnet.data.catalog import PASCAL_CONTEXT_DETAIL_IDS

    height, width = _VOC_SIZE
    base = "VOCdevkit/VOC2010"
    members: Members = {}
    images, segmentations = [], []
    ann_id = 0
    for phase, stems in _CONTEXT_PHASES.items():
        for stem in stems:
            members[f"{base}/JPEGImages/{stem}.jpg"] = _jpeg(_noise(rng, height, width))
            image_id = int(stem[:4] + stem[5:])
            images.append(
                {
                    "image_id": image_id,
                    "file_name": f"{stem}.jpg",
                    "height": height,
                    "width": width,
                    "phase": phase,
                }
            )
            chosen = rng.choice(np.asarray(PASCAL_CONTEXT_DETAIL_IDS[1:]), 3, replace=False)
            label = _blobs(rng, height, width, [0, *(int(v) for v in chosen)], np.int64)
            for category in chosen:
                binary = np.asfortranarray((label == category).astype(np.uint8))
                if not binary.any():
                    continue
                rle = mask_utils.encode(binary)
                ann_id += 1
                segmentations.append(
                    {
                        "id": ann_id,
                        "image_id": image_id,
                        "category_id": int(category),
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                        "area": int(binary.sum()),
                        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                        "iscrowd": 0,
                        "parts": [],
                    }
                )
    members[f"{base}/ImageSets/Segmentation/trainval.txt"] = "".join(
        f"{s}\n" for stems in _CONTEXT_PHASES.values() for s in stems
    ).encode()
    categories = [
        {"category_id": c, "name": f"class_{c}", "supercategory": "object", "onlysemantic": 0, "parts": []}
        for c in PASCAL_CONTEXT_DETAIL_IDS[1:]
    ]
    merged = {
        "info": {"description": "PASCAL in Detail smoke copy"},
        "images": images,
        "annos_segmentation": segmentations,
        "categories": categories,
        "parts": [],
        "annos_occlusion": [],
        "annos_joints": [],
    }
    return {"VOCtrainval_03-May-2010.tar": _tar(members), "trainval_merged.json": _json(merged)}


# --------------------------------------------------------------------------------------------
# Facial landmarks
# --------------------------------------------------------------------------------------------


def _face(rng: np.random.Generator, num: int, height: int, width: int) -> np.ndarray:
    """``num`` distinct points of a face-like ellipse inside the image (margin 8 px)."""
    angles = np.linspace(0, 2 * np.pi, num, endpoint=False) + rng.uniform(0, 0.1)
    radius = 0.5 + 0.5 * (np.arange(num) % 3) / 3
    cx, cy = width / 2 + rng.uniform(-4, 4), height / 2 + rng.uniform(-4, 4)
    rx, ry = width / 2 - 10, height / 2 - 10
    points = np.stack([cx + rx * radius * np.cos(angles), cy + ry * radius * np.sin(angles)], axis=1)
    return np.round(points, 2)


def _pts(points: np.ndarray) -> bytes:
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    return f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n".encode()


# (zip, folder inside it, names): 300W's train split is afw + helen/trainset + lfpw/trainset,
# its full test set helen/testset + lfpw/testset + ibug (hrnet.data.landmarks)
_300W_PARTS: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    "afw.zip": (("", ("134212_1",), ".jpg"),),
    "helen.zip": (("trainset/", ("100032540_1",), ".jpg"), ("testset/", ("296814969_3",), ".jpg")),
    "lfpw.zip": (("trainset/", ("image_0001",), ".png"), ("testset/", ("image_0001",), ".png")),
    "ibug.zip": (("", ("image_003_1",), ".jpg"),),
}


def _300w(rng: np.random.Generator) -> dict[str, bytes]:
    size = 64
    files = {}
    for archive, folders in _300W_PARTS.items():
        members: Members = {}
        for folder, stems, ext in folders:
            for stem in stems:
                pixels = _noise(rng, size, size)
                members[f"{folder}{stem}{ext}"] = _jpeg(pixels) if ext == ".jpg" else _png(pixels)
                members[f"{folder}{stem}.pts"] = _pts(_face(rng, 68, size, size))
        files[archive] = _zip(members)
    return files


_WFLW_SPLITS = {"train": 3, "test": 2}


def _wflw(rng: np.random.Generator) -> dict[str, bytes]:
    size = 64
    images: Members = {}
    lists: Members = {}
    for split, count in _WFLW_SPLITS.items():
        lines = []
        for k in range(count):
            name = f"{k}--Event/{split}_{k}.jpg"
            images[f"WFLW_images/{name}"] = _jpeg(_noise(rng, size, size))
            points = _face(rng, 98, size, size)
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            box = [int(x0) - 2, int(y0) - 2, int(x1) + 2, int(y1) + 2]
            attributes = [int(v) for v in rng.integers(0, 2, 6)]
            values = [*(f"{v:.3f}" for v in points.reshape(-1)), *map(str, box), *map(str, attributes), name]
            lines.append(" ".join(values))
        folder = "WFLW_annotations/list_98pt_rect_attr_train_test"
        lists[f"{folder}/list_98pt_rect_attr_{split}.txt"] = ("\n".join(lines) + "\n").encode()
    lists["WFLW_annotations/README"] = b"WFLW smoke copy\n"
    return {"WFLW_annotations.tar.gz": _tar(lists, gz=True), "WFLW_images.tar.gz": _tar(images, gz=True)}


_COFW_SPLITS = {"train": ("IsTr", "phisTr", "bboxesTr", 3), "test": ("IsT", "phisT", "bboxesT", 2)}


def _cofw(rng: np.random.Generator) -> dict[str, bytes]:
    size = 64
    members: Members = {}
    for split, (images_key, points_key, boxes_key, count) in _COFW_SPLITS.items():
        cells = np.empty((count, 1), dtype=object)
        phis = np.zeros((count, 87))
        boxes = np.zeros((count, 4))
        for k in range(count):
            pixels = _noise(rng, size, size)
            cells[k, 0] = pixels[..., 0] if k == 0 else pixels  # COFW holds some grayscale faces
            points = _face(rng, 29, size, size)
            phis[k, :29], phis[k, 29:58] = points[:, 0], points[:, 1]
            phis[k, 58:] = rng.integers(0, 2, 29)
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            boxes[k] = [x0, y0, x1 - x0, y1 - y0]
        members[f"COFW_{split}_color.mat"] = _mat({images_key: cells, points_key: phis, boxes_key: boxes})
    return {"COFW_color.zip": _zip(members)}


# --------------------------------------------------------------------------------------------
# ImageNet
# --------------------------------------------------------------------------------------------

IMAGENET_CLASSES = 1000


def imagenet_wnids() -> list[str]:
    """The WordNet ids of the smoke copy's 1000 classes (``n`` + 8 digits, as ILSVRC's)."""
    return [f"n{10000000 + 7919 * i:08d}" for i in range(IMAGENET_CLASSES)]


def _imagenet(rng: np.random.Generator) -> dict[str, bytes]:
    size = 16
    wnids = imagenet_wnids()
    inner = 3  # a few inner synsets (num_children > 0) the leaf filter must skip
    record = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"),
              ("num_children", "O"), ("children", "O"), ("wordnet_height", "O"),
              ("num_train_images", "O")]  # fmt: skip
    synsets = np.zeros((IMAGENET_CLASSES + inner,), dtype=record)
    for i, wnid in enumerate(wnids):
        synsets[i] = (i + 1, wnid, f"class {i}", "smoke", 0, np.zeros((0,)), 0, 1)
    for j in range(inner):
        children = np.arange(1 + j * 10, 11 + j * 10, dtype=np.float64)
        synsets[IMAGENET_CLASSES + j] = (
            IMAGENET_CLASSES + j + 1,
            f"n{90000000 + j:08d}",
            "inner",
            "",
            10,
            children,
            1,
            0,
        )
    order = rng.permutation(IMAGENET_CLASSES)  # validation image k belongs to class order[k]
    truth = "".join(f"{int(c) + 1}\n" for c in order).encode()
    devkit = {
        "ILSVRC2012_devkit_t12/data/meta.mat": _mat({"synsets": synsets}),
        "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt": truth,
        "ILSVRC2012_devkit_t12/readme.txt": b"ILSVRC 2012 devkit smoke copy\n",
    }
    train: Members = {}
    for i, wnid in enumerate(wnids):
        pixels = _noise(rng, size, size)
        pixels[0, 0] = (i % 256, i // 256, 0)
        train[f"{wnid}.tar"] = _tar({f"{wnid}_{i + 1}.JPEG": _jpeg(pixels)})
    val = {
        f"ILSVRC2012_val_{k + 1:08d}.JPEG": _jpeg(_noise(rng, size, size)) for k in range(IMAGENET_CLASSES)
    }
    return {
        "ILSVRC2012_devkit_t12.tar.gz": _tar(devkit, gz=True),
        "ILSVRC2012_img_train.tar": _tar(train),
        "ILSVRC2012_img_val.tar": _tar(val),
    }


def _dis5k(rng: np.random.Generator) -> dict[str, bytes]:
    from hrnet.data.dis import smoke_archive

    return smoke_archive(rng, _jpeg, _png, _zip)


def _mfn(rng: np.random.Generator) -> dict[str, bytes]:
    from hrnet.data.mfn import smoke_archive

    return smoke_archive(rng, _png, _zip)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _driving(name: str) -> Callable[[np.random.Generator], dict[str, bytes]]:
    """The writer ``name`` of :mod:`hrnet.data.smoke_driving` (imported when it writes)."""

    def write(rng: np.random.Generator) -> dict[str, bytes]:
        from hrnet.data import smoke_driving

        return getattr(smoke_driving, name)(rng)

    return write


_WRITERS: dict[str, Callable[[np.random.Generator], dict[str, bytes]]] = {
    "coco2017": _coco,
    "coco2017_stuff": _coco_stuff,
    "cityscapes": _cityscapes,
    "ade20k": _ade20k,
    "voc2012": _voc2012,
    "sbd": _sbd,
    "pascal_context": _pascal_context,
    "300w": _300w,
    "wflw": _wflw,
    "cofw": _cofw,
    "imagenet": _imagenet,
    "dis5k": lambda rng: _dis5k(rng),
    "mfn": lambda rng: _mfn(rng),
    **{name: _driving(name) for name in ("bdd100k", "acdc", "dada_seg", "synpass")},
}
SMOKE_DATASETS: tuple[str, ...] = (*_WRITERS, "coco2017_val")


def smoke_counts() -> dict[str, dict[str, int]]:
    """Items per split that the readers read from the smoke copies, keyed by the dataset ids of
    benchmarks/params.yaml (COCO: images per split)."""
    from hrnet.data.smoke_driving import smoke_counts as driving_counts

    return {
        "imagenet": {"train": IMAGENET_CLASSES, "val": IMAGENET_CLASSES},
        "coco": dict(_COCO_SPLITS),
        "coco_stuff": dict(_COCO_SPLITS),
        "cityscapes": {s: n for s, (_, n) in _CITYSCAPES_SPLITS.items() if s != "test"},
        "ade20k": {s: n for s, (_, n) in _ADE20K_SPLITS.items()},
        "voc_aug": {
            "train_aug": len(({*_VOC_TRAIN, *_SBD_TRAIN, *_SBD_VAL}) - set(_VOC_VAL)),
            "val": len(_VOC_VAL),
        },
        "pascal_context": {p: len(s) for p, s in _CONTEXT_PHASES.items()},
        "300w": {"train": 3, "full": 3},
        "wflw": dict(_WFLW_SPLITS),
        "cofw": {s: v[-1] for s, v in _COFW_SPLITS.items()},
        "dis5k": _smoke_counts_of("hrnet.data.dis", "SMOKE_COUNTS"),
        "mfn": _smoke_counts_of("hrnet.data.mfn", "SMOKE_SPLITS"),
        **driving_counts(),
    }


def _smoke_counts_of(module: str, name: str) -> dict[str, int]:
    import importlib

    return dict(getattr(importlib.import_module(module), name))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_smoke_dataset(name: str, out_dir: str | Path, seed: int = 0) -> dict[str, str]:
    """Write the catalogue dataset ``name``'s files (its catalogue file names) into ``out_dir``.

    Returns ``{filename: sha256}`` of the files written (the ``--checksums`` of this mirror).
    """
    from hrnet.data import catalog
    from hrnet.errors import HRNetError

    if name not in SMOKE_DATASETS:
        raise HRNetError(f"{name}: no smoke copy; known: {', '.join(SMOKE_DATASETS)}")
    writer = _WRITERS["coco2017" if name == "coco2017_val" else name]
    # one generator per dataset, so each dataset's bytes do not depend on which others are written
    offset = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    files = writer(np.random.default_rng([seed, offset]))
    wanted = [f.filename for f in catalog.get_dataset(name).files]
    missing = sorted(set(wanted) - set(files))
    if missing:  # the writers follow the catalogue; this guards against the two drifting apart
        raise HRNetError(f"{name}: the smoke writer lacks the catalogue's {', '.join(missing)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    digests = {}
    for filename in wanted:
        (out / filename).write_bytes(files[filename])
        digests[filename] = _sha256(files[filename])
    return digests


def write_smoke_mirror(
    dataset_ids: Iterable[str], out_dir: str | Path, seed: int = 0
) -> dict[str, dict[str, str]]:
    """Write the smoke copies of ``dataset_ids`` under ``out_dir/<catalogue name>/``.

    ``dataset_ids`` are dataset ids of benchmarks/params.yaml (``coco``, ``voc_aug``, ...: each
    stands for the catalogue names its ``fetch`` lists, :data:`SMOKE_FETCH`) or catalogue names.
    Returns ``{catalogue name: {filename: sha256}}``.
    """
    names: list[str] = []
    for dataset_id in dataset_ids:
        for name in SMOKE_FETCH.get(dataset_id, (dataset_id,)):
            if name not in names:
                names.append(name)
    return {name: write_smoke_dataset(name, Path(out_dir) / name, seed) for name in names}


def _calibrate_batch_norm(model: nn.Module, batches: int = 2) -> None:
    """Running statistics of every BatchNorm from a few noise batches (cumulative average), so
    that the rows that keep BN in eval mode (``norm_eval``, the detectors) see activations of unit
    scale, as with real ImageNet weights; a fresh model's 0 / 1 statistics make a deep HRNet's
    activations grow by orders of magnitude."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.rand(2, 3, 64, 64))
    for m in norms:
        m.momentum = 0.1
    model.eval()


def write_smoke_weights(
    names: Iterable[str], out_dir: str | Path, seed: int = 0
) -> dict[str, dict[str, str]]:
    """Write ImageNet-pretrained backbone files of the catalogue (``hrnetv2_w18_imagenet``, ...)
    under ``out_dir/<name>/<catalogue file name>``, from a randomly initialised classifier of
    that width (:data:`SMOKE_WEIGHT_MODELS`).

    Layout: the official HRNet-Image-Classification key names (``conv1``, ``layer1``,
    ``stage2`` ... ``incre_modules``, ``downsamp_modules``, ``final_layer``, ``classifier``), a
    plain state dict, as both the HRNetV2 files and the pose repository's ImageNet files are
    published (:func:`hrnet.models.convert.detect_layout` reads them as ``official``); the dense
    models load the backbone part and report the head as unused. Returns
    ``{name: {filename: sha256}}``.
    """
    import torch

    from hrnet.data import catalog
    from hrnet.errors import HRNetError
    from hrnet.models import create_model
    from hrnet.models.convert import export_state_dict

    written = {}
    for name in names:
        if name not in SMOKE_WEIGHT_MODELS:
            raise HRNetError(
                f"{name}: not an ImageNet weights entry; known: {', '.join(SMOKE_WEIGHT_MODELS)}"
            )
        (remote,) = catalog.get_dataset(name).files
        offset = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed * 1_000_003 + offset)
            model = create_model(SMOKE_WEIGHT_MODELS[name])
            _calibrate_batch_norm(model)
        finally:
            torch.random.set_rng_state(state)
        state_dict = {
            k: v.detach().clone().contiguous() for k, v in export_state_dict(model, "official").items()
        }
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        data = buffer.getvalue()
        (folder / remote.filename).write_bytes(data)
        written[name] = {remote.filename: _sha256(data)}
    return written
