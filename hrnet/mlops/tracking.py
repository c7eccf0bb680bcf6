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
- A tracking server that does not answer: an ``http(s)://`` URI is probed (``/health``, a few
  seconds) before a run is opened or attached, and an :class:`HRNetError` names the URI and the
  ways out. The client's own HTTP retries are capped while a :class:`Tracker` is open
  (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``_BACKOFF_FACTOR`` / ``_TIMEOUT``, unless set by the
  user), so a server that stops answering costs seconds, not minutes.
- A server that dies during training does not stop it: the first failed call prints one
  warning, the run goes offline (no more MLflow calls for step metrics: they stay in
  ``runs/<row>/history.json`` and are not in MLflow for this run); at the end, if the server
  answers again, the artifacts are uploaded and the run is closed with the tag
  ``hrnet.metrics_incomplete``.
- Experiments are created with ``mlflow.experimentKind=custom_model_development`` (the model
  training view, not the GenAI one); evaluation settings and other non-numeric values are
  params (``eval.<key>``), numbers are metrics (``eval/<key>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from hrnet.data.io import load_json, write_json_atomic
from hrnet.errors import HRNetError

__all__ = [
    "DEFAULT_TRACKING_URI",
    "RUN_FILE",
    "Tracker",
    "download_model",
    "log_onnx",
    "read_run_file",
    "register",
    "resolve_tracking_uri",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
RUN_FILE = "mlflow_run.json"  # in the run folder: {"run_id", "tracking_uri", "experiment_id"}
CHAMPION = "champion"
MODEL_ARTIFACT = "model"  # artifact folder of model.pt in a run
ONNX_ARTIFACT = "onnx"  # name of the run's logged model in MLflow's onnx flavour
# the UI opens experiments of this kind in the model training view (runs, metrics, artifacts)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
PROBE_TIMEOUT_S = 5.0  # seconds the /health probe of an http(s) tracking server waits
# MLflow client HTTP settings while a Tracker is open (a user's own values win): 3 tries of at
# most 30 s, 1 s then 2 s apart, instead of 8 tries up to ~4 minutes apart
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
ARTIFACT_TIMEOUT_S = "300"  # artifact uploads (a model through the proxy) may take longer

_T = TypeVar("_T")


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """``explicit``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def without_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part: what the run file records (a run folder is
    copied, pushed and shared; the password stays in the environment)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.username is None and parsed.password is None:
        return uri
    return urllib.parse.urlunparse(parsed._replace(netloc=parsed.netloc.rpartition("@")[2]))


def recorded_uri(record: Mapping[str, Any]) -> str | None:
    """The run file's tracking URI, with the credentials of ``$MLFLOW_TRACKING_URI`` when that
    names the same server (the run file holds none)."""
    recorded = record.get("tracking_uri")
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if recorded and env and without_credentials(env) == recorded:
        return env
    return recorded


def _server_problem(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the http(s) tracking server ``uri`` cannot be reached (``None``: it answers, or
    ``uri`` is not an HTTP server: sqlite, file, databricks...)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return None
    # credentials in the URI (http://user:password@host) go into a Basic header, as MLflow's
    # client (requests) sends them; urllib would take them for part of the host
    host = parsed.hostname or ""
    try:
        port = parsed.port
    except ValueError as exc:  # http://host:abc, a port above 65535
        return f"bad URL: {exc}"
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    url = urllib.parse.urlunparse(parsed._replace(netloc=netloc)).rstrip("/") + "/health"
    request = urllib.request.Request(url)
    if parsed.username is not None:
        import base64

        user = urllib.parse.unquote(parsed.username)
        password = urllib.parse.unquote(parsed.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # something answers (a proxy without /health...): let MLflow talk to it
    except (OSError, ValueError) as exc:  # refused, unknown host, timeout, bad URL
        reason = getattr(exc, "reason", None) or exc
        return f"{type(reason).__name__ if isinstance(reason, BaseException) else 'error'}: {reason}"


def check_server(uri: str, *, offline_flag: str | None = "--no-mlflow") -> None:
    """Raise :class:`HRNetError` when the http(s) tracking server ``uri`` does not answer
    within a few seconds; the message names the URI and the ways out."""
    problem = _server_problem(uri)
    if problem is None:
        return
    ways = (
        "start it with infra/start-mlflow.sh (or point --tracking-uri / MLFLOW_TRACKING_URI at one that runs)"
    )
    ways += f", or run without MLflow: {offline_flag}" if offline_flag else ""
    raise HRNetError(f"MLflow tracking server {redacted(uri)} does not answer ({problem}): {ways}")


def redacted(uri: str) -> str:
    """``uri`` with the password of its credentials (``user:password@``) shown as ``***``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.password is None:
        return uri
    user, _, hostport = parsed.netloc.rpartition("@")
    return urllib.parse.urlunparse(parsed._replace(netloc=f"{user.split(':', 1)[0]}:***@{hostport}"))


@contextlib.contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables the user has not set, restore them afterwards."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


class _HttpLimits:
    """:data:`HTTP_LIMITS` in the environment from :meth:`enter` to :meth:`exit` (the
    system-metrics thread reads them too, so they are process-wide while a run is open)."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None

    def enter(self) -> None:
        if self._stack is None:
            self._stack = contextlib.ExitStack()
            self._stack.enter_context(_env(HTTP_LIMITS))

    def exit(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


@contextlib.contextmanager
def _artifact_timeout() -> Iterator[None]:
    """A longer HTTP timeout for artifact uploads, unless the user set one."""
    if os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") == HTTP_LIMITS["MLFLOW_HTTP_REQUEST_TIMEOUT"]:
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = ARTIFACT_TIMEOUT_S
        try:
            yield
        finally:
            os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = HTTP_LIMITS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    else:
        yield


def _loggable(value: Any) -> bool:
    """A number MLflow takes as a metric value: an int or float (not a bool), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _warn(message: str) -> None:
    from hrnet.errors import coloured

    print(f"{coloured('warning:', 33)} {message}", file=sys.stderr, flush=True)


class Tracker:
    """The MLflow run of one row (a thin layer over :class:`MlflowClient`).

    Logging never stops the work it records: a call that fails (the server went away) prints
    one warning and takes the run offline; the metrics stay in the run folder on disk.
    """

    def __init__(self, client: MlflowClient, run_id: str, run_dir: Path, uri: str | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.run_dir = run_dir
        self.uri = uri or getattr(client, "tracking_uri", "")
        self._system = None
        self._offline_since: int | None = None  # the step of the first failed call
        self._opened_at = time.time()  # files of the run folder older than this are not this run's
        self._limits = _HttpLimits()

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
        tags: Mapping[str, str] | None = None,
        resume: bool = False,
    ) -> Tracker:
        """Open the row's run for training: with ``resume`` (a training continued from its
        checkpoint) reuse the one in ``run_dir/mlflow_run.json`` when it lives on the same
        server, else create one. A new training in an old run folder gets a new run: the old
        run, its logged params and any version registered from it stay as they were. Logs params, the
        lineage tags and ``tags`` (the CPU kernels and threads, say), and starts system metrics
        (when psutil is installed).

        Raises:
            HRNetError: the tracking server does not answer (checked before anything else).
        """
        run_dir = Path(run_dir)
        uri = resolve_tracking_uri(tracking_uri)
        check_server(uri)
        limits = _HttpLimits()
        limits.enter()
        try:
            client = MlflowClient(uri)
            run_id = _existing_run(client, run_dir, uri) if resume else None
            if run_id is None:
                experiment_id = _experiment_id(client, experiment)
                run = client.create_run(experiment_id, run_name=row, tags={"row": row})
                run_id = run.info.run_id
                write_json_atomic(
                    run_dir / RUN_FILE,
                    {
                        "run_id": run_id,
                        "tracking_uri": without_credentials(uri),
                        "experiment_id": experiment_id,
                    },
                    indent=2,
                )
            else:
                client.update_run(run_id, status="RUNNING")
                record = load_json(run_dir / RUN_FILE)
                if isinstance(record, dict) and "pending" in record:  # that ending is superseded
                    record.pop("pending")
                    write_json_atomic(run_dir / RUN_FILE, record, indent=2)
            tracker = cls(client, run_id, run_dir, uri)
            tracker._limits = limits
            logged = client.get_run(run_id).data.params
            new_params = {k: _param_value(v) for k, v in params.items() if k not in logged}
            client.log_batch(
                run_id,
                params=[Param(k, v) for k, v in new_params.items()],
                tags=[RunTag(k, v) for k, v in {**_lineage_tags(data), **(tags or {})}.items()],
            )
        except HRNetError:
            limits.exit()
            raise
        except Exception as exc:  # answered /health, then failed: still before training
            limits.exit()
            raise HRNetError(
                f"MLflow tracking server {redacted(uri)}: cannot open the run ({_short(exc)}); "
                "run without MLflow: --no-mlflow"
            ) from None
        print(f"MLflow run {run_id} on {redacted(uri)}{_run_link(uri, tracker)}", flush=True)
        tracker._start_system_metrics(uri)
        return tracker

    @classmethod
    def attach(
        cls, run_dir: str | Path, tracking_uri: str | None = None, *, offline_flag: str | None = "--no-mlflow"
    ) -> Tracker:
        """The run recorded in ``run_dir/mlflow_run.json`` (for evaluate and register).

        Raises:
            HRNetError: no run file, the server does not answer, or the run is not on it.
        """
        run_dir = Path(run_dir)
        record = read_run_file(run_dir)
        uri = tracking_uri or recorded_uri(record) or resolve_tracking_uri()
        check_server(uri, offline_flag=offline_flag)
        limits = _HttpLimits()
        limits.enter()
        client = MlflowClient(uri)
        try:
            client.get_run(record["run_id"])
        except Exception as exc:  # mlflow raises MlflowException / RestException subclasses
            limits.exit()
            raise HRNetError(
                f"{run_dir / RUN_FILE}: run {record['run_id']} not found on {redacted(uri)}: {_short(exc)}"
            ) from None
        tracker = cls(client, record["run_id"], run_dir, uri)
        tracker._limits = limits
        if isinstance(record.get("pending"), dict):
            tracker._close_pending(record)
        return tracker

    def _close_pending(self, record: dict[str, Any]) -> None:
        """The run's training ended while the server was down (``pending`` in the run file):
        log the step metrics the server missed (from ``history.json``), mark the run as the
        training ended, and drop ``pending`` from the run file."""
        pending = record["pending"]
        status = str(pending.get("status", "FINISHED"))
        since = pending.get("from_step")
        # history.json is written when a training ends well: a FAILED/KILLED one left an older one
        restored = (
            self._restore_history(since if isinstance(since, int) else None) if status == "FINISHED" else 0
        )
        self._call("closing the run", lambda: self.client.set_terminated(self.run_id, status=status))
        if self.offline:
            return  # still pending: the next evaluate/register tries again
        write_json_atomic(
            self.run_dir / RUN_FILE, {k: v for k, v in record.items() if k != "pending"}, indent=2
        )
        print(
            f"MLflow run {self.run_id}: closed as {status} (the server was down when training ended); "
            f"{restored} steps of metrics logged from {self.run_dir / 'history.json'}",
            flush=True,
        )

    def _restore_history(self, since: int | None) -> int:
        """Log the step metrics of ``history.json`` from step ``since`` on (all steps when None)
        that the run does not hold yet; returns the number of steps logged."""
        path = self.run_dir / "history.json"
        if not path.is_file():
            return 0
        history = load_json(path)
        entries = [
            h
            for h in (history if isinstance(history, list) else [])
            if isinstance(h, dict)
            and isinstance(h.get("step"), int)
            and (since is None or h["step"] >= since)
        ]
        keys = [k for k in (entries[0] if entries else {}) if k != "step"]
        if not keys:
            return 0
        known = self._call(
            "reading the metric history", lambda: self.client.get_metric_history(self.run_id, keys[0])
        )
        if known is None:
            return 0
        logged = {m.step for m in known}
        now = int(time.time() * 1000)
        missing = [h for h in entries if h["step"] not in logged]
        batch = [
            Metric(k, float(v), now, h["step"])
            for h in missing
            for k, v in h.items()
            if k != "step" and _loggable(v)
        ]
        for start in range(0, len(batch), 1000):  # MLflow's limit per log_batch
            chunk = batch[start : start + 1000]
            self._call(
                "logging the missed metrics",
                lambda chunk=chunk: self.client.log_batch(self.run_id, metrics=chunk),
            )
        if self.offline:
            return 0
        if missing:
            self.set_tags({"hrnet.metrics_restored": f"{len(missing)} steps from history.json"})
            run = self._call("reading the run", lambda: self.client.get_run(self.run_id))
            if run is not None and "hrnet.metrics_incomplete" in run.data.tags:  # complete again
                self._call(
                    "clearing a tag", lambda: self.client.delete_tag(self.run_id, "hrnet.metrics_incomplete")
                )
        return len(missing)

    # -- logging ---------------------------------------------------------------------------

    @property
    def offline(self) -> bool:
        """A call failed: the server is gone for this run (metrics stay on disk)."""
        return self._offline_since is not None

    def _call(self, what: str, fn: Callable[[], _T], step: int | None = None) -> _T | None:
        """``fn()``; on failure, one warning and the run goes offline (``None``)."""
        if self.offline:
            return None
        try:
            return fn()
        except Exception as exc:  # MlflowException, requests / S3 errors: the server went away
            self._offline_since = step if step is not None else -1
            at = f" at step {step}" if step is not None else ""
            _warn(
                f"MLflow tracking server {redacted(self.uri)} failed{at} ({what}: {_short(exc)}). The work goes "
                f"on; the metrics are on disk ({self.run_dir / 'history.json'}, metrics.json) and "
                f"will not be in MLflow run {self.run_id} from here on."
            )
            self._stop_system_metrics(join=False)
            return None

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Numeric, finite values of ``metrics`` at ``step`` (others are skipped). Never
        raises: used as the training loop's ``log`` callback."""

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if _loggable(v)]
        if batch:
            self._call("logging metrics", lambda: self.client.log_batch(self.run_id, metrics=batch), step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params not logged yet; a param already logged with another value (params cannot
        change in MLflow) becomes a tag of the same name instead."""
        run = self._call("reading the run", lambda: self.client.get_run(self.run_id))
        if run is None:
            return
        logged = run.data.params
        values = {k: _param_value(v) for k, v in params.items()}
        new = [Param(k, v) for k, v in values.items() if k not in logged]
        changed = [RunTag(k, v) for k, v in values.items() if k in logged and logged[k] != v]
        if new or changed:
            self._call("logging params", lambda: self.client.log_batch(self.run_id, params=new, tags=changed))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """A file or a folder (its contents) under ``artifact_path``; missing paths are skipped."""
        path = Path(path)
        with _artifact_timeout():
            if path.is_dir():
                self._call(
                    f"uploading {path}",
                    lambda: self.client.log_artifacts(self.run_id, str(path), artifact_path),
                )
            elif path.is_file():
                self._call(
                    f"uploading {path}",
                    lambda: self.client.log_artifact(self.run_id, str(path), artifact_path),
                )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        batch = [RunTag(k, str(v)) for k, v in tags.items()]
        self._call("setting tags", lambda: self.client.log_batch(self.run_id, tags=batch))

    def log_training_outputs(self, run_dir: str | Path) -> None:
        """After training: ``model.pt`` under ``model/``, the config and loss history, and the
        model's MD5 (and DVC hash when ``dvc.lock`` records it) as tags. When the run went
        offline during training and the server answers again, these are uploaded all the same
        and the run is tagged ``hrnet.metrics_incomplete`` (the step metrics from the failure
        on are only in ``history.json``)."""
        run_dir = Path(run_dir)
        if self.offline and not self._back_online():
            return
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

    def log_evaluation(self, metrics: Mapping[str, Any], run_dir: str | Path, *, name: str = "eval") -> None:
        """After evaluation: the numbers as metrics (``eval/<key>``, nested keys with dots),
        the settings (``eval_settings``) and the strings as params (``eval.<key>``:
        ``eval.batch_size``, ``eval.num_plots``, ``eval.split``, ``eval.checkpoint``...), ``metrics.json``, ``predictions.json`` and
        ``plots/`` (prediction pictures, confusion matrix, training curves).

        ``name`` other than ``eval``: another evaluation of the run (another split or protocol,
        written to another folder), logged as ``<name>/<key>`` and ``<name>.<key>`` with its files
        under ``<name>/``, so the run's own numbers stay as they are."""
        run_dir = Path(run_dir)
        settings = metrics.get("eval_settings") or {}
        strings = {k: v for k, v in metrics.items() if isinstance(v, str | bool)}
        numbers = {k: v for k, v in metrics.items() if k != "eval_settings" and k not in strings}
        self.log_metrics({f"{name}/{k}": v for k, v in _flatten(numbers).items()})
        params = {**strings, **(_flatten_values(settings) if isinstance(settings, Mapping) else {})}
        self.log_params({f"{name}.{k}": v for k, v in params.items()})
        folder = None if name == "eval" else name
        self.log_artifact(run_dir / "metrics.json", folder)
        self.log_artifact(run_dir / "predictions.json", folder)
        self.log_artifact(run_dir / "plots", "plots" if folder is None else f"{folder}/plots")

    def ensure_model(self, run_dir: str | Path) -> None:
        """Upload ``model.pt`` under ``model/`` when the run does not hold it (the server was
        down when training ended)."""
        listed = self._call(
            "listing artifacts", lambda: self.client.list_artifacts(self.run_id, MODEL_ARTIFACT)
        )
        if listed is not None and not any(a.path.endswith("model.pt") for a in listed):
            self.log_artifact(Path(run_dir) / "model.pt", MODEL_ARTIFACT)

    def finish(self, status: str = "FINISHED") -> None:
        """Stop system metrics and mark the run ``FINISHED`` / ``FAILED`` / ``KILLED``. Never
        raises (it also runs while a failed training unwinds)."""
        self._stop_system_metrics(join=not self.offline)
        since = self._offline_since
        if self.offline and not self._back_online():
            self._record_pending(status, since)
            _warn(
                f"MLflow run {self.run_id} stays RUNNING on {redacted(self.uri)} (the server does not answer); "
                f"the outputs are in {self.run_dir}. Once the server answers, hrnet evaluate or register "
                f"on this folder marks the run {status} and logs the metrics it missed"
            )
        else:
            self._call("closing the run", lambda: self.client.set_terminated(self.run_id, status=status))
        self.close()

    def _record_pending(self, status: str, since: int | None) -> None:
        """Note in the run file how the training ended, for :meth:`attach` to tell the server."""
        path = self.run_dir / RUN_FILE
        try:
            record = (
                load_json(path)
                if path.is_file()
                else {"run_id": self.run_id, "tracking_uri": without_credentials(self.uri)}
            )
            record["pending"] = {
                "status": status,
                "from_step": since if since is not None and since >= 0 else None,
            }
            write_json_atomic(path, record, indent=2)
        except (OSError, HRNetError) as exc:  # never raises: it runs while a training unwinds
            _warn(f"{path}: cannot record the run's pending status ({exc})")

    def close(self) -> None:
        """Done with the run without changing its status (evaluate, register)."""
        self._limits.exit()

    def _back_online(self) -> bool:
        """Whether the server can be used: true unless a call failed and the server still
        does not answer. A server back after a failure gets the tag ``hrnet.metrics_incomplete``."""
        if not self.offline:
            return True
        if _server_problem(self.uri, timeout=2) is not None:
            return False
        since = self._offline_since
        self._offline_since = None
        self.set_tags({"hrnet.metrics_incomplete": f"from step {since}" if since and since >= 0 else "true"})
        # the steps the server missed are in history.json once this training has written it
        history = self.run_dir / "history.json"
        if history.is_file() and history.stat().st_mtime >= self._opened_at:
            self._restore_history(since if since is not None and since >= 0 else None)
        return not self.offline

    def _start_system_metrics(self, uri: str) -> None:
        try:
            import psutil  # noqa: F401  (the CPU monitor needs it)
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        except ImportError:
            return
        self._system = SystemMetricsMonitor(self.run_id, resume_logging=True, tracking_uri=uri)
        self._system.start()

    def _stop_system_metrics(self, *, join: bool) -> None:
        """Stop the system-metrics thread; without ``join`` only signal it (it may be waiting
        on a server that is gone; it is a daemon thread)."""
        system, self._system = self._system, None
        if system is None:
            return
        if join:
            with contextlib.suppress(Exception):
                system.finish()
        else:
            event = getattr(system, "_shutdown_event", None)
            if event is not None:
                event.set()


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
    alias: str = CHAMPION,
    tags: Mapping[str, str] | None = None,
    always: bool = False,
    also: Sequence[str] = (),
) -> dict[str, Any]:
    """Register the run's model as a version of ``name``; move ``@champion`` (or ``alias``) to
    it only when its ``metric`` (a key of ``run_dir/metrics.json``, dots for nested keys) beats
    the current holder's (``mode`` max or min), or with ``always`` in any case (``@published``:
    the latest verified published checkpoint); the aliases ``also`` move to it in any case
    (``@published_<source>``: each publisher's latest); ``tags`` go on the version. Writes and
    returns ``run_dir/registered.json``.

    Registering the same run again reuses its version. The model is uploaded first when the
    run lacks it (the server was down when training ended).
    """
    if mode not in ("max", "min"):
        raise HRNetError(f"register: --mode must be max or min, not {mode!r}")
    run_dir = Path(run_dir)
    value = _metric_value(run_dir, metric)
    tracker = Tracker.attach(run_dir, tracking_uri, offline_flag=None)
    try:
        status = tracker.client.get_run(tracker.run_id).info.status
        if status in ("FAILED", "KILLED"):  # its model.pt is not the one the run logged
            raise HRNetError(
                f"register: MLflow run {tracker.run_id} of {run_dir} is {status} (its last training did "
                "not finish); train again, then evaluate and register"
            )
        tracker.ensure_model(run_dir)
        if tracker.offline:
            raise HRNetError(f"register: MLflow tracking server {tracker.uri} failed (see the warning above)")
        return _register(
            tracker,
            run_dir,
            name=name,
            metric=metric,
            mode=mode,
            value=value,
            alias=alias,
            tags=tags or {},
            always=always,
            also=also,
        )
    except HRNetError:
        raise
    except Exception as exc:  # MlflowException / RestException / connection errors
        raise HRNetError(f"register: MLflow tracking server {tracker.uri}: {_short(exc)}") from None
    finally:
        tracker.close()


def _register(
    tracker: Tracker,
    run_dir: Path,
    *,
    name: str,
    metric: str,
    mode: str,
    value: float,
    alias: str,
    tags: Mapping[str, str],
    always: bool = False,
    also: Sequence[str] = (),
) -> dict[str, Any]:
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
    for key, tag in tags.items():
        client.set_model_version_tag(name, version.version, key, str(tag))

    champion_version, champion_value = _champion(client, name, metric, alias)
    better = champion_value is None or (value > champion_value if mode == "max" else value < champion_value)
    if better or always:
        client.set_registered_model_alias(name, alias, version.version)
    for other in also:
        client.set_registered_model_alias(name, other, version.version)
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
        "alias": alias,
        "also": list(also),
    }
    tracker.set_tags({"registered_model": f"{name}/{version.version}"})
    write_json_atomic(run_dir / "registered.json", record, indent=2)
    return record


