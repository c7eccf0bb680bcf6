"""Every registered model: its published counts, its feature_info and a real forward pass.

The expected numbers are the published ones, carried by each model's registry entry
(:class:`hrnet.models.registry.ModelInfo`); each is compared in its own unit and convention.
Counting runs on the meta device; the forward pass runs the same meta-built model on a CPU image
(64x64) with CPU tensors in place of its parameters and buffers: zeros (BatchNorm variance ones),
views of one shared buffer, so that no model is allocated in full. The check is about shapes,
channels and strides, not values.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from hrnet.errors import HRNetError
from hrnet.models import TASKS, create_model, list_models, model_info
from hrnet.models.flops import count_params, count_published, measure_published
from hrnet.models.hrnet import CONFIGS, HighResolutionNet
from hrnet.models.registry import MEBI_PARAMS, MEGA_PARAMS, ModelInfo, registry

SIZE = 64  # forward-check input: [1, 3, 64, 64]
# keyword arguments of the forward check only: a detector resizes its input to 800 by default
FORWARD_KWARGS: dict[str, dict[str, object]] = {
    "detection": {"min_size": SIZE, "max_size": SIZE, "rpn_post_nms_top_n_test": 20},
}
NAMES = list_models()


def _cpu_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU stand-ins for a meta-device model's parameters and buffers, for ``functional_call``:
    zeros (running variances ones), all views of one buffer per dtype and value."""
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    largest = max(t.numel() for t in tensors.values())
    shared: dict[tuple[torch.dtype, float], torch.Tensor] = {}
    out = {}
    for name, t in tensors.items():
        value = 1.0 if name.endswith("running_var") else 0.0
        key = (t.dtype, value)
        if key not in shared:
            shared[key] = torch.full((largest,), value, dtype=t.dtype)
        out[name] = shared[key][: t.numel()].view(t.shape)
    return out


def test_every_existing_model_name_is_registered_once() -> None:
    widths = [name.removeprefix("hrnet_") for name in CONFIGS]
    expected = {
        *CONFIGS,
        *(f"fcn_hrnetv2_{w}" for w in widths),
        *(
            f"{kind}_hrnetv2p_{w}"
            for kind in (
                "fasterrcnn",
                "maskrcnn",
                "cascadercnn",
                "cascade_mask_rcnn",
                "htc",
                "htc_without_semantic",
            )
            for w in widths
        ),
        *(f"fcos_hrnetv2p_w{w}" for w in (18, 32, 40, 48)),
        *(f"centernet_hrnetv2_w{w}" for w in (18, 32, 48)),
        *(f"pose_hrnet_{w}" for w in widths),
        *(f"landmark_hrnetv2_{w}" for w in widths),
    }
    assert set(NAMES) == expected and len(NAMES) == len(expected)
    for name, info in registry().items():
        assert info.name == name == info.builder.__name__
        assert info.summary


def test_list_models_filters_by_task() -> None:
    by_task = {task: list_models(task=task) for task in TASKS}
    assert sorted(n for names in by_task.values() for n in names) == NAMES
    assert by_task["classification"] == sorted(CONFIGS)
    assert all(name.startswith("pose_") for name in by_task["pose"])
    assert all(model_info(name).task == task for task, names in by_task.items() for name in names)
    with pytest.raises(HRNetError, match="unknown task 'depth'"):
        list_models(task="depth")
    with pytest.raises(HRNetError, match="hrnet_w99"):
        model_info("hrnet_w99")


def test_model_info_is_frozen_and_create_model_applies_its_kwargs() -> None:
    info = model_info("hrnet_w18_small")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        info.kwargs["num_classes"] = 10  # type: ignore[index]
    assert dict(info.kwargs) == {"num_classes": 1000}
    with torch.device("meta"):
        assert create_model("hrnet_w18_small").classifier.out_features == 1000
        assert create_model("hrnet_w18_small", num_classes=10).classifier.out_features == 10
    with pytest.raises(TypeError, match="num_clases"):
        create_model("hrnet_w18_small", num_clases=10)


def test_checkpoints_are_fetch_catalogue_names() -> None:
    from hrnet.data.catalog import list_datasets

    known = set(list_datasets())
    named = {c for info in registry().values() for c in (*info.checkpoints, *info.backbone_checkpoints)}
    assert named and named <= known
    assert model_info("hrnet_w32").checkpoints == ("hrnetv2_w32_imagenet", "hrnet_w32_imagenet_pose")
    assert model_info("fcn_hrnetv2_w18_small_v2").backbone_checkpoints == ("hrnetv2_w18_small_imagenet",)
    assert model_info("pose_hrnet_w48").backbone_checkpoints == ("hrnet_w48_imagenet_pose",)


def test_published_figures_are_described_with_their_units() -> None:
    published = [p for info in registry().values() for p in info.published]
    # classifiers (params + GFLOPs), MMPretrain GFLOPs, Faster R-CNN, FCOS (HRNet-FCOS), pose, landmarks
    assert len(published) == 9 * 2 + 7 + 3 * 2 + 2 * 2 + 2 * 3 + 2
    for p in published:
        assert p.source and p.convention and p.unit.meaning
        assert (p.input_size is None) == (p.counter == "params")
    assert model_info("hrnet_w18").params.describe() == "21.3 M (10^6 parameters), MMPretrain"
    assert model_info("pose_hrnet_w32").gflops[1].describe() == (
        "16.0 GFLOPs (2^30 multiply-adds) at 384x288 (HxW), deep-high-resolution-net.pytorch"
    )


