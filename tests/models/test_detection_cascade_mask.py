"""Cascade Mask R-CNN and HTC (hrnet.models.htc): the detection contract, the per-stage assigners,
HTC's mask information flow and semantic branch against hand computations, and an overfit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, roi_align

from hrnet.models import create_model, list_models
from hrnet.models.detection import CASCADE_IOU_THRESHOLDS
from hrnet.models.hrnet import CONFIGS
from hrnet.models.htc import (
    SEMANTIC_IGNORE,
    CascadeMaskRoIHeads,
    FusedSemanticHead,
    StageMaskHead,
    semantic_targets,
)
from tests.models.conftest import assert_overfits, two_box_batch

KINDS = ("cascade_mask_rcnn", "htc", "htc_without_semantic")

# small everywhere the builders allow: HRFPN, box head, mask heads, RoIs
TINY = {
    "num_classes": 3,
    "min_size": 64,
    "max_size": 64,
    "rpn_post_nms_top_n_train": 32,
    "rpn_post_nms_top_n_test": 50,
    "box_batch_size_per_image": 16,
    "fpn_channels": 64,
    "representation_size": 128,
    "mask_channels": 32,
}


def _batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    return two_box_batch(masks=True, semantic=True)


def _model(kind: str, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(f"{kind}_hrnetv2p_w18_small", **{**TINY, **kwargs})


# --------------------------------------------------------------------------------------------
# Registry and contract
# --------------------------------------------------------------------------------------------


def test_registered_for_every_width() -> None:
    names = set(list_models())
    for kind in KINDS:
        for backbone in CONFIGS:  # every HRNet width, w18_small included
            assert f"{kind}_hrnetv2p_{backbone.removeprefix('hrnet_')}" in names


@pytest.mark.parametrize("kind", KINDS)
def test_structure(kind: str) -> None:
    with torch.device("meta"):
        model = create_model(f"{kind}_hrnetv2p_w32", num_classes=81)
    heads = model.roi_heads
    assert isinstance(heads, CascadeMaskRoIHeads)
    assert len(heads.mask_heads) == len(heads.stages) == 3
    assert heads.interleaved == heads.mask_info_flow == (kind != "cascade_mask_rcnn")
    assert (heads.semantic_head is not None) == (kind == "htc")
    # HTC: the first mask head takes no previous feature, the later ones do
    assert [h.conv_res is not None for h in heads.mask_heads] == (
        [False, True, True] if kind != "cascade_mask_rcnn" else [False] * 3
    )
    head = heads.mask_heads[0]
    assert head.mask_predictor.mask_fcn_logits.out_channels == 81 and len(head.mask_head) == 4
    assert heads.score_thresh == (0.001 if kind.startswith("htc") else 0.05)


def test_semantic_only_with_htc() -> None:
    assert _model("htc", semantic=False).roi_heads.semantic_head is None
    with pytest.raises(TypeError, match="semantic"):
        create_model("cascade_mask_rcnn_hrnetv2p_w18_small", semantic=True)


@pytest.mark.parametrize("kind", KINDS)
def test_train_losses_and_eval_format(kind: str) -> None:
    model = _model(kind)
    images, targets = _batch()
    losses = model(images, targets)
    expected = {"loss_objectness", "loss_rpn_box_reg"}
    expected |= {f"loss_{k}_{t}" for k in ("classifier", "box_reg", "mask") for t in range(3)}
    if kind == "htc":
        expected.add("loss_semantic_seg")
    assert set(losses) == expected and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 48, 80)])
    assert len(out) == 1
    n = out[0]["boxes"].shape[0]
    assert (
        out[0]["boxes"].shape == (n, 4) and out[0]["labels"].shape == (n,) and out[0]["scores"].shape == (n,)
    )
    assert out[0]["masks"].shape == (n, 1, 48, 80) and out[0]["masks"].dtype == torch.float32
    if n:
        assert out[0]["masks"].min() >= 0 and out[0]["masks"].max() <= 1
        assert out[0]["boxes"][:, 2].max() <= 80 and out[0]["boxes"][:, 3].max() <= 48


def test_htc_needs_the_semantic_map() -> None:
    model = _model("htc")
    images, targets = _batch()
    for t in targets:
        del t["semantic"]
    with pytest.raises(ValueError, match="semantic"):
        model(images, targets)


# --------------------------------------------------------------------------------------------
# Per-stage assigners
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_stage_assigns_at_its_own_iou(kind: str) -> None:
    heads = _model(kind).roi_heads
    assert [s.iou_threshold for s in heads.stages] == list(CASCADE_IOU_THRESHOLDS) == [0.5, 0.6, 0.7]
    gt = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    proposals = torch.tensor([[0.0, 0.0, 100.0, 55.0], [0.0, 0.0, 100.0, 65.0]])  # IoU 0.55, 0.65
    assert torch.allclose(box_iou(proposals, gt)[:, 0], torch.tensor([0.55, 0.65]))
    target = [{"boxes": gt, "labels": torch.tensor([2])}]
    positives = []
    for stage in range(3):
        boxes, labels, matched, is_gt, idx = heads.assign_with_indices(stage, [proposals], target)
        assert labels[0][is_gt[0]].tolist() == [2]  # the appended ground truth
        pos = (labels[0] > 0) & ~is_gt[0]
        positives.append(sorted(round(b, 2) for b in boxes[0][pos, 3].tolist()))
        assert torch.equal(matched[0][labels[0] > 0], gt.expand(int((labels[0] > 0).sum()), 4))
        assert idx[0][labels[0] > 0].tolist() == [0] * int((labels[0] > 0).sum())
    assert positives == [[55.0, 65.0], [65.0], []]


def test_stage_indices_pick_the_matched_ground_truth() -> None:
    heads = _model("htc_without_semantic").roi_heads
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 90.0, 90.0]])
    proposals = torch.tensor([[51.0, 50.0, 90.0, 90.0], [0.0, 0.0, 10.0, 9.0]])
    target = [{"boxes": gt, "labels": torch.tensor([1, 2])}]
    boxes, labels, _, _, idx = heads.assign_with_indices(2, [proposals], target)
    for box, label, i in zip(boxes[0], labels[0], idx[0]):
        assert label > 0  # all four are positives at 0.7
        assert box_iou(box[None], gt).argmax().item() == i.item()
        assert label.item() == [1, 2][i.item()]


# --------------------------------------------------------------------------------------------
# Mask information flow (HTC)
# --------------------------------------------------------------------------------------------


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights and biases, so the ReLUs and conv_res are exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _four_convs(head: StageMaskHead, x: torch.Tensor) -> torch.Tensor:
    for layer in head.mask_head:  # Conv2dNormActivation(conv3x3, ReLU) x 4
        conv = layer[0]
        x = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
    return x


def _predict(head: StageMaskHead, feat: torch.Tensor) -> torch.Tensor:
    p = head.mask_predictor
    up = F.relu(F.conv_transpose2d(feat, p.conv5_mask.weight, p.conv5_mask.bias, stride=2))
    return F.conv2d(up, p.mask_fcn_logits.weight, p.mask_fcn_logits.bias)


def test_mask_information_flow_matches_a_hand_computation() -> None:
    heads = _model("htc_without_semantic").roi_heads
    _randomise(heads.mask_heads, seed=3)
    feats = torch.randn(2, 64, 14, 14, generator=torch.Generator().manual_seed(4))
    expected = []
    f_prev = None
    for t, head in enumerate(heads.mask_heads):
        x = feats
        if t > 0:  # x + ReLU(conv_res(f_prev)), conv_res a 1x1 conv
            res = F.conv2d(f_prev, head.conv_res.weight, head.conv_res.bias)
            x = feats + F.relu(res)
        f_prev = _four_convs(head, x)
        expected.append(_predict(head, f_prev))
    with torch.no_grad():
        for t in range(3):
            got = heads.mask_logits(t, feats)
            assert got.shape == (2, 3, 28, 28)
            torch.testing.assert_close(got, expected[t], rtol=1e-4, atol=1e-5)
        # the flow changes the later stages: without it stage 2 is its own head alone
        alone = heads.mask_heads[2](feats)[0]
        assert not torch.allclose(alone, expected[2], atol=1e-3)


def test_cascade_mask_rcnn_has_no_information_flow() -> None:
    heads = _model("cascade_mask_rcnn").roi_heads
    _randomise(heads.mask_heads, seed=3)
    feats = torch.randn(2, 64, 14, 14)
    with torch.no_grad():
        for t, head in enumerate(heads.mask_heads):
            torch.testing.assert_close(heads.mask_logits(t, feats), _predict(head, _four_convs(head, feats)))
        with pytest.raises(ValueError, match="conv_res"):
            heads.mask_heads[1](feats, feats)


@pytest.mark.parametrize("kind", ["cascade_mask_rcnn", "htc_without_semantic"])
def test_inference_masks_average_the_stages(kind: str) -> None:
    """Eval: the mean of the stages' sigmoid masks (HTC: each with the flow) at the detected class."""
    heads = _model(kind).roi_heads.eval()
    _randomise(heads.mask_heads, seed=5)
    features = dict(zip("01234", _levels(64, seed=2)))
    proposals = [torch.tensor([[4.0, 6.0, 40.0, 50.0], [10.0, 10.0, 30.0, 20.0], [30.0, 5.0, 60.0, 30.0]])]
    shapes = [(64, 64)]
    with torch.no_grad():
        (det,) = heads._predict(features, proposals, shapes)
        n = det["boxes"].shape[0]
        assert n > 0 and det["masks"].shape == (n, 1, 28, 28)
        feats = heads.mask_features(features, [det["boxes"]], shapes, None)
        mean = torch.stack([heads.mask_logits(t, feats).sigmoid() for t in range(3)]).mean(0)
    torch.testing.assert_close(det["masks"][:, 0], mean[torch.arange(n), det["labels"]])


