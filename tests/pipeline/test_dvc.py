"""The DVC pipelines (dvc.yaml, benchmarks/dvc.yaml) in a copy of the project."""

from __future__ import annotations

import re

import pytest

from hrnet.rows import load_rows
from tests.pipeline.conftest import BIN, ROOT, run

pytestmark = pytest.mark.integration
DVC = str(BIN / "dvc")


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def test_paper_row_dry_run_shows_its_chain(project):
    proc = run([DVC, "repro", "--dry", "-f", "benchmarks/dvc.yaml:register@seg_cityscapes_w48_40k"], project)
    prefix = "benchmarks/dvc.yaml:"
    assert _ran(proc.stdout) == [
        f"{prefix}fetch@cityscapes",
        f"{prefix}validate@cityscapes",
        f"{prefix}train@seg_cityscapes_w48_40k",
        f"{prefix}evaluate@seg_cityscapes_w48_40k",
        f"{prefix}register@seg_cityscapes_w48_40k",
    ]
    # the row's recipe reaches the command through params, and the stage records it
    assert "--row seg_cityscapes_w48_40k" in proc.stdout
    assert "--split val " in proc.stdout


def test_a_whole_table_with_one_glob(project):
    proc = run([DVC, "repro", "--dry", "-f", "--glob", "benchmarks/dvc.yaml:train@det_mask_rcnn_*"], project)
    trained = [s for s in _ran(proc.stdout) if ":train@" in s]
    assert sorted(trained) == [
        f"benchmarks/dvc.yaml:train@det_mask_rcnn_{w}_{s}" for w in ("w18", "w32") for s in ("1x", "2x")
    ]
    assert _ran(proc.stdout).count("benchmarks/dvc.yaml:fetch@coco") == 1  # one dataset, fetched once


def test_every_ready_row_has_a_stage_chain(project):
    """Each runnable row of both params files is a train/evaluate/register stage, and nothing else is."""
    proc = run([DVC, "stage", "list", "--all"], project)
    names = set(re.findall(r"^(\S+)", proc.stdout, flags=re.M))
    for params, prefix in (("params.yaml", ""), ("benchmarks/params.yaml", "benchmarks/dvc.yaml:")):
        rows = load_rows(ROOT / params, suite="x")
        ready = {r.id for r in rows if r.status == "ready"}
        for stage in ("train", "evaluate", "register"):
            assert {
                n.removeprefix(f"{prefix}{stage}@") for n in names if n.startswith(f"{prefix}{stage}@")
            } == ready
        for r in rows:
            if r.status != "ready":
                assert f"{prefix}train@{r.id}" not in names


def test_missing_dataset_fails_early_and_says_how_to_get_it(project):
    proc = run([DVC, "repro", "benchmarks/dvc.yaml:train@cls_hrnet_w18"], project, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert _ran(output) == ["benchmarks/dvc.yaml:fetch@imagenet"]  # stopped at the first stage
    assert "image-net.org" in output and "--source" in output
    assert not (project / "runs").exists() and not (project / "data" / "imagenet").exists()
