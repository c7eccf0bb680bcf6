"""Detection (HRFPN + torchvision R-CNNs, Cascade R-CNN): sizes, formats, assigners, an overfit."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d, box_iou

from hrnet.models import create_model
from hrnet.models.detection import CASCADE_IOU_THRESHOLDS, CascadeRoIHeads
from hrnet.models.flops import count_params

TINY = {
    "num_classes": 3,
    "min_size": 64,
    "max_size": 64,
    "rpn_post_nms_top_n_train": 64,
    "rpn_post_nms_top_n_test": 50,
    "box_batch_size_per_image": 32,
}


def _batch(masks: bool = False) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images = [torch.full((3, 64, 64), 0.2), torch.full((3, 64, 64), 0.2)]
    images[0][:, 12:50, 10:40] = 0.9
    images[1][:, 5:30, 30:60] = 0.6
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[30.0, 5.0, 60.0, 30.0]]), "labels": torch.tensor([2])},
    ]
    if masks:
        for t in targets:
            x0, y0, x1, y1 = t["boxes"][0].int().tolist()
            t["masks"] = torch.zeros(1, 64, 64, dtype=torch.uint8)
            t["masks"][0, y0:y1, x0:x1] = 1
    return images, targets


@pytest.mark.parametrize(("name", "published"), [("w18", 26.2), ("w32", 45.0), ("w40", 60.5)])
def test_faster_rcnn_parameter_counts(name: str, published: float) -> None:
    """OD's table: 26.2 / 45.0 / 60.5 "M" parameters, in units of 2^20, with 81 classes."""
    with torch.device("meta"):
        model = create_model(f"fasterrcnn_hrnetv2p_{name}", num_classes=81)
    assert count_params(model) / 2**20 == pytest.approx(published, rel=0.01)


def test_hrfpn_levels_and_channels() -> None:
    model = create_model("fasterrcnn_hrnetv2p_w18_small", **TINY).eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(1, 3, 64, 96))
    assert list(feats) == ["0", "1", "2", "3", "4"] and model.backbone.out_channels == 256
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 1)]


def test_frozen_bn_and_trainable_stages() -> None:
    model = create_model("fasterrcnn_hrnetv2p_w18_small", frozen_bn=True, trainable_stages=3, **TINY)
    body = model.backbone.body
    assert isinstance(body.bn1, FrozenBatchNorm2d)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    assert not body.conv1.weight.requires_grad and not any(p.requires_grad for p in body.layer1.parameters())
    assert all(p.requires_grad for p in body.stage2.parameters())
    with pytest.raises(TypeError, match="frozen_batchnorm"):
        create_model("fasterrcnn_hrnetv2p_w18", frozen_batchnorm=True)


def test_cascade_stages_use_their_own_iou_thresholds() -> None:
    model = create_model("cascadercnn_hrnetv2p_w18_small", **TINY)
    heads = model.roi_heads
    assert isinstance(heads, CascadeRoIHeads)
    assert [s.iou_threshold for s in heads.stages] == list(CASCADE_IOU_THRESHOLDS)
    assert [s.box_coder.weights for s in heads.stages] == [(10, 10, 5, 5), (20, 20, 10, 10), (30, 30, 15, 15)]
    gt = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    # boxes inside the ground truth with IoU = area / 10000: 0.45, 0.55, 0.65, 0.75
    proposals = torch.tensor([[0.0, 0.0, 100.0, w] for w in (45.0, 55.0, 65.0, 75.0)])
    assert torch.allclose(box_iou(proposals, gt)[:, 0], torch.tensor([0.45, 0.55, 0.65, 0.75]))
    target = [{"boxes": gt, "labels": torch.tensor([2])}]
    positives = []
    for stage in range(3):
        boxes, labels, _, is_gt = heads.assign(stage, [proposals], target)
        assert labels[0][is_gt[0]].tolist() == [2]  # the ground truth itself is always positive
        positives.append(sorted(round(w, 2) for w in boxes[0][(labels[0] > 0) & ~is_gt[0], 3].tolist()))
    assert positives == [[55.0, 65.0, 75.0], [65.0, 75.0], [75.0]]


@pytest.mark.parametrize("kind", ["cascadercnn", "maskrcnn"])
def test_train_losses_and_eval_format(kind: str) -> None:
    model = create_model(f"{kind}_hrnetv2p_w18_small", **TINY)
    images, targets = _batch(masks=kind == "maskrcnn")
    losses = model(images, targets)
    expected = {"loss_objectness", "loss_rpn_box_reg"}
    if kind == "cascadercnn":
        expected |= {f"loss_{k}_{t}" for k in ("classifier", "box_reg") for t in range(3)}
    else:
        expected |= {"loss_classifier", "loss_box_reg", "loss_mask"}
    assert set(losses) == expected and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 48, 80)])
    assert len(out) == 1
    n = out[0]["boxes"].shape[0]
    assert out[0]["labels"].shape == (n,) and out[0]["scores"].shape == (n,)
    if n:
        assert out[0]["boxes"][:, 2].max() <= 80 and out[0]["boxes"][:, 3].max() <= 48  # input coordinates
    if kind == "maskrcnn":
        assert out[0]["masks"].shape == (n, 1, 48, 80)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fasterrcnn"])  # cascadercnn needs more than 40 steps (see report)
def test_detector_overfits_a_tiny_batch(kind: str) -> None:
    model = create_model(f"{kind}_hrnetv2p_w18_small", **TINY)
    images, targets = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    first = last = 0.0
    for step in range(40):
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        first, last = (loss.item(), last) if step == 0 else (first, loss.item())
    assert last < 0.3 * first
    model.eval()
    with torch.no_grad():
        out = model(images)
    for pred, target in zip(out, targets):
        assert pred["labels"][0] == target["labels"][0]
        assert box_iou(pred["boxes"][:1], target["boxes"]).item() > 0.5
