"""BDD100K instance segmentation: layout, COCO-format training files, bitmask predictions and the
official evaluation.

Layout under the dataset root (the ``bdd100k`` folder of the published zips; bdd100k/bdd100k
``doc/source/download.rst``): images ``images/10k/<split>/<name>.jpg`` (1280x720), ground truth
``labels/ins_seg/bitmasks/<split>/<name>.png``, and the COCO-format files the training reads
(SysCV/bdd100k-models ``ins_seg/configs/_base_/datasets/bdd100k_mstrain.py``)
``jsons/ins_seg_<split>_cocofmt.json``, made from the bitmasks by :func:`prepare_bdd100k` with the
``bdd100k`` package's converter (``bdd100k.label.to_coco.bitmask2coco_ins_seg``).

A bitmask is an RGBA PNG (bdd100k ``doc/source/format.rst``): R the category id (1..8, 0
background), G the attributes ``(truncated << 3) + (occluded << 2) + (crowd << 1) + ignore``,
``(B << 8) + A`` the instance index. Predictions are written the same way, one PNG per image,
plus a score file ``[{"name": <image>, "labels": [{"index", "score"}]}]``; overlapping masks are
painted in increasing score order, so the higher score wins a pixel. The evaluation is the
package's own (:func:`evaluate_bitmasks`: ``bdd100k.eval.ins_seg.evaluate_ins_seg``, the code
behind ``python -m bdd100k.eval.run -t ins_seg``).

``bdd100k`` and ``scalabel`` are imported inside the functions that use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.errors import HRNetError

__all__ = [
    "BDD100K_CLASSES",
    "BitmaskWriter",
    "annotation_file",
    "bitmask_folder",
    "evaluate_bitmasks",
    "image_folder",
    "prepare_bdd100k",
    "scalabel_config",
    "write_bitmask",
]

# the 8 instance classes, category ids 1..8 in this order (bdd100k configs/ins_seg.toml)
BDD100K_CLASSES: tuple[str, ...] = (
    "pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
MAX_INSTANCES = 65535  # (B << 8) + A


def image_folder(root: str | Path, split: str) -> Path:
    return Path(root) / "images" / "10k" / split


def bitmask_folder(root: str | Path, split: str) -> Path:
    return Path(root) / "labels" / "ins_seg" / "bitmasks" / split


def annotation_file(root: str | Path, split: str) -> Path:
    return Path(root) / "jsons" / f"ins_seg_{split}_cocofmt.json"


def scalabel_config() -> Any:
    """The ``bdd100k`` package's instance-segmentation config (``configs/ins_seg.toml``) as a
    ``scalabel.label.typing.Config``.

    The package's own loader (``bdd100k.common.utils.load_bdd100k_config``) fails under
    pydantic 2, which treats scalabel's ``Optional`` fields without a default as required; the
    fields the file leaves out are set to None here (their pydantic-1 value).
    """
    import bdd100k
    from scalabel.label.io import load_config
    from scalabel.label.typing import Config

    raw = load_config(str(Path(bdd100k.__file__).parent / "configs" / "ins_seg.toml"))["scalabel"]

    def category(entry: dict) -> dict:
        subs = entry.get("subcategories")
        return {
            **entry,
            "color": entry.get("color"),
            "subcategories": [category(s) for s in subs] if subs else None,
        }

    attribute_defaults = {"tag": None, "tagPrefix": None, "tagSuffixes": None, "values": None}
    return Config(
        imageSize=raw.get("imageSize"),
        attributes=[{**attribute_defaults, **a} for a in raw.get("attributes", [])],
        categories=[category(c) for c in raw["categories"]],
        poseSigmas=raw.get("poseSigmas"),
    )


def prepare_bdd100k(folder: str | Path) -> None:
    """The extracted BDD100K zips -> ``jsons/ins_seg_{train,val}_cocofmt.json`` beside
    ``images/`` and ``labels/``, converted from the bitmasks by the ``bdd100k`` package
    (``bitmask2coco_ins_seg``: one RLE annotation per instance, ``iscrowd`` from the crowd bit)."""
    import contextlib
    import io
    import json

    from bdd100k.label.to_coco import bitmask2coco_ins_seg
    from PIL import Image

    folders = sorted(Path(folder).rglob("labels/ins_seg/bitmasks"))
    if not folders:
        raise HRNetError(f"{folder}: labels/ins_seg/bitmasks not found in the extracted files")
    root = folders[0].parents[2]
    config = scalabel_config()
    for split in ("train", "val"):
        masks = bitmask_folder(root, split)
        if not masks.is_dir():
            raise HRNetError(f"{masks}: the {split} bitmasks are missing")
        with contextlib.redirect_stderr(io.StringIO()):  # the converter's progress bars
            coco = bitmask2coco_ins_seg(str(masks), config, nproc=1)
        # the converter sets each image's size inside its worker processes, so the sizes never
        # reach the result: read them from the bitmasks' headers; iscrowd as 0/1 like COCO's files
        for image in coco["images"]:
            with Image.open(masks / Path(image["file_name"]).with_suffix(".png")) as bitmask:
                image["width"], image["height"] = bitmask.size
        for ann in coco["annotations"]:
            ann["iscrowd"] = int(ann["iscrowd"])
        target = annotation_file(root, split)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(coco), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# predictions


def write_bitmask(
    path: str | Path,
    masks: np.ndarray,
    category_ids: Sequence[int],
    scores: Sequence[float],
) -> list[dict[str, Any]]:
    """Write one image's instances as a BDD100K bitmask PNG; return its score-file labels.

    Args:
        masks: bool ``[N, H, W]``.
        category_ids: the BDD100K category id (1..8) of each instance.
        scores: each instance's confidence.

    Returns:
        ``[{"index": i, "score": s}]`` with ``i`` = 1..N in input order (the B/A value).
    """
    from PIL import Image

    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or len(masks) != len(category_ids) or len(masks) != len(scores):
        raise ValueError("masks must be [N, H, W] with one category id and score per mask")
    if len(masks) > MAX_INSTANCES:
        raise ValueError(f"at most {MAX_INSTANCES} instances fit a bitmask")
    height, width = masks.shape[1:] if len(masks) else (0, 0)
    bitmask = np.zeros((height, width, 4), dtype=np.uint8)
    for i in np.argsort(np.asarray(scores, dtype=np.float64), kind="stable"):
        index = int(i) + 1
        bitmask[masks[i]] = (int(category_ids[i]), 0, index >> 8, index & 255)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(bitmask, mode="RGBA").save(path)
    return [{"index": int(i) + 1, "score": float(s)} for i, s in enumerate(scores)]


class BitmaskWriter:
    """Collects a detector's predictions as BDD100K bitmasks under ``out_dir/bitmasks`` and
    their scores in ``out_dir/score.json``, then evaluates them against a ground-truth folder.

    Images without a detection get an empty bitmask of their size (the evaluator needs one per
    ground-truth image)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.frames: list[dict[str, Any]] = []

    def add(
        self,
        file_name: str,
        size: tuple[int, int],
        pred: dict[str, Any],
        category_ids: Sequence[int],
        *,
        threshold: float = 0.5,
    ) -> None:
        """One image: ``pred`` holds ``labels`` (1..K), ``scores`` and ``masks`` ``[N, 1, H, W]``
        probabilities (binarised at ``threshold``); label ``l`` is category ``category_ids[l-1]``."""
        labels = [int(v) for v in pred["labels"].tolist()]
        scores = [float(v) for v in pred["scores"].tolist()]
        if labels:
            masks = (pred["masks"][:, 0] > threshold).cpu().numpy()
        else:
            masks = np.zeros((0, *size), dtype=bool)
        png = self.out_dir / "bitmasks" / f"{Path(file_name).stem}.png"
        if not labels:
            from PIL import Image

            png.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((*size, 4), dtype=np.uint8), mode="RGBA").save(png)
            entries: list[dict[str, Any]] = []
        else:
            entries = write_bitmask(png, masks, [category_ids[label - 1] for label in labels], scores)
        self.frames.append({"name": Path(file_name).name, "labels": entries})

    def evaluate(self, gt_dir: str | Path) -> dict[str, Any]:
        """Write ``score.json`` and run :func:`evaluate_bitmasks` on what was added."""
        from hrnet.data.io import write_json_atomic

        write_json_atomic(self.out_dir / "score.json", self.frames)
        return evaluate_bitmasks(gt_dir, self.out_dir / "bitmasks", self.out_dir / "score.json")


