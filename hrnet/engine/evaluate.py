"""Evaluation: load a trained model, run it over a split, write ``metrics.json`` and ``plots/``.

``evaluate_run(source, ecfg)`` loads ``model.pt`` (or a training checkpoint), rebuilds the task
model from the configuration saved inside it, and lets the task (:mod:`hrnet.tasks`) compute the
metrics; ``predict_images`` runs a loaded model on loose image files through the task. Nothing
here knows a task by name.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hrnet.engine import checkpoint as ckpt
from hrnet.engine.config import EvalConfig, TrainConfig, config_from_mapping, evaluation_of
from hrnet.errors import HRNetError
from hrnet.tasks.base import Task, get_task

__all__ = [
    "LoadedModel",
    "evaluate_run",
    "inference_model",
    "load_model",
    "predict_images",
    "resolve_model_file",
]


@dataclasses.dataclass
class LoadedModel:
    """A trained task model in eval mode, with the configuration and facts it was saved with."""

    model: nn.Module
    config: TrainConfig
    info: dict[str, Any]
    task: Task
    path: Path


def resolve_model_file(source: str | Path) -> Path:
    """A run folder -> its ``model.pt`` (else ``checkpoints/last.pt``); a file stays itself."""
    source = Path(source)
    if source.is_dir():
        for candidate in (source / "model.pt", source / "checkpoints" / "last.pt"):
            if candidate.is_file():
                return candidate
        raise HRNetError(f"{source}: no model.pt or checkpoints/last.pt in this run folder")
    if not source.is_file():
        raise HRNetError(f"{source}: no such run folder or checkpoint")
    return source


def load_model(
    source: str | Path,
    *,
    device: torch.device,
    data: str | None = None,
    fast: bool = True,
    dataset: str | None = None,
) -> LoadedModel:
    """Rebuild and load the model saved in a run folder or a ``.pt`` file (eval mode), or open an
    exported ``.onnx`` file (:func:`hrnet.models.export.export_onnx`) in ONNX Runtime on the CPU.

    Args:
        source: run folder, ``model.pt``, ``checkpoints/last.pt`` or an exported ``.onnx``.
        device: where to put the model (an ONNX model runs on the CPU whatever the device; its
            outputs come back on the input's device).
        data: replaces the dataset root recorded in the configuration.
        dataset: replaces its dataset format (with ``data``: evaluate on another dataset than
            the one trained on, e.g. trained on ``acdc``, scored on ``dada_seg``).
        fast: the inference path (:func:`inference_model`): BatchNorm folded into the
            convolutions, channels_last, no gradients; ``False``: the model as trained (eager).
            The outputs agree within fp32 rounding (1e-5 relative). Ignored for ``.onnx``.
    """
    if Path(source).suffix == ".onnx" and Path(source).is_file():
        return _load_onnx(Path(source), data=data)
    path = resolve_model_file(source)
    state = ckpt.load(path)
    cfg = config_from_mapping(state["config"], source=f"{path} (saved config)")
    if data is not None:
        cfg = dataclasses.replace(cfg, data=str(data))
    if dataset is not None:
        cfg = dataclasses.replace(cfg, dataset=dataset)
    task = get_task(cfg.task, dataset=cfg.dataset, model=cfg.model)
    info = state.get("info", {})
    model = task.build_model(cfg, info)
    try:
        task.load_state_dict(model, state["model"])
    except RuntimeError as exc:
        raise HRNetError(f"{path}: weights do not fit the model {cfg.model!r}: {exc}") from None
    model.to(device).eval()
    if fast:
        model = inference_model(model, cfg.task, device=device)
    return LoadedModel(model, cfg, info, task, path)


# the example input (height, width) BatchNorm folding traces the model with: shapes only
_FOLD_EXAMPLE_SIZE = (64, 64)


def inference_model(model: nn.Module, task: str, *, device: torch.device | None = None) -> nn.Module:
    """A task model on the inference path, modified in place and returned.

    Eval mode, every BatchNorm that consumes a convolution's output folded into it, channels_last
    weights, ``requires_grad`` off (:func:`hrnet.models.fast.prepare_for_inference`); for
    detection the backbone (with its feature pyramid) only, the R-CNN heads stay as they are. The
    folding checks itself against the model on an example input; should that check fail, the model
    is left eager (a warning says so). Models already prepared are returned as they are. Callers
    run it under :func:`torch.inference_mode`; bf16 autocast stays the caller's choice
    (``EvalConfig.amp``).
    """
    import warnings

    from hrnet.models.fast import prepare_for_inference

    if getattr(model, "inference_path", False) or not any(True for _ in model.parameters()):
        return model
    if device is None:
        device = next(model.parameters()).device
    model.eval()
    target = model.backbone if task == "detection" else model  # type: ignore[union-attr]
    assert isinstance(target, nn.Module)
    chans = int(getattr(target, "in_chans", 3))  # 4 for an RGB-thermal segmentation model
    example = (torch.rand(1 if task == "detection" else 2, chans, *_FOLD_EXAMPLE_SIZE, device=device),)
    try:
        prepare_for_inference(target, example_inputs=example, inplace=True)
    except RuntimeError as exc:
        warnings.warn(f"BatchNorm folding skipped, the model stays eager: {exc}", stacklevel=2)
        return model
    model.requires_grad_(False)
    model.inference_path = True
    return model


def _load_onnx(path: Path, *, data: str | None) -> LoadedModel:
    """An exported ``.onnx`` file as a :class:`LoadedModel` (its configuration from the file)."""
    from hrnet.models.export import OnnxRuntimeModel

    model = OnnxRuntimeModel(path)
    meta = model.metadata
    if "config" not in meta or "task" not in meta:
        raise HRNetError(
            f"{path}: not exported by hrnet export (no hrnet.config/hrnet.task metadata); "
            "run such a file with onnxruntime directly"
        )
    cfg = config_from_mapping(meta["config"], source=f"{path} (saved config)")
    if data is not None:
        cfg = dataclasses.replace(cfg, data=str(data))
    task = get_task(cfg.task, dataset=cfg.dataset, model=cfg.model)
    return LoadedModel(model, cfg, meta.get("info", {}), task, path)


def evaluate_run(
    source: str | Path,
    ecfg: EvalConfig,
    *,
    out_dir: str | Path | None = None,
    data: str | None = None,
    fast: bool = True,
    dataset: str | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Evaluate the model of a run folder or checkpoint; write ``metrics.json`` and ``plots/``.

    Args:
        source: run folder, ``model.pt``, ``checkpoints/last.pt`` or an exported ``.onnx``.
        ecfg: the evaluation settings.
        out_dir: where metrics and plots go (default: the run folder, or the file's folder).
        data: replaces the dataset root recorded in the model's configuration.
        dataset: replaces its dataset format (:func:`load_model`).
        fast: evaluate on the inference path (:func:`inference_model`, the default) or, with
            ``False``, the eager model; the metrics agree (fp32 outputs within 1e-5 relative).
        replace: replace a ``metrics.json`` of ``out_dir`` that holds another evaluation (another
            split, dataset or test protocol: :func:`evaluation_of`); without it that is refused
            before anything runs, as the run folder's ``metrics.json`` is the one the report,
            the registry and MLflow show. The same evaluation run again always replaces it.

    Returns:
        The metrics dict written to ``metrics.json``.
    """
    from hrnet.data.io import write_json_atomic
    from hrnet.engine import plots
    from hrnet.engine.distributed import resolve_device

    device = resolve_device(ecfg.device)
    loaded = load_model(source, device=device, data=data, fast=fast, dataset=dataset)
    loaded.task.check_protocol(ecfg)  # a flag the task would ignore is refused, not recorded
    if out_dir is None:
        out_dir = Path(source) if Path(source).is_dir() else loaded.path.parent
    out_dir = Path(out_dir)
    ours = evaluation_of({"split": ecfg.split, "dataset": loaded.config.data, "eval_settings": vars(ecfg)})
    if not replace:
        _refuse_replacing(out_dir / "metrics.json", ours)
    created = [d for d in (out_dir, out_dir / "plots") if not d.exists()]
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    try:
        with torch.inference_mode():
            metrics = loaded.task.evaluate(loaded.model, loaded.config, ecfg, loaded.info, device, out_dir)
    except BaseException:
        for folder in reversed(created):  # a failed evaluation leaves no empty folder of its own
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    plots.training_curves(out_dir / "history.json", out_dir / "plots" / "training_loss.png")
    seconds = time.perf_counter() - started
    metrics = {
        "task": loaded.config.task,
        "model": loaded.config.model,
        "dataset": loaded.config.data,
        "split": ecfg.split,
        "checkpoint": str(loaded.path),
        **metrics,
        "eval_seconds": round(seconds, 3),
        "eval_settings": {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(ecfg).items()},
            "inference": _inference_kind(loaded.model),
        },
    }
    write_json_atomic(out_dir / "metrics.json", metrics, indent=2)
    return metrics


