"""Fast paths for inference and training: BatchNorm folding, channels_last, torch.compile, CUDA graphs.

HRNet spends most of its GPU time outside its convolutions (thousands of small kernels, BatchNorm
passes, host launch overhead; see ``docs/PERFORMANCE.md``). The tools here remove work without
changing the result:

- :func:`fuse_conv_bn` folds every eval-mode BatchNorm that directly consumes a convolution's
  output into that convolution (one kernel instead of two) and checks the folded model against
  the original on an example input;
- :func:`prepare_for_inference` = eval mode + folding + channels_last, the inference recipe;
- :func:`compile_model` wraps :func:`torch.compile` with the two choices that matter here (the
  autotuning effort and whether CUDA graphs are used);
- :class:`CUDAGraphTrainStep` and :class:`CUDAGraphInference` capture a whole training step
  (forward + loss + backward + optimizer step) or a whole forward as one CUDA graph, which
  replays thousands of kernels with one launch.

Everything works on any model built from ``torch.nn`` layers (ours, timm's, torchvision's); it is
not specific to :mod:`hrnet.models.hrnet`. Tensor formats are the model's own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "COMPILE_MODES",
    "CUDAGraphInference",
    "CUDAGraphTrainStep",
    "FoldedPair",
    "compile_model",
    "fold_conv_bn_weights",
    "fuse_conv_bn",
    "prepare_for_inference",
]

CompileMode = Literal["default", "max-autotune"]
COMPILE_MODES: tuple[str, ...] = ("default", "max-autotune")

# relative tolerance of the self-check of :func:`fuse_conv_bn` (fp32 folding error is ~1e-6)
_FUSE_CHECK_RTOL = 1e-4


# --------------------------------------------------------------------------------------------
# BatchNorm folding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldedPair:
    """One BatchNorm folded into the convolution that feeds it (qualified module names)."""

    conv: str
    norm: str


def _is_foldable_norm(module: nn.Module) -> bool:
    """Eval-mode BatchNorm with running statistics, or torchvision's FrozenBatchNorm2d."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return not module.training and module.running_mean is not None and module.running_var is not None
    return type(module).__name__ == "FrozenBatchNorm2d" and hasattr(module, "running_var")


def _is_foldable_conv(module: nn.Module) -> bool:
    """Plain (not transposed) convolutions: weight ``[out, in / groups, *kernel]``."""
    return isinstance(module, nn.modules.conv._ConvNd) and not module.transposed


def fold_conv_bn_weights(conv: nn.Module, norm: nn.Module) -> tuple[Tensor, Tensor]:
    """The weight and bias of ``conv`` followed by the eval-mode ``norm``, as one convolution.

    ``norm(conv(x)) = conv'(x)`` with ``w' = w * s`` and ``b' = (b - mean) * s + beta`` where
    ``s = gamma / sqrt(var + eps)`` per output channel. Computed in float64, returned in the
    conv's dtype and device.
    """
    weight = conv.weight.detach().double()
    if conv.bias is not None:
        bias = conv.bias.detach().double()
    else:
        bias = torch.zeros(weight.shape[0], dtype=torch.float64, device=weight.device)
    mean = norm.running_mean.detach().double()
    var = norm.running_var.detach().double()
    gamma = norm.weight.detach().double() if norm.weight is not None else torch.ones_like(mean)
    beta = norm.bias.detach().double() if norm.bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + norm.eps)
    fused_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    fused_bias = (bias - mean) * scale + beta
    return fused_weight.to(conv.weight.dtype), fused_bias.to(conv.weight.dtype)


