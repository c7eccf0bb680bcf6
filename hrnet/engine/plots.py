"""Pictures of an evaluation: predictions drawn on images, confusion matrix, training curves.

matplotlib is imported inside each function (Agg backend); every picture is written atomically.
Images given here are the network inputs: ImageNet-normalised ``float [3, H, W]`` unless
``normalised=False`` (detection inputs in 0..1).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "classification_grid",
    "confusion_matrix",
    "detection_grid",
    "keypoint_grid",
    "segmentation_grid",
    "to_uint8",
    "training_curves",
]

_MEAN = np.array([0.485, 0.456, 0.406])[:, None, None]
_STD = np.array([0.229, 0.224, 0.225])[:, None, None]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    from hrnet.data.io import write_bytes_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    write_bytes_atomic(path, buf.getvalue())


def to_uint8(image: torch.Tensor, *, normalised: bool = True) -> np.ndarray:
    """``float [3, H, W]`` network input -> ``uint8 [H, W, 3]`` for display."""
    array = image.detach().float().cpu().numpy()
    if normalised:
        array = array * _STD + _MEAN
    return (array.clip(0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)


def _grid(n: int) -> tuple[Any, Any]:
    plt = _pyplot()
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: Path) -> None:
    """``matrix[true, predicted]`` counts as a row-normalised heat map with counts written in."""
    plt = _pyplot()
    n = len(class_names)
    side = min(12.0, max(4.0, 0.5 * n + 2))  # capped: 1000 ImageNet classes stay a 12-inch picture
    fig, ax = plt.subplots(figsize=(side, side))
    rates = matrix / np.clip(matrix.sum(1, keepdims=True), 1, None)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), class_names, rotation=90)
        ax.set_yticks(range(n), class_names)
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(
                        j,
                        i,
                        int(matrix[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix")
    _save(fig, path)


def classification_grid(
    samples: Sequence[tuple[torch.Tensor, int, int]], class_names: Sequence[str], path: Path
) -> None:
    """``(image, predicted, true)`` triples; titles in green when right, red when wrong."""
    fig, axes = _grid(len(samples))
    for ax, (image, pred, true) in zip(axes, samples):
        ax.imshow(to_uint8(image))
        ax.set_title(
            f"{class_names[pred]} (true {class_names[true]})",
            color="green" if pred == true else "red",
            fontsize=9,
        )
    _save(fig, path)


def segmentation_grid(
    samples: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], num_classes: int, path: Path
) -> None:
    """``(image, predicted map, true map)`` triples: image | prediction overlay | truth overlay."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(samples), 3, figsize=(9, 3 * len(samples)), squeeze=False)
    cmap = plt.get_cmap("tab20", max(num_classes, 2))
    for row, (image, pred, true) in zip(axes, samples):
        rgb = to_uint8(image)
        for ax, title, labels in zip(row, ("image", "prediction", "truth"), (None, pred, true)):
            ax.imshow(rgb)
            if labels is not None:
                lab = labels.cpu().numpy().astype(float)
                lab[(lab == 0) | (lab == 255)] = np.nan
                ax.imshow(
                    lab, cmap=cmap, vmin=0, vmax=max(num_classes - 1, 1), alpha=0.55, interpolation="nearest"
                )
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    _save(fig, path)


def detection_grid(
    samples: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]],
    class_names: Sequence[str],
    path: Path,
    *,
    score_threshold: float = 0.5,
) -> None:
    """``(image in 0..1, prediction)`` pairs: boxes (and masks) with class and score above
    ``score_threshold``. ``class_names[label - 1]`` names a label (labels start at 1)."""
    from matplotlib.patches import Rectangle

    fig, axes = _grid(len(samples))
    for ax, (image, pred) in zip(axes, samples):
        ax.imshow(to_uint8(image, normalised=False))
        keep = pred["scores"] >= score_threshold
        if "masks" in pred and keep.any():
            mask = (pred["masks"][keep, 0] > 0.5).any(0).cpu().numpy().astype(float)
            mask[mask == 0] = np.nan
            ax.imshow(mask, cmap="autumn", alpha=0.4, vmin=0, vmax=1)
        for box, label, score in zip(pred["boxes"][keep], pred["labels"][keep], pred["scores"][keep]):
            x0, y0, x1, y1 = box.tolist()
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", linewidth=1.5))
            name = class_names[int(label) - 1] if 0 < int(label) <= len(class_names) else str(int(label))
            ax.text(x0, y0, f"{name} {float(score):.2f}", color="black", fontsize=7, backgroundcolor="lime")
    _save(fig, path)


def keypoint_grid(
    samples: Sequence[tuple[torch.Tensor, np.ndarray, np.ndarray | None]],
    path: Path,
    *,
    skeleton: Sequence[tuple[int, int]] = (),
) -> None:
    """``(image, predicted [K, 2], true [K, 2] or None)`` in the image's pixel coordinates:
    predictions as red dots joined by the ``skeleton`` (0-based pairs), truth as green crosses."""
    fig, axes = _grid(len(samples))
    for ax, (image, pred, true) in zip(axes, samples):
        ax.imshow(to_uint8(image))
        for a, b in skeleton:
            ax.plot(pred[[a, b], 0], pred[[a, b], 1], color="orange", linewidth=1)
        if true is not None:
            ax.scatter(true[:, 0], true[:, 1], s=12, c="lime", marker="x")
        ax.scatter(pred[:, 0], pred[:, 1], s=8, c="red")
    _save(fig, path)


def training_curves(history_json: Path, path: Path) -> None:
    """The loss terms and the learning rate over optimizer steps, from ``history.json``
    (written by training); nothing when the file is missing."""
    if not history_json.is_file():
        return
    history = json.loads(history_json.read_text())
    if not history:
        return
    plt = _pyplot()
    steps = [h["step"] for h in history]
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in sorted(k for k in history[0] if k.startswith("train/loss")):
        ax_loss.plot(steps, [h.get(key, np.nan) for h in history], label=key.removeprefix("train/"))
    ax_loss.set_xlabel("step")
    ax_loss.set_yscale("log")
    ax_loss.legend(fontsize=8)
    ax_loss.set_title("training loss")
    ax_lr.plot(steps, [h.get("train/lr", np.nan) for h in history])
    ax_lr.set_xlabel("step")
    ax_lr.set_title("learning rate")
    _save(fig, path)
