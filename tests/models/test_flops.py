"""FLOP counting in the published convention, and the `hrnet info` command.

The published GFLOPs of every model are registry metadata, checked in tests/models/test_registry.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from hrnet.cli import main
from hrnet.models import create_model
from hrnet.models.flops import FlopCount, count_flops, count_params


def test_unit_is_conv_and_linear_macs_over_2_30() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    ).train()
    flops = count_flops(model, (10, 12))
    macs = 8 * 3 * 3 * 3 * 10 * 12 + 8 * 5  # conv and linear only
    assert flops == FlopCount(macs=macs, input_size=(10, 12))
    assert flops.gflops == macs / 2**30
    assert flops.gmacs == macs / 1e9
    assert model.training  # mode restored
    assert count_params(model) == 8 * 27 + 8 + 2 * 8 + 8 * 5 + 5


def test_count_flops_uses_in_chans_and_real_tensors() -> None:
    model = create_model("hrnet_w18_small", in_chans=1, num_classes=10)
    real = count_flops(model, (32, 32))
    with torch.device("meta"):
        meta = count_flops(create_model("hrnet_w18_small", in_chans=1, num_classes=10), (32, 32))
    assert real == meta
    assert real.macs > 0


class _Resizing(nn.Module):
    """Convs between every way a model resizes: nn.Upsample, interpolate by size (keyword) and by
    scale factor (positional, with the mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.a, self.b, self.c = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(self.up(x))
        x = self.b(F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False))
        return self.c(F.interpolate(x, None, 1.5, "bilinear"))


def test_interpolation_is_counted_by_shape_only() -> None:
    """The count with interpolation skipped equals torch's own FlopCounterMode on real tensors."""
    model = _Resizing().eval()
    with FlopCounterMode(display=False) as reference, torch.no_grad():
        out = model(torch.zeros(1, 3, 5, 6))
    assert out.shape == (1, 2, 8, 11)  # 7x9 * 1.5 -> 10x13, then a 3x3 conv without padding
    flops = count_flops(model, (5, 6))
    assert flops.macs == reference.get_total_flops() // 2
    assert flops.macs == 4 * 27 * 10 * 12 + 4 * 4 * 7 * 9 + 2 * 36 * 8 * 11
    with torch.device("meta"):
        assert count_flops(_Resizing(), (5, 6)) == flops


def test_trainable_only_params() -> None:
    model = create_model("hrnet_w18_small", num_classes=10)
    model.classifier.requires_grad_(False)
    assert count_params(model) - count_params(model, trainable_only=True) == 2048 * 10 + 10


def test_info_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "hrnet_w18"]) == 0
    out = capsys.readouterr().out
    assert "21.30 M" in out
    assert "3.99" in out
    assert "final_layer" in out

    assert main(["info", "hrnet_w18", "--output", "branches", "--input-size", "64", "96"]) == 0
    out = capsys.readouterr().out
    assert "9.56 M" in out
    assert "stage4.branch3" in out

    assert main(["info", "hrnet_w18_small", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "13.19" not in out
    assert "not compared for a build with num_classes set" in out


def test_info_prints_published_against_counted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "pose_hrnet_w32", "--input-size", "64", "48"]) == 0
    out = capsys.readouterr().out
    assert "28.5 M (10^6 parameters), deep-high-resolution-net.pytorch" in out
    assert "7.1 GFLOPs (2^30 multiply-adds) at 256x192 (HxW)" in out
    assert "16.0 GFLOPs (2^30 multiply-adds) at 384x288 (HxW)" in out
    assert out.count(": ok") == 3
    assert "hrnet_w32_imagenet_pose" in out

    assert main(["info", "fcn_hrnetv2_w18_small", "--input-size", "64", "64"]) == 0
    assert "no parameter or FLOP counts published" in capsys.readouterr().out


def test_detector_count_adds_the_box_head_per_proposal() -> None:
    """count_detector_flops: backbone + neck + RPN head once, the box head and predictor per RoI
    (two fc layers 256*7*7 -> 1024 -> 1024, then 81 class scores and 4 box deltas per class)."""
    from hrnet.models.flops import count_detector_flops

    with torch.device("meta"):
        model = create_model("fasterrcnn_hrnetv2p_w18_small")
        cascade = create_model("cascadercnn_hrnetv2p_w18_small")
    per_roi = 256 * 7 * 7 * 1024 + 1024 * 1024 + 1024 * 81 + 1024 * 81 * 4
    one, many = (count_detector_flops(model, (128, 192), num_proposals=n).macs for n in (1, 11))
    assert many - one == 10 * per_roi
    cascade_per_roi = 3 * (256 * 7 * 7 * 1024 + 1024 * 1024 + 1024 * 81 + 1024 * 4)
    one, many = (count_detector_flops(cascade, (128, 192), num_proposals=n).macs for n in (1, 11))
    assert many - one == 10 * cascade_per_roi


def test_info_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "hrnet_w99"]) == 2
    assert "hrnet_w99" in capsys.readouterr().err
