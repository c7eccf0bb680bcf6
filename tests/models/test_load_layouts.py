"""Strict loading of checkpoints in every published layout, written as the original scripts write them.

Each fixture is our model's weights exported to a layout (``export_state_dict``), wrapped in the
container the original training script saves, written with ``torch.save`` and read back by
``load_pretrained`` (``torch.load(..., weights_only=True)`` underneath) into a freshly built,
uninitialised model: the load must be complete and the outputs equal the source model's.
BatchNorm statistics and biases are randomised, so a wrong mapping changes the outputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from hrnet.errors import HRNetError
from hrnet.models import create_model, export_state_dict, load_pretrained
from hrnet.models.classification import Classifier
from hrnet.tasks.base import load_backbone_weights

IMAGE = (64, 64)
DETECTION = {
    "num_classes": 3,
    "min_size": 64,
    "max_size": 64,
    "box_score_thresh": 0.0,
    "representation_size": 64,
    "fpn_channels": 32,
}


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.4 + 0.3)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, nn.Conv2d | nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()


def _source(name: str, **kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    return _randomise(create_model(name, **kwargs))


def _fresh(name: str, **kwargs: object) -> nn.Module:
    """Built without initialisation: only a complete load gives it defined weights."""
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return model.to_empty(device="cpu").eval()


def _save(tmp_path: Path, filename: str, obj: object) -> Path:
    path = tmp_path / filename
    torch.save(obj, path)
    return path


def _meta(**extra: object) -> dict[str, object]:
    """An OpenMMLab checkpoint's ``meta`` (mmengine's save_checkpoint): plain values only."""
    return {
        "epoch": 12,
        "iter": 1000,
        "mmengine_version": "0.10.3",
        "dataset_meta": {"classes": ["a", "b"]},
        **extra,
    }


def _close(actual: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def _complete(report: object, layout: str) -> None:
    assert report.layout == layout  # type: ignore[attr-defined]
    assert report.complete, report.summary()  # type: ignore[attr-defined]


def _image() -> Tensor:
    return torch.randn(1, 3, *IMAGE, generator=torch.Generator().manual_seed(3))


# --------------------------------------------------------------------------------------------
# classification: mmpretrain, timm, and the Classifier wrapper
# --------------------------------------------------------------------------------------------


def test_mmpretrain_classifier(tmp_path: Path) -> None:
    source = _source("hrnet_w18_small", num_classes=10)
    exported = export_state_dict(source, "mmpretrain")
    assert "neck.0.final_layer.conv.weight" in exported and "head.fc.weight" in exported
    path = _save(tmp_path, "hrnet-w18_3rdparty_8xb32_in1k.pth", {"meta": _meta(), "state_dict": exported})
    target = _fresh("hrnet_w18_small", num_classes=10)
    report = load_pretrained(target, path)
    _complete(report, "mmpretrain")
    assert {key for key, _ in report.ignored} == {"meta"}
    with torch.no_grad():
        _close(target(_image()), source(_image()))


def test_timm_classifier_and_the_classifier_wrapper(tmp_path: Path) -> None:
    source = _source("hrnet_w18_small", num_classes=10)
    path = _save(tmp_path, "hrnet_w18_small.pth", export_state_dict(source, "timm"))
    target = _fresh("hrnet_w18_small", num_classes=10)
    _complete(load_pretrained(target, path), "official")
    wrapped = Classifier(_fresh("hrnet_w18_small", num_classes=10)).eval()
    _complete(load_pretrained(wrapped, path), "official")
    with torch.no_grad():
        assert torch.equal(target(_image()), source(_image()))
        assert torch.equal(wrapped(_image()), source(_image()))
    assert export_state_dict(wrapped, "timm").keys() == source.state_dict().keys()


# --------------------------------------------------------------------------------------------
# segmentation: MMSegmentation, HRNet-Semantic-Segmentation
# --------------------------------------------------------------------------------------------


def test_mmseg_fcn(tmp_path: Path) -> None:
    source = _source("fcn_hrnetv2_w18_small", num_classes=4)
    path = _save(
        tmp_path, "fcn_hr18s.pth", {"meta": _meta(), "state_dict": export_state_dict(source, "mmseg")}
    )
    target = _fresh("fcn_hrnetv2_w18_small", num_classes=4)
    _complete(load_pretrained(target, path), "mmseg")
    with torch.no_grad():
        assert torch.equal(target(_image())["out"], source(_image())["out"])


def _full_model(source: nn.Module, class_weights: Tensor) -> dict[str, Tensor]:
    """HRNet-Semantic-Segmentation's FullModel(model, CrossEntropy(weight=...)).state_dict()."""
    sd = export_state_dict(source, "hrnet_seg")
    bias = torch.randn(sd["last_layer.1.running_mean"].shape, generator=torch.Generator().manual_seed(5))
    sd["last_layer.0.bias"] = bias  # its head conv has a bias: BN(conv + b) with mean + b is the same map
    sd["last_layer.1.running_mean"] = sd["last_layer.1.running_mean"] + bias
    full = {f"model.{k}": v for k, v in sd.items()}
    full["loss.criterion.weight"] = class_weights
    return full


