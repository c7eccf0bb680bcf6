"""HRNet models: the one name lookup (:func:`create_model`, :func:`list_models`) and checkpoint I/O.

Each model module exports ``MODELS: dict[str, builder]``; this package merges the modules listed in
``_MODEL_MODULES`` (adding a module is a one-line change). Only torch/torchvision are imported.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

from torch import nn

from hrnet.models.convert import LoadReport, export_state_dict, load_pretrained
from hrnet.models.hrnet import HighResolutionNet

__all__ = [
    "HighResolutionNet",
    "LoadReport",
    "create_model",
    "export_state_dict",
    "list_models",
    "load_pretrained",
]

# model modules under hrnet.models whose MODELS dicts are merged into the lookup
_MODEL_MODULES: tuple[str, ...] = (
    "hrnet",
    "segmentation",
    "detection",
    "pose",
    "landmarks",
)


@functools.cache
def _models() -> dict[str, Callable[..., nn.Module]]:
    """Gather the builders on first use (lazily, so importing this package does no work)."""
    merged: dict[str, Callable[..., nn.Module]] = {}
    for module_name in _MODEL_MODULES:
        try:
            module = importlib.import_module(f"hrnet.models.{module_name}")
        except ModuleNotFoundError as exc:  # a task module not written yet
            if exc.name != f"hrnet.models.{module_name}":
                raise
            continue
        for name, builder in module.MODELS.items():
            if name in merged:
                raise RuntimeError(f"model name {name!r} is defined twice (hrnet.models.{module_name})")
            merged[name] = builder
    return merged


def list_models() -> list[str]:
    """All model names, sorted."""
    return sorted(_models())


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model ``name`` (see :func:`list_models`) with its builder's keyword arguments.

    Raises:
        HRNetError: unknown model name.
        TypeError: a keyword argument the builder does not take (the message names both).
    """
    builders = _models()
    if name not in builders:
        from hrnet.errors import HRNetError

        raise HRNetError(f"unknown model {name!r}; known models: {', '.join(sorted(builders))}")
    return builders[name](**kwargs)
