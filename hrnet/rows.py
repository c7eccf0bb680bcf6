"""Benchmark rows as typed values, read from a params file (``params.yaml`` or
``benchmarks/params.yaml``).

A params file keeps each runnable row in two mappings keyed by the same row id: ``rows.<id>``
(the TrainConfig fields ``hrnet train`` reads) and ``benchmark.<id>`` (what the row measures and
the published numbers). ``reference.<id>`` lists published rows that cannot be run here, with a
``status`` (``not_built`` or ``reference``) and a ``reason``. This module joins them for the
report and the tests; training never reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrnet.errors import HRNetError

__all__ = ["STATUSES", "BenchmarkRow", "Published", "load_rows"]

# ready: the row runs in the DVC pipeline; the others are listed for comparison only
STATUSES = ("ready", "not_built", "reference")


@dataclass(frozen=True)
class Published:
    """One published number of a row."""

    metric: str  # the metrics.json key where the row measures it (top1, mIoU, bbox_mAP, AP, NME...)
    value: float
    unit: str  # "%", "M", "G", "GB", "fps" or "" (unitless)
    source: str  # "seed 000" .. "seed 004", "HRNET.md", or a recipe document


@dataclass(frozen=True)
class BenchmarkRow:
    """A benchmark row: a published result and, when ``status == "ready"``, the recipe that
    reproduces it (``train``, the TrainConfig fields)."""

    id: str
    suite: str  # "embedded" or "paper": which params file and dvc.yaml it belongs to
    status: str  # one of STATUSES
    task: str
    label: str  # human-readable name (table and setting)
    dataset: str  # dataset id of the fetch/generate and validate stages ("" for reference rows)
    split: str  # the split evaluate scores
    model: str
    schedule: str
    metric: str  # the metrics.json key compared with the published value (reference rows: the first)
    mode: str  # "max" when higher is better, "min" otherwise
    published: tuple[Published, ...]
    reason: str = ""  # why a row is not ready
    note: str = ""
    train: Mapping[str, Any] | None = None

    @property
    def starts_from_row(self) -> str | None:
        """The row whose trained model this row's weights start from (``pretrained:
        runs/<row>/model.pt``), which must run first; None for any other start."""
        parts = Path(str((self.train or {}).get("pretrained") or "")).parts
        if len(parts) == 3 and parts[0] == "runs" and parts[2] == "model.pt":
            return parts[1]
        return None

    def published_value(self, metric: str | None = None) -> Published | None:
        """The first published entry for ``metric`` (default: the row's compared metric)."""
        wanted = metric or self.metric
        return next((p for p in self.published if p.metric == wanted), None)


def _published(entries: Any, where: str) -> tuple[Published, ...]:
    if not isinstance(entries, list):
        raise HRNetError(f"{where}: 'published' must be a list of {{metric, value, unit, source}}")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(
                Published(
                    str(entry["metric"]), float(entry["value"]), str(entry["unit"]), str(entry["source"])
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HRNetError(
                f"{where}: published[{i}] is not {{metric, value, unit, source}} ({exc})"
            ) from None
    return tuple(out)


def _section(params: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    section = params.get(name) or {}
    if not isinstance(section, Mapping):
        raise HRNetError(f"{path}: '{name}' must be a mapping of row id -> fields")
    return section


def load_rows(path: str | Path, *, suite: str) -> list[BenchmarkRow]:
    """Read every row of a params file: the runnable ones first, then the reference ones.

    Raises:
        HRNetError: the file is missing or malformed, a ``benchmark`` row has no ``rows`` entry
            (or the reverse), or a field is missing; the message names the file and the row.
    """
    import yaml

    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise HRNetError(f"{path}: cannot read params file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise HRNetError(f"{path}: not valid YAML ({exc})") from None
    train, bench, ref = (_section(params, n, path) for n in ("rows", "benchmark", "reference"))
    if set(train) != set(bench):
        odd = sorted(set(train) ^ set(bench))
        raise HRNetError(
            f"{path}: rows and benchmark must list the same row ids; mismatched: {', '.join(odd)}"
        )

    rows: list[BenchmarkRow] = []
    for rid, meta in bench.items():
        where = f"{path}: benchmark.{rid}"
        try:
            rows.append(
                BenchmarkRow(
                    id=rid,
                    suite=suite,
                    status="ready",
                    task=meta["task"],
                    label=meta.get("table", rid),
                    dataset=meta["dataset"],
                    split=meta["split"],
                    model=meta["model"],
                    schedule=str(meta["schedule"]),
                    metric=meta["metric"],
                    mode=meta["mode"],
                    published=_published(meta["published"], where),
                    note=meta.get("note", ""),
                    train=dict(train[rid]),
                )
            )
        except (KeyError, TypeError) as exc:
            raise HRNetError(f"{where}: missing or bad field {exc}") from None
    for rid, meta in ref.items():
        where = f"{path}: reference.{rid}"
        if rid in bench:
            raise HRNetError(f"{where}: the id is also a runnable row")
        if meta.get("status") not in STATUSES[1:]:
            raise HRNetError(f"{where}: status must be one of {', '.join(STATUSES[1:])}")
        try:
            published = _published(meta["published"], where)
            rows.append(
                BenchmarkRow(
                    id=rid,
                    suite=suite,
                    status=meta["status"],
                    task=meta["task"],
                    label=meta["label"],
                    dataset="",
                    split="",
                    model=meta.get("model", ""),
                    schedule=str(meta.get("schedule", "")),
                    metric=published[0].metric if published else "",
                    mode="max",
                    published=published,
                    reason=meta["reason"],
                )
            )
        except (KeyError, TypeError) as exc:
            raise HRNetError(f"{where}: missing or bad field {exc}") from None
    return rows
