"""Evaluation: load a trained model, run it over a split, write ``metrics.json`` and ``plots/``.

``evaluate_run(source, ecfg)`` loads ``model.pt`` (or a training checkpoint), rebuilds the task
model from the configuration saved inside it, and lets the task's evaluator
(``evaluate_<task>`` below, called through :meth:`hrnet.engine.tasks.Task.evaluate`) compute
the metrics. Every evaluator follows one pattern: a loader over the split, a progress bar,
inference under ``torch.inference_mode``, a metric accumulator, then pictures.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from hrnet.engine import checkpoint as ckpt
from hrnet.engine.config import EvalConfig, TrainConfig, config_from_mapping
from hrnet.errors import HRNetError

if TYPE_CHECKING:
    from hrnet.engine.tasks import Task

__all__ = ["LoadedModel", "evaluate_run", "load_model", "resolve_model_file"]


@dataclasses.dataclass
class LoadedModel:
    """A trained task model in eval mode, with the configuration and facts it was saved with."""

    model: nn.Module
    config: TrainConfig
    info: dict[str, Any]
    task: Task
    path: Path


def resolve_model_file(source: str | Path) -> Path:
    """A run folder -> its ``model.pt`` (else ``checkpoints/last.pt``); a file stays itself."""
    source = Path(source)
    if source.is_dir():
        for candidate in (source / "model.pt", source / "checkpoints" / "last.pt"):
            if candidate.is_file():
                return candidate
        raise HRNetError(f"{source}: no model.pt or checkpoints/last.pt in this run folder")
    if not source.is_file():
        raise HRNetError(f"{source}: no such run folder or checkpoint")
    return source


def load_model(source: str | Path, *, device: torch.device, data: str | None = None) -> LoadedModel:
    """Rebuild and load the model saved in a run folder or a ``.pt`` file (eval mode).

    Args:
        source: run folder, ``model.pt`` or ``checkpoints/last.pt``.
        device: where to put the model.
        data: replaces the dataset root recorded in the configuration.
    """
    from hrnet.engine.tasks import get_task
    from hrnet.engine.train import build_model

    path = resolve_model_file(source)
    state = ckpt.load(path)
    cfg = config_from_mapping(state["config"], source=f"{path} (saved config)")
    if data is not None:
        cfg = dataclasses.replace(cfg, data=str(data))
    task = get_task(cfg.task)
    info = state.get("info", {})
    model = build_model(task, cfg, info)
    try:
        task.load_state_dict(model, state["model"])
    except RuntimeError as exc:
        raise HRNetError(f"{path}: weights do not fit the model {cfg.model!r}: {exc}") from None
    model.to(device).eval()
    return LoadedModel(model, cfg, info, task, path)


def evaluate_run(
    source: str | Path,
    ecfg: EvalConfig,
    *,
    out_dir: str | Path | None = None,
    data: str | None = None,
) -> dict[str, Any]:
    """Evaluate the model of a run folder or checkpoint; write ``metrics.json`` and ``plots/``.

    Args:
        source: run folder, ``model.pt`` or ``checkpoints/last.pt``.
        ecfg: the evaluation settings.
        out_dir: where metrics and plots go (default: the run folder, or the file's folder).
        data: replaces the dataset root recorded in the model's configuration.

    Returns:
        The metrics dict written to ``metrics.json``.
    """
    from hrnet.data.io import write_json_atomic
    from hrnet.engine.distributed import resolve_device

    device = resolve_device(ecfg.device)
    loaded = load_model(source, device=device, data=data)
    if out_dir is None:
        out_dir = Path(source) if Path(source).is_dir() else loaded.path.parent
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    metrics = loaded.task.evaluate(loaded.model, loaded.config, ecfg, loaded.info, device, out_dir)
    seconds = time.perf_counter() - started
    metrics = {
        "task": loaded.config.task,
        "model": loaded.config.model,
        "dataset": loaded.config.data,
        "split": ecfg.split,
        "checkpoint": str(loaded.path),
        **metrics,
        "eval_seconds": round(seconds, 3),
        "eval_settings": {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(ecfg).items()
        },
    }
    write_json_atomic(out_dir / "metrics.json", metrics, indent=2)
    return metrics


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def _loader(task: Task, cfg: TrainConfig, ecfg: EvalConfig, device: torch.device) -> DataLoader:
    dataset = task.dataset(cfg, ecfg.split, train=False)
    return DataLoader(
        dataset,
        batch_size=ecfg.batch_size,
        shuffle=False,
        num_workers=ecfg.workers,
        collate_fn=task.collate,
        pin_memory=device.type == "cuda",
    )


def _batches(loader: DataLoader, desc: str) -> Iterator[Any]:
    from tqdm import tqdm

    yield from tqdm(loader, desc=desc, unit="batch", dynamic_ncols=True, leave=False)


def _autocast(device: torch.device, amp: str) -> Any:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def evaluate_classification(
    task: Task,
    model: nn.Module,
    cfg: TrainConfig,
    ecfg: EvalConfig,
    info: dict[str, Any],
    device: torch.device,
    out_dir: Path,
) -> dict[str, Any]:
    """Top-1/top-5 accuracy and the confusion matrix (``plots/confusion_matrix.png``), plus a
    grid of images with their predicted and true classes (``plots/predictions.png``)."""
    from hrnet.engine import plots
    from hrnet.engine.metrics import ClassificationMeter

    classes = info["class_names"]
    meter = ClassificationMeter(len(classes))
    loader = _loader(task, cfg, ecfg, device)
    samples: list[tuple[torch.Tensor, int, int]] = []
    with torch.inference_mode():
        for images, labels in _batches(loader, "evaluate"):
            images = images.to(device, non_blocking=True)
            with _autocast(device, ecfg.amp):
                logits = model(images)
            meter.update(logits, labels)
            if len(samples) < ecfg.num_plots:
                preds = logits.argmax(1).cpu()
                for i in range(min(len(images), ecfg.num_plots - len(samples))):
                    samples.append((images[i].cpu(), int(preds[i]), int(labels[i])))
    result = meter.compute()
    plots.confusion_matrix(meter.confusion.numpy(), classes, out_dir / "plots" / "confusion_matrix.png")
    if samples:
        plots.classification_grid(samples, classes, out_dir / "plots" / "predictions.png")
    plots.training_curves(out_dir / "history.json", out_dir / "plots" / "training_loss.png")
    return {**result, "confusion_matrix": meter.confusion.tolist(), "class_names": classes}


# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------


def segmentation_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    *,
    scales: tuple[float, ...] = (1.0,),
    flip: bool = False,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Class probabilities ``[B, C, *size]`` (default: the input size ``[H, W]``): the mean of
    the softmaxed logits, bilinearly resized to ``size``, over the rescaled (bilinear) and, with
    ``flip``, mirrored inputs. Pass the label map's size when the images were resized."""
    import torch.nn.functional as F

    size = tuple(images.shape[-2:]) if size is None else tuple(size)
    total = None
    count = 0
    for scale in scales:
        x = (
            images
            if scale == 1.0
            else F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
        )
        for mirrored in (False, True) if flip else (False,):
            logits = model(x.flip(-1) if mirrored else x)["out"]
            if mirrored:
                logits = logits.flip(-1)
            probs = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False).softmax(1)
            total = probs if total is None else total + probs
            count += 1
    assert total is not None
    return total / count


