"""Checkpoints: atomic writes, safe loads, and the random-number-generator states of a run.

A training checkpoint (``checkpoints/last.pt``) is a plain dict::

    {"format": CHECKPOINT_FORMAT, "config": TrainConfig.to_dict(), "model": state_dict,
     "optimizer": ..., "scheduler": ..., "scaler": ... | None,
     "position": {"step", "epoch", "batch_in_epoch", "sampler_seed"},
     "rng": [per-rank RNG states], "info": dataset facts (class names, ...)}

A final model file (``model.pt``) holds ``{"format": MODEL_FORMAT, "config", "model", "info"}``.
Both hold only tensors and plain Python values, so they load with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrnet.data.io import temporary_sibling
from hrnet.errors import HRNetError

CHECKPOINT_FORMAT = "hrnet-zoo/checkpoint/1"
MODEL_FORMAT = "hrnet-zoo/model/1"


# a save in progress and the signal that arrived during it (see interrupt)
_SAVING = {"depth": 0, "signal": None}


def interrupt(signum: int, _frame: object) -> None:
    """A signal handler (SIGINT, SIGTERM) raising KeyboardInterrupt: at once, or, while
    :func:`save_atomic` writes, as soon as the file is in place (an interrupt inside
    ``torch.save``'s zip writer turns into its RuntimeError and a traceback)."""
    if _SAVING["depth"]:
        _SAVING["signal"] = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` onto ``path``.

    A reader (or a run killed mid-write) sees either the old file or the new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_sibling(path)
    _SAVING["depth"] += 1
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        _SAVING["depth"] -= 1
    if not _SAVING["depth"] and _SAVING["signal"] is not None:  # deferred by interrupt()
        signum, _SAVING["signal"] = _SAVING["signal"], None
        raise KeyboardInterrupt(f"signal {signum}")


def load(path: str | Path, *, expect: str | None = None) -> dict[str, Any]:
    """Load a checkpoint or model file with ``weights_only=True`` (to the CPU).

    Args:
        path: the ``.pt`` file.
        expect: the ``format`` the file must carry (``CHECKPOINT_FORMAT`` / ``MODEL_FORMAT``);
            None accepts either.

    Raises:
        HRNetError: missing, unreadable or not one of ours.
    """
    path = Path(path)
    if not path.is_file():
        raise HRNetError(f"{path}: checkpoint not found")
    from hrnet.models.convert import load_tensors_only

    obj = load_tensors_only(path)  # HRNetError naming the file and the reason
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if fmt not in (CHECKPOINT_FORMAT, MODEL_FORMAT) or (expect is not None and fmt != expect):
        want = expect or f"{CHECKPOINT_FORMAT} or {MODEL_FORMAT}"
        raise HRNetError(f"{path}: not an hrnet-zoo file of format {want} (found {fmt!r})")
    return obj


# --------------------------------------------------------------------------------------------
# RNG states as weights_only-loadable values
# --------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch (CPU and CUDA) generator states as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, torch.tensor(py_state, dtype=torch.int64), py_gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states captured by :func:`rng_state`."""
    version, py_state, py_gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in py_state.tolist()), py_gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
