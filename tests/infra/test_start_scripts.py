"""The infra/ start scripts as a user runs them on a machine without GPUs or nvidia-smi.

Each script runs in the foreground in its own session, on 127.0.0.1 with a free port, with a
``PATH`` that holds no nvidia-smi and ``GPUS`` unset. The test waits (bounded) for its health
check, checks what it set up, then stops it with SIGTERM and checks that nothing it started
is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from tests.loopback import DUMMY_AWS_ENV, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
WAIT_S = 60  # a service that does not come up fails the test within this


def _path_without_nvidia_smi() -> str:
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    dirs += ["/usr/bin", "/bin"]
    kept: list[str] = []
    for d in dirs:
        if d not in kept and not (Path(d) / "nvidia-smi").exists():
            kept.append(d)
    return os.pathsep.join(kept)


def script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell on a CPU machine: no GPUS, no nvidia-smi on PATH,
    no tracking or Prefect URL of the developer's own, Prefect's database in ``tmp_path``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GPUS", "CUDA_VISIBLE_DEVICES", "MLFLOW_TRACKING_URI", "PREFECT_API_URL")
        and not k.startswith(("PREFECT_", "MLFLOW_"))
    }
    env.update(
        PATH=_path_without_nvidia_smi(),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        START_TIMEOUT=str(WAIT_S),
        **DUMMY_AWS_ENV,
    )
    env.update(extra)
    assert shutil.which("nvidia-smi", path=env["PATH"]) is None
    return env


class Script:
    """A start script running in the foreground of its own session, output in a log file."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.log_path = name, log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            ["env", "-u", "GPUS", str(INFRA / name)],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.tree: set[psutil.Process] = set()

    def log(self, tail: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    break
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.proc.returncode}) before {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: no {what} after {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.5)
        self._snapshot()

    def wait_output(self, text: str, timeout: float = WAIT_S) -> None:
        self.wait_for(lambda: text in self.log_path.read_text(errors="replace"), repr(text), timeout)

    def _snapshot(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
            self.tree |= {root, *root.children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def stop(self) -> int:
        """SIGTERM to the script's process group (as a terminal or systemd does); returns its
        exit status; fails when it or anything it started is still alive after 30 s."""
        self._snapshot()
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still running 30 s after SIGTERM:\n{self.log()}")
        _, alive = psutil.wait_procs(list(self.tree), timeout=20)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"{self.name} left processes behind: {alive}\n{self.log()}"
        assert not _group_alive(self.proc.pid), f"{self.name}: its process group is still there"
        return code

    def kill(self) -> None:
        """Last resort (a failed test): SIGKILL what it started that is still running."""
        self._snapshot()
        if self.proc.poll() is None:
            with suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        for p in self.tree:
            with suppress(psutil.Error):
                if p.is_running():  # psutil checks the pid was not reused
                    p.kill()
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def running(name: str, env: dict[str, str], log: Path) -> Iterator[Script]:
    script = Script(name, env, log)
    try:
        yield script
    finally:
        script.kill()  # a no-op after a clean stop; else nothing it started survives the test


def _get(url: str, timeout: float = 2) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def _post(url: str, body: dict, timeout: float = 5) -> object:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _answers(url: str) -> bool:
    try:
        _get(url)
    except urllib.error.HTTPError:
        return True  # an S3 root may answer 4xx: it is up
    return True


def test_s3_then_mlflow(tmp_path: Path) -> None:
    import boto3

    s3_port, mlflow_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{s3_port}"
    env = script_env(
        tmp_path,
        S3_HOST="127.0.0.1",
        S3_PORT=str(s3_port),
        S3_ENDPOINT_URL=endpoint,
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(mlflow_port),
        MLFLOW_BACKEND_STORE_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        MLFLOW_ARTIFACTS_DESTINATION="s3://mlflow-artifacts/mlflow",
    )
    with running("start-s3.sh", env, tmp_path / "s3.log") as s3:
        s3.wait_for(lambda: _answers(endpoint), f"S3 endpoint {endpoint}")
        s3.wait_output("S3 at ")
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        names = {b["Name"] for b in client.list_buckets()["Buckets"]}
        assert {"dvc-remote", "mlflow-artifacts"} <= names

        url = f"http://127.0.0.1:{mlflow_port}"
        with running("start-mlflow.sh", env, tmp_path / "mlflow.log") as mlflow:
            mlflow.wait_for(lambda: _get(f"{url}/health") == b"OK", f"{url}/health")
            mlflow.wait_output(f"MLflow at {url}")
            assert "does not answer" not in mlflow.log()  # the S3 endpoint was up
            created = _post(f"{url}/api/2.0/mlflow/experiments/create", {"name": "scripts"})
            assert created["experiment_id"]
            assert mlflow.stop() in (0, 143)
        assert s3.stop() in (0, 143)


def test_prefect_server_pool_limit_and_cpu_worker(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = script_env(tmp_path, PREFECT_HOST="127.0.0.1", PREFECT_PORT=str(port))
    with running("start-prefect.sh", env, tmp_path / "prefect.log") as server:
        server.wait_for(lambda: _get(f"{api}/health") == b"true", f"{api}/health")
        server.wait_output("concurrency limit 'gpu'")
        assert "1 CPU slot" in server.log(), server.log()
        pool = json.loads(_get(f"{api}/work_pools/gpu"))
        assert pool["name"] == "gpu" and pool["type"] == "process"
        limit = json.loads(_get(f"{api}/v2/concurrency_limits/gpu"))
        assert limit["limit"] == 1 and limit["active"]

        worker_env = {**env, "PREFECT_API_URL": api}
        with running("start-worker.sh", worker_env, tmp_path / "worker.log") as worker:

            def registered() -> bool:
                return any(
                    w["name"].endswith("-cpu") for w in _post(f"{api}/work_pools/gpu/workers/filter", {})
                )

            worker.wait_for(registered, "CPU worker in pool 'gpu'")
            assert "(CPU, no GPU found)" in worker.log()
            assert worker.stop() in (0, 143)
        assert server.stop() in (0, 143)


def test_worker_without_server_fails_fast(tmp_path: Path) -> None:
    env = script_env(tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api", START_TIMEOUT="3")
    started = time.monotonic()
    proc = subprocess.run(
        ["env", "-u", "GPUS", str(INFRA / "start-worker.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and time.monotonic() - started < 30
    assert "no Prefect server at" in proc.stderr and "infra/start-prefect.sh" in proc.stderr


@pytest.mark.parametrize(
    ("script", "port_var"),
    [("start-s3.sh", "S3_PORT"), ("start-mlflow.sh", "MLFLOW_PORT"), ("start-prefect.sh", "PREFECT_PORT")],
)
def test_a_taken_port_is_refused_before_starting(tmp_path: Path, script: str, port_var: str) -> None:
    """Another server on the port: the script says so and exits, instead of taking that
    server's health check for its own and reporting a start that did not happen."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = script_env(tmp_path, **{port_var: str(port)})
        proc = subprocess.run(
            [str(INFRA / script)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"127.0.0.1:{port} is taken" in proc.stderr and port_var in proc.stderr
    assert "starting" not in proc.stdout


def test_start_mlflow_never_prints_the_backend_password(tmp_path: Path) -> None:
    backend = "postgresql://zoo:p@ss/wd@127.0.0.1:1/mlflow?sslmode=disable&password=s3cret"
    env = script_env(
        tmp_path, MLFLOW_PORT=str(free_port()), MLFLOW_BACKEND_STORE_URI=backend, START_TIMEOUT="5"
    )
    env["MLFLOW_ARTIFACTS_DESTINATION"] = str(tmp_path / "artifacts")
    proc = subprocess.run(
        [str(INFRA / "start-mlflow.sh")], env=env, capture_output=True, text=True, timeout=90
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output  # no database there: it does not start
    assert "backend postgresql://zoo:***@127.0.0.1:1/mlflow?sslmode=disable&password=***" in output, output
    assert "p@ss" not in output and "s3cret" not in output


def test_torchrun_node_without_gpus_runs_one_cpu_process(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    hrnet = venv / "bin" / "hrnet"  # records its arguments instead of training
    hrnet.write_text('#!/usr/bin/env bash\necho "hrnet $*"\n')
    hrnet.chmod(0o755)
    env = script_env(tmp_path, HRNET_VENV=str(venv), NNODES="2", RDZV_ENDPOINT="127.0.0.1:29500")
    proc = subprocess.run(
        ["env", "-u", "GPUS", str(INFRA / "torchrun-node.sh"), "cls_hrnet_w18"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "one CPU process" in proc.stdout
    assert "--nproc-per-node 1 " in proc.stdout and "--nnodes 2 " in proc.stdout, proc.stdout
