"""The smoke mode of the paper suite: every runnable paper row's whole chain on tiny data.

``hrnet smoke [ROW ...]`` (``make smoke-paper ROWS="..."``) runs, for each row, the stages of
``benchmarks/dvc.yaml`` as a GPU user would run them -- ``fetch@`` -> ``weights@`` ->
``validate@`` -> ``train@`` -> ``evaluate@`` -> ``register@``, then the report -- in a throw-away
copy of the project where only sizes and step counts shrink:

- every dataset is a tiny set in its published packaging (the archives the fetch catalogue
  names, :mod:`hrnet.data.smoke`), served from a loopback HTTP server (one dataset from a moto
  S3 server) and fetched by the row's own ``fetch@`` stage with the mirror's checksums;
- the ImageNet-pretrained weights are files in the published layout, fetched by ``weights@``;
- each row trains its own model (same task, architecture, dataset format) for a few steps at
  a small input size, evaluates with its own protocol (multi-scale + flip where published),
  and registers in MLflow under its own name.

Writes ``<out>/summary.json``: ``{row: {"status", "metrics", "registered", "seconds"}}`` and the
report of the smoke runs under ``<out>/report``. Exit status 0 only when every row registered.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrnet.errors import HRNetError
from hrnet.mlops.rows import PAPER_PARAMS, Suite, load_suite

__all__ = ["SHRINK", "SmokeResult", "run_smoke", "smoke_params"]

PAPER = PAPER_PARAMS
S3_DATASET = "cofw"  # the dataset served from the moto S3 server (the others over HTTP)
S3_BUCKET = "smoke-mirror"
# per task: the input size (height, width) the smoke run trains and evaluates at
SMOKE_INPUT = {
    "classification": (64, 64),
    "segmentation": None,  # the row's crop / 8 (keeps its aspect)
    "detection": (128, 192),
    "pose": None,  # the row's input / 4 (64x48 and 96x72)
    "landmarks": (64, 64),
    "dichotomous_image_segmentation": (64, 64),
    "thermal_image_segmentation": (48, 64),
}
# what every smoke row changes in its recipe: the step count and what follows from it
SHRINK: dict[str, Any] = {
    "iters": 2,
    "batch_size": 2,
    "accum_steps": 1,
    "warmup_iters": 0,
    # random heads on the smoke weights give losses of 1e3-1e4: a row without clipping
    # (BDD100K's Mask R-CNN at lr 0.02) would diverge in its first step; 35 as the detectors clip
    "clip_grad": 35.0,
    "checkpoint_every": 0,
    "log_every": 1,
    "amp": "none",
    "sync_bn": False,
}
DETECTION_SHRINK = {
    "rpn_post_nms_top_n_train": 200,
    "rpn_post_nms_top_n_test": 100,
    "box_batch_size_per_image": 64,
}


@dataclass
class SmokeResult:
    row: str
    status: str  # "registered", "failed" or "not run"
    seconds: float
    metrics: dict[str, Any]
    registered: str
    log: str = ""


SMOKE_MARK = ".hrnet-smoke"  # in the project copy of --work: the next smoke may replace it


def _input_size(task: str, size: Sequence[int]) -> list[int]:
    fixed = SMOKE_INPUT.get(task)
    if fixed is not None:
        return list(fixed)
    factor = 8 if task == "segmentation" else 4
    return [max(32, int(s) // factor) for s in size]


def smoke_params(
    paper: dict[str, Any], suite: Suite, rows: Sequence[str], mirror: dict[str, str]
) -> dict[str, Any]:
    """The paper params file with only sizes, step counts and sources changed.

    Args:
        paper: the parsed ``benchmarks/params.yaml`` (anchors resolved).
        suite: the same file as a :class:`Suite`.
        rows: the row ids to keep (the others are left out of the smoke file).
        mirror: ``{dataset id or "weights": source prefix}``; checksum files are named
            ``<prefix>.checksums.json`` by :func:`run_smoke`.
    """
    params = json.loads(json.dumps(paper))  # a deep copy of plain data
    wanted = {d for r in rows for d in (suite.row(r).dataset, suite.row(r).scored_on)}
    params["datasets"] = {k: v for k, v in params["datasets"].items() if k in wanted}
    for did, entry in params["datasets"].items():
        entry["source"] = mirror[did]
        entry["checksums"] = mirror[f"{did}.checksums"]
    params["mirrors"] = {"weights": {"source": mirror["weights"], "checksums": mirror["weights.checksums"]}}
    params["launch"] = {
        **params.get("launch", {}),
        "device": "cpu",
        "workers": 0,
        "nproc_per_node": 1,
        "nnodes": 1,
        "progress": False,
        "resume": False,
        "experiment": "hrnet-zoo-smoke",
        "eval_batch_size": 8,
    }
    kept = {}
    for rid in rows:
        row = dict(params["rows"][rid])
        train = dict(row["train"])
        train.update(SHRINK)
        train["input_size"] = _input_size(train["task"], train.get("input_size", (224, 224)))
        if train["task"] == "detection":
            from hrnet.tasks.detection import accepted_knobs

            accepted = accepted_knobs(train["model"])  # one-stage detectors have no RPN / RoIs
            train.update({k: v for k, v in DETECTION_SHRINK.items() if accepted is None or k in accepted})
        row["train"] = train
        if train["task"] == "segmentation":
            # the format the evaluation reads (the resolved evaluate.dataset, else the training one)
            scored = suite.row(rid).evaluate.get("dataset") or train["dataset"]
            row["evaluate"] = _smoke_test_protocol(scored, dict(row.get("evaluate") or {}))
        kept[rid] = row
    params["rows"] = kept
    return params


def _smoke_test_protocol(dataset: str, protocol: dict[str, Any]) -> dict[str, Any]:
    """A segmentation row's test protocol at the smoke size: its test scale (its own, else the
    dataset's) and sliding windows shrink as its crop does (by 8)."""
    from hrnet.data.segmentation import TEST_SCALES

    scale = protocol.get("test_scale") or TEST_SCALES.get(dataset)
    if scale:
        protocol["test_scale"] = _input_size("segmentation", scale)
    for key in ("slide_crop", "slide_stride"):
        if protocol.get(key):
            protocol[key] = _input_size("segmentation", protocol[key])
    return protocol


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _http_server(folder: Path) -> Iterator[str]:
    """A static file server of ``folder`` on 127.0.0.1; yields its base URL."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # no request log on stderr
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _s3_server(folder: Path, prefix: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A moto S3 server on 127.0.0.1 holding ``folder``'s files under ``s3://smoke-mirror/<prefix>/``;
    yields the source prefix and the environment the fetcher needs to reach it."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "smoke",
            "AWS_SECRET_ACCESS_KEY": "smoke",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="smoke",
            aws_secret_access_key="smoke",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=S3_BUCKET)
        for path in sorted(folder.iterdir()):
            if path.is_file():
                client.upload_file(str(path), S3_BUCKET, f"{prefix}/{path.name}")
        yield f"s3://{S3_BUCKET}/{prefix}/", env
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def _copy_project(root: Path, dst: Path) -> None:
    """The project's files (tracked and untracked, not ignored) in a fresh git + DVC repository."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = root / name
        if src.is_file() and not name.startswith((".dvc/tmp", "data/", "runs/", "reports/")):
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=smoke", "-c", "user.email=smoke@localhost", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _write_mirror(rows: Sequence[str], suite: Suite, folder: Path) -> dict[str, Path]:
    """The tiny datasets and weights of ``rows``, one folder per dataset id (all the files its
    catalogue names download) and one ``weights`` folder; returns each folder's checksum file."""
    from hrnet.data import smoke as smoke_data

    datasets = {suite.datasets[d] for r in rows for d in (suite.row(r).dataset, suite.row(r).scored_on)}
    names = sorted({n for d in datasets for n in d.fetch})
    written = smoke_data.write_smoke_mirror(names, folder / "catalogue")
    checksum_files: dict[str, Path] = {}
    for d in datasets:
        target = folder / d.id
        target.mkdir(parents=True, exist_ok=True)
        sums: dict[str, str] = {}
        for name in d.fetch:
            for filename, digest in written[name].items():
                shutil.copy2(folder / "catalogue" / name / filename, target / filename)
                sums[filename] = digest
        checksum_files[d.id] = folder / f"{d.id}.checksums.json"
        checksum_files[d.id].write_text(json.dumps(sums, indent=1, sort_keys=True))
    weights = sorted({suite.row(r).init.name for r in rows if suite.row(r).init.kind == "weights"})
    target = folder / "weights"
    target.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, files in smoke_data.write_smoke_weights(weights, folder / "catalogue-weights").items():
        for filename, digest in files.items():  # one flat folder: the mirror prefix + file name
            shutil.move(folder / "catalogue-weights" / name / filename, target / filename)
            sums[filename] = digest
    checksum_files["weights"] = folder / "weights.checksums.json"
    checksum_files["weights"].write_text(json.dumps(sums, indent=1, sort_keys=True))
    return checksum_files