# --------------------------------------------------------------------------------------------
# Semantic branch (HTC)
# --------------------------------------------------------------------------------------------


def _levels(channels: int, size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(2, channels, size // 2 ** (i + 2), size // 2 ** (i + 2), generator=g) for i in range(5)
    ]


def _manual_semantic(
    head: FusedSemanticHead, levels: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    size = levels[1].shape[-2:]  # fusion level 1: stride 8
    x = 0
    for lateral, level in zip(head.lateral_convs, levels):
        if level.shape[-2:] != size:
            level = F.interpolate(level, size=size, mode="bilinear", align_corners=True)
        x = x + F.relu(F.conv2d(level, lateral.weight, lateral.bias))
    for conv in head.convs:
        x = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
    logits = F.conv2d(x, head.conv_logits.weight, head.conv_logits.bias)
    return logits, F.relu(F.conv2d(x, head.conv_embedding.weight, head.conv_embedding.bias))


def test_fused_semantic_head_matches_a_hand_computation() -> None:
    torch.manual_seed(0)
    head = FusedSemanticHead(16, channels=8, num_classes=5)
    _randomise(head, seed=6)
    levels = _levels(16)
    with torch.no_grad():
        logits, feat = head(levels)
        want_logits, want_feat = _manual_semantic(head, levels)
    assert logits.shape == (2, 5, 8, 8) and feat.shape == (2, 8, 8, 8)
    torch.testing.assert_close(logits, want_logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feat, want_feat, rtol=1e-4, atol=1e-5)
    # the loss: 0.2 x cross entropy, 255 ignored
    labels = torch.randint(0, 5, (2, 8, 8))
    labels[:, :4] = SEMANTIC_IGNORE
    want = 0.2 * F.cross_entropy(logits[:, :, 4:], labels[:, 4:])
    torch.testing.assert_close(head.loss(logits, labels.to(torch.uint8)), want)


def test_semantic_feature_is_added_to_box_and_mask_rois() -> None:
    heads = _model("htc").roi_heads
    levels = _levels(64, seed=1)
    features = dict(zip("01234", levels))
    boxes = [
        torch.tensor([[4.0, 6.0, 40.0, 50.0], [10.0, 10.0, 30.0, 20.0]]),
        torch.tensor([[0.0, 0.0, 64.0, 64.0]]),
    ]
    shapes = [(64, 64), (64, 64)]
    with torch.no_grad():
        semantic = heads.semantic_head(levels)[1]
        sem_rois = roi_align(semantic, boxes, 14, spatial_scale=1 / 8, sampling_ratio=2)
        box = heads.box_features(features, boxes, shapes, semantic)
        mask = heads.mask_features(features, boxes, shapes, semantic)
        plain_box = heads.box_roi_pool(features, boxes, shapes)
        plain_mask = heads.mask_roi_pool(features, boxes, shapes)
    assert box.shape == (3, 64, 7, 7) and mask.shape == (3, 64, 14, 14)
    torch.testing.assert_close(mask, plain_mask + sem_rois)
    pooled = sem_rois.reshape(3, 64, 7, 2, 7, 2).mean(dim=(3, 5))  # 14x14 -> 7x7 average
    torch.testing.assert_close(box, plain_box + pooled)
    assert sem_rois.abs().sum() > 0
    assert torch.equal(heads.box_features(features, boxes, shapes, None), plain_box)


def test_semantic_targets_resize_pad_and_subsample() -> None:
    # a 4x6 map resized (nearest) to 8x12: each label becomes a 2x2 block
    label_map = torch.arange(24, dtype=torch.uint8).reshape(4, 6)
    out = semantic_targets([label_map], [(8, 12)], (2, 3))  # padded batch 16x24, stride 8
    assert out.dtype == torch.int64 and out.shape == (1, 2, 3)
    # kept pixels (0, 0), (0, 8), (8, 0), (8, 8); 16 is outside the image: padding
    assert out[0].tolist() == [[0, 4, SEMANTIC_IGNORE], [SEMANTIC_IGNORE, SEMANTIC_IGNORE, SEMANTIC_IGNORE]]
    # no resize, a [1, H, W] map, two images of different sizes in one batch
    a = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    b = torch.full((8, 16), 7, dtype=torch.uint8)
    out = semantic_targets([a, b], [(16, 16), (8, 16)], (2, 2))
    assert out[0].tolist() == [[0, 8], [128, 136]]
    assert out[1].tolist() == [[7, 7], [SEMANTIC_IGNORE, SEMANTIC_IGNORE]]
    # a 16x16 map resized to 32x32: the pixel (8y, 8x) of the resize is (4y, 4x) of the map
    c = torch.arange(256).reshape(16, 16).to(torch.uint8)
    out = semantic_targets([c], [(32, 32)], (4, 4))
    assert torch.equal(out[0], c[::4, ::4].long())


# --------------------------------------------------------------------------------------------
# Overfit
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_overfits_a_tiny_batch(kind: str) -> None:
    """50 Adam steps on two 64x64 images: the top detection has the right label, box IoU and
    mask IoU > 0.5."""
    assert_overfits(_model(kind), masks=True)


@pytest.mark.parametrize("kind", ["cascade_mask_rcnn", "htc"])
def test_eval_without_detections(kind: str) -> None:
    model = _model(kind, box_score_thresh=1.0).eval()  # no score exceeds 1
    with torch.no_grad():
        out = model([torch.rand(3, 48, 64), torch.rand(3, 64, 64)])
    for pred, (h, w) in zip(out, [(48, 64), (64, 64)]):
        assert pred["boxes"].shape == (0, 4) and pred["masks"].shape == (0, 1, h, w)