def _champion(
    client: MlflowClient, name: str, metric: str, alias: str = CHAMPION
) -> tuple[str | None, float | None]:
    try:
        current = client.get_model_version_by_alias(name, alias)
    except Exception:  # no alias yet
        return None, None
    tag = current.tags.get(f"metric.{metric}")
    if tag is None:  # registered with another metric: fall back to the run's eval metric
        run_metrics = client.get_run(current.run_id).data.metrics
        found = run_metrics.get(f"eval/{metric}")
        return str(current.version), found
    return str(current.version), float(tag)


def log_onnx(
    run_dir: str | Path,
    onnx_file: str | Path,
    *,
    tracking_uri: str | None = None,
    registered_name: str | None = None,
) -> dict[str, Any]:
    """Log an exported ``onnx_file`` to the MLflow run of ``run_dir`` as a model in MLflow's
    ``onnx`` flavour (loadable with ``mlflow.onnx.load_model`` / ``mlflow.pyfunc.load_model``),
    and register it as a new version of ``registered_name`` when given. Returns
    ``{"model_uri", "registered"}``; ``registered`` is ``models:/name/version`` or ``None``.

    Raises:
        HRNetError: no run file, the server does not answer, or the upload fails.
    """
    import mlflow
    import onnx

    run_dir, onnx_file = Path(run_dir), Path(onnx_file)
    tracker = Tracker.attach(run_dir, tracking_uri, offline_flag=None)
    try:
        model = onnx.load(str(onnx_file))
        mlflow.set_tracking_uri(tracker.uri)
        with _artifact_timeout(), mlflow.start_run(run_id=tracker.run_id):
            info = mlflow.onnx.log_model(
                model,
                name=ONNX_ARTIFACT,
                registered_model_name=registered_name,
                metadata={p.key: p.value for p in model.metadata_props if p.key.startswith("hrnet.")},
                save_as_external_data=False,
            )
        registered = None
        if registered_name is not None and info.registered_model_version is not None:
            registered = f"models:/{registered_name}/{info.registered_model_version}"
        return {"model_uri": info.model_uri, "registered": registered}
    except HRNetError:
        raise
    except Exception as exc:  # MlflowException / RestException / connection errors
        raise HRNetError(f"export: MLflow tracking server {tracker.uri}: {_short(exc)}") from None
    finally:
        tracker.close()