def evaluate_segmentation(
    task: Task,
    model: nn.Module,
    cfg: TrainConfig,
    ecfg: EvalConfig,
    info: dict[str, Any],
    device: torch.device,
    out_dir: Path,
) -> dict[str, Any]:
    """mIoU at single scale (``mIoU``) and, when ``ecfg.scales``/``ecfg.flip`` ask for more,
    multi-scale + flip (``mIoU_ms_flip``); ``plots/predictions.png`` overlays."""
    from hrnet.engine import plots
    from hrnet.engine.metrics import SegmentationMeter

    classes = info["class_names"]
    single = SegmentationMeter(len(classes))
    multi = SegmentationMeter(len(classes)) if (ecfg.scales != (1.0,) or ecfg.flip) else None
    samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    with torch.inference_mode():
        for images, masks in _batches(_loader(task, cfg, ecfg, device), "evaluate"):
            images = images.to(device, non_blocking=True)
            size = (masks.shape[-2], masks.shape[-1])  # scored at the label map's own size
            with _autocast(device, ecfg.amp):
                pred = segmentation_probabilities(model, images, size=size).argmax(1).cpu()
                single.update(pred, masks)
                if multi is not None:
                    probs = segmentation_probabilities(
                        model, images, scales=ecfg.scales, flip=ecfg.flip, size=size
                    )
                    multi.update(probs.argmax(1).cpu(), masks)
            for i in range(min(len(images), ecfg.num_plots - len(samples))):
                picture = torch.nn.functional.interpolate(
                    images[i : i + 1].float().cpu(), size=size, mode="bilinear", align_corners=False
                )[0]
                samples.append((picture, pred[i], masks[i]))
    result: dict[str, Any] = single.compute()
    if multi is not None:
        ms = multi.compute()
        result.update(
            {
                "mIoU_ms_flip": ms["mIoU"],
                "iou_ms_flip": ms["iou"],
                "test_scales": list(ecfg.scales),
                "test_flip": ecfg.flip,
            }
        )
    if samples:
        plots.segmentation_grid(samples, len(classes), out_dir / "plots" / "predictions.png")
    plots.training_curves(out_dir / "history.json", out_dir / "plots" / "training_loss.png")
    return {**result, "class_names": classes}


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def detections_to_coco(
    image_id: int, pred: dict[str, torch.Tensor], category_ids: list[int]
) -> list[dict[str, Any]]:
    """One image's predictions (xyxy boxes, labels 1..K, scores[, masks [N,1,H,W]]) -> COCO
    results: xywh boxes, the file's category ids, RLE masks (threshold 0.5)."""
    boxes = pred["boxes"].detach().float().cpu()
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    labels, scores = pred["labels"].tolist(), pred["scores"].float().tolist()
    results = [
        {
            "image_id": int(image_id),
            "category_id": category_ids[label - 1],
            "bbox": [round(v, 2) for v in box],
            "score": round(score, 5),
        }
        for box, label, score in zip(xywh, labels, scores)
    ]
    if "masks" in pred and len(results):
        import numpy as np
        from pycocotools import mask as mask_utils

        binary = (pred["masks"][:, 0] > 0.5).cpu().numpy().astype(np.uint8)
        for r, m in zip(results, binary):
            rle = mask_utils.encode(np.asfortranarray(m))
            rle["counts"] = rle["counts"].decode("ascii")
            r["segmentation"] = rle
    return results


