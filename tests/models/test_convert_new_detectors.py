"""MMDetection / HRNet-Object-Detection checkpoints of Cascade Mask R-CNN, HTC, FCOS and CenterNet
load into our models (strictly) and give identical outputs; a missing key is named.

The foreign state dicts are written by renaming our own with rules written here from the
MMDetection module names (mmdet/models/roi_heads/{cascade,htc}_roi_head.py, mask_heads/
{fcn,htc}_mask_head.py, fused_semantic_head.py, dense_heads/{fcos,centernet}_head.py: every conv
of a ``ConvModule`` is ``.conv``, its GroupNorm ``.gn``), independently of the converter's rules.
"""

from __future__ import annotations

import pytest
import torch

from hrnet.errors import HRNetError
from hrnet.models import create_model, load_pretrained
from hrnet.models.convert import remap
from hrnet.models.convert_tasks import detect_task_layout, export_for
from hrnet.models.detection_anchor_free import build_centernet, build_fcos

RCNN_TINY = {
    "num_classes": 3,
    "min_size": 64,
    "max_size": 64,
    "rpn_post_nms_top_n_test": 50,
    "box_score_thresh": 0.0,
    "fpn_channels": 64,
    "representation_size": 64,
    "mask_channels": 32,
}


def _neck_rpn(v1: bool) -> list[tuple[str, str]]:
    return [
        (r"backbone\.body\.(.+)", r"backbone.\1"),
        (
            r"backbone\.neck\.reduction_conv\.(.+)",
            r"neck.reduction_conv.0.\1" if v1 else r"neck.reduction_conv.conv.\1",
        ),
        (
            r"backbone\.neck\.fpn_convs\.(\d+)\.(.+)",
            r"neck.fpn_conv.\1.\2" if v1 else r"neck.fpn_convs.\1.conv.\2",
        ),
        (r"rpn\.head\.conv\.0\.0\.(.+)", r"rpn_head.rpn_conv.\1"),
        (r"rpn\.head\.cls_logits\.(.+)", r"rpn_head.rpn_cls.\1"),
        (r"rpn\.head\.bbox_pred\.(.+)", r"rpn_head.rpn_reg.\1"),
    ]


def _cascade_mask_rules(v1: bool) -> list[tuple[str, str]]:
    """MMDetection 2.x (``roi_head.``) or 0.x/1.x (top level, HRNet-Object-Detection) names."""
    r = "" if v1 else "roi_head."
    return [
        *_neck_rpn(v1),
        (r"roi_heads\.stages\.(\d+)\.box_head\.fc6\.(.+)", rf"{r}bbox_head.\1.shared_fcs.0.\2"),
        (r"roi_heads\.stages\.(\d+)\.box_head\.fc7\.(.+)", rf"{r}bbox_head.\1.shared_fcs.1.\2"),
        (r"roi_heads\.stages\.(\d+)\.box_predictor\.cls_score\.(.+)", rf"{r}bbox_head.\1.fc_cls.\2"),
        (r"roi_heads\.stages\.(\d+)\.box_predictor\.bbox_pred\.(.+)", rf"{r}bbox_head.\1.fc_reg.\2"),
        (r"roi_heads\.mask_heads\.(\d+)\.mask_head\.(\d+)\.0\.(.+)", rf"{r}mask_head.\1.convs.\2.conv.\3"),
        (r"roi_heads\.mask_heads\.(\d+)\.mask_predictor\.conv5_mask\.(.+)", rf"{r}mask_head.\1.upsample.\2"),
        (
            r"roi_heads\.mask_heads\.(\d+)\.mask_predictor\.mask_fcn_logits\.(.+)",
            rf"{r}mask_head.\1.conv_logits.\2",
        ),
        (r"roi_heads\.mask_heads\.(\d+)\.conv_res\.(.+)", rf"{r}mask_head.\1.conv_res.conv.\2"),
        (
            r"roi_heads\.semantic_head\.lateral_convs\.(\d+)\.(.+)",
            rf"{r}semantic_head.lateral_convs.\1.conv.\2",
        ),
        (r"roi_heads\.semantic_head\.convs\.(\d+)\.(.+)", rf"{r}semantic_head.convs.\1.conv.\2"),
        (r"roi_heads\.semantic_head\.conv_embedding\.(.+)", rf"{r}semantic_head.conv_embedding.conv.\1"),
        (r"roi_heads\.semantic_head\.conv_logits\.(.+)", rf"{r}semantic_head.conv_logits.\1"),
    ]


