"""ONNX export of the task models, checked against PyTorch, and an ONNX Runtime stand-in module.

:func:`export_onnx` folds every BatchNorm into its convolution (:func:`hrnet.models.fast.fuse_conv_bn`),
exports with the TorchScript-based exporter of :func:`torch.onnx.export` (``dynamo=False``: it needs
no extra package; the dynamo exporter of torch >= 2.5 needs ``onnxscript``), runs the file in ONNX
Runtime on the CPU and compares it with the PyTorch model: the largest relative error
(``max |onnx - torch| / max |torch|`` over every output) must stay below 1e-4 in fp32, or the file
is removed and :class:`hrnet.errors.HRNetError` raised. Detection compares boxes and scores so
(the box count and the labels must be equal) and Mask R-CNN's mask probabilities to 1e-3 absolute.

What the graph computes (pre- and post-processing are outside it, except for detection):

==============  ======================================  ==========================================
task            input ``images``                        outputs
==============  ======================================  ==========================================
classification  float32 ``[N, 3, H, W]``, normalised    ``logits [N, classes]`` (softmax outside)
segmentation    float32 ``[N, 3, H, W]``, normalised    ``out [N, classes, H', W']`` logits (and
                                                        ``aux`` when the model has an auxiliary
                                                        head); resize + softmax/argmax outside
pose            float32 ``[N, 3, H, W]`` person crop,   ``heatmaps [N, joints, H/4, W/4]``;
                normalised                              peak decoding + crop-to-image outside
landmarks       float32 ``[N, 3, H, W]`` face crop,     ``heatmaps [N, points, H/4, W/4]``
                normalised
detection       float32 ``image [3, H, W]`` in [0, 1]   ``boxes [D, 4]`` xyxy in input pixels,
                (one image; resize and normalisation    ``labels [D]`` int64 (1..classes),
                inside the graph)                       ``scores [D]``
==============  ======================================  ==========================================

"Normalised" is ``(pixel / 255 - mean) / std`` with ImageNet's mean ``(0.485, 0.456, 0.406)`` and
std ``(0.229, 0.224, 0.225)``, RGB, as :mod:`hrnet.data.transforms` does. With ``dynamic`` the
batch and the spatial size are free (``N``, ``H``, ``W`` named axes); HRNet needs ``H`` and ``W``
divisible by 32 for its fuse paths to line up as in PyTorch. The file's metadata
(``metadata_props``) records the task, the training configuration and the dataset facts (class
names, keypoint names...) under ``hrnet.*`` keys, so :class:`OnnxRuntimeModel` can stand in for
the PyTorch model in the tasks' evaluation and prediction code.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hrnet.errors import HRNetError

__all__ = [
    "EXPORTABLE_TASKS",
    "ONNX_RTOL",
    "ExportReport",
    "OnnxRuntimeModel",
    "export_onnx",
    "read_metadata",
]

# the fp32 agreement an exported file must reach against PyTorch (relative to the largest output)
ONNX_RTOL = 1e-4
DEFAULT_OPSET = 17
# tasks whose model takes one image batch tensor; detection takes a list of [3, H, W] images
BATCH_TASKS = ("classification", "segmentation", "pose", "landmarks")
EXPORTABLE_TASKS = (*BATCH_TASKS, "detection")
DETECTION_OUTPUTS = ("boxes", "labels", "scores", "masks")
# Mask R-CNN's pasted mask probabilities: absolute, in [0, 1]; the paste follows the boxes, which
# agree to ~1e-4 pixels, so the bilinear paste differs by up to ~3e-4 where a mask edge crosses a pixel
MASK_ATOL = 1e-3


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how closely the file matches PyTorch."""

    path: Path
    task: str
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    folded_batchnorms: int
    # "NxCxHxW" of each checked input -> max relative error against PyTorch
    max_rel_error: dict[str, float] = field(default_factory=dict)
    # detection: the boxes PyTorch kept on the check's inputs, each compared with the file's; 0
    # means the boxes, scores and masks were not compared at all (random inputs rarely give a
    # trained detector a box above its score threshold), only that both keep none
    detections_compared: int | None = None


def _rel_error(actual: Any, expected: Tensor) -> float:
    expected = expected.detach().float().cpu()
    actual = torch.as_tensor(actual).float()
    if actual.shape != expected.shape:
        raise HRNetError(
            f"ONNX output shape {tuple(actual.shape)} differs from PyTorch's {tuple(expected.shape)}"
        )
    if expected.numel() == 0:
        return 0.0
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))