def evaluate_detection(
    task: Task,
    model: nn.Module,
    cfg: TrainConfig,
    ecfg: EvalConfig,
    info: dict[str, Any],
    device: torch.device,
    out_dir: Path,
) -> dict[str, Any]:
    """COCO box AP (and mask AP for Mask R-CNN) by pycocotools on the split's annotation file;
    predictions as COCO results in ``predictions.json``; ``plots/predictions.png``."""
    from hrnet.data.io import write_json_atomic
    from hrnet.engine import plots
    from hrnet.engine.metrics import coco_evaluate

    results: list[dict[str, Any]] = []
    image_ids: list[int] = []
    samples: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
    with torch.inference_mode():
        for images, targets in _batches(_loader(task, cfg, ecfg, device), "evaluate"):
            with _autocast(device, ecfg.amp):
                preds = model([image.to(device, non_blocking=True) for image in images])
            for image, target, pred in zip(images, targets, preds):
                image_ids.append(int(target["image_id"]))
                results += detections_to_coco(int(target["image_id"]), pred, info["category_ids"])
                if len(samples) < ecfg.num_plots:
                    samples.append((image, {k: v.cpu() for k, v in pred.items()}))
    write_json_atomic(out_dir / "predictions.json", results)
    ann_file = task.annotation_file(cfg, ecfg.split)  # type: ignore[attr-defined]
    metrics: dict[str, Any] = {"num_images": len(image_ids), "num_detections": len(results)}
    with_masks = any("segmentation" in r for r in results)  # Mask R-CNN only
    metrics["bbox"] = coco_evaluate(ann_file, results, "bbox", image_ids=image_ids)
    metrics["box_AP"] = metrics["bbox"]["AP"]
    if with_masks:
        metrics["segm"] = coco_evaluate(ann_file, results, "segm", image_ids=image_ids)
        metrics["mask_AP"] = metrics["segm"]["AP"]
    if samples:
        plots.detection_grid(samples, info["class_names"], out_dir / "plots" / "predictions.png")
    plots.training_curves(out_dir / "history.json", out_dir / "plots" / "training_loss.png")
    return metrics


# --------------------------------------------------------------------------------------------
# Pose and landmarks
# --------------------------------------------------------------------------------------------


