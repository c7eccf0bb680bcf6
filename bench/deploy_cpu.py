"""CPU deployment benchmark: timm eager, ours eager, ours on the inference path, ours in ONNX Runtime.

Every case builds the models once, warms each up, then times them in interleaved rounds (timm,
ours eager, ours inference path, ours ONNX Runtime[, ours OpenVINO], timm, ...) so that a change
of machine load hits all of them; it reports the median milliseconds per batch, images/s and the
ratio to timm eager measured in the same run, plus each variant's max relative error against our
eager fp32 output.

Variants (all fp32, batch ``--batch``, ``--threads`` intra-op threads, ``torch.inference_mode``):
  timm eager     timm's model as built (NCHW);
  ours eager     ``hrnet.models.create_model`` as built (NCHW);
  ours folded    the default of ``hrnet evaluate``/``hrnet predict``
                 (``hrnet.engine.evaluate.inference_model``: BatchNorm folded, channels_last);
  ours onnxrt    ``hrnet.models.export.export_onnx`` (folded, fixed shape) run by ONNX Runtime's
                 CPU provider;
  ours openvino  the same ONNX file compiled by OpenVINO (only when ``import openvino`` works).

Cases: classification W18-small, W18, W48 at 224; pose W32 at 256x192 (``pose_hrnet_w32``);
FCN W18 at 512x1024 (``fcn_hrnetv2_w18``). timm has no pose or segmentation HRNet: for those the
timm column is its ``features_only`` backbone of the same width (backbone + its "incre"
Bottleneck per branch, no head), which is not the same work; the ratio is printed anyway and
marked.

Run from the repository root: ``python bench/deploy_cpu.py --rounds 3 --out deploy-cpu.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# name -> (task, our model, timm model, timm features_only, (height, width))
CASES: dict[str, tuple[str, str, str, bool, tuple[int, int]]] = {
    "cls-w18-small": ("classification", "hrnet_w18_small", "hrnet_w18_small", False, (224, 224)),
    "cls-w18": ("classification", "hrnet_w18", "hrnet_w18", False, (224, 224)),
    "cls-w48": ("classification", "hrnet_w48", "hrnet_w48", False, (224, 224)),
    "pose-w32": ("pose", "pose_hrnet_w32", "hrnet_w32", True, (256, 192)),
    "seg-w18": ("segmentation", "fcn_hrnetv2_w18", "hrnet_w18", True, (512, 1024)),
}
VARIANTS = ("timm eager", "ours eager", "ours folded", "ours onnxrt", "ours openvino")


def _rel_error(actual: Any, expected: Any) -> float:
    import torch

    if isinstance(expected, dict):
        return max(_rel_error(actual[k], v) for k, v in expected.items())
    actual = torch.as_tensor(actual)
    return float(
        (actual.float() - expected.float()).abs().max() / expected.float().abs().max().clamp_min(1e-12)
    )


def _first(output: Any) -> Any:
    return output["out"] if isinstance(output, dict) else output


def build_case(name: str, batch: int, threads: int, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The step functions of every variant of a case, and their errors against ours eager."""
    import copy

    import timm
    import torch

    from hrnet.engine.evaluate import inference_model
    from hrnet.models import create_model
    from hrnet.models.export import export_onnx

    task, ours_name, timm_name, features_only, size = CASES[name]
    kwargs = {"num_joints": 17} if task == "pose" else {"num_classes": 19 if task == "segmentation" else 1000}
    torch.manual_seed(0)
    ours = create_model(ours_name, **kwargs).eval()
    timm_model = (
        timm.create_model(timm_name, pretrained=False, features_only=True)
        if features_only
        else timm.create_model(timm_name, pretrained=False, num_classes=1000)
    ).eval()
    images = torch.randn(batch, 3, *size)
    images_cl = images.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reference = _first(ours(images))
    folded = inference_model(copy.deepcopy(ours), task)

    steps: dict[str, Callable[[], Any]] = {
        "timm eager": lambda: timm_model(images),
        "ours eager": lambda: ours(images),
        "ours folded": lambda: folded(images_cl),
    }
    errors: dict[str, float] = {"ours eager": 0.0}
    with torch.inference_mode():
        errors["ours folded"] = _rel_error(_first(folded(images_cl)), reference)

    try:
        import onnx  # noqa: F401  (export_onnx writes the file's metadata with it)
        import onnxruntime as ort
    except ImportError as exc:  # e.g. an image without the export dependencies: eager rows only
        log(f"  no ONNX rows: {exc}")
        return {"task": task, "size": size, "steps": steps, "errors": errors, "features_only": features_only}
    onnx_file = tmp / f"{name}.onnx"
    started = time.perf_counter()
    export_onnx(ours, onnx_file, task=task, input_size=size, dynamic=False, batch_size=batch, check=False)
    log(f"  exported {onnx_file.name} in {time.perf_counter() - started:.1f} s")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: images.numpy()}
    out_name = session.get_outputs()[0].name
    steps["ours onnxrt"] = lambda: session.run([out_name], feed)[0]
    errors["ours onnxrt"] = _rel_error(steps["ours onnxrt"](), reference)
    try:
        import openvino as ov
    except ImportError:
        pass
    else:
        core = ov.Core()
        compiled = core.compile_model(
            str(onnx_file),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "LATENCY",
            },
        )
        request = compiled.create_infer_request()
        array = images.numpy()

        def openvino_step() -> Any:
            return request.infer({0: array})[compiled.output(0)]

        steps["ours openvino"] = openvino_step
        errors["ours openvino"] = _rel_error(openvino_step(), reference)
    return {"task": task, "size": size, "steps": steps, "errors": errors, "features_only": features_only}