def test_hrnet_semantic_segmentation_full_model_with_class_weights(tmp_path: Path) -> None:
    source = _source("fcn_hrnetv2_w18_small", num_classes=19, align_corners=True)
    full = _full_model(source, torch.rand(19) + 0.5)  # Cityscapes class weights
    optimizer = torch.optim.SGD(source.parameters(), lr=0.01, momentum=0.9)
    files = {
        "best.pth": full,
        "checkpoint.pth.tar": {
            "epoch": 484,
            "best_mIoU": 0.7,
            "state_dict": full,
            "optimizer": optimizer.state_dict(),
        },
    }
    for filename, obj in files.items():
        target = _fresh("fcn_hrnetv2_w18_small", num_classes=19, align_corners=True)
        report = load_pretrained(target, _save(tmp_path, filename, obj))
        _complete(report, "hrnet_seg")
        ignored = {key for key, _ in report.ignored}
        assert "loss.criterion.weight" in ignored
        if filename == "checkpoint.pth.tar":
            assert {"epoch", "best_mIoU", "optimizer"} <= ignored
        assert "loss.criterion.weight" in report.summary()
        with torch.no_grad():
            _close(target(_image())["out"], source(_image())["out"])


# --------------------------------------------------------------------------------------------
# detection: MMDetection Faster, Mask and Cascade R-CNN with HRFPN
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["fasterrcnn_hrnetv2p_w18_small", "maskrcnn_hrnetv2p_w18_small", "cascadercnn_hrnetv2p_w18_small"]
)
def test_mmdet_rcnn(name: str, tmp_path: Path) -> None:
    source = _source(name, **DETECTION)
    exported = export_state_dict(source, "mmdet")
    if "cascade" in name:  # three stages, class-agnostic deltas
        assert exported["roi_head.bbox_head.2.fc_reg.weight"].shape[0] == 4
    else:
        assert exported["roi_head.bbox_head.fc_reg.weight"].shape[0] == 4 * 2  # no background rows
    if "mask" in name:
        assert exported["roi_head.mask_head.conv_logits.weight"].shape[0] == 2
    path = _save(tmp_path, f"{name}.pth", {"meta": _meta(), "state_dict": exported})
    target = _fresh(name, **DETECTION)
    _complete(load_pretrained(target, path), "mmdet")
    images = [torch.rand(3, *IMAGE, generator=torch.Generator().manual_seed(4))]
    with torch.no_grad():
        want, got = source(images)[0], target(images)[0]
    assert len(want["boxes"]) > 0
    for key in want:
        _close(got[key], want[key])


# --------------------------------------------------------------------------------------------
# pose: mmpose, deep-high-resolution-net.pytorch
# --------------------------------------------------------------------------------------------


