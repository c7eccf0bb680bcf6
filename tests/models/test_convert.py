"""Checkpoint interop of backbones: timm/official, mmpretrain, OpenMMLab and pose layouts, export, reports.

timm's HRNet is the reference implementation: a randomly initialised timm model (BatchNorm
statistics and head biases randomised too) loaded through ``load_pretrained`` must give timm's own
logits and stage-4 branches.
"""

from __future__ import annotations

import argparse
import collections
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from hrnet.errors import HRNetError
from hrnet.models import create_model, export_state_dict, load_pretrained
from hrnet.models.convert import HEAD_MODULES, detect_layout, read_checkpoint, remap, strip_prefix

VARIANTS = [
    "hrnet_w18_small",
    "hrnet_w18_small_v2",
    "hrnet_w18",
    "hrnet_w30",
    "hrnet_w32",
    "hrnet_w40",
    "hrnet_w44",
    "hrnet_w48",
    "hrnet_w64",
]
# the key rewrites do not depend on the width: one model per distinct structure
LAYOUT_VARIANTS = ["hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w18"]
SMALL = (64, 96)


def _randomise(model: nn.Module, seed: int) -> None:
    """Random BN affine/statistics and conv biases, so that a wrong mapping changes the output."""
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


def _ours(name: str, **kwargs: object) -> nn.Module:
    """Built without initialisation (every tensor is overwritten by a strict load)."""
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return model.to_empty(device="cpu").eval()


def _run(model: nn.Module, x: Tensor) -> tuple[Tensor | list[Tensor], list[Tensor]]:
    """Output and the stage-4 branch maps (captured by a hook: both implementations name it stage4)."""
    captured: list[Tensor] = []
    handle = model.stage4.register_forward_hook(lambda _m, _i, out: captured.extend(out))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        handle.remove()
    return out, captured


def _assert_close(actual: Tensor, expected: Tensor) -> None:
    assert actual.shape == expected.shape
    scale = expected.abs().max()
    assert scale > 0
    assert ((actual - expected).abs().max() / scale).item() < 1e-5


def _assert_same(model: nn.Module, reference: nn.Module, size: tuple[int, int]) -> None:
    x = torch.randn(1, 3, *size)
    out, branches = _run(model, x)
    ref_out, ref_branches = _run(reference, x)
    assert isinstance(out, Tensor)
    _assert_close(out, ref_out)
    assert len(branches) == len(ref_branches) == 4
    for a, b in zip(branches, ref_branches):
        _assert_close(a, b)


def _to_mmpretrain(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """An independent rewrite into mmpretrain's names, folding head conv biases into their BN."""
    out: dict[str, Tensor] = {}
    biases = {
        k[: -len(".0.bias")]: v for k, v in sd.items() if k.endswith(".0.bias") and k.startswith(HEAD_MODULES)
    }
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] == "incre_modules":
            out["neck.0.increase_layers." + ".".join(parts[1:])] = value
        elif parts[0] in ("downsamp_modules", "final_layer"):
            owner = ".".join(parts[:-2])  # downsamp_modules.i / final_layer
            if parts[-2] == "0" and parts[-1] == "bias":
                continue
            if parts[-2] == "1" and parts[-1] == "running_mean":
                value = value - biases[owner]
            short = owner.replace("downsamp_modules", "downsample_layers")
            out[f"neck.0.{short}.{'conv' if parts[-2] == '0' else 'bn'}.{parts[-1]}"] = value
        elif parts[0] == "classifier":
            out["head.fc." + parts[1]] = value
        else:
            out["backbone." + key] = value
    return out


@pytest.fixture(scope="module", params=VARIANTS)
def timm_model(request: pytest.FixtureRequest) -> Iterator[tuple[str, nn.Module]]:
    timm = pytest.importorskip("timm")
    name = request.param
    model = timm.create_model(name, pretrained=False).eval()
    _randomise(model, seed=VARIANTS.index(name))
    yield name, model


def test_timm_weights_give_timm_outputs(timm_model: tuple[str, nn.Module]) -> None:
    name, reference = timm_model
    model = _ours(name)
    report = load_pretrained(model, reference.state_dict())
    assert report.layout == "official"
    assert not report.missing and not report.unused
    assert len(report.loaded) == len(reference.state_dict())
    _assert_same(model, reference, (224, 224))
    _assert_same(model, reference, (160, 224))
    with torch.no_grad():
        assert model(torch.randn(1, 3, 225, 301)).shape == (1, 1000)


