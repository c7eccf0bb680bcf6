"""Top-down human pose: COCO person keypoints, one crop per person box -> heatmaps; scored by
COCO keypoint AP (OKS) with ground-truth or detected person boxes. ``input_size`` is
(height, width).

:class:`HeatmapTask` holds what the pose and the facial landmark tasks share (keypoint
batches, heatmap decoding back to image pixels, the flip test, predictions on whole images).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hrnet.data.coco import coco_image_folder
from hrnet.errors import HRNetError
from hrnet.models.pose import flip_test
from hrnet.tasks.base import (
    Task,
    autocast,
    create_model,
    eval_batches,
    eval_loader,
    load_backbone_weights,
    register_task,
    require_root,
    tensors_to_device,
)

if TYPE_CHECKING:
    from hrnet.engine.config import EvalConfig, TrainConfig

__all__ = ["HeatmapTask", "PoseTask", "flip_pairs_from_names", "predict_heatmaps"]

# smoothing (heatmap pixels) of predicted heatmaps before the sub-pixel Newton step
SUBPIXEL_BLUR_SIGMA = 1.0

# joints of the published benchmark (COCO), for counting a row's model without its data
PUBLISHED_NUM_JOINTS = 17


# keypoints of a COCO person: pycocotools' OKS sigmas (COCOeval Params.kpt_oks_sigmas) are for these
COCO_NUM_KEYPOINTS = 17


def flip_pairs_from_names(names: Sequence[str]) -> list[tuple[int, int]]:
    """The (left, right) index pairs a horizontal mirror swaps, from keypoint names: each
    ``left_<part>`` with its ``right_<part>`` (COCO's 17 names give COCO's 8 pairs)."""
    index = {name: i for i, name in enumerate(names)}
    return [
        (i, index["right_" + name.removeprefix("left_")])
        for i, name in enumerate(names)
        if name.startswith("left_") and "right_" + name.removeprefix("left_") in index
    ]


def predict_heatmaps(
    model: nn.Module,
    images: Tensor,
    *,
    flip_pairs: Sequence[Sequence[int]] = (),
    flip: bool = False,
    subpixel: bool = False,
) -> Tensor:
    """The model's heatmaps (float32) of ``images``; with ``flip``, deep-high-resolution-net.pytorch's
    flip test (:func:`hrnet.models.pose.flip_test`, heatmaps shifted back as the codec needs)."""
    if not flip:
        return model(images).float()
    pairs = [(int(a), int(b)) for a, b in flip_pairs]
    return flip_test(lambda x: model(x).float(), images, flip_pairs=pairs, shift=True, subpixel=subpixel)


def _image_points(
    heatmaps: torch.Tensor, targets: dict[str, Any], *, subpixel: bool = False
) -> tuple[list[Any], torch.Tensor]:
    """Peaks -> per-sample points ``float64 [K, 2]`` in original image pixels, and maxvals
    (``subpixel``: the DARK decoder of :func:`hrnet.ops.keypoints.decode_heatmaps`)."""
    from hrnet.ops.keypoints import decode_heatmaps, heatmap_to_image_coords

    coords, maxvals = decode_heatmaps(heatmaps, subpixel=subpixel, blur_sigma=SUBPIXEL_BLUR_SIGMA)
    size = (heatmaps.shape[-1], heatmaps.shape[-2])
    points = [
        heatmap_to_image_coords(coords[i], targets["center"][i].numpy(), targets["scale"][i].numpy(), size)
        for i in range(len(coords))
    ]
    return points, maxvals.cpu()


def _points_to_input(points: Any, targets: dict[str, Any], i: int, width: int, height: int) -> Any:
    """Image-pixel points of sample ``i`` -> the pixels of its network input crop (for drawing)."""
    from hrnet.ops.keypoints import affine_transform_points, get_affine_transform

    matrix = get_affine_transform(
        targets["center"][i].numpy(), targets["scale"][i].numpy(), 0.0, (width, height)
    )
    return affine_transform_points(points, matrix)


def _oks_nms_per_image(results: list[dict[str, Any]], areas: list[float]) -> list[dict[str, Any]]:
    """Keep, per image, the instances OKS-NMS keeps (in the original order)."""
    import numpy as np

    from hrnet.ops.keypoints import oks_nms

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


class HeatmapTask(Task):
    """Shared by the top-down heatmap tasks: keypoint batches, model building on the
    ``backbone`` of the heatmap models, and predictions on whole images."""

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_keypoints

        return collate_keypoints(batch)

    def to_device(
        self, images: Any, targets: Any, device: torch.device, *, channels_last: bool
    ) -> tuple[Any, Any]:
        keep = {"heatmaps": targets["heatmaps"], "target_weight": targets["target_weight"]}
        return tensors_to_device(images, device, channels_last), tensors_to_device(keep, device, False)

    def _with_backbone_weights(self, model: nn.Module, cfg: TrainConfig) -> nn.Module:
        load_backbone_weights(model.backbone, cfg.pretrained)  # type: ignore[arg-type]
        return model

    def predict_image(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        info: dict[str, Any],
        image: Tensor,
        *,
        device: torch.device,
        picture: Path,
        ecfg: EvalConfig | None = None,
    ) -> dict[str, Any]:
        """``{"keypoints": [[x, y, score]]}`` in image pixels, the whole image as the crop; with
        ``ecfg.flip``, the flip test."""
        from hrnet.data import transforms as T
        from hrnet.engine import plots
        from hrnet.ops.keypoints import box_to_center_scale

        height, width = cfg.input_size
        h, w = image.shape[-2:]
        center, scale = box_to_center_scale([0, 0, w, h], aspect_ratio=width / height, padding=1.0)
        target = {
            "keypoints": torch.zeros(1, 3),
            "center": torch.as_tensor(center, dtype=torch.float32),
            "scale": torch.as_tensor(scale, dtype=torch.float32),
        }
        x, t = T.TopDownTransform(train=False, input_size=(width, height))(image, target)
        flip = ecfg is not None and ecfg.flip
        heatmaps = predict_heatmaps(
            model,
            x[None].to(device),
            flip_pairs=info.get("flip_pairs", ()),
            flip=flip,
            subpixel=cfg.heatmap_subpixel,
        ).cpu()
        batch = {"center": t["center"][None], "scale": t["scale"][None]}
        points, maxvals = _image_points(heatmaps, batch, subpixel=cfg.heatmap_subpixel)
        plots.keypoint_grid([(x, _points_to_input(points[0], batch, 0, width, height), None)], picture)
        return {"keypoints": [[float(px), float(py), float(s)] for (px, py), s in zip(points[0], maxvals[0])]}


@register_task
class PoseTask(HeatmapTask):
    """COCO person keypoints, one crop per person box -> heatmaps; scored by COCO keypoint AP
    (OKS) with ground-truth or detected person boxes. ``input_size`` is (height, width)."""

    name = "pose"
    dataset_formats = ("coco_keypoints",)
    metrics = ("keypoint_AP",)
    class_layers = ("final_layer.",)
    protocol = ("flip", "person_boxes")

    @staticmethod
    def annotation_file(cfg: TrainConfig, split: str) -> Path:
        return require_root(cfg) / "annotations" / f"person_keypoints_{split}.json"

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool, detections: str | None = None) -> Dataset:
        """The split's person crops; ``detections``: a COCO results file of person boxes used
        instead of the ground-truth boxes (evaluation)."""
        from hrnet.data import transforms as T
        from hrnet.data.coco import CocoKeypoints

        self.check_format(cfg.dataset)
        root = require_root(cfg)
        width_height = (cfg.input_size[1], cfg.input_size[0])
        dataset = CocoKeypoints(
            coco_image_folder(root, split),
            self.annotation_file(cfg, split),
            input_size=width_height,
            detections=detections,
        )
        if train:
            dataset.transforms = T.pose_train_transforms(
                input_size=width_height,
                sigma=cfg.heatmap_sigma,
                flip_pairs=flip_pairs_from_names(dataset.keypoint_names),
                flip_prob=0.5 if cfg.hflip else 0.0,
                scale_factor=max(abs(cfg.scale_range[0] - 1), abs(cfg.scale_range[1] - 1)),
                rotation=cfg.rotation,
                subpixel=cfg.heatmap_subpixel,
            )
        else:
            dataset.transforms = T.pose_eval_transforms(
                input_size=width_height, sigma=cfg.heatmap_sigma, subpixel=cfg.heatmap_subpixel
            )
        return dataset

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        names = list(dataset.keypoint_names)  # type: ignore[attr-defined]
        if cfg.num_keypoints and cfg.num_keypoints != len(names):
            raise HRNetError(f"{cfg.data}: {len(names)} keypoints but num_keypoints is {cfg.num_keypoints}")
        if len(names) != COCO_NUM_KEYPOINTS:  # refused before training, not when it is scored
            raise HRNetError(
                f"{cfg.data}: the person category has {len(names)} keypoints; the pose task scores COCO "
                f"keypoint AP, whose OKS needs a per-keypoint sigma, and pycocotools has those for COCO's "
                f"{COCO_NUM_KEYPOINTS} keypoints only"
            )
        return {
            "keypoint_names": names,
            "skeleton": [[int(a), int(b)] for a, b in dataset.skeleton],  # type: ignore[attr-defined]
            "flip_pairs": [list(p) for p in flip_pairs_from_names(names)],
            "category_id": int(dataset.category["id"]),  # type: ignore[attr-defined]
        }

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        return self._with_backbone_weights(
            create_model(cfg.model, num_joints=len(info["keypoint_names"])), cfg
        )

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        net = create_model(cfg.model, num_joints=cfg.num_keypoints or PUBLISHED_NUM_JOINTS)
        return net, (cfg.input_size[0], cfg.input_size[1])

    def evaluate(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        ecfg: EvalConfig,
        info: dict[str, Any],
        device: torch.device,
        out_dir: Path,
    ) -> dict[str, Any]:
        """COCO keypoint AP (OKS) by pycocotools, with the flip test when ``ecfg.flip``, on
        ground-truth person boxes (``ecfg.person_boxes == "gt"``) or a detection results file.

        Instance score = box score x mean of the joint maxima above 0.2 (the rescoring of
        deep-high-resolution-net.pytorch). With detected boxes, each image's instances then go
        through OKS-NMS at 0.9 (areas of the padded boxes, as there); with ground-truth boxes there
        are no duplicates and none is applied."""
        import numpy as np

        from hrnet.data.io import write_json_atomic
        from hrnet.engine import plots
        from hrnet.engine.metrics import coco_evaluate
        from hrnet.ops.keypoints import PIXEL_STD

        detections = None if ecfg.person_boxes == "gt" else ecfg.person_boxes
        dataset = self.dataset(cfg, ecfg.split, train=False, detections=detections)
        loader = eval_loader(self, ecfg, device, dataset, pin_memory=False)
        results: list[dict[str, Any]] = []
        areas: list[float] = []  # the padded box area of each result (OKS-NMS normaliser)
        samples: list[tuple[torch.Tensor, Any, Any]] = []
        with torch.inference_mode():
            for images, targets in eval_batches(loader, enabled=ecfg.progress):
                with autocast(device, ecfg.amp):
                    heatmaps = predict_heatmaps(
                        model,
                        images.to(device),
                        flip_pairs=info["flip_pairs"],
                        flip=ecfg.flip,
                        subpixel=cfg.heatmap_subpixel,
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
        stats = coco_evaluate(
            self.annotation_file(cfg, ecfg.split), results, "keypoints", image_ids=image_ids
        )
        if samples:
            skeleton = [(a - 1, b - 1) for a, b in info.get("skeleton", [])]
            plots.keypoint_grid(samples, out_dir / "plots" / "predictions.png", skeleton=skeleton)
        return {
            "keypoint_AP": stats["AP"],
            "keypoints": stats,
            "person_boxes": ecfg.person_boxes,
            "flip_test": ecfg.flip,
            "num_instances": len(results),
            "oks_nms_removed": before_nms - len(results),
        }
