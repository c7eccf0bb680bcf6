"""The shared Great Expectations runner: tables of records, checks, results, summary and Data Docs.

A format's builder (one per format, in the family modules of this package) turns a dataset into
:class:`Tables`: pandas tables of records (one row per image, annotation or mask label), each
row naming its ``file`` and ``record``, with the :class:`Check` list to run on each, plus the
:class:`Failure` records found while building them (what cannot be a row: a malformed JSON file,
a record missing a key, a ``.pts`` that does not parse). :func:`validate_dataset` runs one
Great Expectations suite per table in an ephemeral context and turns every unexpected row into
a :class:`Failure` (file, record, reason).

Only the standard library is imported at module level: ``hrnet validate --help`` reads
:data:`FORMATS` from here, and ``great_expectations`` (6-7 s to import), pandas and the readers
are imported when a validation runs.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hrnet.errors import HRNetError

__all__ = [
    "BOX_TOLERANCE",
    "FORMATS",
    "Check",
    "ExpectationOutcome",
    "Failure",
    "Table",
    "Tables",
    "ValidationReport",
    "validate_dataset",
]

# a box or landmark may overhang the image border by this many pixels (float rounding in
# real annotation files) before it counts as outside the image
BOX_TOLERANCE = 1.0

# format -> "module:function" of its builder under hrnet.data.validation, called as
# builder(root, split, options) -> Tables (imported when the format is validated)
FORMATS: dict[str, str] = {
    "imagefolder": "imagefolder:imagefolder",
    "coco_instances": "coco:coco_instances",
    "coco_keypoints": "coco:coco_keypoints",
    "coco_stuff": "coco:coco_stuff",
    "mask_segmentation": "segmentation:mask_segmentation",
    "cityscapes": "segmentation:cityscapes",
    "ade20k": "segmentation:ade20k",
    "voc": "segmentation:voc",
    "pascal_context": "segmentation:pascal_context",
    "landmarks_300w": "landmarks:landmarks_300w",
    "landmarks_wflw": "landmarks:landmarks_wflw",
    "landmarks_cofw": "landmarks:landmarks_cofw",
    "acdc": "driving:acdc",
    "dada_seg": "driving:dada_seg",
    "synpass": "driving:synpass",
    "bdd100k_ins_seg": "driving:bdd100k_ins_seg",
    "dis5k": "dis:dis5k",
    "mfn": "mfn:mfn",
}


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One bad record: the file it is in (or refers to), the record in it, and why."""

    file: str
    record: str | None
    reason: str


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation on one table."""

    table: str
    expectation: str
    columns: tuple[str, ...]
    reason: str
    success: bool
    unexpected_count: int


@dataclass(frozen=True)
class ValidationReport:
    """What ``hrnet validate`` writes to ``summary.json``."""

    format: str
    root: str
    split: str
    success: bool
    rows: dict[str, int]
    expectations: list[ExpectationOutcome]
    failures: list[Failure]
    data_docs: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Tables of records and the checks on them
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One expectation: a Great Expectations expectation class name, its arguments, and the
    reason it reports. ``detail`` names a column whose value is appended to the reason of each
    failing row."""

    expectation: str
    kwargs: dict[str, Any]
    reason: str
    detail: str | None = None