@pytest.mark.parametrize("timm_model", LAYOUT_VARIANTS, indirect=True)
def test_mmpretrain_layout_with_folded_biases(timm_model: tuple[str, nn.Module]) -> None:
    name, reference = timm_model
    mm = _to_mmpretrain(reference.state_dict())
    assert detect_layout(mm) == "mmpretrain"
    assert not any(k.endswith("conv.bias") for k in mm)
    model = _ours(name)
    report = load_pretrained(model, {"meta": {"epoch": 100}, "state_dict": mm})
    assert report.layout == "mmpretrain"
    assert not model.downsamp_modules[0][0].bias.any() and not model.final_layer[0].bias.any()
    assert reference.downsamp_modules[0][0].bias.abs().sum() > 0  # the fold had something to do
    _assert_same(model, reference, SMALL)

    exported = export_state_dict(model, "mmpretrain")
    assert exported.keys() == mm.keys()
    assert all(torch.allclose(exported[k].float(), mm[k].float(), atol=1e-6) for k in mm)


@pytest.mark.parametrize("timm_model", LAYOUT_VARIANTS, indirect=True)
def test_openmmlab_backbone_layout(timm_model: tuple[str, nn.Module]) -> None:
    name, reference = timm_model
    mmdet = {"backbone." + k: v for k, v in reference.state_dict().items()}
    mmdet["neck.reduction_conv.conv.weight"] = torch.zeros(256, 270, 1, 1)  # a task key, not ours
    assert detect_layout(mmdet) == "openmmlab"

    backbone_only = {k: v for k, v in mmdet.items() if k.startswith("backbone.")}
    assert detect_layout(backbone_only) == "openmmlab"

    model = _ours(name)
    report = load_pretrained(model, mmdet)
    assert report.layout == "mmdet"  # the neck key makes it a detector's checkpoint
    assert report.complete
    assert [key for key, _ in report.ignored] == ["neck.reduction_conv.conv.weight"]
    _assert_same(model, reference, SMALL)

    dense = _ours(name, output="branches")
    report = load_pretrained(dense, backbone_only)
    assert report.layout == "openmmlab" and report.complete
    assert {k.split(".")[0] for k, _ in report.ignored} == set(HEAD_MODULES)
    x = torch.randn(1, 3, *SMALL)
    _, ref_branches = _run(reference, x)
    with torch.no_grad():
        for a, b in zip(dense(x), ref_branches):
            _assert_close(a, b)


@pytest.mark.parametrize("layout", ["official", "timm", "mmdet", "mmseg", "mmpose"])
def test_export_round_trip_is_identical(layout: str, tmp_path: Path) -> None:
    source = create_model("hrnet_w18_small_v2", num_classes=10)
    _randomise(source, seed=1)
    path = tmp_path / "export.pt"
    torch.save({"state_dict": export_state_dict(source, layout)}, path)  # type: ignore[arg-type]
    target = _ours("hrnet_w18_small_v2", num_classes=10)
    report = load_pretrained(target, path)
    assert report.source == str(path)
    want, got = source.state_dict(), target.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_mmpretrain_export_round_trip_keeps_the_function() -> None:
    source = create_model("hrnet_w18_small", num_classes=10).eval()
    _randomise(source, seed=2)
    exported = export_state_dict(source, "mmpretrain")
    assert "neck.0.downsample_layers.2.conv.weight" in exported and "head.fc.bias" in exported
    assert not any(k.endswith("conv.bias") for k in exported)
    target = _ours("hrnet_w18_small", num_classes=10)
    load_pretrained(target, exported)
    x = torch.randn(2, 3, *SMALL)
    with torch.no_grad():
        _assert_close(target(x), source(x))
    again = export_state_dict(target, "mmpretrain")
    assert all(torch.equal(again[k], exported[k]) for k in exported)


def _pose_checkpoint(model: nn.Module) -> dict[str, object]:
    """The pose repository's checkpoint.pth: DataParallel names plus the heatmap conv."""
    sd = collections.OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items())
    sd["module.final_layer.weight"] = torch.randn(17, 18, 1, 1)
    sd["module.final_layer.bias"] = torch.zeros(17)
    return {"epoch": 210, "model": "pose_hrnet", "state_dict": sd, "perf": 0.74}