# the catalogue's layout names -> hrnet.models.export_state_dict's, and the container each
# source saves its file in
EXPORT_LAYOUT = {
    "official": "official",
    "timm": "timm",
    "mmpretrain": "mmpretrain",
    "mmseg": "mmseg",
    "mmdet": "mmdet",
    "mmpose": "mmpose",
    "pose_repo": "hrnet_pose",
    "landmark_repo": "hrnet_face",
    "seg_repo": "hrnet_seg",
}
OPENMMLAB = ("mmpretrain", "mmseg", "mmdet", "mmpose")


def write_published_fixture(train: dict[str, Any], layout: str, path: Path, *, seed: int = 0) -> str:
    """A checkpoint file in a publisher's exact layout and container, holding a randomly
    initialised model of the recipe ``train`` (the architecture the row verifies); returns its
    sha256. OpenMMLab's files are ``{"meta", "state_dict"}``; timm's, HRNet-Image-Classification's,
    deep-high-resolution-net.pytorch's ``final_state.pth`` and HRNet-Facial-Landmark-Detection's
    release files are plain state dicts; HRNet-Semantic-Segmentation's keep its ``FullModel``
    (``model.*`` and the loss's class weights)."""
    import hashlib

    import torch

    from hrnet.engine.config import config_from_mapping
    from hrnet.models import export_state_dict
    from hrnet.tasks import get_task

    cfg = config_from_mapping({**train, "pretrained": "", "init_from": ""}, source="smoke fixture")
    torch.manual_seed(seed)
    model, _ = get_task(cfg.task).count_model(cfg)
    state = {
        k: v.detach().clone().contiguous() for k, v in export_state_dict(model, EXPORT_LAYOUT[layout]).items()
    }
    if layout in OPENMMLAB:
        container: Any = {"meta": {"note": "hrnet-zoo smoke fixture"}, "state_dict": state}
    elif layout == "seg_repo":
        container = {f"model.{k}": v for k, v in state.items()}
        container["loss.criterion.weight"] = torch.ones(max(1, cfg.num_classes))
    else:
        container = state
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(container, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _repro(project: Path, target: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    full = {**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(Path(bin_dir) / "dvc"), "repro", target], cwd=project, env=full, capture_output=True, text=True
    )


def run_smoke(
    rows: Sequence[str] | None = None,
    *,
    root: str | Path = ".",
    work: str | Path | None = None,
    out: str | Path = "reports/smoke",
    tracking_uri: str | None = None,
    progress: bool = True,
    verify: Sequence[str] | None = (),
) -> dict[str, SmokeResult]:
    """Run the smoke chain of ``rows`` (default: every runnable paper row); see the module doc.

    Args:
        verify: ``verify@`` items to run as well (:func:`hrnet.mlops.verify.row_checkpoints`;
            None: those of ``rows``): each from a checkpoint file written in its publisher's
            layout and container, fetched by ``checkpoint@`` from the mirror with its checksum.
        root: the project checkout.
        work: where the throw-away project copy and the mirror go (default: a temp folder,
            removed afterwards).
        out: where ``summary.json`` and the report go.
        tracking_uri: the MLflow tracking URI (default: a SQLite file in the copy).
    """
    import tempfile

    import yaml

    root, out = Path(root).resolve(), Path(out).resolve()
    suite = load_suite(root / PAPER)
    rows = list(rows) if rows is not None else [r.id for r in suite.ready]
    for rid in rows:
        suite.row(rid)  # unknown or not runnable: HRNetError naming the file and the rows
    # rows whose weights start from another row bring that row (and its own upstream) along first
    ordered: list[str] = []

    def add(rid: str) -> None:
        upstream = suite.row(rid).starts_from_row
        if upstream:
            add(upstream)
        if rid not in ordered:
            ordered.append(rid)

    for rid in rows:
        add(rid)

    from hrnet.mlops.verify import row_checkpoints

    catalogued = row_checkpoints(suite)
    if verify is None:
        verify = [k for k, (r, _) in catalogued.items() if r.id in ordered]
    unknown = sorted(set(verify) - set(catalogued))
    if unknown:
        raise HRNetError(f"smoke: no verify@ item {', '.join(unknown)} (rows with catalogued checkpoints)")
    in_params = ordered + [catalogued[k][0].id for k in verify if catalogued[k][0].id not in ordered]

    tmp = tempfile.TemporaryDirectory(prefix="hrnet-smoke-") if work is None else None
    base = Path(tmp.name if tmp is not None else work).resolve()
    try:
        project, mirror_dir = base / "project", base / "mirror"
        if project.exists():  # an earlier smoke's copy is replaced; anything else is not touched
            if not (project / SMOKE_MARK).is_file():
                raise HRNetError(
                    f"smoke --work {work}: {project} exists and is not a copy an earlier smoke made"
                )
            shutil.rmtree(project)
        project.mkdir(parents=True)
        (project / SMOKE_MARK).write_text("made by hrnet smoke; replaced by the next one\n")
        mirror_dir.mkdir(parents=True, exist_ok=True)
        _copy_project(root, project)
        checksums = _write_mirror(in_params, suite, mirror_dir)
        s3_datasets = [d for d in {suite.row(r).dataset for r in in_params} if d == S3_DATASET]
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(_http_server(mirror_dir))
            env: dict[str, str] = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
            sources = {d: f"{url}/{d}/" for d in checksums}
            for d in s3_datasets:
                source, s3_env = stack.enter_context(_s3_server(mirror_dir / d, d))
                sources[d] = source
                env.update(s3_env)
            mirror = {**sources, **{f"{k}.checksums": str(v) for k, v in checksums.items()}}
            paper = yaml.safe_load((root / PAPER).read_text(encoding="utf-8"))
            params = smoke_params(paper, suite, in_params, mirror)
            if verify:  # the published checkpoints, in their publishers' layouts, on the mirror
                sums = {}
                for key in verify:
                    row, entry = catalogued[key]
                    path = mirror_dir / "checkpoints" / entry.filename
                    sums[entry.filename] = write_published_fixture(
                        params["rows"][row.id]["train"], entry.layout, path
                    )
                (mirror_dir / "checkpoints.checksums.json").write_text(
                    json.dumps(sums, indent=1, sort_keys=True)
                )
                params["mirrors"]["checkpoints"] = {
                    "source": f"{url}/checkpoints/",
                    "checksums": str(mirror_dir / "checkpoints.checksums.json"),
                }
            header = "# The paper rows in smoke mode (hrnet.mlops.smoke): tiny data, a few steps.\n"
            (project / PAPER).write_text(header + yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
            from hrnet.mlops.pipeline import sync

            sync(project)
            # outputs hard-linked to the DVC cache (one copy on disk, not two)
            subprocess.run(
                [str(Path(sys.executable).parent / "dvc"), "config", "cache.type", "hardlink,copy"],
                cwd=project,
                check=True,
                capture_output=True,
            )
            _git(project, "init", "-q")
            _git(project, "add", "-A")
            _git(project, "commit", "-qm", "smoke")
            env["MLFLOW_TRACKING_URI"] = tracking_uri or f"sqlite:///{project / 'mlflow.db'}"
            results = _run_rows(project, ordered, env, progress=progress)
            results |= _run_verify(project, list(verify), env, progress=progress)
        _report(project, out, env)
        summary = {
            r.row: {
                "status": r.status,
                "metrics": r.metrics,
                "registered": r.registered,
                "seconds": r.seconds,
            }
            for r in results.values()
        }
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        for r in results.values():
            if r.status != "registered":
                (out / f"{r.row}.log").write_text(r.log, encoding="utf-8")
        return results
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run_verify(
    project: Path, keys: Sequence[str], env: dict[str, str], *, progress: bool
) -> dict[str, SmokeResult]:
    """``verify@<key>`` for each key; the result's metrics are its verified.json record."""
    results: dict[str, SmokeResult] = {}
    dvcfile = PAPER.replace("params.yaml", "dvc.yaml")
    for i, key in enumerate(keys, 1):
        started = time.perf_counter()
        proc = _repro(project, f"{dvcfile}:verify@{key}", env)
        seconds = round(time.perf_counter() - started, 1)
        import yaml

        stage = yaml.safe_load((project / dvcfile).read_text())["stages"]["verify"]["foreach"][key]
        record_path = project / stage["out"] / "verified.json"
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        _free_weights(project, project / stage["out"])
        ok = proc.returncode == 0 and bool(record.get("registered"))
        results[f"verify@{key}"] = SmokeResult(
            f"verify@{key}", "registered" if ok else "failed", seconds, record, record.get("registered", ""),
            log=proc.stdout + proc.stderr,
        )  # fmt: skip
        if progress:
            state = (
                f"{record.get('outcome')} ({record.get('metric')} {record.get('ours')}), registered {record.get('registered')} @published"
                if ok
                else f"FAILED (exit {proc.returncode})"
            )
            print(f"[verify {i}/{len(keys)}] {key}: {state} in {seconds:.0f} s", flush=True)
    return results


def _free_weights(project: Path, run_dir: Path) -> None:
    """Delete a finished smoke row's weight files (model, checkpoint, their DVC cache inodes and
    the MLflow artifact copies): a full paper suite would otherwise keep ~50 GB of random weights.
    Its metrics, registry entry and report line stay."""
    doomed = {p.stat().st_ino for p in run_dir.rglob("*.pt") if p.is_file()}
    if not doomed:
        return
    cache = project / ".dvc" / "cache"
    for path in [*run_dir.rglob("*.pt"), *(cache.rglob("*") if cache.is_dir() else [])]:
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_ino in doomed:
                path.unlink()
    for artifacts in ("mlartifacts", "mlruns"):  # the model.pt each run logs to MLflow
        for path in (project / artifacts).rglob("*.pt") if (project / artifacts).is_dir() else []:
            with contextlib.suppress(OSError):
                path.unlink()


def _run_rows(
    project: Path, rows: Sequence[str], env: dict[str, str], *, progress: bool
) -> dict[str, SmokeResult]:
    results: dict[str, SmokeResult] = {}
    for i, rid in enumerate(rows, 1):
        started = time.perf_counter()
        proc = _repro(project, f"{PAPER.replace('params.yaml', 'dvc.yaml')}:register@{rid}", env)
        seconds = round(time.perf_counter() - started, 1)
        run_dir = project / "runs" / rid
        registered = run_dir / "registered.json"
        metrics: dict[str, Any] = {}
        if (run_dir / "metrics.json").is_file():
            raw = json.loads((run_dir / "metrics.json").read_text())
            metrics = {k: v for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        ok = proc.returncode == 0 and registered.is_file()
        uri = json.loads(registered.read_text()).get("uri", "") if registered.is_file() else ""
        _free_weights(project, run_dir)
        results[rid] = SmokeResult(
            rid, "registered" if ok else "failed", seconds, metrics, uri, log=proc.stdout + proc.stderr
        )
        if progress:
            state = f"registered {uri}" if ok else f"FAILED (exit {proc.returncode})"
            print(f"[{i}/{len(rows)}] {rid}: {state} in {seconds:.0f} s", flush=True)
    return results


def _report(project: Path, out: Path, env: dict[str, str]) -> None:
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "hrnet"), "report", "--out-dir", str(out / "report"), "--params", PAPER, "--no-flops"],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def main_summary(results: dict[str, SmokeResult]) -> int:
    failed = [r.row for r in results.values() if r.status != "registered"]
    total = sum(r.seconds for r in results.values())
    slowest = sorted(results.values(), key=lambda r: -r.seconds)[:3]
    print(
        f"smoke: {len(results) - len(failed)}/{len(results)} rows registered in {total:.0f} s; slowest: "
        + ", ".join(f"{r.row} {r.seconds:.0f} s" for r in slowest)
    )
    if failed:
        raise HRNetError(f"smoke: rows not registered: {', '.join(failed)} (logs next to summary.json)")
    return 0
