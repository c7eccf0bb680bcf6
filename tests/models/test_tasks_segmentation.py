"""Semantic segmentation (FCN on HRNetV2): output format, losses, a tiny overfit."""

from __future__ import annotations

import pytest
import torch

from hrnet.models import create_model
from hrnet.models.segmentation import IGNORE_INDEX


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 64x64 images; the label is 1 inside a bright square, 2 inside a dark one, 0 elsewhere."""
    images = torch.zeros(2, 3, 64, 64)
    labels = torch.zeros(2, 64, 64, dtype=torch.int64)
    images[0, :, 8:30, 10:34] = 2.0
    labels[0, 8:30, 10:34] = 1
    images[1, :, 30:60, 20:50] = -2.0
    labels[1, 30:60, 20:50] = 2
    labels[:, :2] = IGNORE_INDEX  # a strip of ignored pixels
    return images, labels


def test_segmentation_overfits_a_tiny_batch() -> None:
    model = create_model("fcn_hrnetv2_w18_small", num_classes=3)
    images, labels = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(25):
        loss = model(images, labels)["loss_seg"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert set(out) == {"out"} and out["out"].shape == (2, 3, 64, 64)
    valid = labels != IGNORE_INDEX
    accuracy = (out["out"].argmax(1) == labels)[valid].float().mean().item()
    assert accuracy > 0.95


def test_ignore_index_pixels_carry_no_loss() -> None:
    model = create_model("fcn_hrnetv2_w18_small", num_classes=3).eval()
    images, labels = _batch()
    with torch.no_grad():
        base = model(images, labels)["loss_seg"]
        changed = labels.clone()
        changed[:, :2] = 255
        changed[0, 0, 0] = IGNORE_INDEX
        assert torch.equal(model(images, changed)["loss_seg"], base)


def test_aux_head_adds_a_weighted_loss_and_odd_sizes_work() -> None:
    model = create_model(
        "fcn_hrnetv2_w18_small", num_classes=4, aux_head=True, aux_weight=0.4, align_corners=True
    )
    images = torch.randn(1, 3, 70, 50)  # not a multiple of 32
    labels = torch.randint(0, 4, (1, 70, 50))
    losses = model(images, labels)
    assert set(losses) == {"loss_seg", "loss_aux"}
    model.eval()
    with torch.no_grad():
        assert model(images)["out"].shape == (1, 4, 70, 50)


def test_fcn_head_layout_is_mmseg() -> None:
    with torch.device("meta"):
        model = create_model("fcn_hrnetv2_w48", num_classes=19)
    sd = model.state_dict()
    assert sd["decode_head.convs.0.conv.weight"].shape == (720, 720, 1, 1)
    assert "decode_head.convs.0.conv.bias" not in sd
    assert sd["decode_head.conv_seg.weight"].shape == (19, 720, 1, 1)
    assert "backbone.conv1.weight" in sd


def test_unknown_keyword_raises() -> None:
    with pytest.raises(TypeError, match="num_class"):
        create_model("fcn_hrnetv2_w18", num_class=3)
