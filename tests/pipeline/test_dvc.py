"""The DVC pipelines (dvc.yaml, benchmarks/dvc.yaml) in a copy of the project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hrnet.mlops.rows import load_rows
from tests.pipeline.conftest import BIN, ROOT, run

pytestmark = pytest.mark.integration
DVC = str(BIN / "dvc")


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def test_paper_row_dry_run_shows_its_chain(project):
    proc = run([DVC, "repro", "--dry", "-f", "benchmarks/dvc.yaml:register@seg_cityscapes_w48_40k"], project)
    prefix = "benchmarks/dvc.yaml:"
    assert sorted(_ran(proc.stdout)) == sorted([
        f"{prefix}weights@hrnetv2_w48_imagenet",
        f"{prefix}fetch@cityscapes",
        f"{prefix}validate@cityscapes",
        f"{prefix}train@seg_cityscapes_w48_40k",
        f"{prefix}evaluate@seg_cityscapes_w48_40k",
        f"{prefix}register@seg_cityscapes_w48_40k",
    ])  # fmt: skip
    assert _ran(proc.stdout)[-3:] == [
        f"{prefix}{s}@seg_cityscapes_w48_40k" for s in ("train", "evaluate", "register")
    ]
    # the row's recipe reaches the command through params; the test protocol is on the command
    assert "--row seg_cityscapes_w48_40k" in proc.stdout
    assert (
        "--split val --scales 0.5 0.75 1.0 1.25 1.5 1.75 --flip --launch benchmarks/params.yaml"
        in proc.stdout
    )


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


TINY_DIGITS = {"num_train": 20, "num_val": 10}
TINY_TRAIN = {"iters": 2, "batch_size": 4, "epochs": 1, "warmup_iters": 0}


def _shrink(project, *, lr: float | None = None) -> None:
    import yaml

    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["datasets"]["digits"]["generate"].update(TINY_DIGITS)
    params["rows"]["digits_cls"]["train"].update(TINY_TRAIN)
    if lr is not None:
        params["rows"]["digits_cls"]["train"]["lr"] = lr
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_a_launch_setting_invalidates_nothing_and_a_recipe_value_does(project):
    """Run the digits row's chain (tiny), then: flipping launch settings leaves every stage up to
    date; changing a recipe value re-runs train@."""
    import yaml

    _shrink(project)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    run([str(BIN / "hrnet"), "pipeline", "sync"], project)
    run([DVC, "repro", "evaluate@digits_cls"], project, env=env)
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["launch"].update(
        {
            "workers": 2,
            "progress": True,
            "resume": True,
            "eval_batch_size": 7,
            "experiment": "x",
            "cpu_isa": "",
        }
    )
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    status = run([DVC, "status", "evaluate@digits_cls"], project, env=env).stdout
    assert "up to date" in status, status
    # bytecode a later import writes under a code dependency changes nothing (.dvcignore): with
    # PYTHONDONTWRITEBYTECODE unset a second `dvc repro` of the demo re-ran every stage
    cache = project / "hrnet" / "models" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "not_imported_yet.cpython-311.pyc").write_bytes(b"\x00" * 16)
    status = run([DVC, "status", "evaluate@digits_cls"], project, env=env).stdout
    assert "up to date" in status, status
    _shrink(project, lr=0.07)
    run([str(BIN / "hrnet"), "pipeline", "sync"], project)
    dry = run([DVC, "repro", "--dry", "evaluate@digits_cls"], project, env=env).stdout
    assert _ran(dry) == ["train@digits_cls"]  # (a dry run cannot know the model will change)


def test_stage_code_deps_cover_every_module_the_command_imports(tmp_path):
    """The modules `hrnet train` and `hrnet evaluate` really import (sys.modules after a run)
    are all covered by their stages' code dependencies, computed from the source."""
    import json
    import sys

    from hrnet.mlops.pipeline import command_deps

    data = tmp_path / "digits"
    run([str(BIN / "hrnet"), "generate", "digits", "--out", str(data), "--num-train", "20", "--num-val", "10", "--quiet"], tmp_path)  # fmt: skip
    # the command module alone (the CLI dispatcher also builds every other command's parser)
    probe = (
        "import argparse, importlib, json, sys; cmd = importlib.import_module('hrnet.commands.' + sys.argv[2]); "
        "p = argparse.ArgumentParser(); cmd.add_arguments(p); rc = cmd.run(p.parse_args(sys.argv[3:])); "
        "json.dump(sorted(m.__file__ for n, m in list(sys.modules.items()) if (n == 'hrnet' or n.startswith('hrnet.')) "
        "and getattr(m, '__file__', None)), open(sys.argv[1], 'w')); sys.exit(rc)"
    )
    train = ["--out", str(tmp_path / "run"), "--task", "classification", "--model", "hrnet_w18_small",
             "--data", str(data), "--input-size", "32", "--iters", "1", "--batch-size", "4", "--workers", "0",
             "--device", "cpu", "--no-mlflow", "--no-progress"]  # fmt: skip
    evaluate = [
        "--run-dir",
        str(tmp_path / "run"),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--no-mlflow",
    ]
    for command, argv in (("train", train), ("evaluate", evaluate)):
        out = tmp_path / f"{command}.json"
        run([sys.executable, "-c", probe, str(out), command, *argv], tmp_path, env={"OMP_NUM_THREADS": "1"})
        deps = command_deps(command)
        for file in json.loads(out.read_text()):
            rel = Path(file).resolve().relative_to(ROOT).as_posix()
            assert any(rel == d or rel.startswith(d + "/") for d in deps), f"{command}: {rel} not in {deps}"