class _BatchOutputs(nn.Module):
    """A task model whose output (a tensor or a dict of tensors) becomes a tuple of tensors."""

    def __init__(self, model: nn.Module, keys: Sequence[str] | None) -> None:
        super().__init__()
        self.model = model
        self.keys = list(keys) if keys is not None else None

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        out = self.model(images)
        if self.keys is None:
            return (out,)
        return tuple(out[k] for k in self.keys)


def _structure(task: str, output: Any) -> dict[str, Any]:
    """How the model's output maps to the ONNX outputs (recorded in the file's metadata)."""
    if task == "detection":
        return {"kind": "detections", "keys": [k for k in output[0] if k in DETECTION_OUTPUTS]}
    if isinstance(output, Tensor):
        return {"kind": "tensor", "keys": [{"classification": "logits"}.get(task, "heatmaps")]}
    if isinstance(output, dict) and all(isinstance(v, Tensor) for v in output.values()):
        return {"kind": "dict", "keys": list(output)}
    raise HRNetError(f"{task}: the model returns {type(output).__name__}, not a tensor or a dict of tensors")


def _check_sizes(input_size: tuple[int, int], dynamic: bool) -> list[tuple[int, int]]:
    """The input sizes an export is checked at: the export size and, with ``dynamic``, another."""
    height, width = input_size
    sizes = [(height, width)]
    if dynamic:
        sizes.append((height + 32, width + 64))
    return sizes


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    task: str,
    input_size: tuple[int, int],
    dynamic: bool = True,
    batch_size: int = 1,
    in_chans: int = 3,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, Any] | None = None,
    check: bool = True,
    rtol: float = ONNX_RTOL,
) -> ExportReport:
    """Export a task model to ONNX with its BatchNorms folded; check it in ONNX Runtime.

    Args:
        model: the task model as :func:`hrnet.engine.evaluate.load_model` returns it (not
            modified: a folded copy is exported).
        path: the ``.onnx`` file to write.
        task: the model's task (``classification``, ``segmentation``, ``pose``, ``landmarks``,
            ``detection``): fixes the input and output layout (module docstring).
        input_size: ``(height, width)`` of the example input the graph is traced with.
        dynamic: free batch and spatial axes (detection: spatial only, one image per call).
        batch_size: the example batch (fixed batch when not ``dynamic``).
        metadata: extra ``metadata_props``, stored under ``hrnet.<key>`` (values JSON-encoded
            unless strings); ``hrnet export`` records ``config`` (the training configuration),
            ``info`` (class/keypoint names) and ``source``.
        check: run the file in ONNX Runtime and compare with PyTorch at ``input_size`` and, with
            ``dynamic``, at a second size (and batch).
        rtol: the largest relative error ``check`` accepts.

    Raises:
        HRNetError: an unknown or non-exportable task/model (the reason named), an exporter
            failure, or a checked difference above ``rtol``.
    """
    import copy

    from hrnet.models.fast import fuse_conv_bn

    if task not in EXPORTABLE_TASKS:
        raise HRNetError(
            f"export: task {task!r} is not exportable (exportable: {', '.join(EXPORTABLE_TASKS)})"
        )
    path = Path(path)
    height, width = (int(v) for v in input_size)
    reference = copy.deepcopy(model).cpu().float().eval()
    folded = copy.deepcopy(reference)
    gen = torch.Generator().manual_seed(0)
    if task == "detection":
        example_image = torch.rand(in_chans, height, width, generator=gen)
        fuse_conv_bn(
            folded.backbone,  # type: ignore[arg-type]
            example_inputs=(torch.rand(1, in_chans, height, width, generator=gen),),
            inplace=True,
        )
        args: tuple[Any, ...] = ([example_image],)
        with torch.no_grad():
            sample = folded(*args)
        structure = _structure(task, sample)
        input_names = ["image"]
        output_names = structure["keys"]
        axes: dict[str, dict[int, str]] = {}
        if dynamic:
            axes["image"] = {1: "height", 2: "width"}
        for name in output_names:
            axes[name] = {0: "detections"}
        to_export: nn.Module = folded
        if batch_size != 1:
            raise HRNetError("export: detection graphs take one image per call (batch size 1)")
    else:
        example = torch.randn(batch_size, in_chans, height, width, generator=gen)
        folded = fuse_conv_bn(folded, example_inputs=(example,), inplace=True)
        with torch.no_grad():
            sample = folded(example)
        structure = _structure(task, sample)
        keys = structure["keys"] if structure["kind"] == "dict" else None
        to_export = _BatchOutputs(folded, keys).eval()
        args = (example,)
        input_names = ["images"]
        output_names = structure["keys"]
        axes = {}
        if dynamic:
            axes["images"] = {0: "batch", 2: "height", 3: "width"}
            for name in output_names:
                spatial = _output_dim(sample, name) == 4
                axes[name] = (
                    {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} if spatial else {0: "batch"}
                )
    folded_owner = folded.backbone if task == "detection" else folded  # type: ignore[union-attr]
    num_folded = len(getattr(folded_owner, "folded_pairs", []))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(
                to_export,
                args,
                str(tmp),
                dynamo=False,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=axes or None,
                opset_version=opset,
                do_constant_folding=True,
            )
    except Exception as exc:  # the exporter raises many types; name the model and the first line
        tmp.unlink(missing_ok=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HRNetError(
            f"export: {type(reference).__name__} ({task}) does not export to ONNX with torch "
            f"{torch.__version__}'s TorchScript exporter: {type(exc).__name__}: {first}"
        ) from None
    _write_metadata(
        tmp,
        {
            "hrnet.task": task,
            "hrnet.outputs": structure,
            "hrnet.input_size": [height, width],
            "hrnet.dynamic": dynamic,
            **{k if k.startswith("hrnet.") else f"hrnet.{k}": v for k, v in (metadata or {}).items()},
        },
    )
    report = ExportReport(
        path=path,
        task=task,
        inputs=input_names,
        outputs=output_names,
        dynamic_axes=axes,
        folded_batchnorms=num_folded,
    )
    if check:
        try:
            report.max_rel_error, report.detections_compared = _check(
                tmp,
                reference,
                task,
                structure,
                _check_sizes((height, width), dynamic),
                batch_size=batch_size,
                in_chans=in_chans,
                dynamic=dynamic,
            )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        worst = max(report.max_rel_error.values(), default=0.0)
        if not worst <= rtol:
            tmp.unlink(missing_ok=True)
            raise HRNetError(
                f"export: the ONNX model differs from PyTorch by {worst:.2e} (relative, > {rtol:.0e}): "
                + ", ".join(f"{k}: {v:.2e}" for k, v in report.max_rel_error.items())
            )
    os.replace(tmp, path)
    return report


def _output_dim(sample: Any, name: str) -> int:
    """The number of dimensions of output ``name`` of a (tensor or dict) model output."""
    tensor = sample[name] if isinstance(sample, dict) else sample
    return int(tensor.dim())


def _check(
    file: Path,
    reference: nn.Module,
    task: str,
    structure: dict[str, Any],
    sizes: list[tuple[int, int]],
    *,
    batch_size: int,
    in_chans: int,
    dynamic: bool,
) -> tuple[dict[str, float], int | None]:
    """Max relative error of the ONNX file against the (unfolded) PyTorch model per input size,
    and (detection) the number of boxes compared."""
    runtime = OnnxRuntimeModel(file)
    gen = torch.Generator().manual_seed(1)
    errors: dict[str, float] = {}
    compared: int | None = 0 if task == "detection" else None
    for i, (h, w) in enumerate(sizes):
        with torch.no_grad():
            if task == "detection":
                image = torch.rand(in_chans, h, w, generator=gen)
                expected = reference([image])[0]
                actual = runtime([image])[0]
                if len(actual["boxes"]) != len(expected["boxes"]):
                    raise HRNetError(
                        f"export: the ONNX detector keeps {len(actual['boxes'])} boxes where PyTorch keeps "
                        f"{len(expected['boxes'])} ({h}x{w} input)"
                    )
                if not torch.equal(actual["labels"], expected["labels"]):
                    raise HRNetError(
                        f"export: the ONNX detector's labels differ from PyTorch's ({h}x{w} input)"
                    )
                error = max(_rel_error(actual[k], expected[k]) for k in ("boxes", "scores"))
                if "masks" in expected and len(expected["masks"]):
                    mask_error = float((actual["masks"] - expected["masks"]).abs().max())
                    if not mask_error <= MASK_ATOL:
                        raise HRNetError(
                            f"export: the ONNX detector's mask probabilities differ from PyTorch's by "
                            f"{mask_error:.2e} (> {MASK_ATOL:.0e} absolute; {h}x{w} input)"
                        )
                errors[f"{in_chans}x{h}x{w}"] = error
                compared = (compared or 0) + len(expected["boxes"])
            else:
                n = batch_size + (1 if dynamic and i > 0 else 0)
                images = torch.randn(n, in_chans, h, w, generator=gen)
                expected = reference(images)
                actual = runtime(images)
                if structure["kind"] == "dict":
                    error = max(_rel_error(actual[k], expected[k]) for k in structure["keys"])
                else:
                    error = _rel_error(actual, expected)
                errors[f"{n}x{in_chans}x{h}x{w}"] = error
    return errors, compared


# --------------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------------


def _write_metadata(file: Path, values: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(file))
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if key in existing:
            existing[key].value = text
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, text
    onnx.save(proto, str(file))


def read_metadata(file: str | Path) -> dict[str, Any]:
    """The ``hrnet.*`` metadata of an exported file, JSON-decoded (keys without the prefix)."""
    import onnxruntime as ort

    meta = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"]).get_modelmeta()
    return _decode(meta.custom_metadata_map)


def _decode(props: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith("hrnet."):
            try:
                out[key.removeprefix("hrnet.")] = json.loads(value)
            except json.JSONDecodeError:
                out[key.removeprefix("hrnet.")] = value
    return out


# --------------------------------------------------------------------------------------------
# ONNX Runtime
# --------------------------------------------------------------------------------------------


class OnnxRuntimeModel(nn.Module):
    """An exported file run by ONNX Runtime (CPU), called like the PyTorch task model.

    ``model(images)`` returns what the PyTorch model returns in eval mode: a tensor
    (classification logits, pose/landmark heatmaps), a dict (segmentation ``{"out"[, "aux"]}``),
    or for detection ``model([image, ...])`` a list of ``{"boxes", "labels", "scores"}`` (one
    session call per image). Outputs are float32 CPU tensors moved to the input's device; it
    holds no parameters, so ``.to()``/``.eval()`` are no-ops.

    Args:
        file: the ``.onnx`` file written by :func:`export_onnx`.
        threads: ONNX Runtime's intra-op threads (default: its own choice).
    """

    def __init__(self, file: str | Path, *, threads: int | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise HRNetError(f"running an .onnx model needs onnxruntime ({exc})") from None
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise HRNetError(f"{file}: ONNX Runtime cannot load this file: {exc}") from None
        self.file = Path(file)
        self.metadata = _decode(self.session.get_modelmeta().custom_metadata_map)
        self.task = self.metadata.get("task")
        structure = self.metadata.get("outputs") or {
            "kind": "tensor",
            "keys": [o.name for o in self.session.get_outputs()],
        }
        self.kind: str = structure["kind"]
        self.keys: list[str] = list(structure["keys"])
        self.input_name = self.session.get_inputs()[0].name
        # the input's dimensions: an int is fixed at export, a name is dynamic
        self.input_shape: list[int | str] = list(self.session.get_inputs()[0].shape)

    def _run(self, x: Tensor) -> list[Any]:
        shape = tuple(x.shape)
        batch = self.input_shape[0] if self.input_shape else None
        if (
            self.kind != "detections"
            and isinstance(batch, int)
            and len(shape) == len(self.input_shape)
            and shape[0] != batch
            and self._fits(shape[1:], self.input_shape[1:])
        ):
            return self._run_in_batches(x, batch)
        if not self._fits(shape, self.input_shape):
            wanted = "x".join(str(d) if isinstance(d, int) else "*" for d in self.input_shape)
            raise HRNetError(
                f"{self.file}: exported for inputs of {wanted}, got {'x'.join(map(str, shape))}; "
                "export it again with hrnet export --dynamic to run other sizes"
            )
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return self.session.run(self.keys, {self.input_name: array})

    @staticmethod
    def _fits(shape: tuple[int, ...], wanted: list[int | str]) -> bool:
        return len(shape) == len(wanted) and all(
            not isinstance(d, int) or d == n for d, n in zip(wanted, shape)
        )

    def _run_in_batches(self, x: Tensor, batch: int) -> list[Any]:
        """A file exported with a fixed batch size run on any number of images: in batches of
        its size, the last one padded with zeros (their outputs dropped). Every output of these
        models is batch-first."""
        import numpy as np

        parts: list[list[Any]] = []
        for start in range(0, x.shape[0], batch):
            chunk = x[start : start + batch]
            n = chunk.shape[0]
            if n < batch:
                chunk = torch.cat([chunk, chunk.new_zeros((batch - n, *chunk.shape[1:]))])
            parts.append([out[:n] for out in self._run(chunk)])
        return [np.concatenate(outs) for outs in zip(*parts)]

    def forward(self, images: Any) -> Any:
        if self.kind == "detections":
            results = []
            for image in images:
                outs = self._run(image)
                results.append({k: torch.from_numpy(v).to(image.device) for k, v in zip(self.keys, outs)})
            return results
        outs = [torch.from_numpy(v).to(images.device) for v in self._run(images)]
        if self.kind == "dict":
            return dict(zip(self.keys, outs))
        return outs[0]
