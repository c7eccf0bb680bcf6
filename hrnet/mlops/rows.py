"""The one reader of the params files (``params.yaml``, ``benchmarks/params.yaml``).

A params file holds a *suite*: its datasets, this machine's launch settings, the registry prefix
and its rows. Each row is written once, under ``rows.<id>``::

    rows:
      digits_cls:
        table: "Embedded suite"          # what the row is
        dataset: digits                  # an entry of `datasets`
        schedule: "8e, 32x32"
        metric: top1                     # the metrics.json key compared (the task's vocabulary)
        mode: max
        published: [{metric, value, unit, source}, ...]
        evaluate: {flip: true}           # the test protocol (flags of `hrnet evaluate`);
                                         # `dataset: <entry>` scores on another entry of
                                         # `datasets` (trained on ACDC, scored on DADA-seg)
        train: {task: ..., model: ...}   # the recipe: TrainConfig fields

Everything else about a row is derived here: the dataset root its recipe reads (``data``), the
file its weights start from (``pretrained``: a fetch-catalogue name, another row's
``runs/<row>/model.pt`` or a file), the split it is scored on (``train.val_split``), and the
stage chain with its dependencies (:mod:`hrnet.mlops.pipeline` writes ``dvc.yaml`` from it).
``reference.<id>`` lists published rows that cannot run here, with ``status`` (``not_built`` or
``reference``) and ``reason``.

Used by ``hrnet train/evaluate --params``, ``hrnet report``, ``hrnet pipeline`` and the Prefect
flows; the library (models, data, tasks, engine) never reads params files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrnet.errors import HRNetError
from hrnet.mlops.dvc_lock import parse_yaml

__all__ = [
    "PAPER_PARAMS",
    "STATUSES",
    "SUITES",
    "BenchmarkRow",
    "DatasetEntry",
    "Init",
    "Launch",
    "Published",
    "Suite",
    "load_rows",
    "load_suite",
]

# the project's params files (relative to its root) -> the dvc.yaml generated from each
SUITES = {"params.yaml": "dvc.yaml", "benchmarks/params.yaml": "benchmarks/dvc.yaml"}
PAPER_PARAMS = "benchmarks/params.yaml"
# ready: the row runs in the DVC pipeline; the others are listed for comparison only
STATUSES = ("ready", "not_built", "reference")
# the rows' published `source` of the embedded targets
EMBEDDED_DATA = "data/embedded"
PRETRAINED_DIR = "data/pretrained"


@dataclass(frozen=True)
class Published:
    """One published number of a row."""

    metric: str  # the metrics.json key where the row measures it (top1, mIoU, box_AP, NME...)
    value: float
    unit: str  # "%", "M", "G", "GB", "fps" or "" (unitless)
    source: str  # the public name of the publisher (MMSegmentation, timm, ...) or "target (...)"


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset of a suite: generated (embedded) or fetched (paper), and how it is validated."""

    id: str
    out: str  # the folder its generate@/fetch@ stage writes
    root: str  # the folder the readers open (a row's TrainConfig.data)
    generate: Mapping[str, Any] | None = None  # hrnet generate settings (embedded datasets)
    fetch: tuple[str, ...] = ()  # fetch-catalogue names, downloaded into `out`
    source: str = ""  # mirror of the files (a manual download filled by hand)
    checksums: str = ""  # JSON {filename: sha256} of a mirror whose files differ from the published
    prepare: str = ""  # a command run after the fetch
    formats: tuple[str, ...] = ()  # hrnet validate FORMATs
    splits: tuple[str, ...] = ()
    validate_args: str = ""
    root_in_file: bool = False  # `root` is written in the params file (else it is `out`)

    @property
    def validation_dir(self) -> str:
        return f"data/validation/{self.id}"


@dataclass(frozen=True)
class Init:
    """What a row's weights start from."""

    kind: str  # "scratch", "weights" (a fetch-catalogue entry), "row" (another row's model), "file"
    name: str = ""  # catalogue name, row id or path
    path: str = ""  # the file the training loads ("" from scratch)
    dep: str = ""  # the DVC dependency that makes it ("" from scratch)


