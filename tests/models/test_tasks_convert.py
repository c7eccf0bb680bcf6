"""Task checkpoints in the reference layouts load into our models and give identical outputs.

Each foreign state dict is written here by renaming our own with rules independent of the
converter's (the module names of MMSegmentation, HRNet-Semantic-Segmentation, MMDetection,
HRNet-Object-Detection, deep-high-resolution-net.pytorch, mmpose and
HRNet-Facial-Landmark-Detection), so a correct converter must reproduce the model's outputs.
"""

from __future__ import annotations

import pytest
import torch

from hrnet.errors import HRNetError
from hrnet.models import create_model, load_pretrained
from hrnet.models.convert import remap
from hrnet.models.convert_tasks import detect_task_layout


def _randomise_bn(model: torch.nn.Module) -> None:
    """Non-trivial running statistics, so a wrong BN mapping changes the outputs."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _pair(name: str, **kwargs: object) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    source = create_model(name, **kwargs).eval()
    _randomise_bn(source)
    torch.manual_seed(1)
    return source, create_model(name, **kwargs).eval()


def test_mmseg_fcn_checkpoint() -> None:
    source, target = _pair("fcn_hrnetv2_w18_small", num_classes=3)
    state = dict(source.state_dict())  # mmseg names are ours: backbone.*, decode_head.*
    state = {"meta": {}, "state_dict": {k: v for k, v in state.items()}}
    images = torch.randn(1, 3, 64, 64)
    report = load_pretrained(target, state)
    assert report.layout == "mmseg" and report.complete
    with torch.no_grad():
        assert torch.equal(target(images)["out"], source(images)["out"])


def test_hrnet_seg_checkpoint_folds_the_head_conv_bias() -> None:
    source, target = _pair("fcn_hrnetv2_w18_small", num_classes=3)
    sd = source.state_dict()
    bias = torch.randn(sd["decode_head.convs.0.bn.running_mean"].shape)
    foreign = remap(
        sd,
        [
            (r"backbone\.(.+)", r"\1"),
            (r"decode_head\.convs\.0\.conv\.(.+)", r"last_layer.0.\1"),
            (r"decode_head\.convs\.0\.bn\.(.+)", r"last_layer.1.\1"),
            (r"decode_head\.conv_seg\.(.+)", r"last_layer.3.\1"),
        ],
    )
    foreign["last_layer.0.bias"] = (
        bias  # HRNet-Semantic-Segmentation's head conv has a bias: BN(conv + b) with mean + b is the same map
    )
    foreign["last_layer.1.running_mean"] = foreign["last_layer.1.running_mean"] + bias
    foreign = {f"model.{k}": v for k, v in foreign.items()}  # HRNet-Semantic-Segmentation's FullModel prefix
    report = load_pretrained(target, foreign)
    assert report.layout == "hrnet_seg" and report.complete
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(images)["out"], source(images)["out"], rtol=1e-5, atol=1e-5)


MMDET_RULES = [
    (r"backbone\.body\.(.+)", r"backbone.\1"),
    (r"backbone\.neck\.reduction_conv\.(.+)", r"neck.reduction_conv.conv.\1"),
    (r"backbone\.neck\.fpn_convs\.(\d+)\.(.+)", r"neck.fpn_convs.\1.conv.\2"),
    (r"rpn\.head\.conv\.0\.0\.(.+)", r"rpn_head.rpn_conv.\1"),
    (r"rpn\.head\.cls_logits\.(.+)", r"rpn_head.rpn_cls.\1"),
    (r"rpn\.head\.bbox_pred\.(.+)", r"rpn_head.rpn_reg.\1"),
    (r"roi_heads\.box_head\.fc6\.(.+)", r"roi_head.bbox_head.shared_fcs.0.\1"),
    (r"roi_heads\.box_head\.fc7\.(.+)", r"roi_head.bbox_head.shared_fcs.1.\1"),
    (r"roi_heads\.box_predictor\.cls_score\.(.+)", r"roi_head.bbox_head.fc_cls.\1"),
    (r"roi_heads\.box_predictor\.bbox_pred\.(.+)", r"roi_head.bbox_head.fc_reg.\1"),
]
OD_RULES = [
    (r"backbone\.body\.(.+)", r"backbone.\1"),
    (r"backbone\.neck\.reduction_conv\.(.+)", r"neck.reduction_conv.0.\1"),
    (r"backbone\.neck\.fpn_convs\.(\d+)\.(.+)", r"neck.fpn_conv.\1.\2"),
    (r"rpn\.head\.conv\.0\.0\.(.+)", r"rpn_head.rpn_conv.\1"),
    (r"rpn\.head\.cls_logits\.(.+)", r"rpn_head.rpn_cls.\1"),
    (r"rpn\.head\.bbox_pred\.(.+)", r"rpn_head.rpn_reg.\1"),
    (r"roi_heads\.box_head\.fc6\.(.+)", r"bbox_head.shared_fcs.0.\1"),
    (r"roi_heads\.box_head\.fc7\.(.+)", r"bbox_head.shared_fcs.1.\1"),
    (r"roi_heads\.box_predictor\.cls_score\.(.+)", r"bbox_head.fc_cls.\1"),
    (r"roi_heads\.box_predictor\.bbox_pred\.(.+)", r"bbox_head.fc_reg.\1"),
]


@pytest.mark.parametrize("layout", ["mmdet", "hrnet_det"])
def test_detection_checkpoints(layout: str) -> None:
    kwargs = {"num_classes": 3, "min_size": 64, "max_size": 64, "box_score_thresh": 0.0}
    source, target = _pair("fasterrcnn_hrnetv2p_w18_small", **kwargs)
    foreign = remap(source.state_dict(), MMDET_RULES if layout == "mmdet" else OD_RULES)
    if layout == "mmdet":  # mmdet 2.x: background last in fc_cls, no background rows in fc_reg
        for kind in ("weight", "bias"):
            cls = foreign[f"roi_head.bbox_head.fc_cls.{kind}"]
            foreign[f"roi_head.bbox_head.fc_cls.{kind}"] = torch.cat([cls[1:], cls[:1]])
            foreign[f"roi_head.bbox_head.fc_reg.{kind}"] = foreign[f"roi_head.bbox_head.fc_reg.{kind}"][4:]
        # background regression is never used for detections; make the source agree with "zeros"
        with torch.no_grad():
            source.roi_heads.box_predictor.bbox_pred.weight[:4].zero_()
            source.roi_heads.box_predictor.bbox_pred.bias[:4].zero_()
    assert detect_task_layout(foreign, target) == layout
    report = load_pretrained(target, foreign)
    assert report.complete
    images = [torch.rand(3, 64, 64)]
    with torch.no_grad():
        a, b = source(images)[0], target(images)[0]
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def test_backbone_checkpoint_into_a_detector_reports_the_heads() -> None:
    backbone = create_model("hrnet_w18_small")
    model = create_model("fasterrcnn_hrnetv2p_w18_small", num_classes=3)
    with pytest.raises(HRNetError, match=r"without a tensor: backbone\.neck\.reduction_conv\.weight"):
        load_pretrained(model, backbone.state_dict())
    report = load_pretrained(model, backbone.state_dict(), partial=True)
    assert report.layout == "official"
    assert torch.equal(model.backbone.body.conv1.weight, backbone.conv1.weight)
    assert any(k.startswith("backbone.body.incre_modules") for k, _ in report.ignored)
    assert any(k.startswith("roi_heads.") for k in report.missing)


def test_shape_mismatch_names_the_key() -> None:
    source = create_model("fasterrcnn_hrnetv2p_w18_small", num_classes=5)
    target = create_model("fasterrcnn_hrnetv2p_w18_small", num_classes=3)
    with pytest.raises(HRNetError, match=r"cls_score\.weight.*\(5, 1024\).*\(3, 1024\)"):
        load_pretrained(target, source.state_dict())


@pytest.mark.parametrize("layout", ["hrnet_pose", "mmpose"])
def test_pose_checkpoints(layout: str) -> None:
    source, target = _pair("pose_hrnet_w18_small", num_joints=5)
    sd = source.state_dict()
    if layout == "hrnet_pose":  # top-level backbone, `module.` from DataParallel
        foreign = {f"module.{k.removeprefix('backbone.')}": v for k, v in sd.items()}
    else:
        foreign = {k.replace("final_layer.", "keypoint_head.final_layer."): v for k, v in sd.items()}
    report = load_pretrained(target, foreign)
    assert report.layout == layout and report.complete
    images = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(target(images), source(images))


def test_facial_landmark_checkpoint() -> None:
    source, target = _pair("landmark_hrnetv2_w18_small", num_points=6)
    foreign = {k.removeprefix("backbone."): v for k, v in source.state_dict().items()}
    report = load_pretrained(target, foreign)
    assert report.layout == "hrnet_face" and report.complete
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(target(images), source(images))
