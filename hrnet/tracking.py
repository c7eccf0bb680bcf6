"""MLflow tracking and registry: one run per benchmark row, models promoted by alias.

Imported lazily by the commands (never by the training loop itself), so training works where
mlflow is not installed. The run of a row is created by ``hrnet train`` and its id stored in
``runs/<row>/mlflow_run.json``; ``hrnet evaluate`` and ``hrnet register`` append to that run.

- Tracking URI: ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``
  (mlflow >= 3.13 refuses the ``./mlruns`` file store).
- A run holds the resolved config as params; step metrics (``train/...``); final metrics;
  artifacts (``config.json``, ``history.json``, ``metrics.json``, ``plots/``,
  ``predictions.json``); the model under ``model/`` (``model.pt``: state dict + config, loaded
  with ``weights_only=True``); tags: row id, git commit, DVC/MD5 hashes of data and model.
- Registry: :func:`register` creates a model version from ``runs:/<id>/model`` and moves the
  ``champion`` alias only when the version's metric beats the current champion's.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from hrnet.data.io import load_json, write_json_atomic
from hrnet.errors import HRNetError

__all__ = [
    "DEFAULT_TRACKING_URI",
    "RUN_FILE",
    "Tracker",
    "download_model",
    "register",
    "resolve_tracking_uri",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
RUN_FILE = "mlflow_run.json"  # in the run folder: {"run_id", "tracking_uri", "experiment_id"}
CHAMPION = "champion"
MODEL_ARTIFACT = "model"  # artifact folder of model.pt in a run


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """``explicit``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