def download_model(uri: str, dst: str | Path, tracking_uri: str | None = None) -> Path:
    """Download ``models:/name@alias``, ``models:/name/version`` or ``runs:/id/model`` into
    ``dst`` and return the path of its ``model.pt``, or of its ``model.onnx`` (a model logged by
    ``hrnet export --mlflow``, MLflow's onnx flavour).

    Raises:
        HRNetError: the server does not answer (checked first, in seconds), the download fails,
            or the artifacts hold neither file.
    """
    import mlflow

    tracking = resolve_tracking_uri(tracking_uri)
    check_server(tracking, offline_flag=None)
    mlflow.set_tracking_uri(tracking)
    limits = _HttpLimits()
    limits.enter()
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except Exception as exc:
        raise HRNetError(
            f"{uri}: cannot download the model from {redacted(str(tracking))}: {_short(exc)}"
        ) from None
    finally:
        limits.exit()
    if not local.is_dir():
        return local
    for name in ("model.pt", "model.onnx"):
        if (local / name).is_file():
            return local / name
    raise HRNetError(f"{uri}: neither model.pt nor model.onnx in the downloaded artifacts ({local})")


# --------------------------------------------------------------------------------------------
# Helpers: run file, metric lookup, lineage tags
# --------------------------------------------------------------------------------------------


