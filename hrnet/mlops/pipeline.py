"""The DVC pipelines, derived from the params files: ``dvc.yaml`` (embedded suite) and
``benchmarks/dvc.yaml`` (the paper rows) are written by ``hrnet pipeline sync``.

Every fact comes from one place: the rows and datasets from the params file
(:mod:`hrnet.mlops.rows`), each stage's code dependencies from the import graph of the command
it runs (:func:`code_deps`: every ``hrnet`` module it imports, at module level or inside
functions, and nothing else: the tracking code is not a dependency of training or
evaluation). Launch settings are read by the commands at run time and appear neither in a
command line nor in a stage's params, so changing one re-runs nothing.

The stages of a row, in order::

    generate@<dataset> | fetch@<dataset> [+ weights@<name>] -> validate@<dataset>
        -> train@<row> -> evaluate@<row> -> register@<row>      (-> report, embedded file)

and, for a paper row with a catalogued published checkpoint (:mod:`hrnet.data.checkpoints`)::

    checkpoint@<name> + fetch@<dataset> -> validate@<dataset> -> verify@<row>
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from hrnet.errors import HRNetError
from hrnet.mlops.rows import SUITES, Suite, load_suite

__all__ = ["SUITES", "code_deps", "import_closure", "render", "stage_names", "sync"]

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../hrnet
PROJECT_ROOT = PACKAGE_ROOT.parent
# params file -> the dvc.yaml generated from it (paths relative to the project root)
# modules whose code does not decide a training or evaluation result: where they are only
# imported for bookkeeping, they are not followed
TRACKING = frozenset({"hrnet.mlops.tracking", "hrnet.cli"})


# --------------------------------------------------------------------------------------------
# The import graph
# --------------------------------------------------------------------------------------------


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "hrnet":
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


@cache
def _lazy_exports(package: str) -> dict[str, str]:
    """``{name: submodule}`` of a package that imports its public names lazily (a module-level
    dict of string constants naming its submodules, used by its ``__getattr__``)."""
    path = _module_file(package)
    if path is None or path.name != "__init__.py":
        return {}
    out: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Dict):
            for key, val in zip(value.keys, value.values):
                if (
                    isinstance(key, ast.Constant)
                    and isinstance(val, ast.Constant)
                    and isinstance(val.value, str)
                    and _module_file(f"{package}.{val.value}") is not None
                ):
                    out[str(key.value)] = val.value
    return out


@cache
def imports_of(name: str) -> frozenset[str]:
    """The ``hrnet`` modules module ``name`` imports: at module level and inside functions
    (``if TYPE_CHECKING:`` blocks excluded, they never run), plus its parent packages."""
    path = _module_file(name)
    if path is None:
        return frozenset()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    parts = name.split(".")
    found.update(".".join(parts[:i]) for i in range(1, len(parts)))

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return  # a package's lazy exports: followed where a name is imported (_lazy_exports)
        if _type_checking_only(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            lazy = _lazy_exports(node.module)
            for alias in node.names:
                if _module_file(f"{node.module}.{alias.name}") is not None:
                    found.add(f"{node.module}.{alias.name}")
                elif alias.name in lazy:
                    found.add(f"{node.module}.{lazy[alias.name]}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("hrnet.")
            and " " not in node.value
        ):
            # a module named in a string: registries that import their entries lazily
            # (importlib.import_module("hrnet.tasks.pose"), tables of module names)
            found.add(node.value)
        elif (
            isinstance(node, ast.JoinedStr)
            and node.values
            and isinstance(node.values[0], ast.Constant)
            and str(node.values[0].value).startswith("hrnet.")
            and str(node.values[0].value).endswith(".")
        ):
            # f"hrnet.tasks.{name}": a lazy import of any module of that package
            package = str(node.values[0].value).rstrip(".")
            folder = _module_file(package)
            if folder is not None and folder.name == "__init__.py":
                found.update(
                    f"{package}.{p.stem}" for p in folder.parent.glob("*.py") if p.stem != "__init__"
                )
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return frozenset(m for m in found if m != name and _module_file(m) is not None)


def import_closure(roots: Iterable[str], *, stop: Iterable[str] = ()) -> set[str]:
    """Every ``hrnet`` module reachable from ``roots``; modules in ``stop`` are neither
    included nor followed."""
    stop = frozenset(stop)
    seen: set[str] = set()
    todo = [r for r in roots if r not in stop]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(m for m in imports_of(name) if m not in seen and m not in stop)
    return seen


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*.py") if "__pycache__" not in p.parts}


def code_deps(roots: Iterable[str], *, stop: Iterable[str] = ()) -> list[str]:
    """The source files of :func:`import_closure`, as DVC dependency paths relative to the
    project root; a package whose every file is needed is listed as its folder."""
    needed = {_module_file(m) for m in import_closure(roots, stop=stop)}
    needed.discard(None)
    out: list[str] = []

    def walk(folder: Path) -> None:
        files = _files(folder)
        if files and files <= needed:
            out.append(folder.relative_to(PROJECT_ROOT).as_posix())
            return
        for path in sorted(p for p in folder.iterdir() if p.suffix == ".py" and p in needed):
            out.append(path.relative_to(PROJECT_ROOT).as_posix())
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
            walk(sub)

    walk(PACKAGE_ROOT)
    return out


# command -> (the modules it runs, the modules not followed)
_COMMANDS = {
    "generate": (["hrnet.commands.generate"], TRACKING),
    "fetch": (["hrnet.commands.fetch"], TRACKING),
    "validate": (["hrnet.commands.validate"], TRACKING),
    "train": (["hrnet.commands.train"], TRACKING),
    "evaluate": (["hrnet.commands.evaluate"], TRACKING),
    "register": (["hrnet.commands.register"], frozenset({"hrnet.cli"})),
    "report": (["hrnet.commands.report"], frozenset({"hrnet.cli"})),
    "verify": (["hrnet.commands.verify"], frozenset({"hrnet.cli"})),
}


def command_deps(command: str) -> list[str]:
    roots, stop = _COMMANDS[command]
    return code_deps(roots, stop=stop)


# --------------------------------------------------------------------------------------------
# The stages
# --------------------------------------------------------------------------------------------


def _params(suite: Suite, keys: list[str]) -> list[Any]:
    rel = _rel(suite.path)
    if rel == "params.yaml":
        return keys
    return [{rel: keys}]


def _rel(path: Path) -> str:
    """A params file's path as the stages name it: relative to its project's root (the
    project may be a copy of this checkout, e.g. on a worker)."""
    posix = Path(path).resolve().as_posix()
    for rel in sorted(SUITES, key=len, reverse=True):
        if posix.endswith("/" + rel):
            return rel
    return Path(path).name


def _cmd(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _foreach(items: dict[str, Any], do: dict[str, Any], wdir: dict[str, str]) -> dict[str, Any]:
    return {"foreach": items, "do": {**wdir, **do}}


def _data_stages(suite: Suite, stages: dict[str, Any], wdir: dict[str, str]) -> None:
    made = {d.id: d for d in suite.datasets.values() if d.generate is not None}
    fetched = {d.id: d for d in suite.datasets.values() if d.generate is None}
    if made:
        items = {
            i: {"seed": int(d.generate.get("seed", 0)), "num_train": int(d.generate["num_train"]),
                "num_val": int(d.generate["num_val"])}
            for i, d in made.items()
        }  # fmt: skip
        stages["generate"] = _foreach(
            items,
            {
                "cmd": "hrnet generate ${key} --out data/embedded/${key} --seed ${item.seed} "
                "--num-train ${item.num_train} --num-val ${item.num_val} --quiet",
                "deps": command_deps("generate"),
                "outs": ["data/embedded/${key}"],
            },
            wdir,
        )
    if fetched:
        items = {}
        for i, d in fetched.items():
            source = ["--source", d.source] if d.source else []
            source += ["--checksums", d.checksums] if d.checksums else []
            lines = [_cmd("hrnet", "fetch", name, "--out", d.out, *source) for name in d.fetch]
            items[i] = {"cmd": " && ".join([*lines, *([d.prepare] if d.prepare else [])])}
        stages["fetch"] = _foreach(
            items,
            {"cmd": "${item.cmd}", "deps": command_deps("fetch"), "outs": ["data/${key}"]},
            wdir,
        )
    if suite.weights():
        stages["weights"] = _foreach(
            suite.weights(),
            {
                "cmd": "hrnet fetch ${item} --out data/pretrained"
                + (f" --source {shlex.quote(suite.weights_source)}" if suite.weights_source else "")
                + (f" --checksums {shlex.quote(suite.weights_checksums)}" if suite.weights_checksums else ""),
                "deps": command_deps("fetch"),
                "outs": ["data/pretrained/${item}"],
            },
            wdir,
        )
    items = {}
    for d in suite.datasets.values():
        # every format in one process (out/<format>/ when several: hrnet.commands.validate)
        single = f"/{d.formats[0]}" if len(d.formats) == 1 else ""
        check = (
            _cmd("hrnet", "validate", *d.formats, "--root", d.root, "--split", *d.splits)
            + (f" {d.validate_args}" if d.validate_args else "")
            + " "
            + _cmd("--out", f"{d.validation_dir}{single}")
        )
        items[d.id] = {"data": d.out, "cmd": " && ".join([_cmd("mkdir", "-p", d.validation_dir), check])}
    stages["validate"] = _foreach(
        items,
        {
            "cmd": "${item.cmd}",
            "deps": ["${item.data}", *command_deps("validate")],
            "outs": [{"data/validation/${key}": {"cache": False}}],
        },
        wdir,
    )


def _row_stages(suite: Suite, stages: dict[str, Any], wdir: dict[str, str]) -> None:
    params_file = _rel(suite.path)
    rows = suite.ready
    train, evaluate, register = {}, {}, {}
    for row in rows:
        dataset = suite.datasets[row.dataset]
        # from scratch the weights depend on nothing more: the data stands in (a repeated dep)
        train[row.id] = {"dataset": dataset.id, "data": dataset.out, "init": row.init.dep or dataset.out}
        # scored on its training dataset or on its evaluate.dataset (validated before it is read)
        scored = suite.datasets[row.scored_on]
        evaluate[row.id] = {
            "data": scored.out,
            "checked": scored.validation_dir,
            "protocol": _cmd(*row.evaluate_flags()),
        }
        register[row.id] = {"name": suite.registered_name(row), "metric": row.metric, "mode": row.mode}
    if not rows:
        return
    # the root a recipe reads, where the params file writes it (else it is the stage's output)
    roots = ["datasets.${item.dataset}.root"] if all(d.root_in_file for d in suite.datasets.values()) else []
    stages["train"] = _foreach(
        train,
        {
            "cmd": f"hrnet train --params {params_file} --row ${{key}} --out runs/${{key}}",
            "deps": [
                "${item.data}",
                "data/validation/${item.dataset}",
                "${item.init}",
                *command_deps("train"),
            ],
            "params": _params(suite, ["rows.${key}.train", *roots]),
            "outs": ["runs/${key}/model.pt", {"runs/${key}/checkpoints": {"persist": True}}],
            "plots": [{"runs/${key}/history.json": {"cache": False, "x": "step"}}],
        },
        wdir,
    )
    stages["evaluate"] = _foreach(
        evaluate,
        {
            "cmd": f"hrnet evaluate --run-dir runs/${{key}} ${{item.protocol}} --launch {params_file}",
            "deps": ["runs/${key}/model.pt", "${item.data}", "${item.checked}", *command_deps("evaluate")],
            "metrics": [{"runs/${key}/metrics.json": {"cache": False}}],
            "plots": [{"runs/${key}/plots": {"cache": False}}],
        },
        wdir,
    )
    stages["register"] = _foreach(
        register,
        {
            "cmd": "hrnet register --run-dir runs/${key} --name ${item.name} --metric ${item.metric} "
            "--mode ${item.mode}",
            "deps": ["runs/${key}/model.pt", "runs/${key}/metrics.json", *command_deps("register")],
            "outs": [{"runs/${key}/registered.json": {"cache": False}}],
        },
        wdir,
    )


def _mirror_flags(source: str, checksums: str) -> str:
    flags = f" --source {shlex.quote(source)}" if source else ""
    return flags + (f" --checksums {shlex.quote(checksums)}" if checksums else "")


def _verify_stages(suite: Suite, stages: dict[str, Any], wdir: dict[str, str]) -> None:
    """checkpoint@<name> (the published file, fetched with its published checksum) and
    verify@<row> (strict load, the row's protocol, compared with the published number,
    registered with the alias `published`) for every row with a catalogued checkpoint."""
    from hrnet.mlops.verify import row_checkpoints, source_slug

    items = row_checkpoints(suite)
    if not items:
        return
    params_file = _rel(suite.path)
    names = sorted({c.name for _, c in items.values()})
    stages["checkpoint"] = _foreach(
        names,
        {
            "cmd": "hrnet fetch ${item} --out data/checkpoints"
            + _mirror_flags(suite.checkpoints_source, suite.checkpoints_checksums),
            "deps": command_deps("fetch"),
            "outs": ["data/checkpoints/${item}"],
        },
        wdir,
    )
    verify = {
        key: {
            "row": row.id,
            "checkpoint": c.name,
            "out": f"runs/{row.id}/verify-{source_slug(c.name)}",
            "dataset": row.dataset,
            "data": suite.datasets[row.dataset].out,
        }
        for key, (row, c) in items.items()
    }
    stages["verify"] = _foreach(
        verify,
        {
            "cmd": f"hrnet verify --params {params_file} --row ${{item.row}} --checkpoint ${{item.checkpoint}} "
            "--out ${item.out}",
            "deps": [
                "data/checkpoints/${item.checkpoint}",
                "${item.data}",
                "data/validation/${item.dataset}",
                *command_deps("verify"),
            ],
            "params": _params(suite, ["rows.${item.row}"]),  # its recipe and its test protocol
            "metrics": [{"${item.out}/metrics.json": {"cache": False}}],
            "outs": [{"${item.out}/verified.json": {"cache": False}}, "${item.out}/model.pt"],
        },
        wdir,
    )


def _report_stage(suite: Suite, others: list[Suite]) -> dict[str, Any]:
    out_dir = str(suite.report.get("out_dir", "reports"))
    files = [_rel(suite.path), *(_rel(o.path) for o in others)]
    cmd = ["hrnet", "report", "--out-dir", out_dir]
    if suite.report.get("mlflow_ui"):
        cmd += ["--mlflow-ui", str(suite.report["mlflow_ui"])]
    for f in files:
        cmd += ["--params", f]
    params: list[Any] = ["rows"]
    params += [{_rel(o.path): ["rows", "reference"]} for o in others]
    return {
        "cmd": _cmd(*cmd),
        "deps": [f"runs/{r.id}/registered.json" for r in suite.ready] + command_deps("report"),
        "params": params,
        "outs": [{out_dir: {"cache": False, "persist": True}}],  # persist: keeps the GFLOPs cache
    }


def stages_of(suite: Suite, others: list[Suite] = ()) -> dict[str, Any]:
    """The stages of a suite (``foreach`` groups), in pipeline order."""
    rel = _rel(suite.path)
    depth = len(Path(rel).parent.parts)
    wdir = {"wdir": "/".join([".."] * depth)} if depth else {}
    stages: dict[str, Any] = {}
    _data_stages(suite, stages, wdir)
    _row_stages(suite, stages, wdir)
    _verify_stages(suite, stages, wdir)
    if suite.report:
        stages["report"] = _report_stage(suite, list(others))
    return stages


def stage_names(suite: Suite) -> list[str]:
    """Every stage name of a suite (``train@digits_cls``...), as ``dvc stage list`` shows them."""
    names = []
    for group, stage in stages_of(suite).items():
        items = stage.get("foreach")
        if items is None:
            names.append(group)
        else:
            names += [f"{group}@{k}" for k in items]
    return names


_HEADER = """\
# GENERATED by `hrnet pipeline sync` from {params}: edit that file, then run
# `hrnet pipeline sync` (a test fails while this file is out of step). Stages per row:
#   {chain}
# One row:   dvc repro {prefix}register@<row>        Preview:  dvc repro --dry -f {prefix}register@<row>
# Code dependencies are the hrnet modules each command imports (hrnet/mlops/pipeline.py).
"""


def render(suite: Suite, others: list[Suite] = ()) -> str:
    """The text of the dvc.yaml of ``suite``."""
    import yaml

    rel = _rel(suite.path)
    embedded = suite.name == "embedded"
    chain = (
        "generate@<dataset> -> validate@<dataset> -> train@<row> -> evaluate@<row> -> register@<row> -> report"
        if embedded
        else "fetch@<dataset> (+ weights@<name>) -> validate@<dataset> -> train@<row> -> evaluate@<row> -> register@<row>"
    )
    target = SUITES.get(rel, "dvc.yaml")
    prefix = "" if target == "dvc.yaml" else f"{target}:"
    header = _HEADER.format(params=rel, chain=chain, prefix=prefix)
    body = yaml.safe_dump(
        {"stages": stages_of(suite, others)}, sort_keys=False, width=110, default_flow_style=False
    )
    return header + body


def sync(root: str | Path = PROJECT_ROOT, *, check: bool = False) -> list[Path]:
    """Write (or with ``check``, compare) every generated dvc.yaml; return the files that were
    out of step. Raises HRNetError in ``check`` mode when any is."""
    root = Path(root)
    suites = {p: load_suite(root / p) for p in SUITES}
    stale: list[Path] = []
    for params, target in SUITES.items():
        others = [s for q, s in suites.items() if q != params]
        text = render(suites[params], others if suites[params].report else [])
        path = root / target
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    if check and stale:
        raise HRNetError(
            f"{', '.join(map(str, stale))} out of step with the params files: run `hrnet pipeline sync`"
        )
    return stale


def check_in_step(root: str | Path) -> None:
    """Raise HRNetError when a generated dvc.yaml of the project at ``root`` is out of step with
    its params file (a hand-written dvc.yaml, without the generated header, is not checked)."""
    root = Path(root)
    generated = [
        p for p, target in SUITES.items()
        if (root / target).is_file() and (root / target).read_text(encoding="utf-8").startswith("# GENERATED")
    ]  # fmt: skip
    if generated:
        sync(root, check=True)
