"""The path the Prefect UI takes, end to end, on loopback.

One module-wide stack, started the way infra/README.md starts it:

- ``infra/start-prefect.sh`` (server, the ``gpu`` process work pool, the ``gpu`` concurrency
  limit: one CPU slot here), a moto S3 server (the DVC remote) and an ``mlflow server``
  (SQLite backend, artifacts in a temporary folder);
- a copy of the project in a fresh git repository with the embedded ``digits_cls`` row made
  tiny (``hrnet pipeline sync``, committed) and the S3 bucket as its default DVC remote;
- ``prefect deploy --all --prefect-file pipelines/prefect.yaml`` run in that copy, with
  ``HRNET_ZOO_REPO`` / ``HRNET_ZOO_BRANCH`` pointing the deployments' pull step at it;
- ``infra/start-worker.sh``: one CPU process worker of the ``gpu`` pool.

Then, as a user does from the UI: a "Custom run" of ``row/gpu`` overriding ``row`` and
``suite`` completes (the flow run is Completed, the model version holds ``@champion``, its
``model.pt`` is in the DVC remote); a second run is cancelled while it trains, and nothing of
it (``dvc repro``, ``hrnet train`` or the flow run process) is left afterwards.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.infra.test_start_scripts import Script, running, script_env
from tests.loopback import DUMMY_AWS_ENV, free_port, mlflow_server
from tests.pipeline.conftest import BIN, copy_project, run
from tests.pipeline.test_flow_digits import ROW, _small_digits_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEPLOYMENT = "row/gpu"
MODEL_NAME = f"hrnet-embedded-{ROW}"
RUN_TIMEOUT_S = 360  # the whole tiny row through the worker
UI_PARAMETERS = {"row": ROW, "suite": "embedded"}  # what the "Custom run" form overrides


@dataclass
class Stack:
    api: str
    s3: str
    mlflow: str
    repo: Path
    server: Script
    worker: Script
    tmp: Path
    runs: list[Any] = field(default_factory=list)  # ids of the flow runs the tests created

    def logs(self) -> str:
        """The tails of the server's and the worker's logs (the flow runs' output is the worker's)."""
        return (
            f"--- prefect server (tail) ---\n{self.server.log(30)}\n"
            f"--- worker (tail) ---\n{self.worker.log(80)}"
        )


def _wait(
    check: Callable[[], Any], what: str, timeout: float, stack: Stack | None = None, every: float = 1.0
):
    """Poll ``check`` until it returns something truthy (returned), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout:.0f} s\n{stack.logs() if stack else ''}")
        time.sleep(every)


@pytest.fixture(scope="module")
def s3_remote() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with the bucket ``dvc-remote``; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        _s3_client(url).create_bucket(Bucket="dvc-remote")
        yield url
    finally:
        server.stop()


