"""Throughput of this project's HRNet against timm's, measured in one process on one machine.

For each model, task, precision and variant the script builds our model and timm's model of the
same name, warms both up, then times them in alternating rounds (ours, timm, ours, timm, ...) so
that a change in machine load hits both; it reports the median images/s, the ratio to timm,
peak GPU memory, achieved TFLOP/s and MFU, and writes everything to JSON with the machine's
description. See docs/PERFORMANCE.md for the commands and the recorded figures.

Tasks (``--tasks``):
  infer  classifier forward, ``torch.no_grad``, batch ``--infer-batch`` at ``--size``;
  train  forward + cross-entropy + backward + SGD(momentum 0.9) step, batch ``--train-batch``;
  seg    segmentation inference at ``--seg-size`` (batch 1): our ``fcn_hrnetv2_<w>`` (backbone +
         HRNetV2 concat + FCN head + upsampling) against timm's ``features_only`` model
         (backbone + its "incre" Bottleneck per branch): not the same work, see GFLOP/image;
  loader the W18 training input pipeline (JPEG decode + RandomResizedCrop 224 + flip +
         normalise) on synthetic JPEGs with ``--loader-workers`` DataLoader workers, and on
         CUDA the batched GPU JPEG decoder.

Variants (``--variants``), applied to both implementations alike:
  eager           the model as built (channels_last unless ``--memory-format contiguous``);
  fast            inference: BatchNorm folded into the convolutions + the forward captured as
                  one CUDA graph; training: the whole step captured as one CUDA graph
                  (hrnet.models.fast); on CPU only the folding applies (no training row);
  compile         torch.compile, default mode;
  compile-max     torch.compile "max-autotune-no-cudagraphs";
  compile-graphs  torch.compile "reduce-overhead" (CUDA graphs), CUDA only.

Run from the repository root (nothing needs installing on the GPU image; timm is imported here
only): ``python bench/bench.py --device cuda --out bench-results.json`` or, on a CPU,
``python bench/bench.py --device cpu --quick``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

TASKS = ("infer", "train", "seg", "loader")
VARIANTS = ("eager", "fast", "compile", "compile-max", "compile-graphs")
PRECISIONS = ("fp32", "bf16")
IMPLS = ("ours", "timm")
NUM_CLASSES = 1000
# a dense bf16 figure for one H100 (NVIDIA's datasheet says ~989 TFLOP/s for SXM)
DEFAULT_PEAK_TFLOPS_CUDA = 790.0


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def _csv(kind: str, allowed: tuple[str, ...] | None = None) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if allowed is not None:
            bad = [t for t in items if t not in allowed]
            if bad:
                raise argparse.ArgumentTypeError(f"unknown {kind} {bad}; choose from {', '.join(allowed)}")
        return items

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``python bench/bench.py`` and ``hrnet bench``)."""
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="where to run (default cuda)"
    )
    parser.add_argument("--quick", action="store_true", help="a short run: W18, fp32, few iterations")
    parser.add_argument(
        "--models",
        type=_csv("model"),
        default=None,
        help="backbones (default hrnet_w18_small,hrnet_w18,hrnet_w32,hrnet_w48)",
    )
    parser.add_argument(
        "--tasks", type=_csv("task", TASKS), default=None, help=f"of {','.join(TASKS)} (default all)"
    )
    parser.add_argument(
        "--variants",
        type=_csv("variant", VARIANTS),
        default=None,
        help=f"of {','.join(VARIANTS)} (default eager,fast)",
    )
    parser.add_argument(
        "--precisions",
        type=_csv("precision", PRECISIONS),
        default=None,
        help="fp32,bf16 (default both on CUDA)",
    )
    parser.add_argument("--impls", type=_csv("implementation", IMPLS), default=list(IMPLS), help="ours,timm")
    parser.add_argument("--size", type=int, default=224, help="classification input size (default 224)")
    parser.add_argument("--infer-batch", type=int, default=None, help="default 256 (CUDA) / 8 (CPU)")
    parser.add_argument("--train-batch", type=int, default=None, help="default 128 (CUDA) / 8 (CPU)")
    parser.add_argument(
        "--seg-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="default 1024 2048 (CUDA) / 256 512",
    )
    parser.add_argument("--memory-format", choices=("channels_last", "contiguous"), default="channels_last")
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps per model (default 5 CUDA / 1 CPU)"
    )
    parser.add_argument(
        "--iters", type=int, default=None, help="steps per timed round (default 10 CUDA / 2 CPU)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per model (default 3)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default 1 on CPU, torch's choice on CUDA)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="peak for MFU (default 790 on CUDA, a dense-bf16 figure for one H100; none on CPU)",
    )
    parser.add_argument(
        "--loader-workers", type=int, nargs="+", default=None, help="DataLoader workers to try"
    )
    parser.add_argument(
        "--loader-images", type=int, default=None, help="synthetic JPEGs (default 512 / 64 CPU)"
    )
    parser.add_argument("--loader-batch", type=int, default=64, help="loader batch size (default 64)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")


