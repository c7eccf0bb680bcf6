"""FCOS and CenterNet (hrnet.models.detection_anchor_free): target assignment and codecs against
hand values, the detection contract, and an overfit per model."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from hrnet.models import create_model
from hrnet.models.detection_anchor_free import (
    FCOS_STRIDES,
    INF,
    REGRESS_RANGES,
    MMDetFCOSHead,
    _points_and_ranges,
    build_centernet,
    build_fcos,
    centerness_target,
    centernet_decode,
    centernet_encode,
    fcos_assign,
    gaussian_radius,
)
from tests.models.conftest import assert_overfits, two_box_batch

FCOS_TINY = {"num_classes": 3, "min_size": 64, "max_size": 64, "fpn_channels": 64}
CENTERNET_TINY = {"num_classes": 3, "min_size": 64, "max_size": 64, "head_channels": 32}


def _batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    return two_box_batch(masks=False)


def _model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "centernet":
        return build_centernet("hrnet_w18_small", **CENTERNET_TINY)
    return build_fcos("hrnet_w18_small", head=kind.removeprefix("fcos_"), **FCOS_TINY)


KINDS = ("fcos_mmdet", "fcos_torchvision", "centernet")


# --------------------------------------------------------------------------------------------
# FCOS targets
# --------------------------------------------------------------------------------------------


def _on_every_level(point: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The same location once per level: points ``[5, 2]`` and the levels' regress ranges."""
    return torch.tensor([point] * len(REGRESS_RANGES)), torch.tensor(REGRESS_RANGES)


def test_regress_ranges() -> None:
    assert REGRESS_RANGES == ((-1, 64), (64, 128), (128, 256), (256, 512), (512, INF))
    assert FCOS_STRIDES == (8, 16, 32, 64, 128)


@pytest.mark.parametrize(
    ("box", "level"),
    [
        ((0.0, 0.0, 100.0, 100.0), 0),  # distances 50, 50, 50, 50: max 50 in (-1, 64)
        ((0.0, 0.0, 200.0, 200.0), 2),  # 50, 50, 150, 150: max 150 in (128, 256)
        ((-50.0, -50.0, 150.0, 150.0), 1),  # 100 on every side: (64, 128)
        ((20.0, 20.0, 70.0, 113.5), 0),  # 30, 30, 20, 63.5: (-1, 64)
        ((20.0, 20.0, 70.0, 114.5), 1),  # 64.5: (64, 128)
    ],
)
def test_fcos_assign_follows_the_regress_ranges(box: tuple[float, ...], level: int) -> None:
    points, ranges = _on_every_level((50.0, 50.0))
    matched, targets = fcos_assign(points, ranges, torch.tensor([box]))
    want = [-1] * 5
    want[level] = 0
    assert matched.tolist() == want
    x0, y0, x1, y1 = box
    torch.testing.assert_close(targets[level], torch.tensor([50 - x0, 50 - y0, x1 - 50, y1 - 50]))
    assert torch.equal(targets[matched < 0], torch.zeros(4, 4))


def test_fcos_assign_prefers_the_smaller_box_and_leaves_the_outside() -> None:
    gt = torch.tensor([[0.0, 0.0, 80.0, 80.0], [10.0, 10.0, 60.0, 60.0], [200.0, 200.0, 260.0, 260.0]])
    points = torch.tensor([[30.0, 30.0], [70.0, 70.0], [300.0, 300.0], [10.0, 30.0], [230.0, 230.0]])
    ranges = torch.tensor([[-1.0, INF]] * 5)  # every size
    matched, targets = fcos_assign(points, ranges, gt)
    # (30, 30) lies in boxes 0 and 1: the smaller (1) wins; (70, 70) only in box 0; (300, 300) in
    # none; (10, 30) on box 1's left side (not strictly inside): box 0; (230, 230) in box 2
    assert matched.tolist() == [1, 0, -1, 0, 2]
    torch.testing.assert_close(targets[0], torch.tensor([20.0, 20.0, 30.0, 30.0]))
    torch.testing.assert_close(targets[1], torch.tensor([70.0, 70.0, 10.0, 10.0]))
    assert torch.equal(targets[2], torch.zeros(4))
    empty, zeros = fcos_assign(points, ranges, torch.zeros(0, 4))
    assert empty.tolist() == [-1] * 5 and torch.equal(zeros, torch.zeros(5, 4))


def test_centerness_target_hand_values() -> None:
    ltrb = torch.tensor([[10.0, 20.0, 30.0, 40.0], [5.0, 5.0, 5.0, 5.0], [1.0, 4.0, 4.0, 1.0]])
    want = torch.tensor([math.sqrt(10 / 30 * 20 / 40), 1.0, math.sqrt(1 / 4 * 1 / 4)])
    torch.testing.assert_close(centerness_target(ltrb), want)