# --------------------------------------------------------------------------------------------
# Prediction on loose images
# --------------------------------------------------------------------------------------------


def _refuse_replacing(path: Path, ours: dict[str, Any]) -> None:
    """HRNetError when ``path`` holds the metrics of another evaluation than ``ours``."""
    import json

    if not path.is_file():
        return
    try:
        theirs = evaluation_of(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError, TypeError):
        return  # unreadable or not a metrics mapping: no numbers to lose
    # a key the file does not record (written before it was recorded) is not a difference
    differs = [k for k in ours if theirs.get(k) is not None and theirs[k] != ours[k]]
    if not differs:
        return
    what = ", ".join(f"{k} {theirs.get(k)!r} there, {ours[k]!r} here" for k in differs)
    split = str(ours["split"] or "eval").replace("/", "_")
    raise HRNetError(
        f"{path} holds another evaluation of this model ({what}); it is the one the report, the "
        f"registry and MLflow show for the run, and this one would replace it. Write this one "
        f"beside it with --out {path.parent / f'eval-{split}'}, or replace it with --replace"
    )


def _inference_kind(model: nn.Module) -> str:
    """``onnxruntime``, ``folded`` (the inference path) or ``eager``: how a model was run."""
    if type(model).__name__ == "OnnxRuntimeModel":
        return "onnxruntime"
    return "folded" if getattr(model, "inference_path", False) else "eager"