def test_detection_parameter_unit_is_2_20_as_published() -> None:
    """HRNet-Object-Detection's "M" are units of 2^20: in units of 10^6 its numbers do not match."""
    info = model_info("fasterrcnn_hrnetv2p_w18")
    assert info.params is not None and info.params.unit == MEBI_PARAMS
    counted = measure_published(info, info.params)
    assert info.params.matches(counted)
    as_millions = dataclasses.replace(info.params, unit=MEGA_PARAMS)
    assert not as_millions.matches(counted * 2**20 / 1e6)


def test_landmark_parameter_count_is_the_v1_network_the_source_counted() -> None:
    """HRNet-Facial-Landmark-Detection's 9.3M is not its HRNetV2 network's count: the entry says
    which network it counts, and the landmark network itself does not match it."""
    info = model_info("landmark_hrnetv2_w18")
    assert info.params is not None and info.params.counted_on == "pose_hrnet_w18"
    assert info.params.matches(measure_published(info, info.params))
    with torch.device("meta"):
        own = count_params(info.build()) / info.params.unit.scale
    assert not info.params.matches(own)


def _check_counts(info: ModelInfo, model: nn.Module) -> None:
    counted_in_unit: dict[tuple[object, ...], float] = {}  # one count per counter and input size
    for published in info.published:
        key = (published.counter, published.input_size, published.counted_on)
        if key not in counted_in_unit:
            one = dataclasses.replace(
                published, value=1.0, unit=dataclasses.replace(published.unit, scale=1.0)
            )
            counted_in_unit[key] = (
                measure_published(info, one) if published.counted_on else count_published(model, one)
            )
        counted = counted_in_unit[key] / published.unit.scale
        assert published.matches(counted), (
            f"{info.name}: counted {counted:.3f}, published {published.describe()} "
            f"(convention: {published.convention}; tolerance {published.rel_tol:.1%})"
        )


def _forward(info: ModelInfo, model: nn.Module, x: torch.Tensor) -> tuple[object, list[torch.Tensor]]:
    """The meta-built model's output for the CPU image ``x`` (run with :func:`_cpu_tensors`) and
    what its HRNet's ``forward_features`` returned meanwhile."""
    nets = [m for m in model.modules() if isinstance(m, HighResolutionNet)]
    assert len(nets) == 1
    net, seen = nets[0], []

    def forward_features(images: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        features = type(net).forward_features(net, images)
        seen.append(features)
        return features

    net.forward_features = forward_features  # type: ignore[method-assign]
    args = ([x[0]],) if info.task == "detection" else (x,)
    with torch.no_grad():
        out = torch.func.functional_call(model.eval(), _cpu_tensors(model), args)
    assert len(seen) == 1
    return out, seen[0] if isinstance(seen[0], list) else [seen[0]]


def _check_feature_info(net: HighResolutionNet, maps: list[torch.Tensor]) -> None:
    assert len(maps) == len(net.feature_info)
    for fmap, info in zip(maps, net.feature_info):
        r = int(info["reduction"])
        assert tuple(fmap.shape) == (1, info["num_chs"], math.ceil(SIZE / r), math.ceil(SIZE / r)), info


def _check_output(info: ModelInfo, out: object) -> None:
    kwargs = info.kwargs
    if info.task == "classification":
        assert out.shape == (1, kwargs["num_classes"])
    elif info.task == "segmentation":
        assert out["out"].shape == (1, kwargs["num_classes"], SIZE, SIZE)
    elif info.task == "detection":
        assert len(out) == 1
        with_masks = info.name.startswith(("maskrcnn", "cascade_mask_rcnn", "htc"))
        keys = {"boxes", "labels", "scores"} | ({"masks"} if with_masks else set())
        assert set(out[0]) == keys and out[0]["boxes"].shape[1:] == (4,)
    else:
        channels = kwargs["num_joints"] if info.task == "pose" else kwargs["num_points"]
        assert out.shape == (1, channels, SIZE // 4, SIZE // 4)


@pytest.mark.parametrize("name", NAMES)
def test_registered_model(name: str) -> None:
    """Build on meta, compare every published count, then run it on CPU and check feature_info."""
    info = model_info(name)
    forward_kwargs = dict(FORWARD_KWARGS.get(info.task, {}))
    accepted = getattr(info.builder, "accepted_kwargs", None)  # one-stage detectors: no RPN knobs
    if accepted is not None:
        forward_kwargs = {k: v for k, v in forward_kwargs.items() if k in accepted}
    with torch.device("meta"):
        model = info.build(**forward_kwargs)
        if info.published:  # counted on the model as registered
            _check_counts(info, info.build() if forward_kwargs else model)
    out, features = _forward(info, model, torch.zeros(1, 3, SIZE, SIZE))
    _check_output(info, out)
    _check_feature_info(next(m for m in model.modules() if isinstance(m, HighResolutionNet)), features)