@dataclass
class Table:
    """One table of records: ``file`` and ``record`` then ``columns``; one suite of ``checks``."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def frame(self):
        import pandas as pd

        columns = ("file", "record", *self.columns)
        return pd.DataFrame(self.rows, columns=list(columns)).astype(object)


@dataclass
class Tables:
    """The tables of one dataset plus the failures found before Great Expectations could run."""

    root: Path
    tables: list[Table] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def fail(self, file: str | Path, reason: str, record: str | None = None) -> Tables:
        """Adds a failure; returns ``self`` (a builder that must stop returns ``tables.fail(...)``)."""
        self.failures.append(Failure(str(file), record, reason))
        return self

    def fail_from(self, exc, *, relative: bool = True) -> Tables:
        """Adds the failure of a reader's :class:`~hrnet.data.io.DataFileError`: its file
        (relative to the root unless ``relative`` is false), record and reason."""
        file = rel(exc.path, self.root) if relative else exc.path
        return self.fail(file, exc.reason, exc.record)


def non_empty(what: str) -> Check:
    return Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, f"dataset is empty: no {what} found")


def in_set(column: str, values, reason: str, detail: str | None = None) -> Check:
    return Check("ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)}, reason, detail)


def unique(column: str, reason: str) -> Check:
    return Check("ExpectColumnValuesToBeUnique", {"column": column}, reason, column)


def equal(column_a: str, column_b: str, reason: str) -> Check:
    return Check("ExpectColumnPairValuesToBeEqual", {"column_A": column_a, "column_B": column_b}, reason)


def at_most(column: str, value: float, reason: str) -> Check:
    return Check("ExpectColumnValuesToBeBetween", {"column": column, "max_value": value}, reason, column)


def positive(column: str, reason: str) -> Check:
    return Check(
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": 0, "strict_min": True},
        reason,
        column,
    )


# --------------------------------------------------------------------------------------------
# Probing files
# --------------------------------------------------------------------------------------------

# the columns of probe_image, in order
IMAGE_COLUMNS = ("exists", "decodable", "error", "width", "height")


def probe_image(path: Path) -> dict[str, Any]:
    """``exists``, ``decodable`` (None when missing), ``error`` and the oriented ``width``/``height``
    (as :func:`hrnet.data.io.open_image`, which every reader decodes with, returns them)."""
    from hrnet.data.io import open_image

    if not path.is_file():
        return {"exists": False, "decodable": None, "error": "file not found", "width": None, "height": None}
    try:
        image = open_image(path)
    except HRNetError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        return {"exists": True, "decodable": False, "error": reason, "width": None, "height": None}
    return {"exists": True, "decodable": True, "error": "", "width": image.width, "height": image.height}


def image_checks(what: str) -> list[Check]:
    """The checks of every table of images: non-empty, each image present and decodable."""
    return [
        non_empty(what),
        in_set("exists", [True], "image file missing"),
        in_set("decodable", [True], "image not decodable", "error"),
    ]


def rel(path: Path, root: Path) -> str:
    """``path`` relative to the dataset root when it lies below it, else as given."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# Running the suites
# --------------------------------------------------------------------------------------------