# smoothing (heatmap pixels) of predicted heatmaps before the sub-pixel Newton step
SUBPIXEL_BLUR_SIGMA = 1.0


def _heatmaps(
    model: nn.Module,
    images: torch.Tensor,
    flip_pairs: list[list[int]],
    flip: bool,
    *,
    subpixel: bool = False,
) -> torch.Tensor:
    from hrnet.pose_utils import flip_back

    heatmaps = model(images).float()
    if flip:
        mirrored = model(images.flip(-1)).float()
        pairs = [(int(a), int(b)) for a, b in flip_pairs]
        heatmaps = 0.5 * (heatmaps + flip_back(mirrored, pairs, shift=True, subpixel=subpixel))
    return heatmaps


def _image_points(
    heatmaps: torch.Tensor, targets: dict[str, Any], *, subpixel: bool = False
) -> tuple[list[Any], torch.Tensor]:
    """Peaks -> per-sample points ``float64 [K, 2]`` in original image pixels, and maxvals
    (``subpixel``: the DARK decoder of :func:`hrnet.pose_utils.decode_heatmaps`)."""
    from hrnet.pose_utils import decode_heatmaps, heatmap_to_image_coords

    coords, maxvals = decode_heatmaps(heatmaps, subpixel=subpixel, blur_sigma=SUBPIXEL_BLUR_SIGMA)
    size = (heatmaps.shape[-1], heatmaps.shape[-2])
    points = [
        heatmap_to_image_coords(coords[i], targets["center"][i].numpy(), targets["scale"][i].numpy(), size)
        for i in range(len(coords))
    ]
    return points, maxvals.cpu()


def evaluate_pose(
    task: Task,
    model: nn.Module,
    cfg: TrainConfig,
    ecfg: EvalConfig,
    info: dict[str, Any],
    device: torch.device,
    out_dir: Path,
) -> dict[str, Any]:
    """COCO keypoint AP (OKS) by pycocotools, with the flip test when ``ecfg.flip``, on
    ground-truth person boxes (``ecfg.person_boxes == "gt"``) or a detection results file.

    Instance score = box score x mean of the joint maxima above 0.2 (PE's rescoring). With
    detected boxes, each image's instances then go through OKS-NMS at 0.9 (areas of the padded
    boxes, as PE); with ground-truth boxes there are no duplicates and none is applied."""
    import numpy as np

    from hrnet.data.io import write_json_atomic
    from hrnet.engine import plots
    from hrnet.engine.metrics import coco_evaluate
    from hrnet.pose_utils import PIXEL_STD

    detections = None if ecfg.person_boxes == "gt" else ecfg.person_boxes
    dataset = task.dataset(cfg, ecfg.split, train=False, detections=detections)  # type: ignore[call-arg]
    loader = DataLoader(
        dataset, batch_size=ecfg.batch_size, num_workers=ecfg.workers, collate_fn=task.collate
    )
    results: list[dict[str, Any]] = []
    areas: list[float] = []  # the padded box area of each result (OKS-NMS normaliser)
    samples: list[tuple[torch.Tensor, Any, Any]] = []
    with torch.inference_mode():
        for images, targets in _batches(loader, "evaluate"):
            with _autocast(device, ecfg.amp):
                heatmaps = _heatmaps(
                    model, images.to(device), info["flip_pairs"], ecfg.flip, subpixel=cfg.heatmap_subpixel
                )
            points, maxvals = _image_points(heatmaps.cpu(), targets, subpixel=cfg.heatmap_subpixel)
            for i, pts in enumerate(points):
                conf = maxvals[i].numpy()
                good = conf > 0.2
                score = float(conf[good].mean()) if good.any() else 0.0
                keypoints = np.concatenate([pts, conf[:, None]], axis=1).reshape(-1)
                results.append(
                    {
                        "image_id": int(targets["image_id"][i]),
                        "category_id": info["category_id"],
                        "keypoints": [round(float(v), 2) for v in keypoints],
                        "score": score * float(targets["bbox_score"][i]),
                    }
                )
                areas.append(float(targets["scale"][i].prod()) * PIXEL_STD**2)
                if len(samples) < ecfg.num_plots:
                    inv = _points_to_input(pts, targets, i, images.shape[-1], images.shape[-2])
                    joints = targets["joints"][i].double().numpy()  # input pixels, weight
                    true = np.where(joints[:, 2:] > 0, joints[:, :2], np.nan)  # unlabelled: not drawn
                    samples.append((images[i], inv, true if detections is None else None))
    image_ids = sorted({r["image_id"] for r in results})
    before_nms = len(results)
    if detections is not None:
        results = _oks_nms_per_image(results, areas)
    write_json_atomic(out_dir / "predictions.json", results)
    stats = coco_evaluate(task.annotation_file(cfg, ecfg.split), results, "keypoints", image_ids=image_ids)  # type: ignore[attr-defined]
    if samples:
        skeleton = [(a - 1, b - 1) for a, b in info.get("skeleton", [])]
        plots.keypoint_grid(samples, out_dir / "plots" / "predictions.png", skeleton=skeleton)
    plots.training_curves(out_dir / "history.json", out_dir / "plots" / "training_loss.png")
    return {
        "keypoint_AP": stats["AP"],
        "keypoints": stats,
        "person_boxes": ecfg.person_boxes,
        "flip_test": ecfg.flip,
        "num_instances": len(results),
        "oks_nms_removed": before_nms - len(results),
    }