def measure(
    steps: dict[str, Callable[[], Any]], rounds: int, iters: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per call of each step, one entry per round, the steps interleaved in each round."""
    import torch

    times: dict[str, list[float]] = {k: [] for k in steps}
    with torch.inference_mode():
        for step in steps.values():
            for _ in range(warmup):
                step()
        for _ in range(rounds):
            for key, step in steps.items():
                started = time.perf_counter()
                for _ in range(iters):
                    step()
                times[key].append((time.perf_counter() - started) / iters)
    return times


def machine() -> dict[str, Any]:
    import importlib

    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    for package in ("timm", "onnxruntime", "openvino"):
        with contextlib.suppress(ImportError):
            info[package] = importlib.import_module(package).__version__
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--batch", type=int, default=4, help="images per call (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (default 3)")
    parser.add_argument("--iters", type=int, default=1, help="calls per variant per round (default 1)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per variant (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}")

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hrnet-deploy-bench-") as tmp:
        for name in cases:
            log(f"{name}: building")
            case = build_case(name, args.batch, args.threads, Path(tmp), log)
            times = measure(case["steps"], args.rounds, args.iters, args.warmup)
            base = statistics.median(times["timm eager"])
            for variant in VARIANTS:
                if variant not in times:
                    continue
                seconds = statistics.median(times[variant])
                row = {
                    "case": name,
                    "task": case["task"],
                    "size": list(case["size"]),
                    "variant": variant,
                    "ms_per_batch": round(seconds * 1e3, 1),
                    "images_per_s": round(args.batch / seconds, 2),
                    "ratio_to_timm_eager": round(base / seconds, 2),
                    "timm_is_backbone_only": case["features_only"],
                    "max_rel_error_vs_ours_eager": case["errors"].get(variant),
                    "rounds_ms": [round(t * 1e3, 1) for t in times[variant]],
                }
                results.append(row)
                err = row["max_rel_error_vs_ours_eager"]
                log(
                    f"  {variant:14s} {row['ms_per_batch']:8.1f} ms  {row['images_per_s']:7.2f} img/s  "
                    f"x{row['ratio_to_timm_eager']:.2f}" + ("" if err is None else f"  err {err:.1e}")
                )
            del case
    load_after = os.getloadavg()

    header = "| case | input | variant | ms / batch | images/s | vs timm eager | max rel. error |"
    print(header)
    print("|" + "---|" * 7)
    for row in results:
        mark = "*" if row["timm_is_backbone_only"] else ""
        err = row["max_rel_error_vs_ours_eager"]
        print(
            f"| {row['case']} | {row['size'][0]}x{row['size'][1]} | {row['variant']} | {row['ms_per_batch']} | "
            f"{row['images_per_s']} | {row['ratio_to_timm_eager']:.2f}{mark} | "
            f"{'-' if err is None else f'{err:.1e}'} |"
        )
    payload = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    print(f"load average before {load_before}, after {load_after}; {payload['seconds']} s", file=sys.stderr)
    if args.out is not None:
        args.out.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
