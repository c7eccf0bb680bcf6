"""Tracking and registry against a real `mlflow server` whose artifacts live in S3 (moto).

Module fixture: a moto S3 server and an `mlflow server` (sqlite backend, proxied artifacts to
``s3://hrnet-artifacts/mlflow``), both on 127.0.0.1, stopped at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hrnet.cli import main
from tests import loopback
from tests.engine.conftest import make_image_folder, tiny_train_flags
from tests.loopback import DUMMY_AWS_ENV, free_port

pytestmark = pytest.mark.integration

BUCKET = "hrnet-artifacts"


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, object]]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        **{k.lower(): v for k, v in DUMMY_AWS_ENV.items() if k != "AWS_DEFAULT_REGION"},
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def mlflow_server(s3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    endpoint, _ = s3
    env = dict(os.environ, MLFLOW_S3_ENDPOINT_URL=endpoint, **DUMMY_AWS_ENV)
    with loopback.mlflow_server(
        tmp_path_factory.mktemp("mlflow"), artifacts=f"s3://{BUCKET}/mlflow", env=env
    ) as (
        url,
        _,
    ):
        yield url


def _set_top1(run_dir: Path, value: float) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["top1"] = value
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


def test_run_artifacts_registry_and_champion(mlflow_server, s3, tmp_path, capsys) -> None:
    from mlflow.tracking import MlflowClient

    _, s3_client = s3
    data = make_image_folder(tmp_path / "data", per_class=4)
    runs = {}
    for name in ("a", "b"):
        run = tmp_path / "runs" / name
        flags = [f for f in tiny_train_flags(data) if f != "--no-mlflow"]
        assert (
            main(
                [
                    "train",
                    "--out",
                    str(run),
                    *flags,
                    "--iters",
                    "2",
                    "--log-every",
                    "1",
                    "--tracking-uri",
                    mlflow_server,
                    "--row",
                    name,
                ]
            )
            == 0
        )
        assert main(["evaluate", "--run-dir", str(run), "--workers", "0", "--num-plots", "2"]) == 0
        runs[name] = run

    client = MlflowClient(mlflow_server)
    run_id = json.loads((runs["a"] / "mlflow_run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert run.info.run_name == "a" and run.data.tags["row"] == "a"
    assert run.data.params["lr"] == "0.02"
    assert "train/loss" in run.data.metrics and "eval/top1" in run.data.metrics
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2]
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"model", "plots", "metrics.json", "config.json"} <= names
    pictures = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/predictions.png", "plots/training_loss.png"} <= pictures, pictures
    # the model training view of the UI, not the GenAI one
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # evaluation settings are params, numbers metrics
    assert run.data.params["eval.num_plots"] == "2" and run.data.params["eval.workers"] == "0"
    assert run.data.params["eval.split"] == "val"
    assert not [k for k in run.data.metrics if "eval_settings" in k or k.startswith("eval/num_plots")]
    assert "eval/eval_seconds" in run.data.metrics
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any(k.endswith(f"{run_id}/artifacts/model/model.pt") for k in keys), keys
    # another split written beside the run's own: logged under eval-train/, eval/ unchanged
    own = client.get_run(run_id).data.metrics["eval/top1"]
    other = ["evaluate", "--run-dir", str(runs["a"]), "--split", "train", "--workers", "0"]
    assert main([*other, "--out", str(runs["a"] / "eval-train"), "--num-plots", "1"]) == 0
    run = client.get_run(run_id)
    assert run.data.metrics["eval/top1"] == own and "eval-train/top1" in run.data.metrics
    assert run.data.params["eval.split"] == "val" and run.data.params["eval-train.split"] == "train"
    assert {"eval-train/metrics.json", "eval-train/plots"} <= {
        a.path for a in client.list_artifacts(run_id, "eval-train")
    }

    # a registers first: champion; b worse: the alias stays; b better: the alias moves
    _set_top1(runs["a"], 0.6)
    _set_top1(runs["b"], 0.4)
    first = _register(runs["a"], mlflow_server)
    assert first["version"] == 1 and first["champion"]
    second = _register(runs["b"], mlflow_server)
    assert second["version"] == 2 and not second["champion"] and second["champion_version"] == 1
    assert client.get_model_version_by_alias("tiny", "champion").version == "1"
    _set_top1(runs["b"], 0.9)
    third = _register(runs["b"], mlflow_server)
    assert third["version"] == 2 and third["champion"]  # same run: same version, now champion
    assert client.get_model_version_by_alias("tiny", "champion").version == "2"
    assert json.loads((runs["b"] / "registered.json").read_text())["previous_champion"] == {
        "version": 1,
        "value": 0.6,
    }

    # a new training in a registered run's folder (no --resume) is a new run: the registered
    # version keeps its run, params and model; a training that fails leaves its run unregistrable
    again = [f for f in tiny_train_flags(data) if f != "--no-mlflow"]
    again += ["--iters", "1", "--lr", "0.05", "--tracking-uri", mlflow_server, "--row", "b"]
    assert main(["train", "--out", str(runs["b"]), *again]) == 0
    new_id = json.loads((runs["b"] / "mlflow_run.json").read_text())["run_id"]
    old_id = client.get_model_version("tiny", "2").run_id
    assert new_id != old_id and client.get_run(old_id).data.params["lr"] == "0.02"
    assert client.get_run(new_id).data.params["lr"] == "0.05"
    failing = [
        *again[: again.index("--data") + 1],
        str(tmp_path / "missing"),
        *again[again.index("--data") + 2 :],
    ]
    assert main(["train", "--out", str(runs["b"]), *failing]) == 2
    failed_id = json.loads((runs["b"] / "mlflow_run.json").read_text())["run_id"]
    assert client.get_run(failed_id).info.status == "FAILED" and failed_id != new_id
    assert main(["evaluate", "--run-dir", str(runs["b"]), "--workers", "0", "--no-mlflow"]) == 0
    argv = ["register", "--run-dir", str(runs["b"]), "--name", "tiny", "--metric", "top1"]
    assert main([*argv, "--tracking-uri", mlflow_server]) == 2
    assert f"run {failed_id} of {runs['b']} is FAILED" in capsys.readouterr().err
    assert client.get_model_version_by_alias("tiny", "champion").run_id == old_id

    # the champion is usable by URI
    out = tmp_path / "pred"
    image = next((data / "val" / "red").iterdir())
    assert (
        main(
            [
                "predict",
                "models:/tiny@champion",
                str(image),
                "--out",
                str(out),
                "--tracking-uri",
                mlflow_server,
            ]
        )
        == 0
    )
    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions[0]["file"] == str(image) and predictions[0]["label"] in ("blue", "red")


def _register(run_dir: Path, uri: str) -> dict:
    assert (
        main(
            [
                "register",
                "--run-dir",
                str(run_dir),
                "--name",
                "tiny",
                "--metric",
                "top1",
                "--tracking-uri",
                uri,
            ]
        )
        == 0
    )
    return json.loads((run_dir / "registered.json").read_text())