def test_mmpose_topdown_heatmap(tmp_path: Path) -> None:
    source = _source("pose_hrnet_w18_small", num_joints=5)
    exported = export_state_dict(source, "mmpose")
    assert "head.final_layer.weight" in exported
    path = _save(tmp_path, "td-hm_hrnet.pth", {"meta": _meta(), "state_dict": exported})
    target = _fresh("pose_hrnet_w18_small", num_joints=5)
    _complete(load_pretrained(target, path), "mmpose")
    with torch.no_grad():
        assert torch.equal(target(_image()), source(_image()))


def test_pose_repository_files(tmp_path: Path) -> None:
    source = _source("pose_hrnet_w18_small", num_joints=5)
    sd = export_state_dict(source, "hrnet_pose")
    assert "final_layer.weight" in sd and "conv1.weight" in sd
    data_parallel = {f"module.{k}": v for k, v in sd.items()}
    optimizer = torch.optim.Adam(source.parameters(), lr=1e-3)
    files = {
        "final_state.pth": sd,  # tools/train.py: model.module.state_dict()
        "model_best.pth": data_parallel,  # forks that save the DataParallel's own state dict
        "checkpoint.pth": {  # lib/utils/utils.py save_checkpoint
            "epoch": 210,
            "model": "pose_hrnet",
            "state_dict": data_parallel,
            "best_state_dict": sd,
            "perf": 0.74,
            "optimizer": optimizer.state_dict(),
        },
    }
    for filename, obj in files.items():
        target = _fresh("pose_hrnet_w18_small", num_joints=5)
        report = load_pretrained(target, _save(tmp_path, filename, obj))
        _complete(report, "hrnet_pose")
        if filename == "checkpoint.pth":
            assert {key for key, _ in report.ignored} == {
                "epoch",
                "model",
                "best_state_dict",
                "perf",
                "optimizer",
            }
        with torch.no_grad():
            assert torch.equal(target(_image()), source(_image()))


# --------------------------------------------------------------------------------------------
# landmarks: HRNet-Facial-Landmark-Detection
# --------------------------------------------------------------------------------------------


def test_facial_landmark_release_file(tmp_path: Path) -> None:
    source = _source("landmark_hrnetv2_w18_small", num_points=6)
    sd = export_state_dict(source, "hrnet_face")
    assert "head.3.weight" in sd and "conv1.weight" in sd
    for filename, obj in {"HR18-300W.pth": sd, "final_state.pth": {"state_dict": sd}}.items():
        target = _fresh("landmark_hrnetv2_w18_small", num_points=6)
        _complete(load_pretrained(target, _save(tmp_path, filename, obj)), "hrnet_face")
        with torch.no_grad():
            assert torch.equal(target(_image()), source(_image()))


# --------------------------------------------------------------------------------------------
# what must not look like success
# --------------------------------------------------------------------------------------------


def test_a_checkpoint_that_loads_nothing_raises(tmp_path: Path) -> None:
    other = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 2))
    path = _save(tmp_path, "other.pth", {"state_dict": other.state_dict()})
    for partial in (False, True):
        with pytest.raises(
            HRNetError, match=r"no tensor of the checkpoint fits.*no place: 0\.weight, 0\.bias"
        ):
            load_pretrained(_fresh("fcn_hrnetv2_w18_small", num_classes=4), path, partial=partial)


def test_a_head_missing_raises_and_partial_reports(tmp_path: Path) -> None:
    source = _source("fcn_hrnetv2_w18_small", num_classes=4)
    sd = {
        k: v
        for k, v in export_state_dict(source, "mmseg").items()
        if not k.startswith("decode_head.conv_seg")
    }
    path = _save(tmp_path, "no_head.pth", {"meta": _meta(), "state_dict": sd})
    with pytest.raises(
        HRNetError, match=r"without a tensor: decode_head\.conv_seg\.weight, decode_head\.conv_seg\.bias"
    ):
        load_pretrained(_fresh("fcn_hrnetv2_w18_small", num_classes=4), path)
    target = _fresh("fcn_hrnetv2_w18_small", num_classes=4)
    report = load_pretrained(target, path, partial=True)
    assert report.partial and not report.complete
    assert report.missing == ("decode_head.conv_seg.weight", "decode_head.conv_seg.bias")
    assert "missing 2 (left as initialised): decode_head.conv_seg.weight" in report.summary()
    assert torch.equal(target.backbone.conv1.weight, source.backbone.conv1.weight)


