"""Cancelling a flow run on a process runner leaves no training process behind.

A toy DVC project whose train stage sleeps stands in for a long training run. `row_flow` is
served by a Prefect runner (the process-worker code path: each flow run is a subprocess that
gets SIGTERM on cancellation); the test cancels the run through the API while the train stage
runs, then looks for any survivor of the stage's process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.pipeline.conftest import BIN, ROOT, git_commit_all, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARAMS = """\
datasets:
  toy: {generate: {seed: 0, num_train: 1, num_val: 1}, validate: {formats: []}}
rows:
  toy_row:
    table: Toy
    dataset: toy
    schedule: "1e"
    metric: top1
    mode: max
    published:
      - {metric: top1, value: 1.0, unit: "%", source: test}
    train: {task: classification, model: hrnet_w18_small}
"""

DVC_YAML = """\
stages:
  generate:
    foreach: ${datasets}
    do:
      cmd: mkdir -p data/${key} && echo ${item.generate.seed} > data/${key}/seed.txt
      outs:
        - data/${key}
  validate:
    foreach: ${datasets}
    do:
      cmd: mkdir -p data/validation/${key}
      deps:
        - data/${key}
      outs:
        - data/validation/${key}
  train:
    foreach: ${rows}
    do:
      cmd: python train.py runs/${key}
      deps:
        - data/validation/${item.dataset}
      outs:
        - runs/${key}/model.pt
  evaluate:
    foreach: ${rows}
    do:
      cmd: >-
        echo '{"top1": 1.0}' > runs/${key}/metrics.json
      deps:
        - runs/${key}/model.pt
      metrics:
        - runs/${key}/metrics.json:
            cache: false
  register:
    foreach: ${rows}
    do:
      cmd: >-
        echo '{}' > runs/${key}/registered.json
      deps:
        - runs/${key}/metrics.json
      outs:
        - runs/${key}/registered.json:
            cache: false
"""

# a "training" that writes its pid, then sleeps, with a child of its own (a data loader worker)
TRAIN_PY = """\
import os, subprocess, sys, time
os.makedirs(sys.argv[1], exist_ok=True)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(os.path.join(sys.argv[1], "train.pid"), "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
time.sleep(600)
"""


def _toy_project(path: Path) -> Path:
    path.mkdir()
    (path / "params.yaml").write_text(PARAMS)
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / "train.py").write_text(TRAIN_PY)
    git_commit_all(path)
    run([str(BIN / "dvc"), "init", "-q"], path)
    run([str(BIN / "dvc"), "config", "core.analytics", "false"], path)
    return path


def _wait(predicate, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_cancelled_flow_run_leaves_no_training_process(tmp_path, prefect_api):
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    project = _toy_project(tmp_path / "toy")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    serve = textwrap.dedent("""
        from pipelines.flows import row_flow
        row_flow.serve(name="cancel-test")
    """)
    log = (tmp_path / "runner.log").open("w")
    runner = subprocess.Popen(
        [sys.executable, "-c", serve], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        with get_client(sync_client=True) as client:
            _wait(lambda: _deployment_exists(client), "the runner's deployment")
            flow_run = run_deployment(
                "row/cancel-test",
                parameters={"row": "toy_row", "project_dir": str(project), "gpu_limit": None},
                timeout=0,
            )
            pid_file = project / "runs" / "toy_row" / "train.pid"

            def started() -> bool:
                assert not _final_state(client, flow_run.id), "the flow run ended before training"
                return pid_file.is_file() and bool(pid_file.read_text().strip())

            _wait(started, "the train stage to start")
            train_pid, child_pid = map(int, pid_file.read_text().split())
            group = os.getpgid(train_pid)
            assert group != os.getpgid(0)  # the stage runs in a process group of its own
            watched = [train_pid, child_pid, group]  # the group leader is `dvc repro`
            assert all(_alive(p) for p in watched)

            client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
            final = _wait(lambda: _final_state(client, flow_run.id), "the flow run to end")
            assert final.is_cancelled(), final
            _wait(lambda: not any(_alive(p) for p in watched), "the training processes to exit", timeout=30)
            survivors = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == group]
            assert survivors == []

            task_runs = client.read_task_runs()
            train_runs = [t for t in task_runs if t.flow_run_id == flow_run.id and "train@" in t.name]
            assert train_runs and not train_runs[0].state.is_completed()
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        log.close()
        print((tmp_path / "runner.log").read_text()[-5000:])  # shown when the test fails


def _deployment_exists(client) -> bool:
    try:
        client.read_deployment_by_name("row/cancel-test")
    except Exception:
        return False
    return True


def _final_state(client, flow_run_id):
    state = client.read_flow_run(flow_run_id).state
    return state if state is not None and state.is_final() else None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid) if _alive(pid) else None
    except ProcessLookupError:
        return None
