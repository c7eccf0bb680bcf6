"""The inference path of ``hrnet evaluate``/``hrnet predict`` (BatchNorm folded, channels_last,
``torch.inference_mode``) gives the eager model's outputs, metrics and predictions, per task.

Tolerances: fp32 outputs within 1e-5 relative (max |difference| / max |eager|); metrics within
1e-6 absolute; predictions.json scores and coordinates within 1e-4 relative, labels equal.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hrnet.data.embedded import generate_dataset
from hrnet.engine import checkpoint as ckpt
from hrnet.engine.config import EvalConfig, TrainConfig
from hrnet.engine.evaluate import evaluate_run, inference_model, load_model, predict_images
from hrnet.tasks import get_task
from tests.engine.conftest import make_image_folder
from tests.engine.test_det_pose import SMALL_DETECTOR
from tests.engine.test_seg_landmarks import make_mask_folder

CPU = torch.device("cpu")
TASKS = ("classification", "segmentation", "detection", "pose", "landmarks")
FP32_RTOL = 1e-5
METRIC_ATOL = 1e-6
PREDICTION_RTOL = 1e-4


def task_configs(root: Path) -> dict[str, TrainConfig]:
    """One tiny configuration per task (hrnet_w18_small widths, embedded data sets)."""
    return {
        "classification": TrainConfig(
            task="classification",
            data=str(make_image_folder(root / "cls", per_class=2, size=32)),
            input_size=(32, 32),
            eval_crop_ratio=1.0,
        ),
        "segmentation": TrainConfig(
            task="segmentation",
            model="fcn_hrnetv2_w18_small",
            data=str(make_mask_folder(root / "seg", size=32)),
            dataset="mask_segmentation",
            input_size=(64, 64),
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


def randomise_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics, so that folding has something to fold."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    module.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model


def save_model_file(cfg: TrainConfig, path: Path) -> Path:
    """An untrained task model of ``cfg`` with random BatchNorm statistics, as a ``model.pt``."""
    task = get_task(cfg.task, dataset=cfg.dataset)
    info = task.info(cfg, task.dataset(cfg, cfg.train_split, train=True))
    torch.manual_seed(0)
    model = randomise_norms(task.build_model(cfg, info)).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt.save_atomic(
        {"format": ckpt.MODEL_FORMAT, "config": cfg.to_dict(), "info": info, "model": task.state_dict(model)},
        path,
    )
    return path


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inference-path")
    return {
        name: save_model_file(cfg, root / "runs" / name / "model.pt")
        for name, cfg in task_configs(root / "data").items()
    }


def first_image(cfg: TrainConfig) -> Path:
    return next(p for p in sorted(Path(cfg.data).rglob("*")) if p.suffix in (".png", ".jpg"))


def rel_error(actual: Any, expected: Any) -> float:
    if isinstance(expected, dict):
        return max(rel_error(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        return max((rel_error(a, e) for a, e in zip(actual, expected)), default=0.0)
    assert actual.shape == expected.shape
    if not expected.is_floating_point():
        return 0.0 if torch.equal(actual, expected) else math.inf
    if expected.numel() == 0:
        return 0.0
    return float((actual.float() - expected.float()).abs().max() / expected.abs().max().clamp_min(1e-12))


def assert_records_close(actual: Any, expected: Any, path: str = "") -> None:
    """predictions.json records equal: strings exactly, numbers within PREDICTION_RTOL of the
    largest number of their list (coordinates in pixels, scores in [0, 1])."""
    if isinstance(expected, dict):
        assert set(actual) == set(expected), path
        for key, value in expected.items():
            if key not in ("picture", "mask", "file"):  # file names differ by output folder
                assert_records_close(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        numbers = [abs(v) for v in expected if isinstance(v, int | float)]
        scale = max(numbers, default=1.0) or 1.0
        for i, (a, e) in enumerate(zip(actual, expected)):
            if isinstance(e, int | float) and not isinstance(e, bool):
                assert abs(a - e) <= PREDICTION_RTOL * max(scale, 1.0), f"{path}[{i}]: {a} != {e}"
            else:
                assert_records_close(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert abs(actual - expected) <= PREDICTION_RTOL * max(abs(expected), 1.0), (
            f"{path}: {actual} != {expected}"
        )
    else:
        assert actual == expected, path


def _example(name: str, cfg: TrainConfig) -> Any:
    gen = torch.Generator().manual_seed(1)
    if name == "detection":
        return [torch.rand(3, 64, 80, generator=gen)]
    height, width = cfg.input_size
    return torch.randn(2, 3, height, width, generator=gen)


@pytest.mark.parametrize("name", TASKS)
def test_inference_path_outputs_equal_eager(model_files: dict[str, Path], name: str) -> None:
    eager = load_model(model_files[name], device=CPU, fast=False)
    fast = load_model(model_files[name], device=CPU)
    assert getattr(fast.model, "inference_path", False) and not getattr(eager.model, "inference_path", False)
    folded = fast.model.backbone if name == "detection" else fast.model
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert not any(p.requires_grad for p in fast.model.parameters())
    x = _example(name, eager.config)
    with torch.inference_mode():
        expected, actual = eager.model(x), fast.model(x)
    if name == "detection":  # the same boxes, labels and scores
        assert len(expected[0]["boxes"]) > 0
    assert rel_error(actual, expected) < FP32_RTOL


@pytest.mark.parametrize("name", TASKS)
def test_evaluate_metrics_equal_eager(model_files: dict[str, Path], name: str, tmp_path: Path) -> None:
    ecfg = EvalConfig(batch_size=2, workers=0, num_plots=1, flip=name in ("pose", "landmarks"))
    eager = evaluate_run(model_files[name], ecfg, out_dir=tmp_path / "eager", fast=False)
    fast = evaluate_run(model_files[name], ecfg, out_dir=tmp_path / "fast")
    assert eager["eval_settings"]["inference"] == "eager"
    assert fast["eval_settings"]["inference"] == "folded"
    scores = [k for k, v in eager.items() if isinstance(v, float) and k != "eval_seconds"]
    assert scores
    for key in scores:
        assert abs(fast[key] - eager[key]) <= METRIC_ATOL, (key, fast[key], eager[key])


@pytest.mark.parametrize("name", TASKS)
def test_predict_images_equal_eager(model_files: dict[str, Path], name: str, tmp_path: Path) -> None:
    eager = load_model(model_files[name], device=CPU, fast=False)
    image = first_image(eager.config)
    (expected,) = predict_images(eager, [image], tmp_path / "eager", device=CPU, fast=False)
    (actual,) = predict_images(eager, [image], tmp_path / "fast", device=CPU)  # folds a copy
    assert not getattr(eager.model, "inference_path", False)
    assert_records_close(actual, expected)
    if name == "segmentation":
        from hrnet.data.io import read_image

        assert torch.equal(read_image(Path(actual["mask"])), read_image(Path(expected["mask"])))


def test_inference_model_is_idempotent_and_keeps_frozen_bn_models_equal(model_files: dict[str, Path]) -> None:
    from hrnet.tasks.base import freeze_batchnorm

    eager = load_model(model_files["classification"], device=CPU, fast=False)
    model = freeze_batchnorm(eager.model)  # FrozenBatchNorm2d folds too
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = model(x)
    import copy

    folded = inference_model(copy.deepcopy(model), "classification")
    assert inference_model(folded, "classification") is folded
    with torch.inference_mode():
        assert rel_error(folded(x), expected) < FP32_RTOL
