"""The benchmark report: every row of the params files, published against ours.

For each row (embedded suite and paper tables) the report shows the published number, ours
(or "not run" / "not built" / "reference"), the difference, the row's other published numbers
(multi-scale + flip mIoU, 300W's subsets) beside ours, the parameter count and GFLOPs
(published, and counted by :mod:`hrnet.models.flops` on the meta device, cached), and links to
the row's MLflow run, its registered model version and its DVC-tracked checkpoint.

Conventions:
- ``runs/<id>/metrics.json`` stores accuracies, AP, mIoU and NME as fractions (0..1); the
  published tables use percent, so values of ``"%"`` metrics are multiplied by 100.
- GFLOPs are MACs / 2^30 for one image at the row's input size (the HRNet papers' unit).

Everything is written atomically: ``BENCHMARKS.md``, ``index.html``, ``plots/*.png`` and the
count cache ``flops_cache.json`` under the output folder. matplotlib and torch are imported only
when they are needed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrnet.data.io import load_json, write_bytes_atomic, write_json_atomic
from hrnet.errors import HRNetError
from hrnet.mlops.dvc_lock import dvc_lock_hashes
from hrnet.mlops.rows import BenchmarkRow, load_rows

__all__ = ["Entry", "build_entries", "count_model", "render_html", "render_markdown", "write_report"]

FLOPS_CACHE = "flops_cache.json"
STATUS_TEXT = {
    "not_run": "not run",
    "other_eval": "not run (metrics.json holds another evaluation)",
    "not_built": "not built",
    "reference": "reference",
    "run": "run",
}


@dataclass(frozen=True)
class Entry:
    """One line of the report."""

    row: BenchmarkRow
    state: str  # "run", "not_run", "other_eval", "not_built" or "reference"
    metric: str  # the compared metric
    unit: str
    published: float | None
    ours: float | None  # in the published unit
    published_params: float | None  # millions
    published_gflops: float | None
    params: float | None  # counted, millions
    gflops: float | None  # counted, MACs / 2^30
    mlflow: str  # link or run id ("" when none)
    registered: str  # models:/name/version (+ " @champion")
    checkpoint: str  # "runs/<id>/model.pt (md5 ...)" when DVC tracks it
    verified: tuple[dict[str, Any], ...] = ()  # verified.json records of its published checkpoints
    # the row's other published accuracy-type numbers: (metric, published, ours in the unit)
    others: tuple[tuple[str, float, float | None], ...] = ()

    @property
    def delta(self) -> float | None:
        """ours - published, in the published unit."""
        if self.ours is None or self.published is None:
            return None
        return self.ours - self.published


# --------------------------------------------------------------------------------------------
# Collecting the numbers
# --------------------------------------------------------------------------------------------


def _row_evaluation(metrics: dict[str, Any], row: BenchmarkRow) -> bool:
    """Whether ``metrics`` (a metrics.json) is of the row's evaluation: its split and its test
    protocol (the row's ``evaluate:`` entry, EvalConfig's defaults for the rest)."""
    from hrnet.engine.config import PROTOCOL_FIELDS, evaluation_of, protocol_fields

    theirs = evaluation_of(metrics)
    wanted = evaluation_of(
        {"split": row.split, "eval_settings": protocol_fields(row.evaluate, source=f"rows.{row.id}.evaluate")}
    )
    # a key metrics.json does not record (written by hand, or before it was recorded) is not checked
    return all(theirs[k] == wanted[k] for k in ("split", *PROTOCOL_FIELDS) if theirs[k] is not None)


def _metric(metrics: dict[str, Any], key: str) -> float | None:
    """``metrics[key]`` with dots for nested keys; None when absent or not a number."""
    value: Any = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _mlflow_link(run_dir: Path, mlflow_ui: str) -> str:
    path = run_dir / "mlflow_run.json"
    if not path.is_file():
        return ""
    record = load_json(path)
    run_id, experiment = record.get("run_id", ""), record.get("experiment_id", "")
    if mlflow_ui and run_id:
        return (
            f"{mlflow_ui.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}?workflowType=machine_learning"
        )
    return f"run {run_id}" if run_id else ""


def _registered(run_dir: Path) -> str:
    path = run_dir / "registered.json"
    if not path.is_file():
        return ""
    record = load_json(path)
    uri = record.get("uri", "")
    return f"{uri} @champion" if record.get("champion") else uri


def _published(row: BenchmarkRow, metric: str) -> float | None:
    entry = row.published_value(metric)
    return entry.value if entry is not None else None


def count_model(row: BenchmarkRow) -> dict[str, Any]:
    """Count the parameters and MACs of a runnable row's model at its input size, on the meta
    device (nothing is allocated). The row's task names the module and the input
    (:meth:`hrnet.tasks.Task.count_model`). Returns ``{"params", "macs"}``, without ``macs``
    where the task has no traceable input (detection), and ``{"error"}`` where counting failed."""
    import torch

    from hrnet.engine.config import config_from_mapping
    from hrnet.models.flops import count_flops, count_params
    from hrnet.tasks import get_task

    try:
        cfg = config_from_mapping(
            {**(row.train or {}), "task": row.task, "model": row.model}, source=f"rows.{row.id}"
        )
        with torch.device("meta"):
            model, input_size = get_task(cfg.task).count_model(cfg)
    except Exception as exc:  # a model that cannot be built: report it, do not fail the report
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    counts: dict[str, Any] = {"params": count_params(model)}
    if input_size is None:
        return counts
    try:  # the model is on the meta device, so is the input count_flops makes
        counts["macs"] = count_flops(model, input_size).macs
    except Exception as exc:
        counts["error"] = f"{type(exc).__name__}: {exc}"[:200]
    return counts


def _counting_code_version() -> str:
    """A digest of the code that builds and counts the models (every module the task registry
    and the FLOP counter import): a change to any of it invalidates the cached counts."""
    import hashlib

    from hrnet.mlops.pipeline import _module_file, import_closure

    digest = hashlib.sha256()
    for name in sorted(import_closure(["hrnet.tasks", "hrnet.models.flops"])):
        path = _module_file(name)
        if path is not None:
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _counts(rows: Iterable[BenchmarkRow], cache_path: Path) -> dict[str, dict[str, Any]]:
    """Counts per row id, from ``cache_path`` where the same model and size were counted before."""
    import torch

    cache: dict[str, Any] = load_json(cache_path) if cache_path.is_file() else {}
    counts, changed = {}, False
    version = _counting_code_version()
    for row in rows:
        cfg = row.train or {}
        key = (
            "|".join(
                str(v)
                for v in (
                    row.model,
                    row.task,
                    cfg.get("input_size"),
                    cfg.get("num_classes"),
                    cfg.get("num_keypoints"),
                    cfg.get("fpn_channels"),
                    cfg.get("representation_size"),
                    cfg.get("anchor_sizes"),
                )
            )
            + f"|torch {torch.__version__.split('+')[0]}|code {version}"
        )
        if key not in cache:
            cache[key] = count_model(row)
            changed = True
        counts[row.id] = cache[key]
    if changed:
        write_json_atomic(cache_path, cache, indent=1)
    return counts


def build_entries(
    params_files: Sequence[tuple[str | Path, str]],
    *,
    root: str | Path = ".",
    mlflow_ui: str = "",
    flops_cache: str | Path | None = None,
) -> list[Entry]:
    """The report lines of every row of ``params_files`` (``(path, suite)`` pairs).

    Args:
        params_files: params files and their suite names, in report order.
        root: the project root: ``runs/<id>/`` and each suite's ``dvc.lock`` are read there.
        mlflow_ui: base URL of the MLflow UI for run links ("" prints run ids).
        flops_cache: JSON cache of parameter/MAC counts; None skips counting.
    """
    root = Path(root)
    entries: list[Entry] = []
    for params_path, suite in params_files:
        params_path = Path(params_path)
        rows = load_rows(params_path, suite=suite)
        hashes = dvc_lock_hashes(params_path.with_name("dvc.lock"))
        ready = [r for r in rows if r.status == "ready"]
        counts = _counts(ready, Path(flops_cache)) if flops_cache is not None else {}
        for row in rows:
            run_dir = root / "runs" / row.id
            published = row.published_value() if row.status == "ready" else row.published[0]
            unit = published.unit if published is not None else ""
            ours = None
            others: list[tuple[str, float, float | None]] = []
            other_eval = False
            if row.status == "ready":
                metrics = load_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
                if not isinstance(metrics, dict):  # not a metrics.json of ours: no number
                    metrics = {}
                if metrics and not _row_evaluation(metrics, row):
                    other_eval, metrics = True, {}  # another split or protocol: not the row's number
                ours = _metric(metrics, row.metric)
                if ours is not None and unit == "%":
                    ours *= 100.0
                for p in row.published:  # e.g. mIoU_ms_flip, 300W's NME_common and NME_challenge
                    # the first published figure of each metric (as for the headline)
                    if p.unit == "%" and p.metric != row.metric and p.metric not in {o[0] for o in others}:
                        value = _metric(metrics, p.metric)
                        others.append((p.metric, p.value, None if value is None else value * 100.0))
            state = row.status if row.status != "ready" else ("run" if ours is not None else "not_run")
            if other_eval:
                state = "other_eval"
            count = counts.get(row.id, {})
            from hrnet.mlops.verify import verified_records

            verified = tuple(
                r
                for r in verified_records(run_dir)
                if r.get("metric") == row.metric and row.status == "ready"
            )
            model_path = f"runs/{row.id}/model.pt"
            md5 = hashes.get(model_path)
            entries.append(
                Entry(
                    row=row,
                    state=state,
                    metric=published.metric if published is not None else row.metric,
                    unit=unit,
                    published=published.value if published is not None else None,
                    ours=ours,
                    published_params=_published(row, "params"),
                    published_gflops=_published(row, "gflops"),
                    params=count["params"] / 1e6 if "params" in count else None,
                    gflops=count["macs"] / 2**30 if "macs" in count else None,
                    mlflow=_mlflow_link(run_dir, mlflow_ui),
                    registered=_registered(run_dir),
                    checkpoint=f"{model_path} (md5 {md5[:10]})" if md5 else "",
                    verified=verified,
                    others=tuple(others),
                )
            )
    return entries


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _verified(entry: Entry) -> str:
    """The published checkpoints evaluated here: value (delta, outcome; source)."""
    if not entry.verified:
        return "-"
    parts = []
    for r in entry.verified:
        if r.get("ours") is None:
            parts.append(f"{r.get('outcome', 'not run')} ({r.get('source', '')})")
        else:
            parts.append(f"{r['ours']:.2f} ({r['delta']:+.2f}, {r['outcome']}; {r.get('source', '')})")
    return "; ".join(parts)


def _ours(entry: Entry) -> str:
    return _num(entry.ours) if entry.ours is not None else STATUS_TEXT[entry.state]


def _others(entry: Entry) -> str:
    """``metric published / ours`` of the row's other published numbers ("-" when none)."""
    parts = [f"{metric} {_num(published)} / {_num(ours)}" for metric, published, ours in entry.others]
    return "; ".join(parts) or "-"