def _find_conv_bn_pairs(
    model: nn.Module, example_inputs: Sequence[object]
) -> tuple[list[FoldedPair], object]:
    """Run ``model`` once and return the (conv, norm) pairs where the norm consumed the conv's output.

    A pair qualifies when, in every call, the norm is the next leaf module to run after the conv,
    its input is the very tensor the conv returned, and that tensor was not modified in place in
    between (its version counter is unchanged). Modules called with differing partners are
    excluded. Also returns the model's output (the reference for the self-check).
    """
    names = {module: name for name, module in model.named_modules()}
    last: dict[str, object] = {}  # the most recent leaf module to finish: module, output, version
    seen: dict[str, set[str | None]] = {}  # norm name -> conv names it followed (None = not a conv)

    def after_leaf(module: nn.Module, args: tuple[object, ...], output: object) -> None:
        last.clear()
        if _is_foldable_conv(module) and isinstance(output, Tensor):
            last.update(name=names[module], output=output, version=output._version)

    def before_leaf(module: nn.Module, args: tuple[object, ...]) -> None:
        if _is_foldable_norm(module):
            x = args[0] if args else None
            ok = (
                bool(last) and x is last["output"] and isinstance(x, Tensor) and x._version == last["version"]
            )
            seen.setdefault(names[module], set()).add(last["name"] if ok else None)  # type: ignore[arg-type]
        last.clear()

    handles = []
    for module in model.modules():
        if next(module.children(), None) is None:  # leaf
            handles.append(module.register_forward_pre_hook(before_leaf))
            handles.append(module.register_forward_hook(after_leaf))
    try:
        with torch.no_grad():
            output = model(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
        last.clear()

    conv_uses: dict[str, int] = {}
    candidates = []
    for norm_name, convs in seen.items():
        if len(convs) == 1 and None not in convs:
            conv_name = next(iter(convs))
            assert conv_name is not None
            candidates.append(FoldedPair(conv=conv_name, norm=norm_name))
            conv_uses[conv_name] = conv_uses.get(conv_name, 0) + 1
    # a conv shared by two norms cannot absorb both
    return [p for p in candidates if conv_uses[p.conv] == 1], output


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def _example_inputs(model: nn.Module, example_inputs: Sequence[object] | None) -> Sequence[object]:
    if example_inputs is not None:
        return example_inputs
    ref = next(model.parameters())
    chans = int(getattr(model, "in_chans", 3))
    return (torch.randn(2, chans, 64, 64, device=ref.device, dtype=ref.dtype),)


def _max_rel_error(actual: object, expected: object) -> float:
    """Largest ``|a - e| / max|e|`` over the tensors of two (nested) outputs."""
    if isinstance(expected, Tensor):
        assert isinstance(actual, Tensor)
        if not expected.is_floating_point():
            return 0.0 if torch.equal(actual, expected) else float("inf")
        scale = expected.abs().max().clamp_min(1e-12)
        return float(((actual - expected).abs().max() / scale).item())
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        return max((_max_rel_error(actual[k], v) for k, v in expected.items()), default=0.0)
    if isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple)
        return max((_max_rel_error(a, e) for a, e in zip(actual, expected)), default=0.0)
    return 0.0


def fuse_conv_bn(
    model: nn.Module,
    *,
    example_inputs: Sequence[object] | None = None,
    inplace: bool = False,
    check: bool = True,
) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into it (inference only).

    The pairs are found by running the model once on ``example_inputs`` with hooks (data flow,
    not module names): a BatchNorm is folded when its input is exactly the output of the
    convolution that ran just before it. This covers the stem, the residual blocks, HRNet's fuse
    paths (1x1 conv + BN before the upsampling, 3x3 stride-2 conv + BN [+ ReLU] chains), the
    transitions and the heads; a BatchNorm after a ReLU, an addition or an upsampling is left as it
    is. Each folded BatchNorm becomes :class:`torch.nn.Identity` and its convolution gains a bias,
    so state-dict keys change (``*.bn*.running_mean`` disappear, ``*.conv*.bias`` appear).

    Args:
        model: any module; it is put in eval mode (BatchNorm uses its running statistics).
        example_inputs: positional arguments of one forward call; default one
            ``[2, model.in_chans or 3, 64, 64]`` random image batch (pass a list of images for
            detection models). Shapes only need to be valid, not realistic.
        inplace: modify ``model`` itself instead of a deep copy.
        check: compare the folded model's output with the original's on ``example_inputs``.

    Returns:
        the folded model (``model`` itself when ``inplace``), in eval mode, with the attribute
        ``folded_pairs: list[FoldedPair]``.

    Raises:
        RuntimeError: ``check`` found a relative difference above 1e-4 (fp32), which would mean a
            folded convolution's raw output was also used elsewhere.
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    inputs = _example_inputs(model, example_inputs)
    pairs, reference = _find_conv_bn_pairs(model, inputs)
    for pair in pairs:
        conv, norm = model.get_submodule(pair.conv), model.get_submodule(pair.norm)
        weight, bias = fold_conv_bn_weights(conv, norm)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if conv.bias is None:
                conv.bias = nn.Parameter(bias, requires_grad=conv.weight.requires_grad)
            else:
                conv.bias.copy_(bias)
        _replace(model, pair.norm, nn.Identity())
    model.folded_pairs = pairs
    if check and pairs:
        with torch.no_grad():
            error = _max_rel_error(model(*inputs), reference)
        if not error <= _FUSE_CHECK_RTOL:
            raise RuntimeError(
                f"fuse_conv_bn: the folded model differs from the original by {error:.2e} (relative); "
                "a folded convolution's output is probably used outside its BatchNorm"
            )
    return model