class Tracker:
    """The MLflow run of one row (a thin layer over :class:`MlflowClient`)."""

    def __init__(self, client: MlflowClient, run_id: str, run_dir: Path) -> None:
        self.client = client
        self.run_id = run_id
        self.run_dir = run_dir
        self._system = None

    # -- creating / finding the run --------------------------------------------------------

    @classmethod
    def start(
        cls,
        run_dir: str | Path,
        *,
        params: Mapping[str, Any],
        row: str,
        tracking_uri: str | None = None,
        experiment: str = "hrnet-zoo",
        data: str = "",
    ) -> Tracker:
        """Open the row's run for training: reuse the one in ``run_dir/mlflow_run.json`` when
        it lives on the same server (a resumed training), else create one. Logs params and tags
        and starts system metrics (when psutil is installed)."""
        run_dir = Path(run_dir)
        uri = resolve_tracking_uri(tracking_uri)
        client = MlflowClient(uri)
        run_id = _existing_run(client, run_dir, uri)
        if run_id is None:
            exp = client.get_experiment_by_name(experiment)
            experiment_id = exp.experiment_id if exp else client.create_experiment(experiment)
            run = client.create_run(experiment_id, run_name=row, tags={"row": row})
            run_id = run.info.run_id
            write_json_atomic(
                run_dir / RUN_FILE,
                {"run_id": run_id, "tracking_uri": uri, "experiment_id": experiment_id},
                indent=2,
            )
        else:
            client.update_run(run_id, status="RUNNING")
        tracker = cls(client, run_id, run_dir)
        logged = client.get_run(run_id).data.params
        new_params = {k: _param_value(v) for k, v in params.items() if k not in logged}
        client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in new_params.items()],
            tags=[RunTag(k, v) for k, v in _lineage_tags(data).items()],
        )
        tracker._start_system_metrics(uri)
        return tracker

    @classmethod
    def attach(cls, run_dir: str | Path, tracking_uri: str | None = None) -> Tracker:
        """The run recorded in ``run_dir/mlflow_run.json`` (for evaluate and register).

        Raises:
            HRNetError: no run file, or the run is not on the server.
        """
        run_dir = Path(run_dir)
        record = _read_run_file(run_dir)
        uri = tracking_uri or record.get("tracking_uri") or resolve_tracking_uri()
        client = MlflowClient(uri)
        try:
            client.get_run(record["run_id"])
        except Exception as exc:  # mlflow raises MlflowException / RestException subclasses
            raise HRNetError(
                f"{run_dir / RUN_FILE}: run {record['run_id']} not found on {uri}: {exc}"
            ) from None
        return cls(client, record["run_id"], run_dir)

    # -- logging ---------------------------------------------------------------------------

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Numeric, finite values of ``metrics`` at ``step`` (others are skipped)."""
        import time

        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, step)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """A file or a folder (its contents) under ``artifact_path``; missing paths are skipped."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_training_outputs(self, run_dir: str | Path) -> None:
        """After training: ``model.pt`` under ``model/``, the config and loss history, and the
        model's MD5 (and DVC hash when ``dvc.lock`` records it) as tags."""
        run_dir = Path(run_dir)
        model = run_dir / "model.pt"
        self.log_artifact(model, MODEL_ARTIFACT)
        self.log_artifact(run_dir / "config.json")
        self.log_artifact(run_dir / "history.json")
        tags = {"model_md5": _md5(model)} if model.is_file() else {}
        dvc = _dvc_hash(model)
        if dvc:
            tags["dvc_model_md5"] = dvc
        if tags:
            self.set_tags(tags)

    def log_evaluation(self, metrics: Mapping[str, Any], run_dir: str | Path) -> None:
        """After evaluation: the scalar metrics (prefixed ``eval/``), ``metrics.json``,
        ``predictions.json`` and ``plots/``."""
        run_dir = Path(run_dir)
        self.log_metrics({f"eval/{k}": v for k, v in _flatten(metrics).items()})
        self.log_artifact(run_dir / "metrics.json")
        self.log_artifact(run_dir / "predictions.json")
        self.log_artifact(run_dir / "plots", "plots")

    def finish(self, status: str = "FINISHED") -> None:
        """Stop system metrics and mark the run ``FINISHED`` / ``FAILED`` / ``KILLED``."""
        if self._system is not None:
            self._system.finish()
            self._system = None
        self.client.set_terminated(self.run_id, status=status)

    def _start_system_metrics(self, uri: str) -> None:
        try:
            import psutil  # noqa: F401  (the CPU monitor needs it)
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        except ImportError:
            return
        self._system = SystemMetricsMonitor(self.run_id, resume_logging=True, tracking_uri=uri)
        self._system.start()


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def register(
    run_dir: str | Path,
    *,
    name: str,
    metric: str,
    mode: str = "max",
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Register the run's model as a version of ``name``; move ``@champion`` to it only when
    its ``metric`` (a key of ``run_dir/metrics.json``, dots for nested keys) beats the current
    champion's (``mode`` max or min). Writes and returns ``run_dir/registered.json``.

    Registering the same run again reuses its version.
    """
    if mode not in ("max", "min"):
        raise HRNetError(f"register: --mode must be max or min, not {mode!r}")
    run_dir = Path(run_dir)
    value = _metric_value(run_dir, metric)
    tracker = Tracker.attach(run_dir, tracking_uri)
    client, run_id = tracker.client, tracker.run_id
    source = f"runs:/{run_id}/{MODEL_ARTIFACT}"

    try:
        client.get_registered_model(name)
    except Exception:  # not registered yet
        client.create_registered_model(name, tags={"project": "hrnet-zoo"})
    existing = [
        v for v in client.search_model_versions(f"name='{name}'") if v.run_id == run_id and v.source == source
    ]
    version = existing[0] if existing else client.create_model_version(name, source, run_id=run_id)
    client.set_model_version_tag(name, version.version, f"metric.{metric}", repr(value))

    champion_version, champion_value = _champion(client, name, metric)
    better = champion_value is None or (value > champion_value if mode == "max" else value < champion_value)
    if better:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    record = {
        "name": name,
        "version": int(version.version),
        "run_id": run_id,
        "source": source,
        "metric": metric,
        "mode": mode,
        "value": value,
        "champion": bool(better) or champion_version == str(version.version),
        "champion_version": int(version.version) if better else int(champion_version),
        "previous_champion": None
        if champion_version is None
        else {"version": int(champion_version), "value": champion_value},
        "uri": f"models:/{name}/{version.version}",
    }
    tracker.set_tags({"registered_model": f"{name}/{version.version}"})
    write_json_atomic(run_dir / "registered.json", record, indent=2)
    return record


def _champion(client: MlflowClient, name: str, metric: str) -> tuple[str | None, float | None]:
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except Exception:  # no alias yet
        return None, None
    tag = current.tags.get(f"metric.{metric}")
    if tag is None:  # registered with another metric: fall back to the run's eval metric
        run_metrics = client.get_run(current.run_id).data.metrics
        found = run_metrics.get(f"eval/{metric}")
        return str(current.version), found
    return str(current.version), float(tag)


def download_model(uri: str, dst: str | Path, tracking_uri: str | None = None) -> Path:
    """Download ``models:/name@alias``, ``models:/name/version`` or ``runs:/id/model`` into
    ``dst`` and return the path of its ``model.pt``."""
    import mlflow

    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except Exception as exc:
        raise HRNetError(f"{uri}: cannot download the model: {exc}") from None
    path = local / "model.pt" if local.is_dir() else local
    if not path.is_file():
        raise HRNetError(f"{uri}: no model.pt in the downloaded artifacts ({local})")
    return path


# --------------------------------------------------------------------------------------------
# Helpers: run file, metric lookup, lineage tags
# --------------------------------------------------------------------------------------------


def _read_run_file(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise HRNetError(f"{path}: no MLflow run recorded for this run folder (train it with MLflow enabled)")
    record = load_json(path)
    if not isinstance(record, dict) or "run_id" not in record:
        raise HRNetError(f"{path}: no run_id in the file")
    return record


def _existing_run(client: MlflowClient, run_dir: Path, uri: str) -> str | None:
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    record = load_json(path)
    if not isinstance(record, dict) or record.get("tracking_uri") != uri:
        return None
    try:
        client.get_run(record["run_id"])
    except Exception:  # deleted, or another database behind the same URI
        return None
    return record["run_id"]


def _metric_value(run_dir: Path, metric: str) -> float:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise HRNetError(f"{path}: not found; run `hrnet evaluate --run-dir {run_dir}` first")
    value: Any = load_json(path)
    for part in metric.split("."):
        if not isinstance(value, dict) or part not in value:
            keys = ", ".join(k for k, v in _flatten(load_json(path)).items())
            raise HRNetError(f"{path}: no metric {metric!r} (numeric keys: {keys})")
        value = value[part]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise HRNetError(f"{path}: metric {metric!r} is not a number ({value!r})")
    return float(value)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text[:6000]


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _git_commit() -> dict[str, str]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


def _dvc_lock_hashes() -> dict[str, str]:
    """``path -> md5`` of every dep/out in ``./dvc.lock`` (empty without one)."""
    lock = Path("dvc.lock")
    if not lock.is_file():
        return {}
    import yaml

    try:
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    except yaml.YAMLError:
        return {}
    hashes: dict[str, str] = {}
    for stage in stages.values():
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            if isinstance(entry, dict) and "path" in entry and "md5" in entry:
                hashes[os.path.normpath(entry["path"])] = entry["md5"]
    return hashes


def _dvc_hash(path: str | Path) -> str | None:
    return _dvc_lock_hashes().get(os.path.normpath(str(path))) if path else None


def _lineage_tags(data: str) -> dict[str, str]:
    tags = _git_commit()
    if data:
        tags["data"] = data
        dvc = _dvc_hash(data)
        if dvc:
            tags["dvc_data_md5"] = dvc
        manifest = Path(data) / "dataset.json"
        if manifest.is_file():
            tags["data_manifest_md5"] = _md5(manifest)
    return tags
