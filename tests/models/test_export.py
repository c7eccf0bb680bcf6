"""ONNX export (hrnet.models.export, ``hrnet export``): the file equals PyTorch in ONNX Runtime
within 1e-4 relative (fp32) for every task at two input sizes, ``hrnet predict`` on the ``.onnx``
writes the ``.pt``'s predictions.json, and what cannot export fails with a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hrnet.cli import main as hrnet_main
from hrnet.engine.config import EvalConfig
from hrnet.engine.evaluate import evaluate_run, load_model
from hrnet.errors import HRNetError
from hrnet.models.export import ONNX_RTOL, OnnxRuntimeModel, export_onnx, read_metadata
from tests.engine.test_inference_path import (
    TASKS,
    assert_records_close,
    first_image,
    rel_error,
    save_model_file,
    task_configs,
)

CPU = torch.device("cpu")
# the two (height, width) each exported file is compared at (multiples of 32, not square)
SIZES = {"pose": [(64, 48), (96, 64)]}
DEFAULT_SIZES = [(64, 64), (96, 128)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Per task: a ``model.pt`` and its ``hrnet export --dynamic`` ``.onnx``."""
    root = tmp_path_factory.mktemp("export")
    files = {}
    for name, cfg in task_configs(root / "data").items():
        pt = save_model_file(cfg, root / "runs" / name / "model.pt")
        onnx_file = root / "onnx" / f"{name}.onnx"
        height, width = SIZES.get(name, DEFAULT_SIZES)[0]
        flags = ["--input-size", str(height), str(width), "--dynamic"]
        assert (
            hrnet_main(["export", str(pt.parent), "--format", "onnx", "--out", str(onnx_file), *flags]) == 0
        )
        files[name] = (pt, onnx_file)
    return files


def _inputs(name: str, height: int, width: int, seed: int) -> Any:
    gen = torch.Generator().manual_seed(seed)
    if name == "detection":
        return [torch.rand(3, height, width, generator=gen)]
    return torch.randn(1 + seed, 3, height, width, generator=gen)  # two batch sizes as well


@pytest.mark.parametrize("name", TASKS)
def test_onnx_equals_pytorch_at_two_sizes(exported: dict[str, tuple[Path, Path]], name: str) -> None:
    pt, onnx_file = exported[name]
    eager = load_model(pt, device=CPU, fast=False)
    runtime = OnnxRuntimeModel(onnx_file)
    for seed, (height, width) in enumerate(SIZES.get(name, DEFAULT_SIZES)):
        x = _inputs(name, height, width, seed)
        with torch.inference_mode():
            expected, actual = eager.model(x), runtime(x)
        if name == "detection":
            assert len(expected[0]["boxes"]) > 0
            assert torch.equal(actual[0]["labels"], expected[0]["labels"])
        assert rel_error(actual, expected) < ONNX_RTOL, (name, height, width)


def test_export_records_the_task_and_folds_batchnorm(exported: dict[str, tuple[Path, Path]]) -> None:
    import onnx

    _, onnx_file = exported["classification"]
    meta = read_metadata(onnx_file)
    assert meta["task"] == "classification" and meta["info"]["class_names"] == ["blue", "red"]
    assert meta["config"]["model"] == "hrnet_w18_small"
    graph = onnx.load(str(onnx_file)).graph
    assert not [n for n in graph.node if n.op_type == "BatchNormalization"]
    (images,) = graph.input
    dims = [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]


@pytest.mark.parametrize("name", TASKS)
def test_predict_on_onnx_writes_the_same_predictions(
    exported: dict[str, tuple[Path, Path]], name: str, tmp_path: Path
) -> None:
    pt, onnx_file = exported[name]
    image = str(first_image(load_model(pt, device=CPU, fast=False).config))
    for kind, source in (("pt", pt), ("onnx", onnx_file)):
        assert (
            hrnet_main(["predict", str(source), image, "--out", str(tmp_path / kind), "--device", "cpu"]) == 0
        )
    expected = json.loads((tmp_path / "pt" / "predictions.json").read_text())
    actual = json.loads((tmp_path / "onnx" / "predictions.json").read_text())
    assert_records_close(actual, expected)
    assert Path(actual[0]["picture"]).is_file()
    if name == "segmentation":
        from hrnet.data.io import read_image

        assert torch.equal(read_image(actual[0]["mask"]), read_image(expected[0]["mask"]))