def _pair(published: float | None, counted: float | None) -> str:
    if published is None and counted is None:
        return "-"
    if counted is None:
        return _num(published)
    return f"{_num(published)} / {_num(counted)}"


def _sections(entries: Sequence[Entry]) -> list[tuple[str, list[Entry]]]:
    sections: dict[str, list[Entry]] = {}
    for entry in entries:
        title = entry.row.label if entry.row.status == "ready" else f"Listed only: {entry.row.task}"
        sections.setdefault(f"{entry.row.suite}: {title}", []).append(entry)
    return list(sections.items())


def render_markdown(entries: Sequence[Entry]) -> str:
    """BENCHMARKS.md: one table per benchmark table, then the rows listed for reference."""
    run = sum(e.state == "run" for e in entries)
    lines = [
        "# Benchmarks",
        "",
        f"{len(entries)} rows: {run} run, "
        f"{sum(e.state in ('not_run', 'other_eval') for e in entries)} not run yet, "
        f"{sum(e.state == 'not_built' for e in entries)} not built, "
        f"{sum(e.state == 'reference' for e in entries)} listed for reference. "
        "Written by `hrnet report`; published numbers from benchmarks/params.yaml and params.yaml "
        "(their `source`). Params and GFLOPs: published / counted here (MACs / 2^30).",
        "",
    ]
    for title, section in _sections(entries):
        lines += [f"## {title}", ""]
        if section[0].row.status == "ready":
            lines += [
                "| row | model | schedule | metric | published | verified (published checkpoint) | reproduced (trained here) | delta | also published / reproduced | params (M) | GFLOPs | MLflow | registered | checkpoint |",
                "|---|---|---|---|---:|---|---:|---:|---|---:|---:|---|---|---|",
            ]
            for e in section:
                lines.append(
                    f"| `{e.row.id}` | {e.row.model} | {e.row.schedule} | {e.metric} ({e.unit}) | "
                    f"{_num(e.published)} | {_verified(e)} | {_ours(e)} | {_num(e.delta, signed=True)} | "
                    f"{_others(e)} | {_pair(e.published_params, e.params)} | {_pair(e.published_gflops, e.gflops)} | "
                    f"{e.mlflow or '-'} | {e.registered or '-'} | {e.checkpoint or '-'} |"
                )
        else:
            lines += ["| row | result | metric | published | status | why |", "|---|---|---|---:|---|---|"]
            for e in section:
                lines.append(
                    f"| `{e.row.id}` | {e.row.label} | {e.metric} ({e.unit}) | {_num(e.published)} | "
                    f"{STATUS_TEXT[e.state]} | {e.row.reason} |"
                )
        lines.append("")
    return "\n".join(lines)


