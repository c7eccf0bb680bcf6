"""RGB stem weights into a stem of another channel count (timm's ``adapt_input_conv`` rule, as
:mod:`hrnet.models.input_channels` documents it), and an RGB checkpoint into a 4-channel HRNet."""

from __future__ import annotations

import logging

import pytest
import torch

from hrnet.errors import HRNetError
from hrnet.models import create_model
from hrnet.models.input_channels import adapt_input_conv, load_pretrained_adapting_input


def test_four_channels_copy_red_and_scale_by_three_quarters():
    w = torch.randn(8, 3, 3, 3)
    out = adapt_input_conv(w, 4)
    assert out.shape == (8, 4, 3, 3)
    # the documented rule: R, G, B, R (cyclic), every filter times 3/4
    expected = torch.stack([w[:, 0], w[:, 1], w[:, 2], w[:, 0]], dim=1) * 0.75
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    # the 3 / in_chans scale keeps the activations of alike channels where the rule is exact:
    # six channels (RGB twice), or four with filters that weigh R, G and B alike
    x = torch.randn(1, 1, 5, 5)
    torch.testing.assert_close(
        torch.conv2d(x.expand(1, 6, 5, 5), adapt_input_conv(w, 6)), torch.conv2d(x.expand(1, 3, 5, 5), w)
    )
    grey = w[:, :1].expand(8, 3, 3, 3).contiguous()
    torch.testing.assert_close(
        torch.conv2d(x.expand(1, 4, 5, 5), adapt_input_conv(grey, 4)),
        torch.conv2d(x.expand(1, 3, 5, 5), grey),
    )


def test_other_channel_counts_follow_the_rule():
    w = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(adapt_input_conv(w, 1), w.sum(1, keepdim=True))
    assert adapt_input_conv(w, 3) is w
    torch.testing.assert_close(adapt_input_conv(w, 6), torch.cat([w, w], 1) * 0.5)
    torch.testing.assert_close(adapt_input_conv(w, 2), w[:, :2] * 1.5)
    half = adapt_input_conv(w.half(), 4)
    assert half.dtype == torch.float16
    with pytest.raises(ValueError, match="expected RGB conv filters"):
        adapt_input_conv(torch.randn(4, 4, 3, 3), 5)
    with pytest.raises(ValueError, match="in_chans must be >= 1"):
        adapt_input_conv(w, 0)


def test_matches_timm_adapt_input_conv():
    timm_manipulate = pytest.importorskip("timm.models._manipulate")
    w = torch.randn(16, 3, 7, 7)
    for in_chans in (1, 2, 4, 5, 8):
        torch.testing.assert_close(
            adapt_input_conv(w, in_chans), timm_manipulate.adapt_input_conv(in_chans, w.clone())
        )


@pytest.fixture(scope="module")
def rgb_checkpoint(tmp_path_factory):
    """An ImageNet-layout RGB classification checkpoint of hrnet_w18_small (random weights)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "hrnet_w18_small_rgb.pth"
    state = create_model("hrnet_w18_small", num_classes=1000).state_dict()
    torch.save(state, path)
    return path, state


def test_rgb_checkpoint_loads_into_a_four_channel_stem(rgb_checkpoint, caplog):
    path, state = rgb_checkpoint
    model = create_model("fcn_hrnetv2_w18_small", num_classes=9, in_chans=4)
    with caplog.at_level(logging.INFO, logger="hrnet.models.input_channels"):
        report = load_pretrained_adapting_input(model.backbone, str(path))
    assert not report.missing and not report.unused and not report.mismatched
    assert "conv1.weight" in report.loaded
    assert "timm's adapt_input_conv rule" in caplog.text
    stem = model.backbone.conv1.weight.detach()
    rgb = state["conv1.weight"]
    torch.testing.assert_close(stem[:, :3], rgb * 0.75)
    torch.testing.assert_close(stem[:, 3], rgb[:, 0] * 0.75)
    # every other tensor as stored
    torch.testing.assert_close(model.backbone.conv2.weight.detach(), state["conv2.weight"])
    torch.testing.assert_close(model.backbone.bn1.running_mean, state["bn1.running_mean"])
    model.eval()
    with torch.inference_mode():
        assert model(torch.randn(2, 4, 32, 48))["out"].shape == (2, 9, 32, 48)


def test_rgb_checkpoint_into_an_rgb_stem_is_unchanged(rgb_checkpoint):
    path, state = rgb_checkpoint
    model = create_model("fcn_hrnetv2_w18_small", num_classes=9)
    load_pretrained_adapting_input(model.backbone, str(path))
    torch.testing.assert_close(model.backbone.conv1.weight.detach(), state["conv1.weight"])


def test_a_checkpoint_without_a_stem_is_refused(rgb_checkpoint, tmp_path):
    _, state = rgb_checkpoint
    path = tmp_path / "no_stem.pth"
    torch.save({k: v for k, v in state.items() if k != "conv1.weight"}, path)
    model = create_model("fcn_hrnetv2_w18_small", num_classes=9, in_chans=4)
    with pytest.raises(HRNetError, match=r"conv1\.weight"):
        load_pretrained_adapting_input(model.backbone, str(path))
