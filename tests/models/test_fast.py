"""Fast paths (hrnet.models.fast): BatchNorm folding, the inference recipe, compile and CUDA graphs.

Every fast path must give the eager fp32 result: 1e-5 relative (max |difference| / max |reference|)
in fp32, and a bounded, documented error under bf16 autocast (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrnet.models import create_model
from hrnet.models.fast import (
    CUDAGraphInference,
    CUDAGraphTrainStep,
    compile_model,
    fold_conv_bn_weights,
    fuse_conv_bn,
    prepare_for_inference,
)

FP32_RTOL = 1e-5
BF16_RTOL = 3e-2  # measured ~9e-3 for hrnet_w18_small at 64x64 on CPU (docs/PERFORMANCE.md)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _randomise_norms(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so folding has something to fold."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _rel_error(actual: object, expected: object) -> float:
    if isinstance(expected, dict):
        return max(_rel_error(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        return max(_rel_error(a, e) for a, e in zip(actual, expected, strict=True))
    assert isinstance(actual, Tensor) and isinstance(expected, Tensor)
    assert actual.shape == expected.shape
    return float((actual.float() - expected).abs().max() / expected.abs().max())


def _norm_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# --------------------------------------------------------------------------------------------
# folding


def test_fold_weights_match_conv_then_norm_with_bias_and_groups() -> None:
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=3, bias=True)
    norm = _randomise_norms(nn.Sequential(nn.BatchNorm2d(6)))[0]
    weight, bias = fold_conv_bn_weights(conv, norm)
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        expected = norm(conv(x))
    actual = F.conv2d(x, weight, bias, padding=1, groups=3)
    assert _rel_error(actual, expected) < FP32_RTOL


@pytest.mark.parametrize("output", ["classification", "branches", "v1", "v2"])
def test_fuse_conv_bn_folds_every_norm_of_the_backbone(output: str) -> None:
    model = _randomise_norms(create_model("hrnet_w18_small", num_classes=10, output=output))
    x = torch.randn(2, 3, 64, 96)  # not square, to catch size mix-ups in the fuse paths
    with torch.no_grad():
        expected = model(x)
    fused = fuse_conv_bn(model)
    assert _norm_count(fused) == 0
    assert len(fused.folded_pairs) == _norm_count(model)
    with torch.no_grad():
        assert _rel_error(fused(x), expected) < FP32_RTOL


def test_fuse_conv_bn_segmentation_model_at_an_odd_size() -> None:
    model = _randomise_norms(create_model("fcn_hrnetv2_w18_small", num_classes=5))
    x = torch.randn(1, 3, 50, 70)  # not divisible by 32
    with torch.no_grad():
        expected = model(x)
    fused = fuse_conv_bn(model, example_inputs=(x,))
    assert _norm_count(fused) == 0
    with torch.no_grad():
        assert _rel_error(fused(x), expected) < FP32_RTOL


def test_fuse_conv_bn_works_on_timm_hrnet() -> None:
    timm = pytest.importorskip("timm")
    model = _randomise_norms(timm.create_model("hrnet_w18_small", pretrained=False, num_classes=10))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    fused = fuse_conv_bn(model)  # its fuse layers are Sequential(conv, BN, Upsample)
    assert _norm_count(fused) == 0
    with torch.no_grad():
        assert _rel_error(fused(x), expected) < FP32_RTOL


def test_fuse_conv_bn_leaves_the_input_model_unchanged() -> None:
    model = create_model("hrnet_w18_small", num_classes=10).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fuse_conv_bn(model)
    after = model.state_dict()
    assert model.training
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


class _NormAfterActivation(nn.Module):
    """conv -> BN (foldable); conv -> ReLU -> BN (not foldable); a BN on the raw input."""

    def __init__(self) -> None:
        super().__init__()
        self.norm_in = nn.BatchNorm2d(3)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn2(self.relu(self.conv2(self.bn1(self.conv1(self.norm_in(x))))))


def test_fuse_conv_bn_folds_only_norms_that_consume_a_conv_output() -> None:
    model = _randomise_norms(_NormAfterActivation())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    fused = fuse_conv_bn(model, example_inputs=(x,))
    assert [(p.conv, p.norm) for p in fused.folded_pairs] == [("conv1", "bn1")]
    assert isinstance(fused.bn1, nn.Identity)
    assert isinstance(fused.bn2, nn.BatchNorm2d) and isinstance(fused.norm_in, nn.BatchNorm2d)
    with torch.no_grad():
        assert _rel_error(fused(x), expected) < FP32_RTOL


class _ConvOutputUsedTwice(nn.Module):
    """The raw conv output also feeds the residual: folding the BN would change that branch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return self.bn(y) + y