def predict_images(
    loaded: LoadedModel,
    files: list[Path],
    out_dir: Path,
    *,
    device: torch.device,
    fast: bool = True,
    ecfg: EvalConfig | None = None,
) -> list[dict[str, Any]]:
    """Run a loaded model on image files; return one JSON record per image and draw each
    prediction to ``out_dir/<stem>.png`` (``<stem>-2.png``, ... for a stem met before).

    Records are ``{"file", <the task's fields>, "picture"}``, the task's fields from
    :meth:`hrnet.tasks.Task.predict_image`: classification ``{"label", "score", "top5"}``;
    segmentation ``{"mask"}`` (a PNG of class indices beside the picture); detection
    ``{"detections": [{"bbox" (COCO's x, y, width, height), "label", "category_id", "score"}]}``; pose/landmarks
    ``{"keypoints" [[x, y, score]]}`` with the whole image as the crop.

    With ``fast`` (the default) an eager model is put on the inference path first (a folded copy:
    ``loaded`` is not changed); a model loaded with ``fast`` or an ONNX model runs as it is.
    ``ecfg`` gives the test protocol of the tasks that have one (its protocol fields only; None:
    the defaults).
    """
    import copy

    from hrnet.data.io import read_image

    if ecfg is not None:
        loaded.task.check_protocol(ecfg)
    if fast and _inference_kind(loaded.model) == "eager":
        model = inference_model(copy.deepcopy(loaded.model), loaded.config.task, device=device)
        loaded = dataclasses.replace(loaded, model=model)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    used: set[str] = set()
    with torch.inference_mode():
        for path in files:
            name, n = path.stem, 1
            while name in used:  # a stem met before (a/x.png, b/x.png, b/x.jpg): x-2, x-3, ...
                n += 1
                name = f"{path.stem}-{n}"
            used.update((name, f"{name}_mask"))  # segmentation writes <name>_mask.png beside it
            picture = out_dir / f"{name}.png"
            record: dict[str, Any] = {"file": str(path)}
            record.update(
                loaded.task.predict_image(
                    loaded.model,
                    loaded.config,
                    loaded.info,
                    read_image(path),
                    device=device,
                    picture=picture,
                    ecfg=ecfg,
                )
            )
            record["picture"] = str(picture)
            records.append(record)
    return records
