"""Benchmark our HRNet against timm's: throughput, memory, MFU (runs bench/bench.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

# the benchmark is a script of the source checkout (it runs as is on the GPU image too)
_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench.py"


def _load_script() -> ModuleType:
    import importlib.util
    import sys

    name = "hrnet_bench_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the script executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    if _SCRIPT.is_file():  # the script imports only the standard library at module level
        _load_script().add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from hrnet.errors import HRNetError

    if not _SCRIPT.is_file():
        raise HRNetError(f"{_SCRIPT}: benchmark script not found; `hrnet bench` runs from a source checkout")
    return int(_load_script().run(args))