def _oks_nms_per_image(results: list[dict[str, Any]], areas: list[float]) -> list[dict[str, Any]]:
    """Keep, per image, the instances OKS-NMS keeps (in the original order)."""
    import numpy as np

    from hrnet.pose_utils import oks_nms

    by_image: dict[int, list[int]] = {}
    for index, result in enumerate(results):
        by_image.setdefault(result["image_id"], []).append(index)
    kept: set[int] = set()
    for indices in by_image.values():
        points = np.asarray([results[i]["keypoints"] for i in indices], dtype=np.float64).reshape(
            len(indices), -1, 3
        )
        scores = np.asarray([results[i]["score"] for i in indices])
        keep = oks_nms(points, scores, np.asarray([areas[i] for i in indices]))
        kept.update(indices[k] for k in keep)
    return [r for i, r in enumerate(results) if i in kept]


def _points_to_input(points: Any, targets: dict[str, Any], i: int, width: int, height: int) -> Any:
    """Image-pixel points of sample ``i`` -> the pixels of its network input crop (for drawing)."""
    from hrnet.pose_utils import affine_transform_points, get_affine_transform

    matrix = get_affine_transform(
        targets["center"][i].numpy(), targets["scale"][i].numpy(), 0.0, (width, height)
    )
    return affine_transform_points(points, matrix)


def evaluate_landmarks(
    task: Task,
    model: nn.Module,
    cfg: TrainConfig,
    ecfg: EvalConfig,
    info: dict[str, Any],
    device: torch.device,
    out_dir: Path,
) -> dict[str, Any]:
    """NME (mean point error / inter-ocular distance, reported as a fraction and in percent),
    failure rate at 0.10, with the flip test when ``ecfg.flip``."""
    import numpy as np

    from hrnet.engine import plots
    from hrnet.engine.metrics import landmark_nme

    nmes: list[float] = []
    samples: list[tuple[torch.Tensor, Any, Any]] = []
    with torch.inference_mode():
        for images, targets in _batches(_loader(task, cfg, ecfg, device), "evaluate"):
            with _autocast(device, ecfg.amp):
                heatmaps = _heatmaps(model, images.to(device), info["flip_pairs"], ecfg.flip)
            points, _ = _image_points(heatmaps.cpu(), targets)
            pred = torch.from_numpy(np.stack(points)).float()
            nmes += landmark_nme(pred, targets["points"], targets["norm_dist"]).tolist()
            for i in range(min(len(images), ecfg.num_plots - len(samples))):
                h, w = images.shape[-2:]
                samples.append(
                    (
                        images[i],
                        _points_to_input(points[i], targets, i, w, h),
                        _points_to_input(targets["points"][i].double().numpy(), targets, i, w, h),
                    )
                )
    if samples:
        plots.keypoint_grid(samples, out_dir / "plots" / "predictions.png")
    plots.training_curves(out_dir / "history.json", out_dir / "plots" / "training_loss.png")
    values = np.asarray(nmes)
    return {
        "NME": float(values.mean()) if len(values) else 0.0,
        "NME_percent": float(values.mean() * 100) if len(values) else 0.0,
        "failure_rate_0.10": float((values > 0.10).mean()) if len(values) else 0.0,
        "num_faces": len(values),
        "flip_test": ecfg.flip,
    }