def _to_mmdet2_classes(foreign: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MMDetection 2.x: background last in each stage's ``fc_cls``, no background mask channel."""
    out = dict(foreign)
    for key, value in foreign.items():
        if ".fc_cls." in key:
            out[key] = torch.cat([value[1:], value[:1]])
        elif ".conv_logits." in key and ".mask_head." in key:
            out[key] = value[1:]
    return out


def _pair(build, **kwargs: object) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    source = build(**kwargs).eval()
    g = torch.Generator().manual_seed(1)
    for m in source.modules():  # non-trivial BN statistics: a wrong BN mapping changes the outputs
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    torch.manual_seed(1)
    return source, build(**kwargs).eval()


def _rcnn(kind: str):
    return lambda **kw: create_model(f"{kind}_hrnetv2p_w18_small", **kw)


def _same_outputs(source: torch.nn.Module, target: torch.nn.Module, masks: bool) -> None:
    images = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(2))]
    with torch.no_grad():
        a, b = source(images)[0], target(images)[0]
    assert a["boxes"].shape[0] > 0
    for key in ("boxes", "scores", "labels", *(("masks",) if masks else ())):
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# Cascade Mask R-CNN and HTC
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["mmdet", "hrnet_det"])
@pytest.mark.parametrize("kind", ["cascade_mask_rcnn", "htc", "htc_without_semantic"])
def test_cascade_mask_checkpoints(kind: str, layout: str) -> None:
    source, target = _pair(_rcnn(kind), **RCNN_TINY)
    foreign = remap(source.state_dict(), _cascade_mask_rules(v1=layout == "hrnet_det"))
    if layout == "mmdet":
        foreign = _to_mmdet2_classes(foreign)
        with torch.no_grad():  # the background mask channel is never read; the converter gives zeros
            for head in source.roi_heads.mask_heads:
                head.mask_predictor.mask_fcn_logits.weight[0].zero_()
                head.mask_predictor.mask_fcn_logits.bias[0].zero_()
    assert not [k for k in foreign if k.startswith("roi_heads.")], "a key without an MMDetection name"
    if kind == "htc":
        assert any("semantic_head.lateral_convs.4.conv." in k for k in foreign)
    if kind != "cascade_mask_rcnn":
        assert any("mask_head.2.conv_res.conv.weight" in k for k in foreign)
    assert detect_task_layout(foreign, target) == layout
    report = load_pretrained(target, foreign)
    assert report.layout == layout and report.complete
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    _same_outputs(source, target, masks=True)


@pytest.mark.parametrize("kind", ["cascade_mask_rcnn", "htc"])
def test_cascade_mask_export_names_are_mmdetection_names(kind: str) -> None:
    with torch.device("meta"):
        model = create_model(f"{kind}_hrnetv2p_w18_small", **RCNN_TINY)
    exported = export_for(model, "mmdet")
    want = _to_mmdet2_classes(remap(model.state_dict(), _cascade_mask_rules(v1=False)))
    assert set(exported) == set(want)
    assert all(exported[k].shape == want[k].shape for k in want)