def test_predict_with_sliding_windows_on_onnx_writes_the_same_mask(
    exported: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hrnet.data.io import read_image

    pt, onnx_file = exported["segmentation"]
    image = str(first_image(load_model(pt, device=CPU, fast=False).config))
    protocol = [
        "--test-scale",
        "48",
        "64",
        "--slide-crop",
        "32",
        "32",
        "--slide-stride",
        "16",
        "16",
        "--flip",
    ]
    for kind, source in (("pt", pt), ("onnx", onnx_file)):
        args = ["predict", str(source), image, "--out", str(tmp_path / kind), "--device", "cpu", *protocol]
        assert hrnet_main(args) == 0
        assert "predict: fit 48x64, slide 32x32 stride 16x16, flip" in capsys.readouterr().err
    masks = [
        read_image(json.loads((tmp_path / k / "predictions.json").read_text())[0]["mask"])
        for k in ("pt", "onnx")
    ]
    assert torch.equal(masks[0], masks[1])


def test_evaluate_runs_an_onnx_file(exported: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    pt, onnx_file = exported["classification"]
    ecfg = EvalConfig(batch_size=2, workers=0, num_plots=1)
    expected = evaluate_run(pt, ecfg, out_dir=tmp_path / "pt", fast=False)
    actual = evaluate_run(onnx_file, ecfg, out_dir=tmp_path / "onnx")
    assert actual["eval_settings"]["inference"] == "onnxruntime"
    for key in ("top1", "top5", "mean_class_accuracy"):
        assert actual[key] == pytest.approx(expected[key], abs=1e-6)


def test_fixed_shape_export_and_its_check(tmp_path: Path) -> None:
    from hrnet.models import create_model

    model = create_model("hrnet_w18_small", num_classes=3).eval()
    report = export_onnx(
        model, tmp_path / "fixed.onnx", task="classification", input_size=(64, 64), dynamic=False
    )
    assert list(report.max_rel_error) == ["1x3x64x64"] and report.dynamic_axes == {}
    assert report.folded_batchnorms > 0 and report.max_rel_error["1x3x64x64"] < ONNX_RTOL
    from hrnet.models.export import OnnxRuntimeModel

    runtime = OnnxRuntimeModel(tmp_path / "fixed.onnx")
    assert runtime(torch.zeros(1, 3, 64, 64)).shape == (1, 3)
    # any number of images: run one at a time (batch 1 as exported), the same logits
    images = torch.randn(3, 3, 64, 64)
    together = runtime(images)
    assert together.shape == (3, 3)
    assert torch.allclose(together, torch.cat([runtime(images[i : i + 1]) for i in range(3)]))
    # exported for batches of 2: 3 images are a batch of 2 and one padded with a zero image
    export_onnx(
        model, tmp_path / "two.onnx", task="classification", input_size=(64, 64), dynamic=False, batch_size=2
    )
    pairs = OnnxRuntimeModel(tmp_path / "two.onnx")
    assert pairs.input_shape[0] == 2
    assert torch.allclose(pairs(images), together, rtol=1e-4, atol=1e-5)
    with pytest.raises(
        HRNetError, match=r"fixed.onnx: exported for inputs of 1x3x64x64, got 1x3x64x80; export"
    ):
        runtime(torch.zeros(1, 3, 64, 80))  # a named error, not ONNX Runtime's


class _Unexportable(nn.Module):
    """A classifier whose forward uses an operator the TorchScript ONNX exporter lacks (SVD)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).flatten(2)
        return torch.linalg.svdvals(y)


def test_a_model_that_cannot_export_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.onnx"
    with pytest.raises(HRNetError, match=r"_Unexportable \(classification\) does not export to ONNX") as info:
        export_onnx(_Unexportable(), out, task="classification", input_size=(16, 16))
    assert "svd" in str(info.value).lower()
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(HRNetError, match="task 'depth' is not exportable"):
        export_onnx(_Unexportable(), out, task="depth", input_size=(16, 16))
    # on the command line: a one-line error, exit status 2, no traceback
    assert hrnet_main(["export", "hrnet_w18_small", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "a model name needs --weights" in err and "Traceback" not in err


def test_export_logs_and_registers_the_onnx_flavour(
    exported: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    """``hrnet export RUN --mlflow --register NAME`` puts the file in the run as MLflow's onnx
    flavour; the registered version loads back through ``mlflow.onnx`` and computes what the
    exported file computes."""
    import shutil

    import mlflow
    import numpy as np
    import onnxruntime as ort
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("export-test"))
    client.set_terminated(run.info.run_id)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(exported["classification"][0], run_dir / "model.pt")
    (run_dir / "mlflow_run.json").write_text(json.dumps({"run_id": run.info.run_id, "tracking_uri": uri}))
    onnx_file = tmp_path / "model.onnx"
    flags = ["--input-size", "64", "64", "--dynamic", "--mlflow", "--register", "digits-onnx"]
    assert hrnet_main(["export", str(run_dir), "--out", str(onnx_file), *flags]) == 0

    version = client.get_model_version("digits-onnx", "1")
    assert version.run_id == run.info.run_id
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.onnx.load_model("models:/digits-onnx/1")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    ours = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    theirs = ort.InferenceSession(loaded.SerializeToString(), providers=["CPUExecutionProvider"])
    name = ours.get_inputs()[0].name
    np.testing.assert_array_equal(ours.run(None, {name: x})[0], theirs.run(None, {name: x})[0])
    assert {p.key for p in loaded.metadata_props} >= {"hrnet.config", "hrnet.info"}
    # hrnet predict runs the registered version (ONNX Runtime), as it runs the file
    image = str(first_image(load_model(exported["classification"][0], device=CPU, fast=False).config))
    for kind, source in (("file", str(onnx_file)), ("registry", "models:/digits-onnx/1")):
        args = ["predict", source, image, "--out", str(tmp_path / kind), "--tracking-uri", uri]
        assert hrnet_main(args) == 0
    records = [json.loads((tmp_path / k / "predictions.json").read_text()) for k in ("file", "registry")]
    assert [r["top5"] for r in records[0]] == [r["top5"] for r in records[1]]


def test_export_mlflow_needs_a_run_folder(
    exported: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pt = exported["classification"][0]
    assert hrnet_main(["export", str(pt), "--out", str(tmp_path / "m.onnx"), "--mlflow"]) == 2
    assert "not a run folder with an MLflow run" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_a_detector_check_says_how_many_boxes_it_compared(
    exported: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    """A check whose random images give no box above the score threshold compares no box: the
    report says 0, not a pass with nothing behind it."""
    pt, _ = exported["detection"]
    model = load_model(pt, device=CPU, fast=False).model
    report = export_onnx(model, tmp_path / "det.onnx", task="detection", input_size=(64, 64), dynamic=False)
    assert report.detections_compared and report.detections_compared > 0
    model.roi_heads.score_thresh = 1.01  # keeps nothing
    silent = export_onnx(model, tmp_path / "none.onnx", task="detection", input_size=(64, 64), dynamic=False)
    assert silent.detections_compared == 0
    classifier = export_onnx(
        load_model(exported["classification"][0], device=CPU, fast=False).model,
        tmp_path / "cls.onnx",
        task="classification",
        input_size=(64, 64),
        dynamic=False,
    )
    assert classifier.detections_compared is None