@dataclass(frozen=True)
class Settings:
    """The resolved options of one run (device-dependent defaults filled in)."""

    device: str
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    variants: tuple[str, ...]
    precisions: tuple[str, ...]
    impls: tuple[str, ...]
    size: int
    infer_batch: int
    train_batch: int
    seg_size: tuple[int, int]
    channels_last: bool
    warmup: int
    iters: int
    repeats: int
    threads: int | None
    peak_tflops: float | None
    loader_workers: tuple[int, ...]
    loader_images: int
    loader_batch: int


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Fill in the device defaults (GPU: large batches; CPU: small batches)."""
    cuda = args.device == "cuda"
    if args.quick:
        models, tasks, precisions = ["hrnet_w18"], ["infer", "train", "loader"], ["fp32"]
    else:
        models = ["hrnet_w18_small", "hrnet_w18", "hrnet_w32", "hrnet_w48"]
        tasks = list(TASKS)
        precisions = ["fp32", "bf16"] if cuda else ["fp32"]

    def pick(value: Any, gpu: Any, cpu: Any, quick: Any = None) -> Any:
        if value is not None:
            return value
        if args.quick and quick is not None:
            return quick
        return gpu if cuda else cpu

    return Settings(
        device=args.device,
        models=tuple(args.models or models),
        tasks=tuple(args.tasks or tasks),
        variants=tuple(args.variants or ("eager", "fast")),
        precisions=tuple(args.precisions or precisions),
        impls=tuple(args.impls),
        size=args.size,
        infer_batch=pick(args.infer_batch, 256, 8, 64 if cuda else 2),
        train_batch=pick(args.train_batch, 128, 8, 64 if cuda else 2),
        seg_size=tuple(pick(args.seg_size, (1024, 2048), (256, 512))),
        channels_last=args.memory_format == "channels_last",
        warmup=pick(args.warmup, 5, 1, 3 if cuda else 1),
        iters=pick(args.iters, 10, 2, 5 if cuda else 1),
        repeats=pick(args.repeats, 3, 3),
        threads=args.threads if args.threads is not None or cuda else 1,  # CPU machines are shared
        peak_tflops=pick(args.peak_tflops, DEFAULT_PEAK_TFLOPS_CUDA, None),
        loader_workers=tuple(pick(args.loader_workers, (4, 8, 15), (0, 1), (0,))),
        loader_images=pick(args.loader_images, 512, 64),
        loader_batch=args.loader_batch,
    )


# --------------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------------


def machine_info(device: str) -> dict[str, Any]:
    """What the figures were measured on: versions, GPU/CPU, date, command, git commit."""
    import torch

    info: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    with contextlib.suppress(ImportError):
        import timm

        info["timm"] = timm.__version__
    with contextlib.suppress(ImportError):
        import torchvision

        info["torchvision"] = torchvision.__version__
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        info["git_commit"] = commit.stdout.strip() or None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": torch.cuda.get_device_name(0),
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32": torch.backends.cudnn.allow_tf32,
        }
    return info


# --------------------------------------------------------------------------------------------
# Models and the step of each case
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One measured configuration."""

    task: str  # infer | train | seg
    model: str  # backbone name, e.g. hrnet_w18
    impl: str  # ours | timm
    variant: str  # eager | fast | compile | compile-max | compile-graphs
    precision: str  # fp32 | bf16 (autocast)
    batch: int
    size: tuple[int, int]  # (H, W)