def test_pose_checkpoint_file(tmp_path: Path) -> None:
    source = create_model("hrnet_w18_small_v2", output="v1")
    path = tmp_path / "checkpoint.pth"
    torch.save(_pose_checkpoint(source), path)

    v1 = _ours("hrnet_w18_small_v2", output="v1")
    report = load_pretrained(v1, path)
    assert report.layout == "hrnet_pose"
    assert report.complete
    assert [key for key, _ in report.ignored if key.startswith("final_layer")] == [
        "final_layer.weight",
        "final_layer.bias",
    ]
    assert {key for key, _ in report.ignored} >= {"epoch", "model", "perf"}

    branches = _ours("hrnet_w18_small_v2", output="branches")
    with pytest.raises(HRNetError, match=r"stage4\.1\.fuse_layers\.1"):
        load_pretrained(branches, path)
    report = load_pretrained(branches, path, partial=True)
    assert report.missing  # the last module of stage 4 fuses only into branch 0 in the pose network
    assert {".".join(k.split(".")[:4]) for k in report.missing} == {
        f"stage4.1.fuse_layers.{i}" for i in (1, 2, 3)
    }
    assert "missing" in report.summary()


def test_classification_weights_into_dense_backbone_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    source = create_model("hrnet_w18_small")
    dense = _ours("hrnet_w18_small", output="v2")
    with caplog.at_level(logging.INFO, logger="hrnet.models.convert"):
        report = load_pretrained(dense, source.state_dict())
    assert report.complete  # the ImageNet head is declared not part of a dense backbone
    assert {k.split(".")[0] for k, _ in report.ignored} == set(HEAD_MODULES)
    for module in HEAD_MODULES:
        assert module in report.summary()
    assert "ignored" in caplog.text and "incre_modules" in caplog.text and "ImageNet" in caplog.text
    # the other way round, the head is missing: an error
    with pytest.raises(HRNetError, match=r"without a tensor: incre_modules\.0\.0\.conv1\.weight"):
        load_pretrained(_ours("hrnet_w18_small"), dense.state_dict())


def test_shape_mismatch_names_key_and_shapes() -> None:
    w18 = create_model("hrnet_w18_small_v2", num_classes=10).state_dict()
    model = _ours("hrnet_w18_small_v2", num_classes=7)
    with pytest.raises(HRNetError, match=r"'classifier.weight'.*\(10, 2048\).*\(7, 2048\)"):
        load_pretrained(model, w18)
    report = load_pretrained(model, w18, partial=True)
    assert {k for k, _, _ in report.mismatched} == {"classifier.weight", "classifier.bias"}
    assert ("classifier.weight", (10, 2048), (7, 2048)) in report.mismatched
    assert "classifier.weight" in report.summary()

    with pytest.raises(HRNetError, match=r"'layer1\.0\.conv1\.weight'.*\(32, 64, 1, 1\).*\(64, 64, 1, 1\)"):
        load_pretrained(_ours("hrnet_w18"), create_model("hrnet_w18_small").state_dict())


def test_read_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(HRNetError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=0.1)}, unsafe)
    with pytest.raises(
        HRNetError, match=r"unsafe\.pt: holds Python objects besides tensors \(argparse\.Namespace\)"
    ):
        read_checkpoint(unsafe)
    # not a torch.save file at all (a web page saved as .pth), and a corrupt pickle: the reason,
    # not torch's advice to load with weights_only=False
    (tmp_path / "page.pth").write_text("<html>Not Found</html>")
    with pytest.raises(HRNetError, match=r"page\.pth: not a PyTorch checkpoint .*b'<html>No'") as err:
        read_checkpoint(tmp_path / "page.pth")
    assert "weights_only" not in str(err.value)
    whole = tmp_path / "whole.pt"
    torch.save({"w": torch.zeros(1000)}, whole)
    (tmp_path / "half.pt").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # an interrupted copy
    with pytest.raises(HRNetError, match=r"half\.pt: a truncated or corrupt torch\.save archive"):
        read_checkpoint(tmp_path / "half.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(
        HRNetError, match=r"corrupt\.pt: a corrupt or unreadable PyTorch file \(Unsupported operand"
    ) as err:
        read_checkpoint(tmp_path / "corrupt.pt")
    assert "weights_only" not in str(err.value)
    with pytest.raises(HRNetError, match="no state dict"):
        read_checkpoint({"epoch": 3, "optimizer": {"lr": 0.1}})


def test_key_mapping_primitives() -> None:
    sd = {"model.a.weight": torch.zeros(1), "model.b.bias": torch.ones(1)}
    assert read_checkpoint({"model": sd})[0].keys() == {"a.weight", "b.bias"}
    assert strip_prefix({"x.a": torch.zeros(1), "b": torch.zeros(1)}, "x.").keys() == {"a", "b"}
    renamed = remap(
        {"backbone.conv1.weight": torch.zeros(1), "head.x": torch.zeros(1)}, [(r"backbone\.(.+)", r"\1")]
    )
    assert list(renamed) == ["conv1.weight", "head.x"]
    with pytest.raises(HRNetError, match="already"):
        remap({"a.w": torch.zeros(1), "b.w": torch.zeros(1)}, [(r"[ab]\.(.+)", r"\1")])