@dataclass(frozen=True)
class Launch:
    """This machine's settings: read at run time, not part of any recipe, not tracked by DVC."""

    device: str = "auto"
    workers: int = 2
    nproc_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str = ""
    progress: bool = True
    resume: bool = False
    experiment: str = "hrnet-zoo"
    eval_batch_size: int = 16
    threads: int = 0  # CPU threads of torch (0 = its default: the cores); pin it to compare machines
    # instruction set of the CPU kernels of numpy and torch (avx2; "" = the widest the CPU has): results
    # on the CPU depend on it too (hrnet/engine/cpu.py)
    cpu_isa: str = ""


@dataclass(frozen=True)
class BenchmarkRow:
    """A benchmark row: a published result and, when ``status == "ready"``, the recipe that
    reproduces it (``train``: TrainConfig fields with ``data`` and ``pretrained`` resolved)."""

    id: str
    suite: str  # "embedded" or "paper": which params file and dvc.yaml it belongs to
    status: str  # one of STATUSES
    task: str
    label: str  # human-readable name (table and setting)
    dataset: str  # dataset id ("" for reference rows)
    split: str  # the split evaluate scores
    model: str
    schedule: str
    metric: str  # the metrics.json key compared with the published value (reference rows: the first)
    mode: str  # "max" when higher is better, "min" otherwise
    published: tuple[Published, ...]
    reason: str = ""  # why a row is not ready
    note: str = ""
    train: Mapping[str, Any] | None = None
    # the `hrnet evaluate` flags; a row scored on another dataset holds its `data` (root) and
    # `dataset` (format), derived from `evaluate.dataset` (eval_dataset)
    evaluate: Mapping[str, Any] = field(default_factory=dict)
    init: Init = Init("scratch")
    eval_dataset: str = ""  # the dataset id evaluate scores on ("" = `dataset`, the training one)

    @property
    def scored_on(self) -> str:
        """The dataset id the row's evaluation reads."""
        return self.eval_dataset or self.dataset

    @property
    def starts_from_row(self) -> str | None:
        """The row whose trained model this row's weights start from (it must run first)."""
        return self.init.name if self.init.kind == "row" else None

    def published_value(self, metric: str | None = None) -> Published | None:
        """The first published entry for ``metric`` (default: the row's compared metric)."""
        wanted = metric or self.metric
        return next((p for p in self.published if p.metric == wanted), None)

    def evaluate_flags(self) -> list[str]:
        """The row's test protocol as ``hrnet evaluate`` flags (split first)."""
        flags = ["--split", self.split]
        for key, value in self.evaluate.items():
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                flags += [flag] if value else []
            elif isinstance(value, list | tuple):
                flags += [flag, *map(str, value)]
            else:
                flags += [flag, str(value)]
        return flags


