"""The whole stack on loopback for the fastest embedded row (digits): a Prefect test server,
an MLflow server with a SQLite backend and an S3 artifact store, and a moto S3 server that is
also the DVC remote. `row_flow` runs every stage through `dvc repro` in a copy of the project.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.loopback import DUMMY_AWS_ENV, free_port
from tests.pipeline.conftest import BIN, git_commit_all, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROW = "digits_cls"


@pytest.fixture
def s3(monkeypatch) -> Iterator[str]:
    """A moto S3 server with the buckets `dvc-remote` and `mlflow-artifacts`; yields its URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    for key, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=url)
    for bucket in ("dvc-remote", "mlflow-artifacts"):
        client.create_bucket(Bucket=bucket)
    yield url
    server.stop()


@pytest.fixture
def mlflow_server(tmp_path, s3, monkeypatch) -> Iterator[str]:
    """`mlflow server`: SQLite backend, artifacts proxied to s3://mlflow-artifacts; yields its
    URL once started, without waiting for it to answer (`_wait_healthy`): the Prefect server
    starts meanwhile."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **DUMMY_AWS_ENV, "MLFLOW_S3_ENDPOINT_URL": s3}
    log = (tmp_path / "mlflow.log").open("w")
    argv = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--artifacts-destination", "s3://mlflow-artifacts/mlflow",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait_healthy(url: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


def _small_digits_project(project: Path, s3_url: str) -> Path:
    """The project copy with the digits row made smaller, and the moto bucket as DVC remote."""
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    digits = params["datasets"]["digits"]
    digits["generate"] = {"seed": 0, "num_train": 120, "num_val": 60}
    digits["validate"]["splits"] = ["val"]
    params["datasets"] = {"digits": digits}
    row = params["rows"][ROW]
    row["train"].update({"epochs": 1, "batch_size": 50})
    params["rows"] = {ROW: row}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run([str(BIN / "hrnet"), "pipeline", "sync"], project)  # dvc.yaml follows the params file
    dvc = str(BIN / "dvc")
    run([dvc, "remote", "add", "-f", "-d", "s3", "s3://dvc-remote/store"], project)
    run([dvc, "remote", "modify", "s3", "endpointurl", s3_url], project)
    git_commit_all(project)
    return project


def test_digits_row_flow_end_to_end(s3, mlflow_server, project, prefect_api, tmp_path, monkeypatch):
    import boto3
    from mlflow.tracking import MlflowClient
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from pipelines.flows import row_flow

    _small_digits_project(project, s3)
    _wait_healthy(mlflow_server, tmp_path / "mlflow.log")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # `hrnet` for the DVC stages
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="gpu", limit=1))

    state = row_flow(ROW, project_dir=str(project), push=True, return_state=True)
    assert state.is_completed(), state.message

    # Prefect: every step is a completed task run of this flow run
    with get_client(sync_client=True) as client:
        task_runs = [t for t in client.read_task_runs() if t.flow_run_id == state.state_details.flow_run_id]
    names = {t.name.rsplit("-", 1)[0] for t in task_runs}
    assert {
        "generate@digits",
        "validate@digits",
        f"train@{ROW}",
        f"evaluate@{ROW}",
        f"register@{ROW}",
    } <= names
    assert any(n.startswith("push") for n in names)
    assert all(t.state.is_completed() for t in task_runs)

    # MLflow: the registered version holds the champion alias
    registered = json.loads((project / "runs" / ROW / "registered.json").read_text())
    mlflow_client = MlflowClient(tracking_uri=mlflow_server)
    champion = mlflow_client.get_model_version_by_alias(f"hrnet-embedded-{ROW}", "champion")
    assert int(champion.version) == registered["version"]
    metrics = json.loads((project / "runs" / ROW / "metrics.json").read_text())
    assert 0.0 <= metrics["top1"] <= 1.0

    # DVC: the cached outputs recorded in dvc.lock are in the S3 remote, content-addressed
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    hashes = {o["path"]: o["md5"] for stage in lock.values() for o in stage.get("outs", [])}
    s3_client = boto3.client("s3", endpoint_url=s3)
    stored = {o["Key"] for o in s3_client.list_objects_v2(Bucket="dvc-remote", Prefix="store/")["Contents"]}
    for path in ("data/embedded/digits", f"runs/{ROW}/model.pt"):
        md5 = hashes[path]
        assert f"store/files/md5/{md5[:2]}/{md5[2:]}" in stored, (path, md5, sorted(stored)[:5])

    # MLflow's artifact store is S3 too: the model went to the mlflow-artifacts bucket
    artifacts = s3_client.list_objects_v2(Bucket="mlflow-artifacts").get("Contents", [])
    assert any(o["Key"].endswith("model.pt") for o in artifacts)