def _short(exc: BaseException, limit: int = 300) -> str:
    """One line of an exception (MLflow's carry the whole retry history)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment ``name`` (created when missing), of the model training kind."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    if EXPERIMENT_KIND_TAG not in (exp.tags or {}):  # created before the tag was set
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


def _run_link(uri: str, tracker: Tracker) -> str:
    """`` (UI: <url>)`` for an http(s) server: the run in the model training view."""
    if urllib.parse.urlparse(uri).scheme not in ("http", "https"):
        return ""
    try:
        experiment_id = tracker.client.get_run(tracker.run_id).info.experiment_id
    except Exception:
        return ""
    base = redacted(uri).rstrip("/")
    return f" (UI: {base}/#/experiments/{experiment_id}/runs/{tracker.run_id}?workflowType=machine_learning)"


def read_run_file(run_dir: Path) -> dict[str, Any]:
    """The run folder's MLflow record (``mlflow_run.json``: run id, tracking URI, experiment)."""
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
    if not isinstance(record, dict) or record.get("tracking_uri") != without_credentials(uri):
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
    # how the evaluation ran (settings, timings, counts) is not a score to rank models by
    not_scores = ("eval_settings", "eval_seconds", "num_", "epoch", "step")
    if metric.startswith(not_scores):
        scores = ", ".join(k for k in _flatten(value) if not k.startswith(not_scores))
        raise HRNetError(f"{path}: {metric!r} is a setting or a count, not a score (scores: {scores})")
    for part in metric.split("."):
        if not isinstance(value, dict) or part not in value:
            keys = ", ".join(k for k, v in _flatten(load_json(path)).items() if not k.startswith(not_scores))
            raise HRNetError(f"{path}: no metric {metric!r} (scores: {keys})")
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


def _flatten_values(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of ``d`` (lists kept whole), nested keys joined with dots."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten_values(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
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


def _dvc_hash(path: str | Path) -> str | None:
    """The md5 ``./dvc.lock`` records for ``path`` (None where it has none)."""
    from hrnet.mlops.dvc_lock import dvc_lock_hashes

    return dvc_lock_hashes("dvc.lock").get(os.path.normpath(str(path))) if path else None


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
