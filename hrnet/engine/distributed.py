"""Distributed data parallel: process-group setup, the torchrun launcher and small collectives.

``hrnet train --nproc-per-node N`` re-runs itself under ``python -m torch.distributed.run``
(:func:`launch`); each worker then finds ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in its
environment and joins the group in :func:`setup` (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hrnet.errors import HRNetError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0  # global rank
    local_rank: int = 0  # rank on this node (picks the GPU)
    world_size: int = 1  # processes in the job

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True inside a worker started by torchrun (its environment names the group)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise HRNetError(f"config: device {name!r} is not a torch device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise HRNetError(f"config: device {name!r} asked for but CUDA is not available")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def setup(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when started by torchrun; pick this process's device."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistInfo(), resolve_device(device_name)
    info = DistInfo(
        rank=int(os.environ["RANK"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=int(os.environ["WORLD_SIZE"]),
    )
    device = resolve_device(device_name, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, **kwargs)
    return info, device


def teardown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (a one-element list outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of floats across ranks (identity outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


# --------------------------------------------------------------------------------------------
# Launcher
# --------------------------------------------------------------------------------------------


def torchrun_command(
    module_args: Sequence[str],
    *,
    nproc_per_node: int,
    nnodes: int,
    rdzv_endpoint: str,
    rdzv_id: str,
) -> list[str]:
    """The ``python -m torch.distributed.run ... -m hrnet.cli <module_args>`` command line.

    One node uses a standalone local rendezvous; several use c10d at ``rdzv_endpoint``.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}"]
    if nnodes == 1 and not rdzv_endpoint:
        cmd.append("--standalone")
    else:
        if not rdzv_endpoint:
            raise HRNetError("train: --nnodes > 1 needs --rdzv-endpoint HOST:PORT")
        cmd += [
            f"--nnodes={nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={rdzv_endpoint}",
            f"--rdzv-id={rdzv_id}",
        ]
    return [*cmd, "-m", "hrnet.cli", *module_args]


def launch(cmd: Sequence[str]) -> int:
    """Run ``cmd`` in its own process group and wait; kill the whole group if we are
    interrupted, terminated or fail, so no worker outlives the launcher. Returns its exit code."""
    proc = subprocess.Popen(list(cmd), start_new_session=True)

    def _forward(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _forward)
    try:
        return proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
