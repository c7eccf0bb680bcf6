"""The import graph of the ``hrnet`` package: acyclic, and layered around the MLOps code.

Every module under ``hrnet/`` is parsed with :mod:`ast` (nothing is imported). An edge
``a -> b`` is any ``import`` statement of ``a`` naming ``b``, at module level, under ``if``
blocks (``TYPE_CHECKING`` included) or inside functions; ``from pkg import name`` imports
``pkg`` and, when ``name`` is a submodule, ``pkg.name``. Package ``__init__`` modules are
nodes like any other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hrnet"
# third-party packages only the MLOps layer (and the commands that drive it) may import
MLOPS_PACKAGES = ("mlflow", "dvc", "prefect")
# files only the MLOps layer may read
MLOPS_FILES = re.compile(r"(^|[/\\])(params\.yaml|dvc\.lock)$")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {
        _module_name(path): (path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _imports(name: str, path: Path, tree: ast.Module) -> list[str]:
    """Every module name ``name`` imports (absolute; relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.append(source)
            found += [f"{source}.{alias.name}" for alias in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, tree) in modules.items():
        # keep the names that are modules of the package (``from a import b``: b may be a function)
        graph[name] = {t for t in _imports(name, path, tree) if t in modules and t != name}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path: list[str] = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = _graph()
    assert "hrnet.tasks.base" in graph["hrnet.engine.train"]  # module level
    assert "hrnet.engine.metrics" in graph["hrnet.tasks.classification"]  # inside a method
    assert "hrnet.engine.plots" in graph["hrnet.engine.evaluate"]  # from pkg import submodule
    assert "hrnet.tasks.base" in graph["hrnet.tasks"]  # a package __init__ is a node


def test_the_cycle_finder_finds_cycles() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_hrnet_import_graph_has_no_cycle() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_the_mlops_layer_imports_mlops_tools() -> None:
    """Outside hrnet/mlops and hrnet/commands, nothing imports hrnet.mlops, MLflow, DVC or Prefect."""
    offenders = []
    for name, (path, tree) in _modules().items():
        if name.startswith(("hrnet.mlops", "hrnet.commands")):
            continue
        for target in _imports(name, path, tree):
            top = target.split(".")[0]
            if target == "hrnet.mlops" or target.startswith("hrnet.mlops.") or top in MLOPS_PACKAGES:
                offenders.append(f"{name} imports {target}")
    assert not offenders, "\n".join(offenders)


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)),
    ]
    return {
        id(n.body[0].value)
        for n in nodes
        if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }


def test_only_the_mlops_layer_reads_params_and_dvc_files() -> None:
    """Outside hrnet/mlops no code names params.yaml or dvc.lock as a path (a string literal
    that is the file's name or ends in it; docstrings and help texts mentioning them are fine)."""
    offenders = []
    for name, (_path, tree) in _modules().items():
        if name.startswith("hrnet.mlops"):
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and MLOPS_FILES.search(node.value.strip())
            ):
                offenders.append(f"{name}:{node.lineno}: {node.value!r}")
    assert not offenders, "\n".join(offenders)