@dataclass(frozen=True)
class Suite:
    """A params file: its datasets, launch settings, registry prefix and rows."""

    path: Path
    name: str  # "embedded" (datasets generated) or "paper" (datasets fetched)
    datasets: Mapping[str, DatasetEntry]
    rows: tuple[BenchmarkRow, ...]
    launch: Launch
    register_prefix: str
    report: Mapping[str, Any]
    weights_source: str = ""  # mirror prefix of the pretrained weights ("" = their publishers)
    weights_checksums: str = ""  # JSON {filename: sha256} of that mirror's files
    checkpoints_source: str = ""  # mirror prefix of the published task checkpoints (verify@)
    checkpoints_checksums: str = ""

    @property
    def ready(self) -> list[BenchmarkRow]:
        return [r for r in self.rows if r.status == "ready"]

    def row(self, row_id: str) -> BenchmarkRow:
        """The runnable row ``row_id``; HRNetError naming the file and the known rows otherwise."""
        for r in self.rows:
            if r.id == row_id:
                if r.status != "ready":
                    raise HRNetError(f"{self.path}: row {row_id!r} is {r.status} ({r.reason})")
                return r
        known = ", ".join(r.id for r in self.ready)
        raise HRNetError(f"{self.path}: no row {row_id!r} under 'rows' (rows: {known})")

    def weights(self) -> list[str]:
        """Catalogue names of the weights the ready rows start from (one weights@ stage each)."""
        return sorted({r.init.name for r in self.ready if r.init.kind == "weights"})

    def registered_name(self, row: BenchmarkRow) -> str:
        return f"{self.register_prefix}{row.id}"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _read(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        params = parse_yaml(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise HRNetError(f"{path}: cannot read params file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise HRNetError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(params, Mapping):
        raise HRNetError(f"{path}: not a mapping of sections")
    return params


def _section(params: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    section = params.get(name) or {}
    if not isinstance(section, Mapping):
        raise HRNetError(f"{path}: '{name}' must be a mapping")
    return section


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


def _words(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    return tuple(str(v) for v in value)


def _dataset(did: str, entry: Any, path: Path) -> DatasetEntry:
    where = f"{path}: datasets.{did}"
    if not isinstance(entry, Mapping):
        raise HRNetError(f"{where}: must be a mapping")
    known = {"generate", "fetch", "source", "checksums", "prepare", "root", "validate"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise HRNetError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if ("generate" in entry) == ("fetch" in entry):
        raise HRNetError(f"{where}: needs exactly one of 'generate' (embedded) or 'fetch' (catalogue names)")
    validate = entry.get("validate") or {}
    if not isinstance(validate, Mapping):
        raise HRNetError(f"{where}.validate: must be a mapping {{formats, splits, args}}")
    if "generate" in entry:
        out = f"{EMBEDDED_DATA}/{did}"
        generate = entry["generate"]
        if not isinstance(generate, Mapping):
            raise HRNetError(f"{where}.generate: must be a mapping {{seed, num_train, num_val}}")
    else:
        out, generate = f"data/{did}", None
    root = str(entry.get("root") or out)
    if root != out and not root.startswith(out + "/"):
        raise HRNetError(f"{where}: root {root!r} must be inside {out}/, the folder the stage writes")
    return DatasetEntry(
        id=did,
        out=out,
        root=root,
        generate=dict(generate) if generate is not None else None,
        fetch=_words(entry.get("fetch")),
        source=str(entry.get("source") or ""),
        checksums=str(entry.get("checksums") or ""),
        prepare=str(entry.get("prepare") or ""),
        formats=_words(validate.get("formats")),
        splits=_words(validate.get("splits")),
        validate_args=str(validate.get("args") or ""),
        root_in_file="root" in entry,
    )


def _launch(entry: Any, path: Path) -> Launch:
    if not isinstance(entry, Mapping):
        raise HRNetError(f"{path}: 'launch' must be a mapping")
    names = {f.name: f for f in dataclasses.fields(Launch)}
    unknown = sorted(set(entry) - set(names))
    if unknown:
        raise HRNetError(f"{path}: launch: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    values = {}
    for key, value in entry.items():
        kind = type(getattr(Launch(), key))
        if kind is bool and not isinstance(value, bool):
            raise HRNetError(f"{path}: launch.{key} must be true or false, got {value!r}")
        try:
            values[key] = kind(value)
        except (TypeError, ValueError):
            raise HRNetError(f"{path}: launch.{key}: cannot use {value!r}") from None
    from hrnet.engine.cpu import check_isa

    check_isa(values.get("cpu_isa", ""), f"{path}: launch")
    return Launch(**values)


def _init(pretrained: str, rid: str, suite_rows: Mapping[str, Any], where: str) -> Init:
    """Resolve ``train.pretrained``: a catalogue name, ``runs/<row>/model.pt`` or a file."""
    if not pretrained:
        return Init("scratch")
    parts = Path(pretrained).parts
    if len(parts) == 3 and parts[0] == "runs" and parts[2] == "model.pt":
        upstream = parts[1]
        if upstream == rid or upstream not in suite_rows:
            raise HRNetError(
                f"{where}: pretrained {pretrained!r} is not the model of another row of this file"
            )
        return Init("row", upstream, pretrained, pretrained)
    if "/" not in pretrained and not pretrained.endswith((".pt", ".pth")):
        from hrnet.data import catalog

        try:
            entry = catalog.get_dataset(pretrained)
        except HRNetError:
            raise HRNetError(
                f"{where}: pretrained {pretrained!r} is neither a fetch-catalogue name "
                "(hrnet fetch --list), a runs/<row>/model.pt nor a file path"
            ) from None
        if len(entry.files) != 1 or entry.files[0].extract:
            raise HRNetError(f"{where}: catalogue entry {pretrained!r} is not a weights file")
        folder = f"{PRETRAINED_DIR}/{pretrained}"
        return Init("weights", pretrained, f"{folder}/{entry.files[0].filename}", folder)
    return Init("file", pretrained, pretrained, pretrained)


def _check_chains(rows: list[BenchmarkRow], path: Path) -> None:
    """Rows that start from other rows' models must form chains, not loops."""
    upstream = {row.id: row.starts_from_row for row in rows}
    for rid in upstream:
        seen = [rid]
        while upstream.get(seen[-1]):
            seen.append(upstream[seen[-1]])
            if seen[-1] in seen[:-1]:
                raise HRNetError(f"{path}: rows {' -> '.join(seen)} start from each other's models in a loop")


def load_suite(path: str | Path) -> Suite:
    """Read a params file.

    Raises:
        HRNetError: the file is missing or malformed, or a row names an unknown dataset, sets a
            derived field (``data``), or lacks a field; the message names the file and the row.
    """
    path = Path(path)
    params = _read(path)
    datasets = {did: _dataset(str(did), e, path) for did, e in _section(params, "datasets", path).items()}
    kinds = {"embedded" if d.generate is not None else "paper" for d in datasets.values()}
    if len(kinds) > 1:
        raise HRNetError(f"{path}: datasets mix generated and fetched entries; keep one kind per file")
    name = kinds.pop() if kinds else "paper"
    launch = _launch(params.get("launch") or {}, path)
    register = _section(params, "register", path)
    # mirrors.weights: {source, checksums}: where weights@ stages fetch from instead of the publishers
    mirror = _section(_section(params, "mirrors", path), "weights", path)
    ckpt_mirror = _section(_section(params, "mirrors", path), "checkpoints", path)
    ready, ref = _section(params, "rows", path), _section(params, "reference", path)

    rows: list[BenchmarkRow] = []
    for rid, meta in ready.items():
        rows.append(_ready_row(str(rid), meta, ready, datasets, name, path))
    _check_chains(rows, path)
    for rid, meta in ref.items():
        where = f"{path}: reference.{rid}"
        if rid in ready:
            raise HRNetError(f"{where}: the id is also a runnable row")
        if not isinstance(meta, Mapping) or meta.get("status") not in STATUSES[1:]:
            raise HRNetError(f"{where}: status must be one of {', '.join(STATUSES[1:])}")
        try:
            published = _published(meta["published"], where)
            rows.append(
                BenchmarkRow(
                    id=str(rid),
                    suite=name,
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
    return Suite(
        path=path,
        name=name,
        datasets=datasets,
        rows=tuple(rows),
        launch=launch,
        register_prefix=str(register.get("prefix", "hrnet-")),
        report=dict(_section(params, "report", path)),
        weights_source=str(mirror.get("source") or ""),
        weights_checksums=str(mirror.get("checksums") or ""),
        checkpoints_source=str(ckpt_mirror.get("source") or ""),
        checkpoints_checksums=str(ckpt_mirror.get("checksums") or ""),
    )


def _ready_row(
    rid: str,
    meta: Any,
    rows: Mapping[str, Any],
    datasets: Mapping[str, DatasetEntry],
    suite: str,
    path: Path,
) -> BenchmarkRow:
    where = f"{path}: rows.{rid}"
    if not isinstance(meta, Mapping):
        raise HRNetError(f"{where}: must be a mapping")
    known = {"table", "dataset", "schedule", "metric", "mode", "note", "published", "evaluate", "train"}
    unknown = sorted(set(meta) - known)
    if unknown:
        raise HRNetError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        train = dict(meta["train"])
        dataset = datasets.get(meta["dataset"])
        if dataset is None:
            raise HRNetError(
                f"{where}: dataset {meta['dataset']!r} is not an entry of 'datasets' ({', '.join(datasets)})"
            )
        if "data" in train:
            raise HRNetError(
                f"{where}.train: 'data' is derived from datasets.{dataset.id}.root ({dataset.root}); remove it"
            )
        if meta.get("mode") not in ("max", "min"):
            raise HRNetError(f"{where}: mode must be max or min")
        init = _init(str(train.get("pretrained") or ""), rid, rows, f"{where}.train")
        train["data"] = dataset.root
        train["pretrained"] = init.path
        evaluate = dict(meta.get("evaluate") or {})
        eval_dataset = _eval_dataset(evaluate, datasets, dataset, f"{where}.evaluate")
        return BenchmarkRow(
            id=rid,
            suite=suite,
            status="ready",
            task=train["task"],
            label=meta.get("table", rid),
            dataset=dataset.id,
            split=str(train.get("val_split", "val")),
            model=train["model"],
            schedule=str(meta["schedule"]),
            metric=meta["metric"],
            mode=meta["mode"],
            published=_published(meta["published"], where),
            note=meta.get("note", ""),
            train=train,
            evaluate=evaluate,
            init=init,
            eval_dataset=eval_dataset,
        )
    except (KeyError, TypeError) as exc:
        raise HRNetError(f"{where}: missing or bad field {exc}") from None


def _eval_dataset(
    evaluate: dict[str, Any], datasets: Mapping[str, DatasetEntry], trained_on: DatasetEntry, where: str
) -> str:
    """Resolve ``evaluate.dataset`` (an entry of ``datasets`` other than the training one) in
    place into the ``--data`` (its root) and ``--dataset`` (its format: its one validate format)
    flags; returns the entry id ("" when the row scores on its training dataset)."""
    if "data" in evaluate:
        raise HRNetError(f"{where}: 'data' is derived from evaluate.dataset; remove it")
    did = evaluate.pop("dataset", None)
    if did in (None, "", trained_on.id):
        return ""
    entry = datasets.get(did)
    if entry is None:
        raise HRNetError(f"{where}: dataset {did!r} is not an entry of 'datasets' ({', '.join(datasets)})")
    if len(entry.formats) != 1:
        raise HRNetError(
            f"{where}: datasets.{did} must validate exactly one format (its reader's), has {list(entry.formats)}"
        )
    evaluate["data"], evaluate["dataset"] = entry.root, entry.formats[0]
    return entry.id


def load_rows(path: str | Path, *, suite: str | None = None) -> list[BenchmarkRow]:
    """Every row of a params file: the runnable ones first, then the reference ones."""
    rows = list(load_suite(path).rows)
    if suite is not None:
        rows = [dataclasses.replace(r, suite=suite) for r in rows]
    return rows


def train_settings(path: str | Path, row_id: str) -> tuple[dict[str, Any], Launch]:
    """The TrainConfig mapping of row ``row_id`` (its recipe with ``data`` and ``pretrained``
    resolved, and this machine's ``device``/``workers`` from ``launch``), and the launch settings."""
    suite = load_suite(path)
    row = suite.row(row_id)
    values = dict(row.train or {})
    for key in ("device", "workers"):
        if key in values:
            raise HRNetError(
                f"{suite.path}: rows.{row_id}.train.{key} is a launch setting of this machine: "
                f"set launch.{key} instead"
            )
    values["device"] = suite.launch.device
    values["workers"] = suite.launch.workers
    return values, suite.launch


def apply_cpu_settings(launch: Launch, where: str = "launch") -> None:
    """Pin torch's CPU threads and the CPU kernels' instruction set to the launch settings
    (results on the CPU depend on both). Call before numpy is imported (torch imports it)."""
    from hrnet.engine.cpu import pin_cpu

    pin_cpu(launch.threads, launch.cpu_isa, where=where)


def launch_settings(path: str | Path) -> Launch:
    """The ``launch`` section of a params file."""
    return _launch(_read(Path(path)).get("launch") or {}, Path(path))