def render_html(entries: Sequence[Entry], plots: Sequence[str]) -> str:
    """index.html: the same tables with links, and the plots."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>HRNet zoo benchmarks</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}td.num{text-align:right}"
        ".better{color:#070}.worse{color:#a00}.muted{color:#888}</style></head><body>",
        "<h1>HRNet zoo benchmarks</h1>",
    ]
    for name in plots:
        parts.append(f"<img src='plots/{esc(name)}' style='max-width:100%'><br>")
    for title, section in _sections(entries):
        parts.append(f"<h2>{esc(title)}</h2><table>")
        if section[0].row.status == "ready":
            parts.append(
                "<tr><th>row</th><th>model</th><th>schedule</th><th>metric</th><th>published</th><th>verified</th><th>reproduced</th>"
                "<th>delta</th><th>also published / reproduced</th><th>params (M)</th><th>GFLOPs</th><th>MLflow</th><th>registered</th><th>checkpoint</th></tr>"
            )
            for e in section:
                good = e.delta is not None and (e.delta >= 0) == (e.row.mode == "max")
                cls = "" if e.delta is None else ("better" if good else "worse")
                link = (
                    f"<a href='{esc(e.mlflow)}'>run</a>"
                    if e.mlflow.startswith("http")
                    else esc(e.mlflow or "-")
                )
                parts.append(
                    f"<tr><td><code>{esc(e.row.id)}</code></td><td>{esc(e.row.model)}</td>"
                    f"<td>{esc(e.row.schedule)}</td><td>{esc(e.metric)} ({esc(e.unit)})</td>"
                    f"<td class=num>{_num(e.published)}</td><td>{esc(_verified(e))}</td>"
                    f"<td class='num{'' if e.ours is not None else ' muted'}'>"
                    f"{esc(_ours(e))}</td><td class='num {cls}'>{_num(e.delta, signed=True)}</td>"
                    f"<td>{esc(_others(e))}</td>"
                    f"<td class=num>{_pair(e.published_params, e.params)}</td>"
                    f"<td class=num>{_pair(e.published_gflops, e.gflops)}</td><td>{link}</td>"
                    f"<td>{esc(e.registered or '-')}</td><td>{esc(e.checkpoint or '-')}</td></tr>"
                )
        else:
            parts.append(
                "<tr><th>row</th><th>result</th><th>metric</th><th>published</th><th>status</th><th>why</th></tr>"
            )
            for e in section:
                parts.append(
                    f"<tr><td><code>{esc(e.row.id)}</code></td><td>{esc(e.row.label)}</td>"
                    f"<td>{esc(e.metric)} ({esc(e.unit)})</td><td class=num>{_num(e.published)}</td>"
                    f"<td class=muted>{STATUS_TEXT[e.state]}</td><td>{esc(e.row.reason)}</td></tr>"
                )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _plots(entries: Sequence[Entry], plot_dir: Path) -> list[str]:
    """Published vs ours for the rows that ran, and published metric vs GFLOPs per table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    ran = [e for e in entries if e.state == "run" and e.published is not None]
    if ran:
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(ran)), 3.5))
        xs = range(len(ran))
        ax.bar([x - 0.2 for x in xs], [e.published for e in ran], width=0.4, label="published / target")
        ax.bar([x + 0.2 for x in xs], [e.ours for e in ran], width=0.4, label="ours")
        ax.set_xticks(list(xs), [f"{e.row.id}\n{e.metric}" for e in ran], fontsize=8)
        ax.legend()
        ax.set_title("Rows run: published vs ours")
        names.append(_save(fig, plot_dir / "published_vs_ours.png"))
    tables: dict[str, list[Entry]] = {}
    for e in entries:
        if e.row.status == "ready" and e.published is not None and e.published_gflops is not None:
            tables.setdefault(e.row.label, []).append(e)
    for label, group in tables.items():
        if len(group) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.scatter([e.published_gflops for e in group], [e.published for e in group])
        for e in group:
            ax.annotate(e.row.id, (e.published_gflops, e.published), fontsize=6)
        ax.set_xlabel("GFLOPs (published)")
        ax.set_ylabel(f"{group[0].metric} ({group[0].unit})")
        ax.set_title(label)
        slug = "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")
        names.append(_save(fig, plot_dir / f"{slug}.png"))
    plt.close("all")
    return names


