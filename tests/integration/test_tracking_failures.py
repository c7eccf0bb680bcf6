"""A tracking server that is down, or dies during training, against real `mlflow server`s on
loopback: commands fail fast and clearly before any work; a training in progress finishes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import cli_env
from tests.loopback import free_port, mlflow_server, stop_group

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def hrnet(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hrnet.cli", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    proc = hrnet(
        "generate", "digits", "--out", str(root / "digits"), "--num-train", "40", "--num-val", "10", cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    return root / "digits"


def train_flags(data: Path, iters: int) -> list[str]:
    return [
        "--task", "classification", "--model", "hrnet_w18_small", "--data", str(data),
        "--input-size", "16", "--batch-size", "4", "--workers", "0", "--device", "cpu",
        "--no-progress", "--iters", str(iters), "--log-every", "1",
    ]  # fmt: skip


def _assert_names_the_way_out(stderr: str, uri: str) -> None:
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, stderr
    assert uri in lines[0] and "infra/start-mlflow.sh" in lines[0], stderr
    assert "Traceback" not in stderr, stderr


def test_train_evaluate_register_fail_fast_when_the_server_is_down(digits: Path, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = tmp_path / "run"

    started = time.monotonic()
    proc = hrnet("train", "--out", str(run), *train_flags(digits, 2), "--tracking-uri", uri, cwd=tmp_path)
    seconds = time.monotonic() - started
    assert proc.returncode == 2 and seconds < 30, (seconds, proc.stderr)
    _assert_names_the_way_out(proc.stderr, uri)
    assert "--no-mlflow" in proc.stderr
    assert not (run / "model.pt").exists()  # nothing was trained

    # a run folder whose run lives on that server: evaluate and register fail before any work
    run.mkdir(exist_ok=True)
    (run / "mlflow_run.json").write_text(json.dumps({"run_id": "0" * 32, "tracking_uri": uri}))
    (run / "metrics.json").write_text(json.dumps({"top1": 0.5}))
    for argv, offline in (
        (["evaluate", "--run-dir", str(run), "--workers", "0"], True),
        (["register", "--run-dir", str(run), "--name", "tiny", "--metric", "top1"], False),
        (
            [
                "predict",
                "models:/tiny@champion",
                str(digits),
                "--out",
                str(tmp_path / "p"),
                "--tracking-uri",
                uri,
            ],
            False,
        ),
    ):
        started = time.monotonic()
        proc = hrnet(*argv, cwd=tmp_path)
        assert proc.returncode == 2 and time.monotonic() - started < 30, proc.stderr
        _assert_names_the_way_out(proc.stderr, uri)
        assert ("--no-mlflow" in proc.stderr) == offline, proc.stderr


def start_training(tmp_path: Path, run: Path, flags: list[str]) -> tuple[subprocess.Popen, Any]:
    """``hrnet train --out run FLAGS`` in a session of its own, its output in train.log."""
    log = (tmp_path / "train.log").open("w")
    train = subprocess.Popen(
        [sys.executable, "-m", "hrnet.cli", "train", "--out", str(run), *flags],
        cwd=tmp_path,
        env=cli_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return train, log


def wait_until_logged(
    train: subprocess.Popen, run: Path, uri: str, steps: int, *, checkpoint: bool = False
) -> str:
    """The MLflow run id, once the training has logged ``steps`` losses to the server (and,
    with ``checkpoint``, written checkpoints/last.pt); fails when it exits first or takes 120 s."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    log = run.parent / "train.log"
    deadline = time.monotonic() + 120
    while True:
        record = run / "mlflow_run.json"
        if record.is_file() and (not checkpoint or (run / "checkpoints" / "last.pt").is_file()):
            run_id = json.loads(record.read_text())["run_id"]
            if len(client.get_metric_history(run_id, "train/loss")) >= steps:
                return run_id
        assert train.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)


def test_training_survives_the_server_dying(digits: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    (tmp_path / "mlflow").mkdir()
    with mlflow_server(tmp_path / "mlflow") as (uri, server):
        flags = [*train_flags(digits, 400), "--tracking-uri", uri, "--row", "dying"]
        train, log = start_training(tmp_path, run, flags)
        try:
            # wait until training logs metrics to the server, then kill the server
            run_id = wait_until_logged(train, run, uri, 3)
            stop_group(server)
            killed_at = time.monotonic()
            code = train.wait(timeout=300)
        finally:
            if train.poll() is None:
                stop_group(train)
            log.close()
    output = (tmp_path / "train.log").read_text()
    assert code == 0, output
    assert train.poll() is not None and time.monotonic() - killed_at < 300
    assert (run / "model.pt").is_file() and (run / "checkpoints" / "last.pt").is_file(), output
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == list(range(1, 401))
    assert output.count("will not be in MLflow") == 1, output  # one warning, not one per step
    assert "Traceback" not in output.split("will not be in MLflow")[0], output
    # the server back where it was: the next evaluate closes the run and logs what it missed
    pending = json.loads((run / "mlflow_run.json").read_text())["pending"]
    assert pending["status"] == "FINISHED" and pending["from_step"] >= 3, pending
    port = int(uri.rsplit(":", 1)[1])
    with mlflow_server(tmp_path / "mlflow", port=port) as (again, _):
        assert again == uri
        evaluated = subprocess.run(
            [sys.executable, "-m", "hrnet.cli", "evaluate", "--run-dir", str(run), "--workers", "0"],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
        assert "closed as FINISHED" in evaluated.stdout, evaluated.stdout
        client = MlflowClient(uri)
        restored = client.get_run(run_id)
        assert restored.info.status == "FINISHED"
        assert sorted(m.step for m in client.get_metric_history(run_id, "train/loss")) == list(range(1, 401))
        assert "hrnet.metrics_restored" in restored.data.tags and "eval/top1" in restored.data.metrics
    assert "pending" not in json.loads((run / "mlflow_run.json").read_text())


def test_a_terminated_training_marks_its_run_killed(digits: Path, tmp_path: Path) -> None:
    """SIGTERM (a scheduler, a cancelled flow run) mid-training: the MLflow run ends KILLED,
    not RUNNING forever, and the checkpoint written so far stays for --resume."""
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    (tmp_path / "mlflow").mkdir()
    with mlflow_server(tmp_path / "mlflow") as (uri, _):
        flags = [*train_flags(digits, 400), "--checkpoint-every", "2", "--tracking-uri", uri]
        train, log = start_training(tmp_path, run, [*flags, "--row", "terminated"])
        try:
            client = MlflowClient(uri)
            run_id = wait_until_logged(train, run, uri, 1, checkpoint=True)
            train.terminate()
            code = train.wait(timeout=60)
        finally:
            if train.poll() is None:
                train.kill()
            log.close()
        output = (tmp_path / "train.log").read_text()
        assert code != 0 and "Traceback" not in output, output
        assert "stopped; the last checkpoint is in" in output, output
        assert client.get_run(run_id).info.status == "KILLED"
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "model.pt").exists()