def test_fuse_conv_bn_check_catches_a_conv_output_used_elsewhere() -> None:
    model = _randomise_norms(_ConvOutputUsedTwice())
    with pytest.raises(RuntimeError, match="differs from the original"):
        fuse_conv_bn(model, example_inputs=(torch.randn(1, 3, 8, 8),))


def test_fuse_conv_bn_folds_torchvision_frozen_batchnorm() -> None:
    from torchvision.ops import FrozenBatchNorm2d

    norm = FrozenBatchNorm2d(4)
    with torch.no_grad():
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.uniform_(0.5, 1.5)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), norm, nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    fused = fuse_conv_bn(model, example_inputs=(x,))
    assert isinstance(fused[1], nn.Identity)
    with torch.no_grad():
        assert _rel_error(fused(x), expected) < FP32_RTOL


# --------------------------------------------------------------------------------------------
# the inference recipe


@pytest.mark.parametrize(("channels_last", "fuse_bn"), [(True, True), (True, False), (False, True)])
def test_prepare_for_inference_matches_eager_fp32(channels_last: bool, fuse_bn: bool) -> None:
    model = _randomise_norms(create_model("hrnet_w18_small", num_classes=10))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    fast = prepare_for_inference(model, channels_last=channels_last, fuse_bn=fuse_bn)
    assert not fast.training
    assert not any(p.requires_grad for p in fast.parameters())
    assert (_norm_count(fast) == 0) == fuse_bn
    if channels_last:
        assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert _rel_error(fast(x), expected) < FP32_RTOL


def test_prepare_for_inference_bf16_error_is_bounded() -> None:
    model = _randomise_norms(create_model("hrnet_w18_small", num_classes=10))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    fast = prepare_for_inference(model)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        actual = fast(x.contiguous(memory_format=torch.channels_last))
    assert actual.dtype == torch.bfloat16
    assert _rel_error(actual, expected) < BF16_RTOL


# --------------------------------------------------------------------------------------------
# torch.compile


def test_compile_model_rejects_unknown_modes() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        compile_model(nn.Identity(), mode="reduce-overhead")  # type: ignore[arg-type]


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).mean(dim=(2, 3))


@pytest.mark.slow
def test_compiled_folded_model_matches_eager() -> None:
    model = _randomise_norms(_Tiny())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
    compiled = compile_model(prepare_for_inference(model, example_inputs=(x,)))
    with torch.no_grad():
        assert _rel_error(compiled(x.contiguous(memory_format=torch.channels_last)), expected) < FP32_RTOL


# --------------------------------------------------------------------------------------------
# CUDA graphs (run on the GPU machine; skipped here)


def test_cuda_graph_helpers_refuse_cpu_tensors() -> None:
    model = _Tiny()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        CUDAGraphInference(model, x)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        CUDAGraphTrainStep(model, optimizer, F.cross_entropy, x, torch.zeros(2, dtype=torch.int64))


@needs_cuda
def test_cuda_graph_inference_matches_eager() -> None:
    model = _randomise_norms(create_model("hrnet_w18_small", num_classes=10)).cuda()
    x = torch.randn(2, 3, 64, 64, device="cuda")
    with torch.no_grad():
        expected = model(x)
    fast = prepare_for_inference(model, example_inputs=(x,))
    x = x.contiguous(memory_format=torch.channels_last)
    graphed = CUDAGraphInference(fast, torch.zeros_like(x))
    assert _rel_error(graphed(x), expected) < 1e-4  # TF32 may be on for cuDNN convolutions


@needs_cuda
def test_cuda_graph_train_step_matches_eager_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    eager = create_model("hrnet_w18_small", num_classes=10).cuda()
    graphed = create_model("hrnet_w18_small", num_classes=10).cuda()
    graphed.load_state_dict(eager.state_dict())
    batches = [
        (torch.randn(4, 3, 64, 64, device="cuda"), torch.randint(0, 10, (4,), device="cuda"))
        for _ in range(5)
    ]
    opt_eager = torch.optim.SGD(eager.parameters(), lr=0.01, momentum=0.9)
    opt_graphed = torch.optim.SGD(graphed.parameters(), lr=0.01, momentum=0.9)
    # the constructor's 3 warm-up steps train on the example batch: mirror them in eager mode
    step = CUDAGraphTrainStep(graphed, opt_graphed, F.cross_entropy, *batches[0], warmup_steps=3)
    for images, targets in [batches[0]] * 3 + batches[1:]:
        opt_eager.zero_grad(set_to_none=True)
        F.cross_entropy(eager(images), targets).backward()
        opt_eager.step()
    for images, targets in batches[1:]:
        step(images, targets)
    torch.cuda.synchronize()
    for (name, a), b in zip(eager.state_dict().items(), graphed.state_dict().values(), strict=True):
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name