def _s3_client(url: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=DUMMY_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture(scope="module")
def stack(s3_remote: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("deployment-e2e")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = script_env(tmp, PREFECT_HOST="127.0.0.1", PREFECT_PORT=str(port))
    with running("start-prefect.sh", env, tmp / "prefect.log") as server:
        # the MLflow server and the project copy are made while the Prefect server starts
        (tmp / "mlflow").mkdir()
        with mlflow_server(tmp / "mlflow") as (mlflow_url, _):
            repo = _small_digits_project(copy_project(_mkdir(tmp / "hrnet-zoo")), s3_remote)
            branch = run(["git", "rev-parse", "--abbrev-ref", "HEAD"], repo).stdout.strip()
            server.wait_output("concurrency limit 'gpu'")
            assert "1 CPU slot" in server.log(), server.log()

            client_env = {
                **env,
                "PREFECT_API_URL": api,
                "MLFLOW_TRACKING_URI": mlflow_url,
                "HRNET_ZOO_REPO": str(repo),
                "HRNET_ZOO_BRANCH": branch,
            }
            deployed = run(
                [
                    str(BIN / "prefect"),
                    "--no-prompt",
                    "deploy",
                    "--all",
                    "--prefect-file",
                    "pipelines/prefect.yaml",
                ],
                repo,
                check=False,
                env=client_env,
                timeout=180,
            )
            (tmp / "deploy.log").write_text(deployed.stdout + deployed.stderr)
            assert deployed.returncode == 0, f"prefect deploy failed:\n{deployed.stdout}\n{deployed.stderr}"

            worker_env = {
                **client_env,
                "PREFECT_WORKER_QUERY_SECONDS": "2",  # pick a new flow run up within 2 s
                "PREFECT_WORKER_CANCELLATION_POLL_SECONDS": "2",
            }
            with running("start-worker.sh", worker_env, tmp / "worker.log") as worker:
                worker.wait_output("one flow run at a time each")
                stack = Stack(api, s3_remote, mlflow_url, repo, server, worker, tmp)
                try:
                    yield stack
                finally:
                    _kill_runs(stack.runs)  # flow runs live in sessions of their own: not the worker's
                assert worker.stop() in (0, 143), worker.log()
        assert server.stop() in (0, 143), server.log()


def _kill_runs(flow_run_ids: list[Any]) -> None:
    """SIGKILL whatever is left of these flow runs (a failed test): their processes and groups."""
    for flow_run_id in flow_run_ids:
        for p in _run_processes(flow_run_id):
            with suppress(OSError, psutil.Error):
                os.killpg(os.getpgid(p.pid), signal.SIGKILL)
            with suppress(psutil.Error):
                p.kill()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def prefect_client(stack: Stack) -> Iterator[Any]:
    """A client of the stack's server (not of the developer's profile): this module's Prefect
    calls go to ``stack.api``."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api}), get_client(sync_client=True) as client:
        yield client


def _ui_run(stack: Stack) -> Any:
    """What the UI's "Run > Custom run" button does: a flow run of the deployment with some
    parameters overridden, not waited for."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(DEPLOYMENT, parameters=UI_PARAMETERS, timeout=0)
    stack.runs.append(flow_run.id)
    assert flow_run.parameters["row"] == ROW and flow_run.parameters["suite"] == "embedded"
    assert flow_run.parameters["push"] is True and flow_run.parameters["pull"] is True  # the deployment's
    return flow_run


def _final_state(client: Any, flow_run_id: Any):
    state = client.read_flow_run(flow_run_id).state
    return state if state is not None and state.is_final() else None


def _run_processes(flow_run_id: Any) -> list[psutil.Process]:
    """The processes of a flow run: the flow run process the worker started and everything it
    spawned (dvc, the stage's shell, hrnet, its data loaders) carry its id in their environment."""
    found = []
    for p in psutil.process_iter():
        try:
            if (
                p.environ().get("PREFECT__FLOW_RUN_ID") == str(flow_run_id)
                and p.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return found


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(processes: list[psutil.Process]) -> list[str]:
    out = []
    for p in processes:
        try:
            out.append(f"{p.pid}: {' '.join(p.cmdline())[:160]}")
        except psutil.Error:
            continue
    return out


def _is_command(p: psutil.Process, program: str, subcommand: str) -> bool:
    """Whether ``p`` runs ``program subcommand ...`` (``hrnet train``, ``dvc repro``), directly or
    as a script of the venv's Python."""
    try:
        argv = p.cmdline()
    except psutil.Error:
        return False
    return any(Path(a).name == program and b == subcommand for a, b in itertools.pairwise(argv))


def test_ui_run_of_row_deployment_completes(stack: Stack, prefect_client: Any) -> None:
    from mlflow.tracking import MlflowClient

    deployment = prefect_client.read_deployment_by_name(DEPLOYMENT)
    assert deployment.work_pool_name == "gpu"
    # `prefect deploy` resolves {{ $HRNET_ZOO_REPO }} / {{ $HRNET_ZOO_BRANCH }} from its own environment
    clone = deployment.pull_steps[0]["prefect.deployments.steps.git_clone"]
    assert clone["repository"] == str(stack.repo), deployment.pull_steps

    flow_run = _ui_run(stack)
    state = _wait(lambda: _final_state(prefect_client, flow_run.id), "final state", RUN_TIMEOUT_S, stack, 2)
    assert state.is_completed(), f"{state.type.value}: {state.message}\n{stack.logs()}"
    # the flow run process reports Completed before it exits: give it a bounded moment
    deadline = time.monotonic() + 30
    while _run_processes(flow_run.id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _run_processes(flow_run.id)

    # every stage ran as a completed task run of this flow run
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    task_runs = prefect_client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
    )
    names = {t.name for t in task_runs}
    for stage in ("generate@digits", "validate@digits", f"train@{ROW}", f"evaluate@{ROW}", f"register@{ROW}"):
        assert stage in names, (stage, sorted(names))
    assert any(n.startswith("push") for n in names), sorted(names)
    assert all(t.state.is_completed() for t in task_runs), [(t.name, t.state.type) for t in task_runs]

    # MLflow (a fresh server): the one version, registered by this run, holds @champion
    mlflow = MlflowClient(tracking_uri=stack.mlflow)
    champion = mlflow.get_model_version_by_alias(MODEL_NAME, "champion")
    versions = mlflow.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [v.version for v in versions] == [champion.version] and champion.run_id
    model = Path(mlflow.download_artifacts(champion.run_id, "model/model.pt", str(_mkdir(stack.tmp / "dl"))))

    # DVC: the outputs went to the S3 remote; the registered model.pt is one of them
    s3 = _s3_client(stack.s3)
    stored = {o["Key"] for o in s3.list_objects_v2(Bucket="dvc-remote", Prefix="store/").get("Contents", [])}
    md5 = hashlib.md5(model.read_bytes()).hexdigest()
    assert f"store/files/md5/{md5[:2]}/{md5[2:]}" in stored, (md5, sorted(stored))
    assert any(k.endswith(".dir") for k in stored), sorted(stored)  # the generated dataset folder
    assert len(stored) > 5, sorted(stored)


def test_nightly_cron_schedules_its_runs(stack: Stack, prefect_client: Any) -> None:
    """The server's scheduler creates the nightly deployment's runs at 02:00 UTC (under
    SQLAlchemy 2.1 it failed on every pass: "Can't evaluate bulk DML statement", and nothing was
    ever scheduled). The deployment is paused afterwards and its runs deleted: a worker must
    not start the whole suite in the middle of the other tests."""
    from datetime import UTC, datetime

    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    deployment = prefect_client.read_deployment_by_name("benchmark/embedded-nightly")
    assert deployment.parameters["rows"] == ["*"]

    def scheduled() -> list[Any]:
        return prefect_client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
        )

    try:
        runs = _wait(scheduled, "scheduled run of benchmark/embedded-nightly", 150, stack, 3)
        starts = sorted(r.expected_start_time.astimezone(UTC) for r in runs)
        assert all((t.hour, t.minute) == (2, 0) for t in starts), starts
        assert starts[0] > datetime.now(UTC), starts
    finally:
        prefect_client.pause_deployment(deployment.id)
        for flow_run in scheduled():
            prefect_client.delete_flow_run(flow_run.id)


def test_ui_cancel_of_running_row_leaves_no_process(stack: Stack, prefect_client: Any) -> None:
    from prefect.states import Cancelling

    # a longer training on the branch the deployment clones: the run is cancelled mid-training
    params_path = stack.repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["rows"][ROW]["train"]["epochs"] = 500
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    # (dvc.yaml names the params keys, not their values: no `hrnet pipeline sync` needed, and
    # none wanted: the venv's hrnet is the live checkout, the clone checks with its own copy)
    run(["git", "add", "-A"], stack.repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "longer training"], stack.repo)

    flow_run = _ui_run(stack)

    def training() -> list[psutil.Process]:
        assert not _final_state(prefect_client, flow_run.id), f"the run ended before training\n{stack.logs()}"
        procs = _run_processes(flow_run.id)
        return procs if any(_is_command(p, "hrnet", "train") for p in procs) else []

    procs = _wait(training, "`hrnet train` of the second flow run", 180, stack, 0.5)
    time.sleep(2)  # training is under way (data loaders started)
    procs = _run_processes(flow_run.id) or procs
    assert any(_is_command(p, "dvc", "repro") for p in procs), _describe(procs)

    result = prefect_client.set_flow_run_state(flow_run.id, Cancelling())  # the UI's "Cancel"
    assert result.status.value == "ACCEPT", result

    state = _wait(lambda: _final_state(prefect_client, flow_run.id), "final state after Cancel", 90, stack)
    assert state.is_cancelled(), f"{state.type.value}: {state.message}\n{stack.logs()}"
    _, alive = psutil.wait_procs(procs, timeout=60)
    left = [p for p in {*alive, *_run_processes(flow_run.id)} if _alive(p)]
    assert not left, f"left behind: {_describe(left)}\n{stack.logs()}"

    # the cancelled training released its slot of the `gpu` limit (else no row could train again)
    def released() -> bool:
        return prefect_client.read_global_concurrency_limit_by_name("gpu").active_slots == 0

    _wait(released, "free slot of the `gpu` concurrency limit", 30, stack)
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    task_runs = prefect_client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
    )
    train = [t for t in task_runs if t.name == f"train@{ROW}"]
    assert train and not train[0].state.is_completed(), [(t.name, t.state.type) for t in task_runs]