@dataclass
class Result:
    """The figures of one case (``None`` where not measured)."""

    case: Case
    images_per_s: float | None = None
    ms_per_step: float | None = None
    round_images_per_s: list[float] = field(default_factory=list)
    setup_s: float | None = None  # build + warm-up (includes compilation / graph capture)
    peak_mem_gib: float | None = None  # max_memory_allocated during build + warm-up, minus before
    gflop_per_image: float | None = None  # 2 x conv/linear MACs, x3 for training
    tflops: float | None = None
    mfu: float | None = None
    rel_error: float | None = None  # inference: max |out - eager fp32| / max |eager fp32|
    error: str | None = None

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out |= out.pop("case")
        return out


class Skip(Exception):
    """This case does not apply on this device."""


def _suffix(model: str) -> str:
    return model.removeprefix("hrnet_")


def build_model(impl: str, task: str, model: str) -> Any:
    """Our or timm's module for ``task``, on the CPU, freshly initialised."""
    if impl == "ours":
        from hrnet.models import create_model

        if task == "seg":
            return create_model(f"fcn_hrnetv2_{_suffix(model)}", num_classes=19)
        return create_model(model, num_classes=NUM_CLASSES)
    import timm

    if task == "seg":
        return timm.create_model(model, pretrained=False, features_only=True)
    return timm.create_model(model, pretrained=False, num_classes=NUM_CLASSES)


_FLOPS_CACHE: dict[tuple[str, str, str, tuple[int, int]], float | None] = {}


def gflop_per_image(case: Case) -> float | None:
    """2 x conv+linear MACs of one forward of the case's model (meta device, no compute)."""
    import torch

    from hrnet.models.flops import count_flops

    key = (case.impl, case.task, case.model, case.size)
    if key not in _FLOPS_CACHE:
        try:
            with torch.device("meta"):
                model = build_model(case.impl, case.task, case.model)
            _FLOPS_CACHE[key] = 2 * count_flops(model, case.size).macs / 1e9
        except Exception:  # a model that does not run on meta: no MFU, not an error
            _FLOPS_CACHE[key] = None
    return _FLOPS_CACHE[key]