def prepare_for_inference(
    model: nn.Module,
    *,
    channels_last: bool = True,
    fuse_bn: bool = True,
    example_inputs: Sequence[object] | None = None,
    inplace: bool = False,
) -> nn.Module:
    """The inference recipe: eval mode, BatchNorm folded into the convolutions, channels_last.

    Parameters stop requiring gradients. Feed the result inputs in the same memory format
    (``images.contiguous(memory_format=torch.channels_last)``; ``[B, C, H, W]`` either way) for the
    best speed; the outputs equal the original model's within fp32 rounding (tested: 1e-5
    relative). ``example_inputs`` and ``inplace`` are passed to :func:`fuse_conv_bn`.
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    if fuse_bn:
        model = fuse_conv_bn(model, example_inputs=example_inputs, inplace=True)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.requires_grad_(False)
    return model


# --------------------------------------------------------------------------------------------
# torch.compile
# --------------------------------------------------------------------------------------------


def compile_model(
    model: nn.Module,
    *,
    mode: CompileMode = "default",
    cuda_graphs: bool = False,
    fullgraph: bool = False,
    dynamic: bool | None = False,
) -> Callable[..., object]:
    """:func:`torch.compile` with the two choices that matter for HRNet spelled out.

    Args:
        model: the module to compile (not modified; the compiled wrapper shares its parameters).
        mode: ``"default"`` (fast to compile) or ``"max-autotune"`` (benchmarks kernel choices,
            slow to compile).
        cuda_graphs: replay the compiled graph with CUDA graphs (torch's ``"reduce-overhead"``
            and ``"max-autotune"`` modes); removes launch overhead, needs static shapes and holds
            its own copies of the inputs/outputs. Ignored off CUDA.
        fullgraph: fail instead of falling back to eager at a graph break.
        dynamic: ``False`` specialises on input shapes (recompiles for a new batch size).

    Returns:
        the compiled callable (same call signature as ``model``).
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"mode must be one of {COMPILE_MODES}, got {mode!r}")
    torch_mode = {
        ("default", False): "default",
        ("default", True): "reduce-overhead",
        ("max-autotune", False): "max-autotune-no-cudagraphs",
        ("max-autotune", True): "max-autotune",
    }[(mode, bool(cuda_graphs))]
    return torch.compile(model, mode=torch_mode, fullgraph=fullgraph, dynamic=dynamic)


# --------------------------------------------------------------------------------------------
# CUDA graphs
# --------------------------------------------------------------------------------------------


def _require_cuda(tensor: Tensor, what: str) -> None:
    if tensor.device.type != "cuda":
        raise ValueError(f"{what} needs CUDA tensors, got a tensor on {tensor.device}")


