"""The training loop: one visible loop for every task.

``train(cfg, out_dir=...)`` reads like a script, one comment per phase: set up the processes
and the randomness, build the data, the model, the optimizer and the schedule, restore a
checkpoint, then loop over micro-batches (forward under autocast, backward, an optimizer step
every ``accum_steps``), logging and checkpointing as it goes, and finally write ``model.pt``.
Task models return loss dicts (docs/ARCHITECTURE.md); the loop sums them.

Exact resume. The data order is a function of ``(seed, epoch)`` and each item's augmentation
of ``(seed, epoch, index)`` (:class:`SeededItems`), independent of the number of workers, so
a checkpoint only needs the position ``(epoch, batch_in_epoch)`` plus the model, optimizer,
schedule, scaler and generator states. In deterministic mode a run killed and resumed ends
with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from hrnet.engine import checkpoint as ckpt
from hrnet.engine import distributed
from hrnet.engine.config import TrainConfig, config_from_mapping
from hrnet.errors import HRNetError
from hrnet.tasks.base import Task, get_task

__all__ = ["ShardedBatchSampler", "TrainResult", "lr_factor", "train"]

# called as log(metrics, step) on the main process (MLflow through hrnet.mlops.tracking)
LogFn = Callable[[dict[str, float], int], None]

# fields that may change between a run and its resume without changing the result
_RESUMABLE_CHANGES = frozenset({"workers", "checkpoint_every", "log_every", "device", "epochs", "iters"})
# settings that name a file or folder: the same one written another way (relative, absolute) is no change
_PATH_FIELDS = frozenset({"data", "pretrained", "init_from"})


@dataclass(frozen=True)
class TrainResult:
    """What a finished run left behind."""

    model_path: Path  # runs/<row>/model.pt
    steps: int  # optimizer steps taken in total (including before a resume)
    seconds: float  # wall time of this invocation
    final_losses: dict[str, float]  # mean losses of the last logging window


# --------------------------------------------------------------------------------------------
# Data order and per-item randomness
# --------------------------------------------------------------------------------------------


class ShardedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` keys: a seeded permutation per epoch, cut into global
    batches of ``batch_size * world_size``, each rank taking its contiguous slice.

    The slice layout makes ``world_size`` processes with ``batch_size`` see, together, exactly
    the global batch one process with ``batch_size * world_size`` would. Incomplete global
    batches are dropped. :meth:`set_epoch` picks the permutation and the first batch (resume).
    """

    def __init__(
        self, num_items: int, *, batch_size: int, world_size: int, rank: int, seed: int, shuffle: bool
    ) -> None:
        self.num_items = num_items
        self.batch_size = batch_size
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.batches_per_epoch = num_items // (batch_size * world_size)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start`` on."""
        self.epoch = epoch
        self.start = start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = list(range(self.num_items))
        global_batch = self.batch_size * self.world_size
        for b in range(self.start, self.batches_per_epoch):
            first = b * global_batch + self.rank * self.batch_size
            yield [(self.epoch, i) for i in order[first : first + self.batch_size]]

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)


class SeededItems(Dataset):
    """Wraps a dataset so that item ``index`` of epoch ``epoch`` is read (and augmented) under
    generators seeded from ``(seed, epoch, index)``; the caller's generator states are restored.

    Keys are the ``(epoch, index)`` pairs of :class:`ShardedBatchSampler`.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _seed(self, key: tuple[int, int]) -> None:
        epoch, index = key
        seed = int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        with _caller_state_kept():
            self._seed(key)
            return self.dataset[key[1]]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        # a batch at once (the DataLoader's fetcher calls this when it exists): the caller's
        # generator states are saved and restored once per batch, not per item (saving numpy's
        # takes ~70 us, as long as reading a small image)
        items = []
        with _caller_state_kept():
            for key in keys:
                self._seed(key)
                items.append(self.dataset[key[1]])
        return items


@contextlib.contextmanager
def _caller_state_kept() -> Iterator[None]:
    py, npy, pt = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(pt)


def _worker_init(worker_id: int) -> None:
    # each worker's own generators start from the loader's per-worker seed
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


# --------------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------------


def lr_factor(step: int, cfg: TrainConfig, *, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of ``cfg.lr`` for optimizer step ``step`` (0-based): warmup x schedule.

    ``step``: x ``gamma`` per milestone passed (milestones in epochs, or steps when
    ``cfg.iters``; each passed ``milestone_shift`` early); ``poly``: ``(1 - t)^poly_power``
    from 1 to ``min_lr / lr``; ``cosine``: half a cosine from 1 to ``min_lr / lr``;
    ``t = step / total_steps``. For the first
    ``warmup_iters`` steps the warmup multiplies the result: linear from ``warmup_factor`` to 1,
    or ``constant`` at ``warmup_factor`` (mmcv's ``LrUpdaterHook`` warmups).
    """
    t = min(step / max(total_steps, 1), 1.0)
    floor = cfg.min_lr / cfg.lr
    if cfg.schedule == "step":
        unit = 1 if cfg.iters else steps_per_epoch
        factor = cfg.gamma ** sum(step >= (m - cfg.milestone_shift) * unit for m in cfg.milestones)
    elif cfg.schedule == "poly":
        factor = floor + (1 - floor) * (1 - t) ** cfg.poly_power
    else:  # cosine
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    if step < cfg.warmup_iters:
        if cfg.warmup == "constant":
            factor *= cfg.warmup_factor
        else:
            alpha = step / cfg.warmup_iters
            factor *= cfg.warmup_factor + (1 - cfg.warmup_factor) * alpha
    return factor