def _finite(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def evaluate_bitmasks(gt_dir: str | Path, pred_dir: str | Path, score_file: str | Path) -> dict[str, Any]:
    """Mask AP of BDD100K bitmask predictions by the ``bdd100k`` package
    (``bdd100k.eval.ins_seg.evaluate_ins_seg``, COCO-style AP over IoU 0.5:0.95 on the 8 classes).

    Every ``*.png`` of ``gt_dir`` needs a prediction PNG of the same name in ``pred_dir``.

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", ...}`` (percent, None
        where no instance of the kind exists) and ``"per_class"`` ``{class: AP}``.

    Raises:
        HRNetError: no ground truth, or a ground-truth image without a prediction.
    """
    import contextlib
    import io
    import logging

    from bdd100k.eval.ins_seg import evaluate_ins_seg

    gt = sorted(str(p) for p in Path(gt_dir).rglob("*.png"))
    pred = sorted(str(p) for p in Path(pred_dir).rglob("*.png"))
    if not gt:
        raise HRNetError(f"{gt_dir}: no ground-truth bitmasks")
    missing = sorted({Path(p).name for p in gt} - {Path(p).name for p in pred})
    if missing:
        raise HRNetError(f"{pred_dir}: no prediction bitmask for {', '.join(missing[:5])}")
    names = {Path(p).name for p in gt}
    pred = [p for p in pred if Path(p).name in names]
    logger = logging.getLogger("bdd100k")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = evaluate_ins_seg(gt, pred, str(score_file), scalabel_config(), nproc=1, with_logs=False)
    finally:
        logger.setLevel(level)
    values = dict(result)
    out: dict[str, Any] = {key: _finite(rows[-1]["OVERALL"]) for key, rows in values.items()}
    out["per_class"] = {name: _finite(v) for name, v in values["AP"][0].items()}
    return out