def _save(fig: Any, path: Path) -> str:
    import io

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path.name


def write_report(
    params_files: Sequence[tuple[str | Path, str]],
    out_dir: str | Path,
    *,
    root: str | Path = ".",
    mlflow_ui: str = "",
    count_flops: bool = True,
    plots: bool = True,
) -> list[Entry]:
    """Write ``BENCHMARKS.md``, ``index.html`` and ``plots/`` into ``out_dir``; return the entries.

    Raises:
        HRNetError: a params file is missing or malformed.
    """
    out_dir = Path(out_dir)
    if not params_files:
        raise HRNetError("report: no params file given")
    entries = build_entries(
        params_files,
        root=root,
        mlflow_ui=mlflow_ui,
        flops_cache=out_dir / FLOPS_CACHE if count_flops else None,
    )
    names = _plots(entries, out_dir / "plots") if plots else []
    write_bytes_atomic(out_dir / "BENCHMARKS.md", render_markdown(entries).encode("utf-8"))
    write_bytes_atomic(out_dir / "index.html", render_html(entries, names).encode("utf-8"))
    summary = [
        {"row": e.row.id, "suite": e.row.suite, "state": e.state, "metric": e.metric, "unit": e.unit,
         "published": e.published, "ours": e.ours, "delta": e.delta, "verified": list(e.verified),
         "others": [{"metric": m, "published": p, "ours": o} for m, p, o in e.others]}
        for e in entries
    ]  # fmt: skip
    write_json_atomic(out_dir / "summary.json", summary, indent=1)
    return entries