def _optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD / AdamW / Adam over the trainable parameters, in PyTorch's fused implementation where
    the parameters allow it (floating point, on the CPU or a CUDA GPU): one kernel per parameter
    instead of ~10 small ops. For HRNet-W18-small's 279 tensors on 2 CPU threads an AdamW step takes
    6 ms fused against 45 ms in the per-tensor loop PyTorch picks by default on the CPU (SGD 4 vs
    15 ms): a fifth of a 64x64 segmentation step. Same update rule; the rounding differs."""
    params: list[Any] = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if cfg.bias_lr_mult != 1.0 or cfg.bias_decay_mult != 1.0:
        biases = _non_norm_biases(model)
        params = [
            {"params": [p for p in params if id(p) not in biases]},
            {
                "params": [p for p in params if id(p) in biases],
                "lr": cfg.lr * cfg.bias_lr_mult,
                "weight_decay": cfg.weight_decay * cfg.bias_decay_mult,
            },
        ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
            fused=fused,
        )
    betas = (cfg.momentum, 0.999)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay, fused=fused)
    return torch.optim.Adam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay, fused=fused)


def _non_norm_biases(model: nn.Module) -> set[int]:
    """``id``s of the ``bias`` parameters of every module but the normalisation layers (batch,
    instance, group and layer norm): those mmcv's ``DefaultOptimizerConstructor`` gives
    ``bias_lr_mult`` and ``bias_decay_mult`` (mmcv v1.7 ``runner/optimizer/default_constructor.py``)."""
    norms = (
        nn.modules.batchnorm._BatchNorm,
        nn.modules.instancenorm._InstanceNorm,
        nn.GroupNorm,
        nn.LayerNorm,
    )
    return {
        id(module.bias)
        for module in model.modules()
        if not isinstance(module, norms) and isinstance(getattr(module, "bias", None), nn.Parameter)
    }


# --------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------


def set_determinism(cfg: TrainConfig) -> None:
    """Seed every generator; in deterministic mode also forbid nondeterministic kernels."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def train(
    cfg: TrainConfig,
    *,
    out_dir: str | Path,
    resume: bool = False,
    log: LogFn | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``cfg`` and write ``out_dir/model.pt`` (and ``checkpoints/last.pt`` on the way).

    Args:
        cfg: the resolved configuration.
        out_dir: the run folder ``runs/<row>``.
        resume: continue from ``out_dir/checkpoints/last.pt`` when it exists.
        log: receives ``(metrics, step)`` on the main process every ``cfg.log_every`` steps.
        progress: show a progress bar on the main process.

    Under torchrun each process calls this; the group is set up from the environment.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    last_path = out_dir / "checkpoints" / "last.pt"
    task = get_task(
        cfg.task, dataset=cfg.dataset, model=cfg.model
    )  # an unknown task or format fails before any work

    # -- processes, device, randomness -----------------------------------------------------
    dist_info, device = distributed.setup(cfg.device)
    set_determinism(cfg)

    # -- data ------------------------------------------------------------------------------
    train_set = task.dataset(cfg, cfg.train_split, train=True)
    if dist_info.is_main:
        for note in getattr(train_set, "notes", ()):  # e.g. images a detector does not train on
            print(note)
    info = task.info(cfg, train_set)
    sampler = ShardedBatchSampler(
        len(train_set),  # type: ignore[arg-type]
        batch_size=cfg.batch_size,
        world_size=dist_info.world_size,
        rank=dist_info.rank,
        seed=cfg.seed,
        shuffle=True,
    )
    micro_per_epoch = sampler.batches_per_epoch - sampler.batches_per_epoch % cfg.accum_steps
    if micro_per_epoch == 0:
        raise HRNetError(
            f"{cfg.data}: {len(train_set)} training images are fewer than one global batch "  # type: ignore[arg-type]
            f"({cfg.batch_size} x {dist_info.world_size} processes x {cfg.accum_steps} accumulation steps)"
        )
    sampler.batches_per_epoch = micro_per_epoch
    steps_per_epoch = micro_per_epoch // cfg.accum_steps
    total_steps = cfg.iters or cfg.epochs * steps_per_epoch
    loader = DataLoader(
        SeededItems(train_set, cfg.seed),
        batch_sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=task.collate,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init,
        persistent_workers=False,
    )

    # -- model -----------------------------------------------------------------------------
    model = task.build_model(cfg, info)
    if cfg.init_from:
        _init_from(task, model, cfg, is_main=dist_info.is_main)
    model = model.to(device)
    if cfg.sync_bn and dist_info.distributed and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)

    # -- optimizer, schedule, gradient scaler ---------------------------------------------
    optimizer = _optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)

    # -- resume ----------------------------------------------------------------------------
    step, epoch, batch_in_epoch = 0, 0, 0
    history: list[dict[str, float]] = []
    if resume and last_path.is_file():
        state = ckpt.load(last_path, expect=ckpt.CHECKPOINT_FORMAT)
        _check_resumable(config_from_mapping(state["config"], source=str(last_path)), cfg, last_path)
        task.load_state_dict(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        pos = state["position"]
        step, epoch, batch_in_epoch = pos["step"], pos["epoch"], pos["batch_in_epoch"]
        rngs = state["rng"]
        ckpt.set_rng_state(rngs[dist_info.rank] if dist_info.rank < len(rngs) else rngs[0])
        history = [h for h in state.get("history", []) if h["step"] <= step]
        if dist_info.is_main:
            print(
                f"resuming {last_path} at step {step}/{total_steps} (epoch {epoch}, batch {batch_in_epoch})"
            )

    if dist_info.is_main:  # now that the data, model and resume are accepted (a refusal keeps the old one)
        from hrnet.data.io import write_json_atomic

        write_json_atomic(out_dir / "config.json", cfg.to_dict(), indent=2)

    ddp_model: nn.Module = model
    if dist_info.distributed:
        ddp_model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=task.find_unused_parameters,
        )

    def save_checkpoint() -> None:
        rngs = distributed.all_gather_objects(ckpt.rng_state())
        if dist_info.is_main:
            ckpt.save_atomic(
                {
                    "format": ckpt.CHECKPOINT_FORMAT,
                    "config": cfg.to_dict(),
                    "info": info,
                    "model": task.state_dict(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                    "position": {
                        "step": step,
                        "epoch": epoch,
                        "batch_in_epoch": batch_in_epoch,
                        "sampler_seed": cfg.seed,
                    },
                    "rng": rngs,
                    "history": history,
                },
                last_path,
            )

    bar = _progress_bar(total_steps, step, enabled=progress and dist_info.is_main)
    window: dict[str, float] = {}
    window_batches, window_images, window_start = 0, 0, time.perf_counter()
    model.train()
    if cfg.norm_eval:  # statistics frozen at their pretrained values; weights still learn
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    optimizer.zero_grad(set_to_none=True)

    # -- the loop: epochs of micro-batches until total_steps optimizer steps ----------------
    while step < total_steps:
        sampler.set_epoch(epoch, batch_in_epoch)
        for images, targets in loader:
            images, targets = task.to_device(images, targets, device, channels_last=cfg.channels_last)
            batch_in_epoch += 1
            sync_now = batch_in_epoch % cfg.accum_steps == 0

            # forward: the task model returns its loss dict; the sum is the objective
            no_sync = (
                ddp_model.no_sync() if (dist_info.distributed and not sync_now) else contextlib.nullcontext()
            )
            with no_sync:
                with torch.autocast(
                    device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
                ):
                    losses = ddp_model(images, targets)
                loss = sum(losses.values())
                if not torch.isfinite(loss):
                    raise HRNetError(
                        f"training diverged at step {step} (epoch {epoch}): loss is {loss.item()} "
                        f"({ {k: v.item() for k, v in losses.items()} }); lower lr or enable warmup"
                    )
                # backward (scaled for fp16), gradients summed over the accumulation window
                scaler.scale(loss / cfg.accum_steps).backward()

            for k, v in losses.items():
                window[k] = window.get(k, 0.0) + float(v.detach())
            window["loss"] = window.get("loss", 0.0) + float(loss.detach())
            window_batches += 1
            window_images += task.batch_size_of(images) * dist_info.world_size
            if not sync_now:
                continue

            # optimizer step: unscale, clip, step, schedule
            if cfg.clip_grad > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            if batch_in_epoch == micro_per_epoch:  # epoch done: the position moves to the next one
                epoch, batch_in_epoch = epoch + 1, 0

            # logging: window means over ranks, learning rate, throughput
            if step % cfg.log_every == 0 or step == total_steps:
                metrics = distributed.mean_over_ranks(
                    {f"train/{k}": v / window_batches for k, v in window.items()}, device
                )
                elapsed = time.perf_counter() - window_start
                metrics["train/lr"] = optimizer.param_groups[0]["lr"]
                metrics["train/images_per_s"] = window_images / max(elapsed, 1e-9)
                metrics["train/epoch"] = epoch + batch_in_epoch / micro_per_epoch
                if dist_info.is_main:
                    history.append({"step": step, **metrics})
                    if log is not None:
                        log(metrics, step)
                    bar.set_postfix(
                        loss=f"{metrics['train/loss']:.4f}", img_s=f"{metrics['train/images_per_s']:.0f}"
                    )
                window, window_batches, window_images = {}, 0, 0
                window_start = time.perf_counter()
            bar.update(1)

            # checkpoint: every checkpoint_every steps and at the end
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == total_steps:
                save_checkpoint()
            if step >= total_steps or batch_in_epoch == 0:
                break
    bar.close()

    # -- final model -------------------------------------------------------------------------
    model_path = out_dir / "model.pt"
    if dist_info.is_main:
        ckpt.save_atomic(
            {
                "format": ckpt.MODEL_FORMAT,
                "config": cfg.to_dict(),
                "info": info,
                "model": task.state_dict(model),
            },
            model_path,
        )
        from hrnet.data.io import write_json_atomic

        write_json_atomic(out_dir / "history.json", history, indent=1)
    distributed.barrier()
    final = {
        k.removeprefix("train/"): v
        for k, v in (history[-1] if history else {}).items()
        if k.startswith("train/loss")
    }
    distributed.teardown()
    return TrainResult(model_path, step, time.perf_counter() - started, final)


def _init_from(task: Task, model: nn.Module, cfg: TrainConfig, *, is_main: bool) -> None:
    """Load ``cfg.init_from`` into the whole task model: strictly, except that the class layers
    are re-initialised (and said so) when only they differ; with ``init_partial`` whatever fits."""
    from hrnet.models import load_pretrained

    if cfg.init_partial:
        report = load_pretrained(model, cfg.init_from, partial=True)
        if is_main:
            print(report.summary())
        return
    try:
        load_pretrained(model, cfg.init_from)
        return
    except HRNetError as strict_error:
        report = load_pretrained(model, cfg.init_from, partial=True)
        left = [*report.missing, *(k for k, _, _ in report.mismatched)]
        if report.unused or not left or any(not k.startswith(task.class_layers) for k in left):
            raise strict_error from None
    if is_main:
        shapes = ", ".join(f"{k} {tuple(c)} -> {tuple(m)}" for k, c, m in report.mismatched)
        print(f"{cfg.init_from}: another class count; re-initialised {shapes or ', '.join(left)}")


def _same_file(a: Any, b: Any) -> bool:
    """Two path settings naming one file or folder (``digits`` and ``/abs/path/digits``)."""
    try:
        return bool(a) and bool(b) and os.path.samefile(a, b)
    except (OSError, TypeError, ValueError):
        return False


def _check_resumable(saved: TrainConfig, cfg: TrainConfig, path: Path) -> None:
    a, b = saved.to_dict(), cfg.to_dict()
    changed = sorted(
        k
        for k in a
        if a[k] != b[k] and k not in _RESUMABLE_CHANGES and not (k in _PATH_FIELDS and _same_file(a[k], b[k]))
    )
    if changed:
        details = ", ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in changed)
        raise HRNetError(
            f"{path}: cannot resume, the configuration changed ({details}); remove it to start over"
        )


def _progress_bar(total: int, initial: int, *, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, desc="train"
    )
