"""Classification: ImageFolder images -> backbone logits; scored by top-1/top-5 accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hrnet.errors import HRNetError
from hrnet.models.classification import Classifier
from hrnet.tasks.base import (
    Task,
    autocast,
    create_model,
    eval_batches,
    eval_loader,
    load_backbone_weights,
    register_task,
    require_root,
)

if TYPE_CHECKING:
    from hrnet.engine.config import EvalConfig, TrainConfig

__all__ = ["ClassificationTask"]

# classes of the published benchmark (ImageNet), for counting a row's model without its data
PUBLISHED_NUM_CLASSES = 1000


# classes up to which metrics.json carries the confusion matrix
MAX_CONFUSION_CLASSES = 100


@register_task
class ClassificationTask(Task):
    """ImageFolder images -> backbone logits (:class:`hrnet.models.classification.Classifier`);
    scored by top-1/top-5 accuracy and the mean per-class accuracy."""

    name = "classification"
    dataset_formats = ("imagefolder",)
    metrics = ("top1", "top5", "mean_class_accuracy")
    class_layers = ("net.classifier.",)

    def _size(self, cfg: TrainConfig) -> int | tuple[int, int]:
        height, width = cfg.input_size
        return height if height == width else (height, width)

    def dataset(
        self, cfg: TrainConfig, split: str, *, train: bool, classes: Sequence[str] | None = None
    ) -> Dataset:
        """The ImageFolder split; ``classes`` (a trained model's class names) fixes the label of
        each folder by its name, so that a split with fewer or reordered folders is scored right."""
        from hrnet.data import transforms as T
        from hrnet.data.imagefolder import ImageFolderDataset

        self.check_format(cfg.dataset)
        size = self._size(cfg)
        if train:
            tf = T.classification_train_transforms(
                size=size, scale=cfg.scale_range, hflip_prob=0.5 if cfg.hflip else 0.0
            )
        else:
            short = size if isinstance(size, int) else min(size)
            tf = T.classification_eval_transforms(size=size, resize_size=round(short / cfg.eval_crop_ratio))
        return ImageFolderDataset(require_root(cfg), split, transforms=tf, classes=classes)

    def info(self, cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
        classes = list(dataset.classes)  # type: ignore[attr-defined]
        if cfg.num_classes and cfg.num_classes != len(classes):
            raise HRNetError(f"{cfg.data}: {len(classes)} class folders but num_classes is {cfg.num_classes}")
        return {"class_names": classes}

    def model(self, cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
        net = create_model(cfg.model, num_classes=len(info["class_names"]))
        load_backbone_weights(net, cfg.pretrained)
        return Classifier(net, label_smoothing=cfg.label_smoothing)

    def collate(self, batch: Sequence[Any]) -> tuple[Any, Any]:
        from hrnet.data.transforms import collate_classification

        return collate_classification(batch)

    def state_dict(self, model: nn.Module) -> dict[str, Tensor]:
        return model.net.state_dict()  # type: ignore[union-attr]

    def load_state_dict(self, model: nn.Module, state: dict[str, Tensor]) -> None:
        model.net.load_state_dict(state)  # type: ignore[union-attr]

    def count_model(self, cfg: TrainConfig) -> tuple[nn.Module, tuple[int, int] | None]:
        net = create_model(cfg.model, num_classes=cfg.num_classes or PUBLISHED_NUM_CLASSES)
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
        """Top-1/top-5 accuracy and the confusion matrix (``plots/confusion_matrix.png``), plus a
        grid of images with their predicted and true classes (``plots/predictions.png``)."""
        from hrnet.engine import plots
        from hrnet.engine.metrics import ClassificationMeter

        classes = info["class_names"]
        meter = ClassificationMeter(len(classes))
        dataset = self.dataset(cfg, ecfg.split, train=False, classes=classes)  # labels by folder name
        loader = eval_loader(self, ecfg, device, dataset)
        samples: list[tuple[torch.Tensor, int, int]] = []
        with torch.inference_mode():
            for images, labels in eval_batches(loader, enabled=ecfg.progress):
                images = images.to(device, non_blocking=True)
                with autocast(device, ecfg.amp):
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
        if len(classes) > MAX_CONFUSION_CLASSES:  # ImageNet: the picture only, not 10^6 numbers
            return {**result, "class_names": classes}
        return {**result, "confusion_matrix": meter.confusion.tolist(), "class_names": classes}

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
        """``{"label", "score", "top5"}``; the picture shows the image with its top class."""
        from hrnet.data import transforms as T
        from hrnet.engine import plots

        x, _ = T.classification_eval_transforms(size=self._size(cfg))(image, 0)
        probs = model(x[None].to(device)).float().softmax(1)[0].cpu()
        top = probs.topk(min(5, len(probs)))
        names = info["class_names"]
        plots.classification_grid([(x, int(top.indices[0]), int(top.indices[0]))], names, picture)
        return {
            "label": names[int(top.indices[0])],
            "score": float(top.values[0]),
            "top5": [{"label": names[int(i)], "score": float(v)} for v, i in zip(top.values, top.indices)],
        }
