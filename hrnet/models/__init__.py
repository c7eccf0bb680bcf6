"""HRNet models: the one name lookup (:func:`create_model`, :func:`list_models`, :func:`model_info`)
and checkpoint I/O.

Each model module ends with a ``MODEL_INFOS`` table (:class:`~hrnet.models.registry.ModelInfo`:
builder, task, default keyword arguments, published parameter and FLOP counts, checkpoints);
:mod:`hrnet.models.registry` merges the modules listed in its ``MODEL_MODULES`` on first use
(adding a module is a one-line change). Only torch/torchvision are imported.
"""

from __future__ import annotations

from torch import nn

from hrnet.models.convert import LoadReport, export_state_dict, load_pretrained
from hrnet.models.hrnet import HighResolutionNet
from hrnet.models.registry import TASKS, ModelInfo, Published, registry

__all__ = [
    "TASKS",
    "HighResolutionNet",
    "LoadReport",
    "ModelInfo",
    "Published",
    "create_model",
    "export_state_dict",
    "list_models",
    "load_pretrained",
    "model_info",
]


def list_models(task: str | None = None) -> list[str]:
    """All model names, sorted; only those of ``task`` (one of :data:`TASKS`) when given.

    Raises:
        HRNetError: unknown task.
    """
    if task is None:
        return sorted(registry())
    if task not in TASKS:
        from hrnet.errors import HRNetError

        raise HRNetError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return sorted(name for name, info in registry().items() if info.task == task)


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``: builder, task, default keyword arguments and metadata.

    Raises:
        HRNetError: unknown model name.
    """
    models = registry()
    if name not in models:
        from hrnet.errors import HRNetError

        raise HRNetError(f"unknown model {name!r}; known models: {', '.join(sorted(models))}")
    return models[name]


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model ``name`` (see :func:`list_models`): its builder called with the registered
    keyword arguments (:attr:`ModelInfo.kwargs`, to which the published numbers refer) updated by
    ``kwargs``.

    Raises:
        HRNetError: unknown model name.
        TypeError: a keyword argument the builder does not take (the message names both).
    """
    return model_info(name).build(**kwargs)
