"""Verify a paper row from its published checkpoint: load it strictly, evaluate it with the row's
test protocol on the row's data, compare with the number its source published, and register it
in MLflow as a version of the row's model with the alias ``published``.

``hrnet verify --params benchmarks/params.yaml --row ROW --checkpoint NAME`` is what the
``verify@<row>`` stages of ``benchmarks/dvc.yaml`` run; the checkpoint file is the output of the
``checkpoint@<name>`` stage (``data/checkpoints/<name>/<file>``, fetched from the publisher with
its published checksum). The outcome is one of ``reproduced`` (within :data:`TOLERANCE` of the
published number), ``not reproduced`` (with the delta) or, when nothing could be evaluated,
the error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hrnet.errors import HRNetError
from hrnet.mlops.rows import BenchmarkRow, Suite, load_suite

__all__ = [
    "CHECKPOINT_DIR",
    "PUBLISHED",
    "TOLERANCE",
    "checkpoint_file",
    "published_alias",
    "row_checkpoints",
    "source_slug",
    "verify_row",
]

CHECKPOINT_DIR = "data/checkpoints"
PUBLISHED = "published"  # the registry alias of the versions made from published checkpoints
# how far our figure may be from the published one and still count as reproduced, per unit:
# 0.3 points of an accuracy / AP / mIoU / NME in percent (evaluation differences between
# codebases: resizing, padding, interpolation)
TOLERANCE = {"%": 0.3}
# published layouts that no converter maps onto the row's model yet: (layout, task) -> why.
# Their catalogue entries stay (hrnet fetch NAME works); they get no verify@ stage.
NOT_LOADABLE = {
    ("mmpose", "landmarks"): "mmpose's face models (HRNetV2 with its heatmap head) have no key converter yet",
}


def row_checkpoints(suite: Suite) -> dict[str, tuple[BenchmarkRow, Any]]:
    """``{verify item: (row, checkpoint)}`` for every ready row of ``suite`` with a catalogued
    checkpoint. The item is the row id, or ``<row>_<source>`` when several sources publish one
    for the row (mmpretrain and timm for the ImageNet rows)."""
    from hrnet.data.checkpoints import checkpoints_for_row

    out: dict[str, tuple[BenchmarkRow, Any]] = {}
    for row in suite.ready:
        found = [
            c
            for c in checkpoints_for_row(row.id)
            if c.model == row.model and (c.layout, row.task) not in NOT_LOADABLE
        ]
        sources = [c.source for c in found]
        for c in found:
            if len(found) == 1:
                key = row.id
            elif sources.count(c.source) == 1:
                key = f"{row.id}_{source_slug(c.source)}"
            else:  # one publisher with several checkpoints for the row (a re-trained release)
                key = f"{row.id}_{source_slug(c.name)}"
            out[key] = (row, c)
    return out


def published_alias(source: str) -> str:
    """The registry alias of a publisher's latest verified checkpoint of a row
    (``published_mmpretrain``, ``published_timm``); ``published`` is the latest of any."""
    return f"{PUBLISHED}_{source_slug(source)}"


def source_slug(text: str) -> str:
    """A publisher's name as it appears in a stage item or folder name (``mmpretrain``, ``timm``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


def checkpoint_file(name: str) -> Path:
    """Where the ``checkpoint@<name>`` stage puts the file (``hrnet fetch NAME --out data/checkpoints``)."""
    from hrnet.data.checkpoints import get_checkpoint

    return Path(CHECKPOINT_DIR) / name / get_checkpoint(name).filename


def file_identity(path: str | Path, published_sha256: str) -> dict[str, str]:
    """``{"file_sha256", "file_is_published"}`` of a weights file: its sha256 and whether it is
    the published file (``yes``/``no`` against the published sha256 or its file-name prefix,
    ``unknown`` when none is published)."""
    from hrnet.data.fetch import file_digest

    actual = file_digest(Path(path))
    if not published_sha256:
        same = "unknown"
    else:
        same = "yes" if actual.startswith(published_sha256.lower()) else "no"
    return {"file_sha256": actual, "file_is_published": same}


def _compare(published: float, ours: float | None, unit: str) -> dict[str, Any]:
    tol = TOLERANCE.get(unit, 0.0)
    if ours is None:
        return {"outcome": "not run", "delta": None, "tolerance": tol}
    delta = ours - published
    outcome = "reproduced" if abs(delta) <= tol + 1e-9 else "not reproduced"
    return {"outcome": outcome, "delta": round(delta, 4), "tolerance": tol}