class CUDAGraphTrainStep:
    """A whole training step (forward, loss, backward, optimizer step) captured as one CUDA graph.

    Replaying the graph launches the step's thousands of kernels at once, so the host no longer
    limits small-width models (HRNet-W18 trains no faster than W48 in eager mode on an H100).
    Construction runs ``warmup_steps`` real training steps on a side stream (cuDNN autotuning,
    optimizer state allocation), then captures one step. Each call copies the batch into the
    static input tensors and replays: the model and optimizer are updated exactly as by::

        optimizer.zero_grad(); loss = loss_fn(model(images), targets); loss.backward(); optimizer.step()

    Requirements (the usual CUDA-graph rules): fixed batch shapes; an optimizer whose step does
    no host synchronisation (SGD, or Adam/AdamW with ``capturable=True``) and a learning rate
    that stays constant unless it is a tensor updated in place; no host-side control flow that
    depends on tensor values. BatchNorm running statistics update normally.

    Args:
        model: the module, on CUDA, in train mode.
        optimizer: the optimizer of ``model``'s parameters.
        loss_fn: ``loss_fn(outputs, targets) -> scalar Tensor``.
        images: an example batch (shape, dtype and memory format of every later batch).
        targets: an example target tensor.
        autocast_dtype: run forward and loss under ``torch.autocast("cuda", dtype)`` (e.g.
            ``torch.bfloat16``); ``None`` = fp32.
        warmup_steps: eager steps before the capture (they train the model).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[object, Tensor], Tensor],
        images: Tensor,
        targets: Tensor,
        *,
        autocast_dtype: torch.dtype | None = None,
        warmup_steps: int = 3,
    ) -> None:
        _require_cuda(images, "CUDAGraphTrainStep")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.autocast_dtype = autocast_dtype
        self.static_images = images.clone(memory_format=torch.preserve_format)
        self.static_targets = targets.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_steps):
                self.optimizer.zero_grad(set_to_none=True)
                self._loss().backward()
                self.optimizer.step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # gradients are allocated inside the graph's pool
        with torch.cuda.graph(self.graph):
            self.static_loss = self._loss()
            self.static_loss.backward()
            self.optimizer.step()

    def _loss(self) -> Tensor:
        # the autocast weight cache must be off inside a capture (cached casts would be stale)
        with torch.autocast(
            "cuda",
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
            cache_enabled=False,
        ):
            return self.loss_fn(self.model(self.static_images), self.static_targets)

    def __call__(self, images: Tensor, targets: Tensor) -> Tensor:
        """One training step on ``images``/``targets`` (same shapes as the example); returns the loss.

        The returned tensor is the graph's static loss: read it (``.item()``) before the next call.
        """
        self.static_images.copy_(images)
        self.static_targets.copy_(targets)
        self.graph.replay()
        return self.static_loss


class CUDAGraphInference:
    """``model(images)`` captured as one CUDA graph (inference, fixed input shape).

    Construction runs ``warmup_steps`` forwards on a side stream and captures one under
    ``torch.no_grad``. Calling copies ``images`` into the static input and replays; the returned
    output tensors are the graph's static outputs, overwritten by the next call (clone them to
    keep them).

    Args:
        model: the module on CUDA (typically from :func:`prepare_for_inference`).
        images: an example batch fixing shape, dtype and memory format.
        autocast_dtype: run under ``torch.autocast("cuda", dtype)``; ``None`` = as is.
        warmup_steps: forwards before the capture.
    """

    def __init__(
        self,
        model: nn.Module,
        images: Tensor,
        *,
        autocast_dtype: torch.dtype | None = None,
        warmup_steps: int = 3,
    ) -> None:
        _require_cuda(images, "CUDAGraphInference")
        self.model = model
        self.autocast_dtype = autocast_dtype
        self.static_images = images.clone(memory_format=torch.preserve_format)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_steps):
                self._forward()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_output = self._forward()

    def _forward(self) -> object:
        with (
            torch.no_grad(),
            torch.autocast(
                "cuda",
                dtype=self.autocast_dtype or torch.float32,
                enabled=self.autocast_dtype is not None,
                cache_enabled=False,
            ),
        ):
            return self.model(self.static_images)

    def __call__(self, images: Tensor) -> object:
        """The model's output for ``images`` (static tensors, overwritten by the next call)."""
        self.static_images.copy_(images)
        self.graph.replay()
        return self.static_output