def test_a_missing_mask_key_is_named() -> None:
    source, target = _pair(_rcnn("htc"), **RCNN_TINY)
    foreign = _to_mmdet2_classes(remap(source.state_dict(), _cascade_mask_rules(v1=False)))
    del foreign["roi_head.mask_head.1.conv_res.conv.weight"]
    del foreign["roi_head.semantic_head.conv_embedding.conv.bias"]
    with pytest.raises(
        HRNetError, match=r"without a tensor: .*roi_heads\.mask_heads\.1\.conv_res\.weight"
    ) as err:
        load_pretrained(target, foreign)
    assert "roi_heads.semantic_head.conv_embedding.bias" in str(err.value)


# --------------------------------------------------------------------------------------------
# FCOS and CenterNet
# --------------------------------------------------------------------------------------------

FCOS_RULES = [
    *_neck_rpn(v1=False),
    (r"head\.(cls|reg)_convs\.(\d+)\.(conv|gn)\.(.+)", r"bbox_head.\1_convs.\2.\3.\4"),
    (r"head\.(conv_cls|conv_reg|conv_centerness)\.(.+)", r"bbox_head.\1.\2"),
    (r"head\.scales\.(\d+)\.scale", r"bbox_head.scales.\1.scale"),
]
CENTERNET_RULES = [
    (r"backbone\.body\.(.+)", r"backbone.\1"),
    (r"head\.(heatmap_head|wh_head|offset_head)\.([02])\.(.+)", r"bbox_head.\1.\2.\3"),
]


def _fcos(**kw: object) -> torch.nn.Module:
    return build_fcos(
        "hrnet_w18_small", num_classes=3, min_size=64, max_size=64, fpn_channels=64, **kw
    )  # GN(32): 2 channels a group at 1x1


def _centernet(**kw: object) -> torch.nn.Module:
    return build_centernet("hrnet_w18_small", num_classes=3, min_size=64, max_size=64, head_channels=16, **kw)


def _randomise_heads(model: torch.nn.Module) -> None:
    """Heads away from their initialisation (scales != 1, biases != prior) so the outputs tell."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def test_fcos_mmdet_checkpoint() -> None:
    source, target = _pair(_fcos, box_score_thresh=0.0)
    _randomise_heads(source)
    foreign = remap(source.state_dict(), FCOS_RULES)
    assert {k.split(".")[0] for k in foreign} == {"backbone", "neck", "bbox_head"}
    assert "bbox_head.cls_convs.3.gn.weight" in foreign and "bbox_head.scales.4.scale" in foreign
    assert detect_task_layout(foreign, target) == "mmdet"
    report = load_pretrained(target, foreign)
    assert report.layout == "mmdet" and report.complete
    _same_outputs(source, target, masks=False)
    assert set(export_for(source, "mmdet")) == set(foreign)


def test_centernet_mmdet_checkpoint() -> None:
    source, target = _pair(_centernet)
    _randomise_heads(source)
    foreign = remap(source.state_dict(), CENTERNET_RULES)
    assert "bbox_head.heatmap_head.2.bias" in foreign and "bbox_head.offset_head.0.weight" in foreign
    assert detect_task_layout(foreign, target) == "mmdet"
    report = load_pretrained(target, foreign)
    assert report.layout == "mmdet" and report.complete
    _same_outputs(source, target, masks=False)
    assert set(export_for(source, "mmdet")) == set(foreign)


@pytest.mark.parametrize(
    ("build", "rules", "drop", "ours"),
    [
        (_fcos, FCOS_RULES, "bbox_head.conv_centerness.weight", r"head\.conv_centerness\.weight"),
        (_fcos, FCOS_RULES, "bbox_head.scales.2.scale", r"head\.scales\.2\.scale"),
        (_centernet, CENTERNET_RULES, "bbox_head.wh_head.2.bias", r"head\.wh_head\.2\.bias"),
    ],
)
def test_a_missing_head_key_is_named(build, rules, drop: str, ours: str) -> None:
    foreign = remap(build().state_dict(), rules)
    del foreign[drop]
    with pytest.raises(HRNetError, match=rf"without a tensor: .*{ours}"):
        load_pretrained(build(), foreign)
