"""Detection (HRFPN + torchvision R-CNNs, Cascade R-CNN): sizes, formats, assigners, an overfit."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d, box_iou

from hrnet.models import create_model
from hrnet.models.detection import CASCADE_IOU_THRESHOLDS, CascadeRoIHeads
from hrnet.models.flops import count_params
from tests.models.conftest import mask_iou, two_box_batch

TINY = {
    "num_classes": 3,
    "min_size": 64,
    "max_size": 64,
    "rpn_post_nms_top_n_train": 64,
    "rpn_post_nms_top_n_test": 50,
    "box_batch_size_per_image": 32,
}


def _batch(masks: bool = False) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    return two_box_batch(masks=masks)


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


@pytest.mark.parametrize("kind", ["fasterrcnn", "maskrcnn", "cascadercnn"])
def test_representation_size_sets_every_box_head(kind: str) -> None:
    with torch.device("meta"):
        default = create_model(f"{kind}_hrnetv2p_w18_small", num_classes=3)
        narrow = create_model(f"{kind}_hrnetv2p_w18_small", num_classes=3, representation_size=128)
    for model, width in ((default, 1024), (narrow, 128)):  # 1024: the published box head
        heads = model.roi_heads.stages if kind == "cascadercnn" else [model.roi_heads]
        for head in heads:
            assert head.box_head.fc6.out_features == head.box_head.fc7.out_features == width
            assert head.box_predictor.cls_score.in_features == width
            assert head.box_predictor.cls_score.out_features == 3


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


# The overfit recipe: TINY plus a narrow box head and fewer RoIs (cheap on CPU), Adam at 5e-4.
# At 1e-3 the RPN's box regression degrades while its objectness fits (loss_rpn_box_reg rises
# 0.009 -> 0.02-0.05; anchors of IoU 0.8 decode to proposals of IoU < 0.1), so the RoI heads see
# no positive proposal besides the appended ground truth and Cascade's stages 2-3 learn ~0 deltas.
OVERFIT = {
    **TINY,
    "fpn_channels": 64,
    "representation_size": 128,
    "box_batch_size_per_image": 16,
    "rpn_post_nms_top_n_train": 32,
}
OVERFIT_STEPS = 50
OVERFIT_LR = 5e-4


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize(
    "kind", ["fasterrcnn", "cascadercnn", pytest.param("maskrcnn", marks=pytest.mark.slow)]
)
def test_detector_overfits_a_tiny_batch(kind: str) -> None:
    """50 Adam steps on two 64x64 images: the losses fall and eval predicts the batch back.

    The classification terms (objectness + classifiers) must fall below 30 % of their first value
    and the total below 60 %. The box-regression terms do not fall: they are summed over the
    positive RoIs and divided by all sampled RoIs, and the positives grow from the appended
    ground truth alone (1 in 16) to the 25 % cap as the proposals improve.
    """
    model = create_model(f"{kind}_hrnetv2p_w18_small", **OVERFIT)
    images, targets = _batch(masks=kind == "maskrcnn")
    opt = torch.optim.Adam(model.parameters(), lr=OVERFIT_LR)
    model.train()
    history = []
    for _ in range(OVERFIT_STEPS):
        losses = model(images, targets)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    total = [sum(h.values()) for h in history]
    cls = [sum(v for k, v in h.items() if "classifier" in k or k == "loss_objectness") for h in history]
    assert _mean(cls[-5:]) < 0.3 * cls[0], cls
    assert _mean(total[-5:]) < 0.6 * total[0], total
    model.eval()
    with torch.no_grad():
        out = model(images)
    for pred, target in zip(out, targets):
        assert len(pred["labels"]) > 0, "no detection above the score threshold"
        assert pred["labels"][0] == target["labels"][0]  # the top-scoring detection
        assert box_iou(pred["boxes"][:1], target["boxes"]).item() > 0.5  # Cascade: last-stage boxes
        if kind == "maskrcnn":
            assert mask_iou(pred["masks"][0, 0], target["masks"][0]) > 0.5


def test_a_detector_input_too_small_for_hrfpn_is_named_in_pixels() -> None:
    """HRFPN's stride-64 level average-pools the stride-4 map by 16: a 48-pixel input has no
    such cell (PyTorch says "output size is too small"); 64 pixels is the smallest."""
    from hrnet.errors import HRNetError
    from hrnet.models import create_model

    model = create_model("fasterrcnn_hrnetv2p_w18_small", num_classes=3, min_size=48, max_size=48).eval()
    with (
        torch.no_grad(),
        pytest.raises(
            HRNetError, match=r"12x12 stride-4 map .* padding to a multiple of 32\) need at least 64 pixels"
        ),
    ):
        model.backbone(torch.zeros(1, 3, 48, 48))
    with torch.no_grad():
        assert [f.shape[-1] for f in model.backbone(torch.zeros(1, 3, 64, 64)).values()] == [16, 8, 4, 2, 1]