def test_a_wrong_shape_raises_and_partial_reports(tmp_path: Path) -> None:
    source = _source("landmark_hrnetv2_w18_small", num_points=5)
    path = _save(tmp_path, "HR18-WFLW.pth", export_state_dict(source, "hrnet_face"))
    model = _fresh("landmark_hrnetv2_w18_small", num_points=6)
    with pytest.raises(HRNetError, match=r"'head\.3\.weight' has shape \(5, 240, 1, 1\).*\(6, 240, 1, 1\)"):
        load_pretrained(model, path)
    report = load_pretrained(model, path, partial=True)
    assert {key for key, _, _ in report.mismatched} == {"head.3.weight", "head.3.bias"}
    assert "skipped head.3.weight" in report.summary()


def test_an_imagenet_checkpoint_does_not_fill_a_task_model(tmp_path: Path) -> None:
    imagenet = _save(
        tmp_path, "hrnet_w18_small.pth", export_state_dict(_source("hrnet_w18_small"), "official")
    )
    with pytest.raises(HRNetError, match=r"final_layer\.weight"):
        load_pretrained(_fresh("pose_hrnet_w18_small", num_joints=5), imagenet)
    report = load_pretrained(_fresh("pose_hrnet_w18_small", num_joints=5), imagenet, partial=True)
    assert report.missing == ("final_layer.weight", "final_layer.bias")
    reasons = {reason for _, reason in report.ignored}
    assert any("ImageNet" in r for r in reasons) and any("V1" in r for r in reasons)


def test_another_layout_read_as_one_named_by_the_caller_raises(tmp_path: Path) -> None:
    source = _source("pose_hrnet_w18_small", num_joints=5)
    path = _save(tmp_path, "final_state.pth", export_state_dict(source, "hrnet_pose"))
    with pytest.raises(HRNetError, match="unknown checkpoint layout"):
        load_pretrained(_fresh("pose_hrnet_w18_small", num_joints=5), path, layout="pose")
    with pytest.raises(HRNetError, match="no place"):
        load_pretrained(_fresh("pose_hrnet_w18_small", num_joints=5), path, layout="mmpose")


# --------------------------------------------------------------------------------------------
# the tasks' backbone weights
# --------------------------------------------------------------------------------------------


def test_backbone_weights_load_strictly(tmp_path: Path) -> None:
    imagenet = _source("hrnet_w18_small")
    path = _save(tmp_path, "hrnet_w18_small.pth", export_state_dict(imagenet, "official"))
    seg = _fresh("fcn_hrnetv2_w18_small", num_classes=4)
    load_backbone_weights(seg.backbone, str(path))  # the ImageNet head is declared not part of it
    assert torch.equal(
        seg.backbone.stage4[0].fuse_layers[0][1][0].weight, imagenet.stage4[0].fuse_layers[0][1][0].weight
    )
    load_backbone_weights(_fresh("pose_hrnet_w18_small").backbone, str(path))  # V1: fewer fuse layers

    # another row's model.pt (this package's format): its backbone initialises a detector's
    row = _source("fcn_hrnetv2_w18_small", num_classes=4)
    model_pt = _save(
        tmp_path,
        "model.pt",
        {
            "format": "hrnet-zoo/model/1",
            "config": {"task": "segmentation"},
            "model": row.state_dict(),
            "info": {},
        },
    )
    body = _fresh("hrnet_w18_small", output="branches")
    load_backbone_weights(body, str(model_pt))
    assert torch.equal(body.conv1.weight, row.backbone.conv1.weight)

    wrong = _save(tmp_path, "hrnet_w18.pth", export_state_dict(create_model("hrnet_w18"), "official"))
    with pytest.raises(
        HRNetError, match=r"'layer1\.0\.conv1\.weight' has shape \(64, 64, 1, 1\).*\(32, 64, 1, 1\)"
    ):
        load_backbone_weights(_fresh("fcn_hrnetv2_w18_small", num_classes=4).backbone, str(wrong))
