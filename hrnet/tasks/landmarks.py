"""Facial landmarks: face crops -> landmark heatmaps (HRNet-Facial-Landmark-Detection); scored
by NME (inter-ocular, or inter-pupil for COFW). ``input_size`` is square."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from hrnet.errors import HRNetError
from hrnet.tasks.base import autocast, create_model, eval_batches, eval_loader, register_task, require_root
from hrnet.tasks.pose import HeatmapTask, _image_points, _points_to_input, predict_heatmaps

if TYPE_CHECKING:
    from hrnet.engine.config import EvalConfig, TrainConfig

__all__ = ["LandmarkTask"]

# landmarks of the published benchmark (300W), for counting a row's model without its data
PUBLISHED_NUM_POINTS = 68


@register_task
class LandmarkTask(HeatmapTask):
    """Face crops -> landmark heatmaps; scored by NME (inter-ocular). ``input_size`` square."""

    name = "landmarks"
    dataset_formats = ("300w", "wflw", "cofw")
    metrics = ("NME", "NME_percent", "failure_rate_0.10", "NME_common", "NME_challenge")
    class_layers = ("head.3.",)
    protocol = ("flip",)

    def dataset(self, cfg: TrainConfig, split: str, *, train: bool) -> Dataset:
        from hrnet.data import landmarks as L
        from hrnet.data import transforms as T

        self.check_format(cfg.dataset)
        root = require_root(cfg)
        size = cfg.input_size[0]
        reader = {"300w": L.Face300W, "wflw": L.WFLW, "cofw": L.COFW}[cfg.dataset]
        dataset = reader(root, split)  # read first: the flip pairs are the layout's
        if train:
            dataset.transforms = T.landmark_train_transforms(
                flip_pairs=dataset.flip_pairs,
                input_size=size,
                sigma=cfg.heatmap_sigma,
                flip_prob=0.5 if cfg.hflip else 0.0,
                scale_factor=max(abs(cfg.scale_range[0] - 1), abs(cfg.scale_range[1] - 1)),
                rotation=cfg.rotation,
            )
        else:
            dataset.transforms = T.landmark_eval_transforms(
                input_size=size, heatmap_size=size // 4, sigma=cfg.heatmap_sigma
            )
        return dataset

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        k = dataset.num_points  # type: ignore[attr-defined]
        if cfg.num_keypoints and cfg.num_keypoints != k:
            raise HRNetError(f"{cfg.data}: {k} landmarks but num_keypoints is {cfg.num_keypoints}")
        return {"num_points": k, "flip_pairs": [list(p) for p in dataset.flip_pairs]}  # type: ignore[attr-defined]

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        return self._with_backbone_weights(create_model(cfg.model, num_points=info["num_points"]), cfg)

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        net = create_model(cfg.model, num_points=cfg.num_keypoints or PUBLISHED_NUM_POINTS)
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
        """NME (mean point error / inter-ocular distance, reported as a fraction and in percent),
        failure rate at 0.10, with the flip test when ``ecfg.flip``; and ``NME_<subset>`` for
        each published subset of the split (300W full: ``NME_common``, ``NME_challenge``, the
        means over those faces, as scoring the subsets' own splits gives)."""
        import numpy as np

        from hrnet.engine import plots
        from hrnet.engine.metrics import landmark_nme

        nmes: list[float] = []
        face_ids: list[int] = []
        samples: list[tuple[torch.Tensor, Any, Any]] = []
        dataset = self.dataset(cfg, ecfg.split, train=False)
        loader = eval_loader(self, ecfg, device, dataset)
        with torch.inference_mode():
            for images, targets in eval_batches(loader, enabled=ecfg.progress):
                with autocast(device, ecfg.amp):
                    heatmaps = predict_heatmaps(
                        model, images.to(device), flip_pairs=info["flip_pairs"], flip=ecfg.flip
                    )
                points, _ = _image_points(heatmaps.cpu(), targets)
                pred = torch.from_numpy(np.stack(points)).float()
                nmes += landmark_nme(pred, targets["points"], targets["norm_dist"]).tolist()
                face_ids += [int(i) for i in targets["image_id"]]
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
        values = np.asarray(nmes)
        by_face = dict(zip(face_ids, nmes, strict=True))
        subsets = {
            f"NME_{name}": float(np.mean([by_face[i] for i in faces]))
            for name, faces in getattr(dataset, "subsets", {}).items()
            if faces
        }
        return {
            "NME": float(values.mean()) if len(values) else 0.0,
            "NME_percent": float(values.mean() * 100) if len(values) else 0.0,
            "failure_rate_0.10": float((values > 0.10).mean()) if len(values) else 0.0,
            **subsets,
            "num_faces": len(values),
            "flip_test": ecfg.flip,
        }
