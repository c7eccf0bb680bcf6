"""Published weights as run folders: a checkpoint of any supported layout (mmpretrain, timm,
MMSegmentation, MMDetection, mmpose, the official HRNet repositories) loaded strictly into the
task model a configuration describes and written as ``model.pt``, so that ``hrnet evaluate``,
``hrnet predict`` and the registry treat it like a model trained here."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hrnet.engine import checkpoint as ckpt
from hrnet.engine.config import TrainConfig
from hrnet.errors import HRNetError

__all__ = ["import_weights"]


def import_weights(
    cfg: TrainConfig,
    weights: str | Path,
    out_dir: str | Path,
    *,
    partial: bool = False,
    split: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Build ``cfg``'s task model for its dataset, load ``weights`` into it and write
    ``out_dir/model.pt``.

    Args:
        cfg: the model and the data it is evaluated on (``cfg.pretrained`` is ignored).
        weights: a checkpoint file in any layout :func:`hrnet.models.load_pretrained` reads.
        partial: load what fits and report the rest instead of raising.
        split: the split whose dataset gives the class names (default ``cfg.val_split``).
        provenance: recorded in ``model.pt`` under ``"weights"`` (source, URL, sha256...).

    Raises:
        HRNetError: the checkpoint does not fit the model (keys named), or the data is missing.
    """
    from hrnet.models import load_pretrained
    from hrnet.tasks import get_task

    path = Path(weights)
    if not path.is_file():
        raise HRNetError(f"{path}: no such checkpoint file")
    cfg = dataclasses.replace(cfg, pretrained="")
    task = get_task(cfg.task, dataset=cfg.dataset, model=cfg.model)
    dataset = task.dataset(cfg, split or cfg.val_split, train=False)
    info = task.info(cfg, dataset)
    model = task.build_model(cfg, info)
    report = load_pretrained(model, path, partial=partial)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.pt"
    ckpt.save_atomic(
        {
            "format": ckpt.MODEL_FORMAT,
            "config": cfg.to_dict(),
            "info": info,
            "model": task.state_dict(model),
            "weights": {
                "file": str(path),
                "layout": report.layout,
                "loaded": len(report.loaded),
                **(provenance or {}),
            },
        },
        model_path,
    )
    return model_path


def resolve_weights(spec: str | Path, *, out: str | Path = "data/checkpoints") -> Path:
    """A checkpoint file, or a catalogued published checkpoint (``hrnet fetch --list``) fetched
    into ``out/<name>/`` with its published checksum (once: a second call finds it there)."""
    path = Path(spec)
    if path.is_file():
        return path
    from hrnet.data import catalog
    from hrnet.data.fetch import fetch_files

    name = str(spec)
    if name not in catalog.list_datasets():
        raise HRNetError(
            f"{name}: neither a checkpoint file nor a catalogued checkpoint (hrnet fetch --list)"
        )
    entry = catalog.get_dataset(name)
    files = catalog.resolve_files(entry, None)
    if len(files) != 1 or files[0].extract:
        raise HRNetError(f"{name}: a catalogue entry of data, not of one checkpoint file")
    result = fetch_files(name, files, out=Path(out))
    return Path(result.path) / files[0].filename