def _rel_error(actual: Any, expected: Any) -> float:
    import torch

    if isinstance(expected, dict):
        return max(_rel_error(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        return max(_rel_error(a, e) for a, e in zip(actual, expected))
    assert isinstance(actual, torch.Tensor)
    return float(
        (actual.float() - expected.float()).abs().max() / expected.float().abs().max().clamp_min(1e-12)
    )


@dataclass
class Runner:
    """A built case: ``step()`` runs one iteration; ``check()`` the error against eager fp32."""

    step: Callable[[], Any]
    check: Callable[[], float] | None
    keep: list[Any]  # objects that must stay alive (models, graphs, optimizers)


def _compile_kwargs(variant: str) -> dict[str, Any]:
    return {
        "compile": {"mode": "default", "cuda_graphs": False},
        "compile-max": {"mode": "max-autotune", "cuda_graphs": False},
        "compile-graphs": {"mode": "default", "cuda_graphs": True},
    }[variant]


def build_runner(case: Case, settings: Settings) -> Runner:
    """Build the model, inputs and step function of ``case`` on the settings' device."""
    import torch
    import torch.nn.functional as F

    from hrnet.models.fast import CUDAGraphInference, CUDAGraphTrainStep, compile_model, prepare_for_inference

    device = torch.device(settings.device)
    cuda = device.type == "cuda"
    if case.variant == "compile-graphs" and not cuda:
        raise Skip("CUDA graphs need CUDA")
    if case.variant == "fast" and case.task == "train" and not cuda:
        raise Skip("the fast training step is a CUDA graph")
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    dtype = torch.bfloat16 if case.precision == "bf16" else None

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    model = build_model(case.impl, case.task, case.model).to(device=device, memory_format=memory_format)
    images = torch.randn(case.batch, 3, *case.size, device=device).contiguous(memory_format=memory_format)

    if case.task == "train":
        targets = torch.randint(0, NUM_CLASSES, (case.batch,), device=device)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        if case.variant == "fast":
            graph_step = CUDAGraphTrainStep(
                model, optimizer, F.cross_entropy, images, targets, autocast_dtype=dtype, warmup_steps=3
            )
            return Runner(
                step=lambda: graph_step(images, targets), check=None, keep=[model, optimizer, graph_step]
            )
        forward = model if case.variant == "eager" else compile_model(model, **_compile_kwargs(case.variant))

        def train_step() -> Any:
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = F.cross_entropy(forward(images), targets)
            loss.backward()
            optimizer.step()
            return loss

        return Runner(step=train_step, check=None, keep=[model, optimizer, forward])

    # inference (classification or segmentation)
    model.eval()
    reference = None
    if case.variant != "eager" or dtype is not None:
        with torch.no_grad():
            reference = model(images)  # eager fp32: the yardstick of every other variant
    if case.variant == "fast":
        fast = prepare_for_inference(model, example_inputs=(images[:1],), inplace=True)
        if cuda:
            graphed = CUDAGraphInference(fast, images, autocast_dtype=dtype, warmup_steps=3)
            return Runner(
                step=lambda: graphed(images),
                check=lambda: _rel_error(graphed(images), reference),
                keep=[fast, graphed],
            )
        forward = fast
    elif case.variant == "eager":
        forward = model
    else:
        forward = compile_model(model, **_compile_kwargs(case.variant))

    def infer_step() -> Any:
        with torch.no_grad(), autocast():
            return forward(images)

    check = None if reference is None else lambda: _rel_error(infer_step(), reference)
    return Runner(step=infer_step, check=check, keep=[model, forward])


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_round(step: Callable[[], Any], iters: int, device: str) -> float:
    """Seconds for ``iters`` steps (CUDA events on the GPU, wall clock on the CPU)."""
    import torch

    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(iters):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    begin = time.perf_counter()
    for _ in range(iters):
        step()
    return time.perf_counter() - begin


@contextlib.contextmanager
def _memory_window(device: str) -> Iterator[dict[str, float]]:
    """Peak memory allocated inside the block, above what was allocated before it (GiB)."""
    import torch

    out: dict[str, float] = {}
    if device != "cuda":
        yield out
        return
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    yield out
    torch.cuda.synchronize()
    out["peak_gib"] = (torch.cuda.max_memory_allocated() - before) / 2**30


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:300]


def measure_group(cases: list[Case], settings: Settings, log: Callable[[str], None]) -> list[Result]:
    """Build and warm up every case of one group (same task/model/variant/precision, one per
    implementation), then time them in alternating rounds."""
    import torch

    if cases[0].variant.startswith("compile"):
        torch._dynamo.reset()  # many models share code objects: avoid the recompile limit
    results = {case: Result(case=case) for case in cases}
    runners: dict[Case, Runner] = {}
    for case in cases:
        result = results[case]
        begin = time.perf_counter()
        try:
            with _memory_window(settings.device) as memory:
                runner = build_runner(case, settings)
                for _ in range(settings.warmup):
                    runner.step()
                _sync(settings.device)
            result.setup_s = time.perf_counter() - begin
            result.peak_mem_gib = memory.get("peak_gib")
            if runner.check is not None:
                result.rel_error = runner.check()
            runners[case] = runner
            del runner  # only ``runners`` holds it, so clearing that frees the model
        except Skip as exc:
            result.error = f"skipped: {exc}"
        except Exception as exc:  # one failing case must not lose the others' figures
            result.error = _first_line(exc)
            traceback.print_exc(file=sys.stderr)
            _free(settings.device)
        log(
            f"  built {case.impl:<4} {case.task} {case.model} {case.variant} {case.precision}: "
            + (result.error or f"{result.setup_s:.1f} s")
        )

    for _ in range(settings.repeats):
        for case, runner in list(runners.items()):
            try:
                seconds = time_round(runner.step, settings.iters, settings.device)
            except Exception as exc:
                results[case].error = _first_line(exc)
                traceback.print_exc(file=sys.stderr)
                del runners[case]
                continue
            results[case].round_images_per_s.append(case.batch * settings.iters / seconds)

    for case, result in results.items():
        if result.round_images_per_s and result.error is None:
            result.images_per_s = statistics.median(result.round_images_per_s)
            result.ms_per_step = 1e3 * case.batch / result.images_per_s
            forward = gflop_per_image(case)
            if forward is not None:
                result.gflop_per_image = forward * (3 if case.task == "train" else 1)
                result.tflops = result.images_per_s * result.gflop_per_image / 1e3
                if settings.peak_tflops:
                    result.mfu = result.tflops / settings.peak_tflops
    runners.clear()
    _free(settings.device)
    return list(results.values())


def plan(settings: Settings) -> list[list[Case]]:
    """The groups to measure, in order: task, model, precision, variant; one case per impl."""
    cuda = settings.device == "cuda"
    groups = []
    for task in (t for t in settings.tasks if t != "loader"):
        for model in settings.models:
            for precision in settings.precisions:
                for variant in settings.variants:
                    if not cuda and (variant == "compile-graphs" or (variant == "fast" and task == "train")):
                        continue  # CUDA graphs only
                    batch = {"infer": settings.infer_batch, "train": settings.train_batch, "seg": 1}[task]
                    size = settings.seg_size if task == "seg" else (settings.size, settings.size)
                    base = Case(task, model, "ours", variant, precision, batch, tuple(size))
                    groups.append([replace(base, impl=impl) for impl in settings.impls])
    return groups


# --------------------------------------------------------------------------------------------
# Input pipeline
# --------------------------------------------------------------------------------------------


def _write_synthetic_jpegs(root: Path, count: int) -> list[Path]:
    """ImageNet-like JPEGs (500x375, smooth content plus noise, quality 90) in two class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        folder = root / "train" / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize(
            (500, 375), Image.BILINEAR
        )
        pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-12, 13, (375, 500, 3))
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def measure_loader(settings: Settings, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Images/s of the W18 training pipeline per worker count (second pass timed), and of
    torchvision's batched GPU JPEG decoder on CUDA."""
    import torch
    from torch.utils.data import DataLoader

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hrnet-bench-") as tmp:
        paths = _write_synthetic_jpegs(Path(tmp), settings.loader_images)
        try:
            from hrnet.data.imagefolder import ImageFolderDataset
            from hrnet.data.transforms import classification_train_transforms, collate_classification
        except ImportError as exc:
            return [{"what": "loader", "error": _first_line(exc)}]
        dataset = ImageFolderDataset(
            tmp, "train", transforms=classification_train_transforms(size=settings.size)
        )
        for workers in settings.loader_workers:
            loader = DataLoader(
                dataset,
                batch_size=settings.loader_batch,
                shuffle=True,
                num_workers=workers,
                collate_fn=collate_classification,
                pin_memory=settings.device == "cuda",
                persistent_workers=workers > 0,
                drop_last=False,
            )
            for _ in loader:  # first pass: worker start-up, file cache
                pass
            begin = time.perf_counter()
            count = sum(images.shape[0] for images, _ in loader)
            rate = count / (time.perf_counter() - begin)
            rows.append({"what": "loader", "workers": workers, "images": count, "images_per_s": rate})
            log(f"  loader workers={workers}: {rate:.0f} images/s")
            del loader
        if settings.device == "cuda":
            from torchvision.io import decode_jpeg

            data = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in paths]
            batch = [data[i % len(data)] for i in range(settings.loader_batch)]
            decode_jpeg(batch, device="cuda")
            torch.cuda.synchronize()
            begin = time.perf_counter()
            rounds = 10
            for _ in range(rounds):
                decode_jpeg(batch, device="cuda")
            torch.cuda.synchronize()
            rate = rounds * len(batch) / (time.perf_counter() - begin)
            rows.append({"what": "gpu_decode_jpeg", "batch": len(batch), "images_per_s": rate})
            log(f"  GPU decode_jpeg batch {len(batch)}: {rate:.0f} images/s")
    return rows


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_rows(results: list[Result]) -> list[dict[str, str]]:
    """One row per (task, model, precision, variant): ours and timm side by side and their ratios."""
    by_key: dict[tuple[str, str, str, str], dict[str, Result]] = {}
    for r in results:
        c = r.case
        by_key.setdefault((c.task, c.model, c.precision, c.variant), {})[c.impl] = r
    rows = []
    for (task, model, precision, variant), pair in by_key.items():
        ours, timm = pair.get("ours"), pair.get("timm")
        timm_eager = by_key.get((task, model, precision, "eager"), {}).get("timm")

        def ratio(a: Result | None, b: Result | None) -> str:
            if a is None or b is None or a.images_per_s is None or b.images_per_s is None:
                return "-"
            return f"{a.images_per_s / b.images_per_s:.2f}x"

        def paired(a: Result | None, b: Result | None) -> str:
            """Median of the per-round ratios: rounds alternate, so each pair saw the same load."""
            if a is None or b is None or a.images_per_s is None or b.images_per_s is None:
                return "-"
            if len(a.round_images_per_s) != len(b.round_images_per_s):
                return ratio(a, b)
            pairs = [x / y for x, y in zip(a.round_images_per_s, b.round_images_per_s)]
            return f"{statistics.median(pairs):.2f}x"

        any_result = ours or timm
        assert any_result is not None
        rows.append(
            {
                "task": task,
                "model": model,
                "prec": precision,
                "variant": variant,
                "batch": str(any_result.case.batch),
                "ours img/s": _fmt(ours.images_per_s, ",.1f") if ours else "-",
                "timm img/s": _fmt(timm.images_per_s, ",.1f") if timm else "-",
                "ours/timm": paired(ours, timm),
                "vs timm eager": paired(ours, timm) if variant == "eager" else ratio(ours, timm_eager),
                "ours GiB": _fmt(ours.peak_mem_gib, ".2f") if ours else "-",
                "timm GiB": _fmt(timm.peak_mem_gib, ".2f") if timm else "-",
                "ours MFU": _fmt(ours.mfu * 100, ".1f") + "%" if ours and ours.mfu is not None else "-",
                "ours err": _fmt(ours.rel_error, ".1e") if ours else "-",
                "note": "; ".join(f"{r.case.impl}: {r.error}" for r in pair.values() if r.error),
            }
        )
    return rows


