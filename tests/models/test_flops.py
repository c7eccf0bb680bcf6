"""FLOP counting in the published convention, and the `hrnet info` command."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hrnet.cli import main
from hrnet.models import create_model
from hrnet.models.flops import FlopCount, count_flops, count_params

# IC GFLOPs at 224x224 (HRNET.md §4)
PUBLISHED_GFLOPS = {
    "hrnet_w18_small": 1.49,
    "hrnet_w18_small_v2": 2.42,
    "hrnet_w18": 3.99,
    "hrnet_w30": 7.55,
    "hrnet_w32": 8.31,
    "hrnet_w40": 11.8,
    "hrnet_w44": 13.9,
    "hrnet_w48": 16.1,
    "hrnet_w64": 26.9,
}


@pytest.mark.parametrize("name", list(PUBLISHED_GFLOPS))
def test_gflops_match_the_published_table(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    flops = count_flops(model, (224, 224))
    assert flops.gflops == pytest.approx(PUBLISHED_GFLOPS[name], rel=0.01)


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
    assert "13.19" not in capsys.readouterr().out


def test_info_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "hrnet_w99"]) == 2
    assert "hrnet_w99" in capsys.readouterr().err
