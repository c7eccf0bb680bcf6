"""The HRNet backbone family: backbone-only sizes, forward/backward, output modes.

The published classifier sizes and GFLOPs are registry metadata, checked for every model in
tests/models/test_registry.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hrnet.errors import HRNetError
from hrnet.models import create_model, list_models
from hrnet.models.flops import count_params

# backbone-only parameters in M (stem + stages, no head: the backbone of the dense-task models)
BACKBONE_PARAMS_M = {
    "hrnet_w18_small": 1.478,
    "hrnet_w18_small_v2": 3.861,
    "hrnet_w18": 9.562,
    "hrnet_w30": 25.812,
    "hrnet_w32": 29.306,
    "hrnet_w40": 45.521,
    "hrnet_w44": 54.975,
    "hrnet_w48": 65.325,
    "hrnet_w64": 115.698,
}
VARIANTS = list(BACKBONE_PARAMS_M)


def _meta(name: str, **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def test_list_models_has_the_backbones() -> None:
    assert set(VARIANTS) <= set(list_models())


@pytest.mark.parametrize("name", VARIANTS)
def test_backbone_parameter_counts(name: str) -> None:
    for output in ("branches", "v2"):
        assert count_params(_meta(name, output=output)) / 1e6 == pytest.approx(
            BACKBONE_PARAMS_M[name], abs=0.001
        )


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_backward_every_variant(name: str) -> None:
    model = create_model(name, num_classes=7)
    images = torch.randn(2, 3, 64, 64)
    logits = model(images)
    assert logits.shape == (2, 7)
    logits.square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad


@pytest.mark.parametrize(
    ("output", "size"),
    [("branches", (64, 64)), ("v1", (64, 64)), ("v2", (64, 64)), ("branches", (65, 97)), ("v2", (225, 301))],
)
def test_features_match_feature_info(output: str, size: tuple[int, int]) -> None:
    model = create_model("hrnet_w18_small", output=output).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    maps = out if isinstance(out, list) else [out]
    assert len(maps) == len(model.feature_info)
    for fmap, info in zip(maps, model.feature_info):
        r = info["reduction"]
        assert fmap.shape == (2, info["num_chs"], math.ceil(size[0] / r), math.ceil(size[1] / r))
    assert torch.equal(
        model.forward_head(out)[0] if isinstance(out, list) else model.forward_head(out), maps[0]
    )


def test_feature_info_of_each_mode() -> None:
    def info(output: str) -> list[tuple[object, object]]:
        return [(f["num_chs"], f["reduction"]) for f in _meta("hrnet_w32", output=output).feature_info]

    assert info("classification") == [(2048, 32)]
    assert info("branches") == [(32, 4), (64, 8), (128, 16), (256, 32)]
    assert info("v1") == [(32, 4)]
    assert info("v2") == [(480, 4)]


def test_modes_share_the_trunk() -> None:
    """The same weights give the same branches in every mode; v2 is the upsampled concat, v1 fuses to 1/4 only."""
    cls = create_model("hrnet_w18_small", num_classes=3).eval()
    branches = create_model("hrnet_w18_small", output="branches").eval()
    v2 = create_model("hrnet_w18_small", output="v2").eval()
    for model in (branches, v2):
        model.load_state_dict(cls.state_dict(), strict=False)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        xs = branches(x)
        assert all(torch.equal(a, b) for a, b in zip(cls.forward_branches(x), xs))
        up = [nn.functional.interpolate(t, size=xs[0].shape[-2:], mode="bilinear") for t in xs[1:]]
        assert torch.equal(v2(x), torch.cat([xs[0], *up], dim=1))
        v2.align_corners = True
        assert not torch.allclose(v2(x), torch.cat([xs[0], *up], dim=1))

    v1_keys = set(create_model("hrnet_w18_small", output="v1").state_dict())
    last = "stage4.0.fuse_layers"  # w18_small has one module in stage 4
    assert {k.split(".")[3] for k in v1_keys if k.startswith(last)} == {"0"}
    assert not any(k.startswith(("incre_modules", "final_layer", "classifier")) for k in v1_keys)


def test_tiny_one_channel_digits_input() -> None:
    model = create_model("hrnet_w18_small", num_classes=10, in_chans=1)
    logits = model(torch.randn(4, 1, 32, 32))
    assert logits.shape == (4, 10)
    logits.sum().backward()


def test_forward_does_not_modify_input_and_is_repeatable() -> None:
    model = create_model("hrnet_w18_small", output="branches").eval()
    x = torch.randn(1, 3, 64, 96)
    x_copy = x.clone()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(x, x_copy)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_classification_runs_at_any_size() -> None:
    model = create_model("hrnet_w18_small").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 225, 301)).shape == (1, 1000)


def test_reset_classifier_and_head_api() -> None:
    model = create_model("hrnet_w18_small", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    assert pooled.shape == (1, 2048)
    model.reset_classifier(12)
    assert model(x).shape == (1, 12)
    model.reset_classifier(0)
    assert model(x).shape == (1, 2048)
    with pytest.raises(ValueError, match="classification"):
        create_model("hrnet_w18_small", output="v2").reset_classifier(3)


def test_bn_momentum_and_norm_layer() -> None:
    from torchvision.ops import FrozenBatchNorm2d

    model = _meta("hrnet_w18_small", bn_momentum=0.01)
    assert {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.01}
    frozen = _meta("hrnet_w18_small", output="branches", norm_layer=FrozenBatchNorm2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    plain = _meta("hrnet_w18_small", output="branches")
    bn_params = sum(
        p.numel() for m in plain.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()
    )
    assert count_params(frozen) == count_params(plain) - bn_params > 0
    with pytest.raises(ValueError, match="norm_layer"):
        _meta("hrnet_w18_small", norm_layer=FrozenBatchNorm2d, bn_momentum=0.01)


def test_builder_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"hrnet_w32\(\) got an unexpected keyword argument 'num_clases'"):
        create_model("hrnet_w32", num_clases=10)
    with pytest.raises(ValueError, match="output"):
        _meta("hrnet_w18", output="v3")
    with pytest.raises(HRNetError, match="hrnet_w99"):
        create_model("hrnet_w99")
    from hrnet.models.hrnet import hrnet_w18

    with pytest.raises(TypeError):
        hrnet_w18(10)  # type: ignore[misc]


@pytest.mark.parametrize("fuse_mode", ["nearest", "bilinear"])
def test_fuse_upsampling_mode_is_what_the_module_computes(fuse_mode: str) -> None:
    """out_0 = ReLU(x_0 + up(f_01(x_1)) + up(f_02(x_2))) with the chosen upsampling, written out;
    on odd sizes (13x11 from 7x6 and 4x3) where nearest and bilinear differ everywhere."""
    from torch.nn import functional as F

    from hrnet.models.hrnet import HighResolutionModule

    torch.manual_seed(0)
    module = HighResolutionModule(
        (4, 8, 16), 1, multi_scale_output=True, norm_layer=torch.nn.BatchNorm2d, fuse_mode=fuse_mode
    ).eval()
    xs = [torch.randn(2, 4, 13, 11), torch.randn(2, 8, 7, 6), torch.randn(2, 16, 4, 3)]
    with torch.no_grad():
        out = module([x.clone() for x in xs])[0]
        branched = [branch(x) for branch, x in zip(module.branches, xs)]
        kwargs = {"align_corners": False} if fuse_mode == "bilinear" else {}
        ups = [
            F.interpolate(module.fuse_layers[0][j](branched[j]), size=(13, 11), mode=fuse_mode, **kwargs)
            for j in (1, 2)
        ]
        expected = F.relu(branched[0] + ups[0] + ups[1])
    torch.testing.assert_close(out, expected)


def test_landmark_models_fuse_bilinearly_like_the_facial_landmark_repo() -> None:
    from hrnet.models import create_model

    landmark = create_model("landmark_hrnetv2_w18_small")
    modules = [m for m in landmark.modules() if type(m).__name__ == "HighResolutionModule"]
    assert modules and {m.fuse_mode for m in modules} == {"bilinear"}
    seg = create_model("fcn_hrnetv2_w18_small", fuse_mode="bilinear", align_corners=True)
    assert {m.align_corners for m in seg.modules() if type(m).__name__ == "HighResolutionModule"} == {True}
    assert {m.fuse_mode for m in create_model("hrnet_w18_small").modules() if hasattr(m, "fuse_mode")} == {
        "nearest"
    }
    with pytest.raises(ValueError, match="fuse_mode must be one of"):
        create_model("hrnet_w18_small", fuse_mode="bicubic")