def print_table(rows: list[dict[str, str]], title: str) -> None:
    """A rich table when rich is installed (not on the GPU image), else plain columns."""
    if not rows:
        return
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in rows[0]}
        print(title)
        print("  ".join(k.ljust(w) for k, w in widths.items()))
        for r in rows:
            print("  ".join(r[k].ljust(w) for k, w in widths.items()))
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(
            key, justify="left" if key in ("task", "model", "prec", "variant", "note") else "right"
        )
    for r in rows:
        table.add_row(*r.values())
    Console(width=240).print(table)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args`` (see :func:`add_arguments`); 0 on success, 1 if a
    case failed (its error is in the table and the JSON)."""
    import torch

    settings = resolve_settings(args)
    if settings.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    if settings.device == "cuda":
        torch.backends.cudnn.benchmark = True  # the GPU setup
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    info = machine_info(settings.device)
    log(
        f"hrnet bench on {info.get('gpu', info['cpu'])} ({settings.device}), torch {info['torch']}, "
        f"timm {info.get('timm', 'missing')}, load average {info['load_average']}"
    )
    results: list[Result] = []
    for group in plan(settings):
        c = group[0]
        log(f"{c.task} {c.model} {c.precision} {c.variant} batch {c.batch} at {c.size[0]}x{c.size[1]}")
        results += measure_group(group, settings, log)
    loader_rows = measure_loader(settings, log) if "loader" in settings.tasks else []

    rows = summary_rows(results)
    print_table(
        rows,
        f"ours vs timm, images/s: median of {settings.repeats} alternating rounds x {settings.iters} steps; "
        "ours/timm = median of the per-round ratios",
    )
    for row in loader_rows:
        print(json.dumps(row))
    if args.out is not None:
        info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        payload = {
            "machine": info,
            "settings": asdict(settings),
            "results": [r.row() for r in results],
            "summary": rows,
            "loader": loader_rows,
        }
        write_json(args.out, payload)
        log(f"wrote {args.out}")
    failed = [r for r in results if r.error and not r.error.startswith("skipped")]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python bench/bench.py ...``: the repository root goes on ``sys.path`` when ``hrnet`` is
    not installed (the GPU image runs the checkout as is)."""
    try:
        import hrnet  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