def test_fcos_locations_are_mmdetection_points() -> None:
    """Location centres ``x * stride + stride // 2`` (MMDetection's points), level-major."""
    model = _model("fcos_mmdet")
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    feats = list(model.backbone(images.tensors).values())
    assert [f.shape[-1] for f in feats] == [8, 4, 2, 1, 1]
    anchors = model.anchor_generator(images, feats)[0]
    counts = [f.shape[-2] * f.shape[-1] for f in feats]
    points, ranges = _points_and_ranges(anchors, counts)
    want = []
    for stride, f in zip(FCOS_STRIDES, feats):
        h, w = f.shape[-2:]
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        want.append(torch.stack([xs.flatten(), ys.flatten()], 1).float() * stride + stride // 2)
    torch.testing.assert_close(points, torch.cat(want))
    assert ranges.tolist() == [list(r) for r, n in zip(REGRESS_RANGES, counts) for _ in range(n)]


def test_mmdet_head_outputs() -> None:
    head = MMDetFCOSHead(32, 4, num_levels=2)
    out = head([torch.randn(2, 32, 8, 8), torch.randn(2, 32, 4, 4)])
    assert out["cls_logits"].shape == (2, 80, 4)
    assert out["bbox_regression"].shape == (2, 80, 4) and (out["bbox_regression"] > 0).all()  # exp(.)
    assert out["bbox_ctrness"].shape == (2, 80, 1)
    # prior 0.01 on the classification logits
    torch.testing.assert_close(head.conv_cls.bias, torch.full((4,), -math.log(99)))


# --------------------------------------------------------------------------------------------
# CenterNet codec
# --------------------------------------------------------------------------------------------


def test_centernet_encode_then_decode_recovers_the_boxes() -> None:
    boxes = torch.tensor([[10.3, 12.7, 40.1, 50.9], [30.0, 5.0, 61.0, 29.0], [2.0, 40.0, 20.0, 62.0]])
    labels = torch.tensor([1, 2, 2])
    h = w = 16  # a 64x64 input at stride 4
    enc = centernet_encode(boxes, labels, 2, (h, w))
    assert enc["heatmap"].shape == (2, h, w) and enc["label"].tolist() == [0, 1, 1]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 8
    torch.testing.assert_close(enc["wh"], (boxes[:, 2:] - boxes[:, :2]) / 4)
    torch.testing.assert_close(enc["offset"], centres - centres.floor())
    assert enc["index"].tolist() == (centres[:, 1].floor() * w + centres[:, 0].floor()).long().tolist()
    for k, i in zip(enc["label"], enc["index"]):  # 1 at each object's integer centre
        assert enc["heatmap"][k].flatten()[i] == 1
    assert enc["heatmap"].max() <= 1 and enc["heatmap"].min() >= 0

    p = enc["heatmap"].clamp(1e-4, 1 - 1e-4)
    heatmap = torch.log(p / (1 - p))  # logits of the target heatmap
    wh, offset = torch.zeros(2, h * w), torch.zeros(2, h * w)
    wh[:, enc["index"]] = enc["wh"].t()
    offset[:, enc["index"]] = enc["offset"].t()
    out_boxes, scores, out_labels = centernet_decode(
        heatmap, wh.reshape(2, h, w), offset.reshape(2, h, w), topk=3
    )
    order = [out_boxes[:, 0].tolist().index(b) for b in sorted(out_boxes[:, 0].tolist())]
    want_order = boxes[:, 0].argsort().tolist()
    torch.testing.assert_close(out_boxes[order], boxes[want_order], atol=1e-4, rtol=0)
    assert out_labels[order].tolist() == labels[want_order].tolist()
    torch.testing.assert_close(scores, torch.full((3,), 1 - 1e-4))


def test_gaussian_radius() -> None:
    # CornerNet's (and MMDetection's gaussian_target.gaussian_radius) value for 32 x 32 at 0.7:
    # r3 = (-2 * 0.7 * 64 + sqrt(4 * 0.49 * 64^2 + 16 * 0.7 * 0.3 * 1024)) / 2
    want = (-89.6 + math.sqrt(4 * 0.49 * 64**2 + 16 * 0.7 * 0.3 * 1024)) / 2
    assert gaussian_radius(32, 32) == pytest.approx(want)
    radii = [gaussian_radius(s, s) for s in (2, 8, 32, 128)]
    assert all(r > 0 for r in radii) and radii == sorted(radii)
    assert gaussian_radius(32, 32, min_overlap=0.9) < gaussian_radius(32, 32, min_overlap=0.5)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", ["w18", "w32", "w40", "w48"])
def test_fcos_registered(width: str) -> None:
    with torch.device("meta"):
        model = create_model(f"fcos_hrnetv2p_{width}", num_classes=81)
    assert isinstance(model.head, MMDetFCOSHead) and model.head.conv_cls.out_channels == 80
    assert len(model.head.scales) == 5


@pytest.mark.parametrize("width", ["w18", "w32", "w48"])
def test_centernet_registered(width: str) -> None:
    with torch.device("meta"):
        model = create_model(f"centernet_hrnetv2_{width}", num_classes=81)
    assert model.head.heatmap_head[2].out_channels == 80


def test_builders_reject_unknown_kwargs() -> None:
    with pytest.raises(TypeError, match="mask_channels"):
        build_fcos("hrnet_w18_small", mask_channels=3)
    with pytest.raises(ValueError, match="head"):
        build_fcos("hrnet_w18_small", head="retina")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fpn_channels"):
        build_centernet("hrnet_w18_small", fpn_channels=64)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", KINDS)
def test_train_losses_and_eval_format(kind: str) -> None:
    model = _model(kind)
    images, targets = _batch()
    losses = model(images, targets)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 48, 80)])
    assert len(out) == 1
    n = out[0]["boxes"].shape[0]
    assert (
        out[0]["boxes"].shape == (n, 4) and out[0]["labels"].shape == (n,) and out[0]["scores"].shape == (n,)
    )
    if n:
        assert out[0]["boxes"][:, 2].max() <= 80 and out[0]["boxes"][:, 3].max() <= 48  # input coordinates
        assert out[0]["labels"].min() >= 1 and out[0]["labels"].max() <= 2  # torchvision head: no background


def test_fcos_mmdet_losses_without_objects() -> None:
    model = _model("fcos_mmdet")
    images, _ = _batch()
    losses = model(images, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2)
    assert set(losses) == {"loss_classifier", "loss_bbox_iou", "loss_centerness"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_overfits_a_tiny_batch(kind: str) -> None:
    """50 Adam steps on two 64x64 images: the top detection has the right label and IoU > 0.5."""
    assert_overfits(_model(kind), masks=False)
