"""The task registry and the task-agnostic drivers: every task's evaluation writes the metric
keys it declares, and ``predict_images`` dispatches to every task."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from hrnet.data.embedded import generate_dataset
from hrnet.engine.config import EvalConfig, TrainConfig
from hrnet.engine.evaluate import LoadedModel, predict_images
from hrnet.errors import HRNetError
from hrnet.tasks import Task, get_task, task_names
from hrnet.tasks.detection import predicts_masks
from hrnet.tasks.pose import flip_pairs_from_names
from tests.engine.conftest import make_image_folder
from tests.engine.test_det_pose import SMALL_DETECTOR
from tests.engine.test_seg_landmarks import make_mask_folder

CPU = torch.device("cpu")


def test_registry_knows_the_tasks_and_their_formats() -> None:
    assert task_names() == [
        "classification",
        "detection",
        "dichotomous_image_segmentation",
        "landmarks",
        "pose",
        "segmentation",
        "thermal_image_segmentation",
    ]
    formats: list[str] = []
    for name in task_names():
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name
        assert task.metrics and task.dataset_formats
        formats += task.dataset_formats
    assert len(formats) == len(set(formats))  # a format names one reader of one task
    assert get_task("segmentation", dataset="cityscapes").name == "segmentation"


def test_unknown_task_or_format_fails_at_lookup() -> None:
    with pytest.raises(HRNetError, match="task 'depth' is not one of classification, detection"):
        get_task("depth")
    with pytest.raises(HRNetError, match="task 'pose' reads datasets of format coco_keypoints, not 'voc'"):
        get_task("pose", dataset="voc")
    # the configuration itself names no task: a lookup checks it
    assert TrainConfig(task="depth").task == "depth"


def test_flip_pairs_come_from_the_keypoint_names() -> None:
    from hrnet.data.embedded import COCO_KEYPOINT_NAMES
    from hrnet.ops.keypoints import COCO_FLIP_PAIRS

    assert tuple(flip_pairs_from_names(COCO_KEYPOINT_NAMES)) == COCO_FLIP_PAIRS
    assert flip_pairs_from_names(["head", "left_hand", "tail", "right_hand"]) == [(1, 3)]
    assert flip_pairs_from_names(["a", "b"]) == []


@pytest.mark.parametrize(
    ("model", "masks"),
    [
        ("fasterrcnn_hrnetv2p_w18_small", False),
        ("maskrcnn_hrnetv2p_w18_small", True),
        ("cascadercnn_hrnetv2p_w18_small", False),
    ],
)
def test_mask_heads_are_read_from_the_model(model: str, masks: bool) -> None:
    from hrnet.models import create_model

    with torch.device("meta"):
        assert predicts_masks(create_model(model, num_classes=2)) is masks


# --------------------------------------------------------------------------------------------
# one small configuration per task
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainConfig]:
    root = tmp_path_factory.mktemp("tasks")
    return {
        "classification": TrainConfig(
            task="classification",
            data=str(make_image_folder(root / "cls", per_class=2)),
            input_size=(16, 16),
            eval_crop_ratio=1.0,
        ),
        "segmentation": TrainConfig(
            task="segmentation",
            model="fcn_hrnetv2_w18_small",
            data=str(make_mask_folder(root / "seg")),
            dataset="mask_segmentation",
            input_size=(32, 32),
        ),
        "detection": TrainConfig(
            task="detection",
            model="fasterrcnn_hrnetv2p_w18_small",
            data=str(generate_dataset("shapes", root / "shapes", num_train=2, num_val=2)),
            dataset="coco_instances",
            input_size=(64, 64),
            **SMALL_DETECTOR,  # type: ignore[arg-type]
        ),
        "pose": TrainConfig(
            task="pose",
            model="pose_hrnet_w18_small",
            data=str(generate_dataset("figures", root / "figures", num_train=1, num_val=2)),
            dataset="coco_keypoints",
            input_size=(64, 48),
        ),
        "landmarks": TrainConfig(
            task="landmarks",
            model="landmark_hrnetv2_w18_small",
            data=str(generate_dataset("faces", root / "faces", num_train=2, num_val=2)),
            dataset="300w",
            input_size=(64, 64),
        ),
    }


def _loaded(cfg: TrainConfig) -> LoadedModel:
    task = get_task(cfg.task, dataset=cfg.dataset)
    info = task.info(cfg, task.dataset(cfg, cfg.train_split, train=True))
    torch.manual_seed(0)
    return LoadedModel(task.build_model(cfg, info).eval(), cfg, info, task, Path(cfg.data))


def _first_image(cfg: TrainConfig) -> Path:
    return next(p for p in sorted(Path(cfg.data).rglob("*")) if p.suffix in (".png", ".jpg"))


@pytest.mark.parametrize("name", ["classification", "segmentation", "detection", "pose", "landmarks"])
def test_evaluation_writes_the_declared_metric_keys(
    configs: dict[str, TrainConfig], name: str, tmp_path: Path
) -> None:
    loaded = _loaded(configs[name])
    if name == "detection":
        loaded.model.roi_heads.score_thresh = 0.0  # type: ignore[union-attr]  # untrained: keep boxes
    (tmp_path / "plots").mkdir()
    ecfg = EvalConfig(
        batch_size=2, workers=0, flip=name in ("segmentation", "pose", "landmarks"), num_plots=1
    )
    metrics = loaded.task.evaluate(loaded.model, loaded.config, ecfg, loaded.info, CPU, tmp_path)
    scores = {k for k, v in metrics.items() if isinstance(v, float)}
    assert scores <= set(loaded.task.metrics), scores - set(loaded.task.metrics)
    # NME_common / NME_challenge: only of a split with published subsets (300W full); the
    # segmentation protocol here is flip at single scale: mIoU_flip (not _ms or _ms_flip)
    headline = {
        "detection": {"box_AP"},
        "landmarks": {"NME", "NME_percent", "failure_rate_0.10"},
        "segmentation": {"mIoU", "pixel_accuracy", "mean_accuracy", "mIoU_flip"},
    }.get(name, set(loaded.task.metrics))
    assert headline <= scores


@pytest.mark.parametrize("name", ["classification", "segmentation", "detection", "pose", "landmarks"])
def test_predict_images_dispatches_to_the_task(
    configs: dict[str, TrainConfig], name: str, tmp_path: Path
) -> None:
    cfg = configs[name]
    if name == "pose":  # the sub-pixel decoder path of predictions as well
        cfg = dataclasses.replace(cfg, heatmap_subpixel=True)
    image = _first_image(cfg)
    (record,) = predict_images(_loaded(cfg), [image], tmp_path / "out", device=CPU)
    assert record["file"] == str(image) and Path(record["picture"]).is_file()
    fields = {
        "classification": {"label", "score", "top5"},
        "segmentation": {"mask"},
        "detection": {"detections"},
        "pose": {"keypoints"},
        "landmarks": {"keypoints"},
    }[name]
    assert set(record) == {"file", "picture", *fields}
    if name == "segmentation":
        assert Path(record["mask"]).is_file()
    if name in ("pose", "landmarks"):
        assert all(len(k) == 3 for k in record["keypoints"])


@pytest.mark.parametrize("name", ["classification", "segmentation", "detection", "pose", "landmarks"])
def test_count_model_builds_on_the_meta_device(configs: dict[str, TrainConfig], name: str) -> None:
    cfg = dataclasses.replace(configs[name], num_classes=0, num_keypoints=0)
    with torch.device("meta"):
        model, size = get_task(name).count_model(cfg)
    assert next(model.parameters()).is_meta
    assert size == (None if name == "detection" else cfg.input_size)


@pytest.mark.parametrize(
    ("task", "model", "kind"),
    [
        ("classification", "fcn_hrnetv2_w18_small", "segmentation"),
        ("detection", "hrnet_w18_small", "classification"),
        ("pose", "landmark_hrnetv2_w18_small", "landmarks"),
        ("segmentation", "fasterrcnn_hrnetv2p_w18_small", "detection"),
    ],
)
def test_a_model_of_another_task_is_refused_by_name(task: str, model: str, kind: str) -> None:
    from hrnet.errors import HRNetError
    from hrnet.tasks import get_task

    with pytest.raises(
        HRNetError, match=rf"model '{model}' is a {kind} model; task '{task}' builds on {task}"
    ):
        get_task(task, model=model)
    # the FCN of the dichotomous and thermal tasks is a segmentation model
    assert (
        get_task("thermal_image_segmentation", model="fcn_hrnetv2_w48").name == "thermal_image_segmentation"
    )


def test_predict_images_of_the_same_stem_get_their_own_pictures(
    configs: dict[str, TrainConfig], tmp_path: Path
) -> None:
    import shutil

    cfg = configs["classification"]
    image = _first_image(cfg)
    files = [
        tmp_path / "a" / "x.png",
        tmp_path / "b" / "x.png",
        tmp_path / "b" / "x.jpg",
        tmp_path / "x-2.png",
        tmp_path / "c" / "x_mask.png",  # not the first picture's mask file
    ]
    for file in files:
        file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, file)
    records = predict_images(_loaded(cfg), files, tmp_path / "out", device=CPU)
    pictures = [Path(r["picture"]).name for r in records]
    assert pictures == ["x.png", "x-2.png", "x-3.png", "x-2-2.png", "x_mask-2.png"]
    assert all(Path(r["picture"]).is_file() for r in records)


def test_the_architecture_documents_every_task_with_its_formats() -> None:
    """docs/ARCHITECTURE.md's task table lists each registered task and the formats it reads."""
    import re

    from hrnet.tasks.base import _discover

    text = (Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ((?:`[a-z0-9_]+`(?:, )?)+) \|", text, flags=re.M))
    for name, task in _discover().items():
        assert name in rows, name
        assert re.findall(r"`([a-z0-9_]+)`", rows[name]) == list(task.dataset_formats), name


def test_detection_predictions_give_coco_boxes(tmp_path: Path) -> None:
    """``hrnet predict``'s boxes are COCO's ``[x, y, width, height]``, as evaluate's results."""
    from hrnet.tasks import get_task

    class Fixed(torch.nn.Module):
        def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
            boxes = torch.tensor([[1.0, 2.0, 5.0, 8.0]])
            return [{"boxes": boxes, "labels": torch.tensor([2]), "scores": torch.tensor([0.75])}]

    info = {"class_names": ["circle", "square"], "category_ids": [10, 20]}
    image = torch.zeros(3, 12, 16, dtype=torch.uint8)
    record = get_task("detection").predict_image(
        Fixed(), TrainConfig(task="detection"), info, image, device=CPU, picture=tmp_path / "p.png"
    )
    assert record == {
        "detections": [{"bbox": [1.0, 2.0, 4.0, 6.0], "label": "square", "category_id": 20, "score": 0.75}]
    }