def _context(docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="hrnet",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _run_suites(fmt: str, tables: list[Table], docs_dir: Path | None, root: Path):
    """Runs one suite per table; returns the outcomes and the per-row failures."""
    outcomes: list[ExpectationOutcome] = []
    failures: list[Failure] = []
    if not any(table.checks for table in tables):
        return outcomes, failures

    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = _context(docs_dir)
    source = context.data_sources.add_pandas(name=f"hrnet_{fmt}")
    for table in tables:
        if not table.checks:
            continue
        frame = table.frame()
        asset = source.add_dataframe_asset(name=table.name)
        batch = asset.add_batch_definition_whole_dataframe(name=f"{table.name}_all")
        suite = context.suites.add(gx.ExpectationSuite(name=f"{fmt}.{table.name}"))
        for number, check in enumerate(table.checks):
            meta = {"check": number, "reason": check.reason}
            suite.add_expectation(getattr(gxe, check.expectation)(**check.kwargs, meta=meta))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{fmt}.{table.name}", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{fmt}.{table.name}.checkpoint",
                validation_definitions=[definition],
                actions=[],  # Data Docs: one site build after the last table (below)
                result_format={"result_format": "COMPLETE"},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        (suite_result,) = result.run_results.values()
        # results do not come back in suite order: match them by the number in their meta
        by_number = {int(r.expectation_config.meta["check"]): r for r in suite_result.results}
        for number, check in enumerate(table.checks):
            outcome = by_number[number]
            unexpected = outcome.result.get("unexpected_index_list") or []
            columns = tuple(str(v) for k, v in check.kwargs.items() if k.startswith("column"))
            count = int(outcome.result.get("unexpected_count") or len(unexpected))
            outcomes.append(
                ExpectationOutcome(
                    table.name, check.expectation, columns, check.reason, bool(outcome.success), count
                )
            )
            if outcome.success:
                continue
            if not unexpected:  # a table-level expectation (row count)
                failures.append(Failure(str(root), None, check.reason))
            for index in unexpected:
                row = frame.loc[index]
                reason = check.reason
                if check.detail is not None:
                    value = row[check.detail]
                    # an id as repr: the id 1 and the string "1" differ, and the message shows which
                    reason = f"{reason}: {value!r}" if check.detail.endswith("id") else f"{reason}: {value}"
                failures.append(Failure(str(row["file"]), row["record"], reason))
    if docs_dir is not None:
        # once for all tables: an UpdateDataDocsAction per checkpoint rebuilt the site (and compiled
        # its templates again) after every table; the pages are the same
        context.build_data_docs(site_names=["hrnet"])
    return outcomes, failures


def _builder(fmt: str):
    module, function = FORMATS[fmt].split(":")
    return getattr(importlib.import_module(f"hrnet.data.validation.{module}"), function)


def validate_dataset(
    fmt: str,
    *,
    root: str | Path,
    split: str = "train",
    out: str | Path | None = None,
    num_classes: int | None = None,
    ignore_index: int = 255,
    num_points: int | None = None,
    annotations: str | Path | None = None,
    images: str | Path | None = None,
    masks: str | Path | None = None,
    aug: bool = False,
) -> ValidationReport:
    """Validates the dataset at ``root`` in format ``fmt`` and returns the report.

    With ``out``, writes ``out/summary.json`` (atomically) and the Data Docs site under
    ``out/data_docs/``. Bad data never raises: it is in ``report.failures``. Raises
    :class:`HRNetError` only for bad arguments (unknown format, missing ``num_classes``).

    Args:
        fmt: one of :data:`FORMATS` (layouts in :mod:`hrnet.data.validation`).
        root: the dataset folder; split: the split name (``train``, ``val``, ``val2017``...).
        num_classes: mask_segmentation: labels ``0..num_classes-1`` are valid (background
            included); imagefolder: the expected number of class folders.
        ignore_index: mask_segmentation: the label that marks ignored pixels.
        num_points: landmark formats: points per face (68 for 300W, 98 for WFLW, 29 for COFW).
        annotations, images, masks: override the default file/folder locations (COCO formats:
            ``annotations`` and ``images``; mask_segmentation: ``images`` and ``masks``).
        aug: voc: read SegmentationClassAug (the SBD-augmented label maps).
    """
    if fmt not in FORMATS:
        raise HRNetError(f"validate: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    root = Path(root)
    if not root.is_dir():
        raise HRNetError(f"{root}: dataset root not found")
    options = {
        "num_classes": num_classes,
        "ignore_index": ignore_index,
        "num_points": num_points,
        "annotations": annotations,
        "images": images,
        "masks": masks,
        "aug": aug,
    }
    dataset: Tables = _builder(fmt)(root, split, options)

    docs_dir = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        docs_dir = out / "data_docs"
        shutil.rmtree(docs_dir, ignore_errors=True)  # this run's docs only
    outcomes, failures = _run_suites(fmt, dataset.tables, docs_dir, root)
    failures = dataset.failures + failures
    index = docs_dir / "index.html" if docs_dir is not None else None
    report = ValidationReport(
        format=fmt,
        root=str(root),
        split=split,
        success=not failures and all(o.success for o in outcomes),
        rows={table.name: len(table.rows) for table in dataset.tables},
        expectations=outcomes,
        failures=failures,
        data_docs=str(index) if index is not None and index.exists() else None,
    )
    if out is not None:
        from hrnet.data.io import write_json_atomic

        write_json_atomic(out / "summary.json", report.to_dict(), indent=2)
    return report
