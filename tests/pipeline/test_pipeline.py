"""The generated DVC pipelines: in step with the params files, one metric vocabulary, code
dependencies from the import graph, no launch setting in any stage."""

from __future__ import annotations

import pytest

from hrnet.mlops.pipeline import SUITES, code_deps, command_deps, import_closure, stages_of, sync
from hrnet.mlops.rows import load_suite
from hrnet.tasks import get_task
from tests.pipeline.conftest import ROOT

LAUNCH_FLAGS = ("--device", "--workers", "--resume", "--progress", "--nproc-per-node", "--experiment")


def test_dvc_yaml_files_are_in_step_with_the_params_files() -> None:
    assert sync(ROOT, check=True) == []


@pytest.mark.parametrize("params", list(SUITES))
def test_every_row_compares_a_metric_its_evaluator_writes(params: str) -> None:
    suite = load_suite(ROOT / params)
    for row in suite.ready:
        task = get_task(row.task)
        assert row.metric in task.metrics, f"{row.id}: {row.metric} is not one of {task.metrics}"
        assert row.published_value() is not None, f"{row.id}: no published {row.metric}"
        # every published accuracy-type number of a runnable row names a key its evaluator writes
        for p in row.published:
            if p.unit == "%":
                assert p.metric in task.metrics, f"{row.id}: published {p.metric} is not an evaluator key"
        if row.published_value("mIoU_ms_flip") is not None:  # the protocol that produces the key
            assert row.evaluate.get("flip") and len(row.evaluate.get("scales", ())) > 1, row.id


@pytest.mark.parametrize("params", list(SUITES))
def test_no_stage_carries_a_launch_setting(params: str) -> None:
    suite = load_suite(ROOT / params)
    for name, stage in stages_of(suite).items():
        body = stage.get("do", stage)
        cmds = (
            [body["cmd"], *(str(i) for i in (stage.get("foreach") or {}).values())]
            if isinstance(stage.get("foreach"), dict)
            else [body["cmd"]]
        )
        for cmd in cmds:
            assert not any(flag in cmd for flag in LAUNCH_FLAGS), f"{name}: {cmd}"
        for entry in body.get("params", []):
            keys = entry if isinstance(entry, str) else next(iter(entry.values()))
            keys = [keys] if isinstance(keys, str) else keys
            assert not any(k.startswith("launch") for k in keys), f"{name}: {keys}"


def test_training_depends_on_the_codec_and_not_on_tracking() -> None:
    closure = import_closure(["hrnet.commands.train"], stop={"hrnet.mlops.tracking", "hrnet.cli"})
    assert "hrnet.ops.keypoints" in closure  # the heatmap codec decides pose/landmark targets
    assert {"hrnet.tasks.pose", "hrnet.tasks.detection", "hrnet.models.detection"} <= closure
    deps = command_deps("train")
    assert not any("tracking" in d or "validation" in d for d in deps), deps
    assert "hrnet/mlops/tracking.py" in command_deps("register")


def test_a_fully_needed_package_is_one_folder() -> None:
    deps = code_deps(["hrnet.ops.keypoints"])
    assert "hrnet/ops" in deps and not any(d.startswith("hrnet/ops/") for d in deps)