# --------------------------------------------------------------------------------------------
# Prediction on loose images
# --------------------------------------------------------------------------------------------


def predict_images(
    loaded: LoadedModel, files: list[Path], out_dir: Path, *, device: torch.device
) -> list[dict[str, Any]]:
    """Run a loaded model on image files; return one JSON record per image and draw each
    prediction to ``out_dir/<stem>.png``.

    Records: classification ``{"file", "label", "score", "top5"}``; segmentation ``{"file",
    "mask"}`` (a PNG of class indices beside the picture); detection ``{"file", "detections":
    [{"bbox" xyxy, "label", "category_id", "score"}]}``; pose/landmarks ``{"file",
    "keypoints" [[x, y, score]]}`` with the whole image as the crop.
    """
    import numpy as np
    from PIL import Image

    from hrnet.data import transforms as T
    from hrnet.data.io import read_image
    from hrnet.engine import plots

    cfg, info, model, task = loaded.config, loaded.info, loaded.model, loaded.config.task
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with torch.inference_mode():
        for path in files:
            image = read_image(path)
            record: dict[str, Any] = {"file": str(path)}
            picture = out_dir / f"{path.stem}.png"
            if task == "classification":
                height, width = cfg.input_size
                x, _ = T.classification_eval_transforms(size=height if height == width else (height, width))(
                    image, 0
                )
                probs = model(x[None].to(device)).float().softmax(1)[0].cpu()
                top = probs.topk(min(5, len(probs)))
                names = info["class_names"]
                record.update(
                    label=names[int(top.indices[0])],
                    score=float(top.values[0]),
                    top5=[
                        {"label": names[int(i)], "score": float(v)} for v, i in zip(top.values, top.indices)
                    ],
                )
                plots.classification_grid([(x, int(top.indices[0]), int(top.indices[0]))], names, picture)
            elif task == "segmentation":
                x, _ = T.segmentation_eval_transforms()(image, image[0])
                pred = segmentation_probabilities(model, x[None].to(device)).argmax(1)[0].cpu()
                mask_path = out_dir / f"{path.stem}_mask.png"
                Image.fromarray(pred.numpy().astype(np.uint8)).save(mask_path)
                record["mask"] = str(mask_path)
                plots.segmentation_grid([(x, pred, pred)], len(info["class_names"]), picture)
            elif task == "detection":
                x = T.detection_eval_transforms()(image)
                pred = {k: v.cpu() for k, v in model([x.to(device)])[0].items()}
                record["detections"] = [
                    {
                        "bbox": [round(float(v), 2) for v in box],
                        "label": info["class_names"][int(label) - 1],
                        "category_id": info["category_ids"][int(label) - 1],
                        "score": float(score),
                    }
                    for box, label, score in zip(pred["boxes"], pred["labels"], pred["scores"])
                ]
                plots.detection_grid([(x, pred)], info["class_names"], picture)
            else:  # pose / landmarks: the whole image is the crop
                from hrnet.pose_utils import box_to_center_scale

                height, width = cfg.input_size
                h, w = image.shape[-2:]
                center, scale = box_to_center_scale([0, 0, w, h], aspect_ratio=width / height, padding=1.0)
                target = {
                    "keypoints": torch.zeros(1, 3),
                    "center": torch.as_tensor(center, dtype=torch.float32),
                    "scale": torch.as_tensor(scale, dtype=torch.float32),
                }
                x, t = T.TopDownTransform(train=False, input_size=(width, height))(image, target)
                heatmaps = _heatmaps(model, x[None].to(device), info.get("flip_pairs", []), False).cpu()
                batch = {"center": t["center"][None], "scale": t["scale"][None]}
                points, maxvals = _image_points(heatmaps, batch, subpixel=cfg.heatmap_subpixel)
                record["keypoints"] = [
                    [float(px), float(py), float(s)] for (px, py), s in zip(points[0], maxvals[0])
                ]
                plots.keypoint_grid(
                    [(x, _points_to_input(points[0], batch, 0, width, height), None)], picture
                )
            record["picture"] = str(picture)
            records.append(record)
    return records


# task name -> its evaluator (Task.evaluate looks the task's up here)
EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "classification": evaluate_classification,
    "segmentation": evaluate_segmentation,
    "detection": evaluate_detection,
    "pose": evaluate_pose,
    "landmarks": evaluate_landmarks,
}