def verify_row(
    params: str | Path | None,
    row_id: str,
    checkpoint: str,
    *,
    out: str | Path | None = None,
    weights: str | Path | None = None,
    tracking_uri: str | None = None,
    mlflow: bool = True,
) -> dict[str, Any]:
    """Verify ``row_id`` of ``params`` from the catalogued ``checkpoint``; returns the record
    written to ``<out>/verified.json`` (default out: ``runs/<row>/verify-<checkpoint name>``)."""
    from hrnet.data.checkpoints import get_checkpoint
    from hrnet.engine.config import EvalConfig, config_from_mapping, protocol_fields
    from hrnet.engine.evaluate import evaluate_run
    from hrnet.engine.published import import_weights
    from hrnet.mlops.rows import train_settings

    if params is None:
        from hrnet.mlops.rows import PAPER_PARAMS

        params = PAPER_PARAMS
    suite = load_suite(params)
    row = suite.row(row_id)
    entry = get_checkpoint(checkpoint)
    if entry.row != row.id or entry.model != row.model:
        raise HRNetError(
            f"checkpoint {checkpoint!r} is published for row {entry.row!r} ({entry.model}), not {row.id}"
        )
    out = Path(out) if out is not None else Path("runs") / row.id / f"verify-{source_slug(entry.name)}"
    weights = Path(weights) if weights is not None else checkpoint_file(checkpoint)
    values, launch = train_settings(params, row_id)
    cfg = config_from_mapping(values, source=f"{params} rows.{row_id}.train")
    provenance = {
        "name": entry.name,
        "source": entry.source,
        "url": entry.url,
        "sha256": entry.sha256,
        "config": entry.config,
        "layout": entry.layout,
    }
    # the bytes evaluated: a --weights file (a mirror's copy, one's own conversion) is recorded as
    # itself, and whether it is the published file is checked, not assumed
    provenance |= {"file": str(weights), **file_identity(weights, entry.sha256)}
    if provenance["file_is_published"] == "no":
        print(
            f"warning: {weights} is not the published file of {entry.name} (sha256 {provenance['file_sha256']}, "
            f"published {entry.sha256}); the record says so"
        )
    import_weights(cfg, weights, out, provenance=provenance)
    protocol = dict(row.evaluate)
    ecfg = EvalConfig(
        split=row.split,
        batch_size=launch.eval_batch_size,
        workers=launch.workers,
        device=launch.device,
        **protocol_fields(protocol, source=f"{params} rows.{row.id}.evaluate"),
        progress=launch.progress,
    )
    # a row scored on another dataset: its evaluate.dataset's root and format (rows.py)
    # the folder is this checkpoint's verification: a row whose protocol changed is verified anew
    metrics = evaluate_run(
        out, ecfg, out_dir=out, data=protocol.get("data"), dataset=protocol.get("dataset"), replace=True
    )
    raw = metrics.get(entry.metric)
    unit = next((p.unit for p in row.published if p.metric == entry.metric), "%")
    ours = float(raw) * (100.0 if unit == "%" else 1.0) if isinstance(raw, int | float) else None
    record: dict[str, Any] = {
        "row": row.id,
        "checkpoint": entry.name,
        "source": entry.source,
        "url": entry.url,
        "sha256": entry.sha256,  # the published checksum (or its file-name prefix)
        "file": provenance["file"],  # the bytes evaluated, and whether they are the published ones
        "file_sha256": provenance["file_sha256"],
        "file_is_published": provenance["file_is_published"],
        "metric": entry.metric,
        "unit": unit,
        "published": entry.value,
        "ours": None if ours is None else round(ours, 4),
        **_compare(entry.value, ours, unit),
        "registered": "",
    }
    if mlflow:
        record["registered"] = _register(
            suite, row, out, cfg, record, provenance, tracking_uri, launch.experiment
        )
    from hrnet.data.io import write_json_atomic

    write_json_atomic(out / "verified.json", record, indent=2)
    return record


def _register(
    suite: Suite,
    row: BenchmarkRow,
    out: Path,
    cfg: Any,
    record: dict[str, Any],
    provenance: dict[str, str],
    tracking_uri: str | None,
    experiment: str,
) -> str:
    """An MLflow run for the verification, and a registered version with the ``published`` alias."""
    from hrnet.mlops.tracking import Tracker, register

    tracker = Tracker.start(
        out,
        params=cfg.to_dict(),
        row=f"{row.id} (published {record['source']})",
        tracking_uri=tracking_uri,
        experiment=experiment,
        data=cfg.data,
    )
    try:
        tracker.set_tags({f"published.{k}": str(v) for k, v in provenance.items()})
        tracker.set_tags({"verify.outcome": record["outcome"], "verify.delta": str(record["delta"])})
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        tracker.log_evaluation(metrics, out)
        tracker.log_artifact(out / "model.pt", "model")
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish("FINISHED")
    result = register(
        out,
        name=suite.registered_name(row),
        metric=row.metric,
        mode=row.mode,
        tracking_uri=tracking_uri,
        alias=PUBLISHED,
        tags={f"published.{k}": str(v) for k, v in provenance.items()},
        always=True,
        also=(published_alias(record["source"]),),
    )
    return str(result.get("uri", ""))


def verified_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """The ``verified.json`` records under a row's run folder (one per source)."""
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(Path(run_dir).glob("verify-*/verified.json"))
        if p.is_file()
    ]
