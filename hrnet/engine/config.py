"""Typed configurations of a training run and an evaluation.

A :class:`TrainConfig` is resolved once (defaults < ``params.yaml`` row < explicit CLI flags),
validated, saved inside every checkpoint and into the run directory, and read back by
``hrnet evaluate``. Field names are the keys of a ``rows.<ROW_ID>`` mapping in ``params.yaml``
and the CLI flags (``--batch-size`` for ``batch_size``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hrnet.errors import HRNetError

# the task and dataset format names come from the task registry (hrnet.tasks), which checks them
# when the engine looks the task up: this module imports no task
OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("step", "poly", "cosine")
WARMUPS = ("linear", "constant")
DET_AUGMENTS = ("flip", "centernet")
AMP_MODES = ("none", "bf16", "fp16")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Lengths and milestones count epochs unless
    ``iters`` is set, in which case they count optimizer steps."""

    # --- what to train, on what -------------------------------------------------------------
    # task family; picks the dataset reader, the transforms, the collate and the metric
    task: str = field(default="classification", metadata=_help("task family (hrnet.tasks.task_names())"))
    # model name for hrnet.models.create_model (a backbone name for classification)
    model: str = field(default="hrnet_w18_small", metadata=_help("model name (hrnet.models.list_models())"))
    # dataset root directory (the folder holding train/ val/ or annotations/ images/)
    data: str = field(default="", metadata=_help("dataset root directory"))
    # on-disk format of the dataset, which names the reader
    dataset: str = field(
        default="imagefolder", metadata=_help("dataset format, one the task reads (Task.dataset_formats)")
    )
    # split names read for training and for evaluation
    train_split: str = field(default="train", metadata=_help("training split name"))
    val_split: str = field(default="val", metadata=_help("evaluation split name"))
    # classes (classification/segmentation) or object categories (detection, without the
    # background); 0 takes the number from the dataset
    num_classes: int = field(default=0, metadata=_help("number of classes; 0 = from the dataset"))
    # joints (pose) or landmarks; 0 takes the number from the dataset
    num_keypoints: int = field(default=0, metadata=_help("number of keypoints; 0 = from the dataset"))
    # network input (height, width); one number means a square
    input_size: tuple[int, int] = field(
        default=(224, 224),
        metadata=_help(
            "input height and width (detection: short side and long-side cap; CenterNet: the training crop)"
        ),
    )

    # --- how long ---------------------------------------------------------------------------
    # passes over the training set (ignored when iters > 0)
    epochs: int = field(default=1, metadata=_help("training epochs"))
    # optimizer steps; when > 0 it replaces epochs and milestones count steps
    iters: int = field(default=0, metadata=_help("optimizer steps (overrides epochs when > 0)"))
    # images per process per forward pass; the global batch is batch_size * world * accum_steps
    batch_size: int = field(default=32, metadata=_help("images per process per micro-batch"))
    # micro-batches whose gradients are summed into one optimizer step
    accum_steps: int = field(default=1, metadata=_help("gradient accumulation steps"))

    # --- optimizer and schedule -------------------------------------------------------------
    optimizer: str = field(default="sgd", metadata=_help(f"one of {', '.join(OPTIMIZERS)}"))
    # peak learning rate (after warmup)
    lr: float = field(default=0.01, metadata=_help("learning rate"))
    # SGD momentum, or beta1 of Adam/AdamW
    momentum: float = field(default=0.9, metadata=_help("SGD momentum / Adam beta1"))
    weight_decay: float = field(default=1e-4, metadata=_help("weight decay"))
    nesterov: bool = field(default=False, metadata=_help("Nesterov momentum (SGD)"))
    # step: x gamma at each milestone; poly: (1 - t)^poly_power down to min_lr; cosine to min_lr
    schedule: str = field(default="step", metadata=_help(f"one of {', '.join(SCHEDULES)}"))
    # epochs (or steps when iters > 0) at which a step schedule multiplies lr by gamma
    milestones: tuple[int, ...] = field(default=(), metadata=_help("step schedule milestones"))
    gamma: float = field(default=0.1, metadata=_help("step schedule factor"))
    # a step schedule drops this many epochs (steps with iters) before each milestone: 1 is the
    # HRNet codebases' MultiStepLR, stepped at the start of every epoch before training it
    milestone_shift: int = field(
        default=0, metadata=_help("step schedule drops this much before each milestone")
    )
    poly_power: float = field(default=0.9, metadata=_help("poly schedule power"))
    min_lr: float = field(default=0.0, metadata=_help("floor of the poly and cosine schedules"))
    # warmup over this many optimizer steps: linear from lr * warmup_factor, or constant at it
    warmup_iters: int = field(default=0, metadata=_help("warmup steps"))
    warmup_factor: float = field(default=0.001, metadata=_help("warmup start factor"))
    warmup: str = field(default="linear", metadata=_help(f"warmup shape, one of {', '.join(WARMUPS)}"))
    # learning rate and weight decay multipliers of the biases of every layer but the
    # normalisation layers (mmcv's paramwise bias_lr_mult / bias_decay_mult)
    bias_lr_mult: float = field(default=1.0, metadata=_help("lr multiplier of non-norm biases"))
    bias_decay_mult: float = field(default=1.0, metadata=_help("weight decay multiplier of non-norm biases"))
    # max global gradient norm; 0 disables clipping
    clip_grad: float = field(default=0.0, metadata=_help("gradient clipping norm (0 = off)"))
    # label smoothing of the classification cross-entropy (0 = off)
    label_smoothing: float = field(default=0.0, metadata=_help("label smoothing (classification)"))
    # classification evaluation: centre crop of input_size after resizing the short side to
    # input_size / eval_crop_ratio (0.875 = ImageNet's 224 of 256; 1.0 = no crop, for tiny images)
    eval_crop_ratio: float = field(default=0.875, metadata=_help("classification eval crop ratio"))

    # --- numerics and normalisation ---------------------------------------------------------
    # autocast mode: none, bf16, or fp16 (with a gradient scaler)
    amp: str = field(default="none", metadata=_help(f"one of {', '.join(AMP_MODES)}"))
    channels_last: bool = field(default=False, metadata=_help("channels-last memory format"))
    # synchronise BatchNorm statistics across processes (CUDA only; segmentation recipes)
    sync_bn: bool = field(default=False, metadata=_help("SyncBatchNorm when distributed on CUDA"))
    # BatchNorm as a fixed affine map (detection recipes and small per-process batches)
    frozen_bn: bool = field(default=False, metadata=_help("freeze BatchNorm statistics and affine"))
    # BatchNorm layers kept in eval mode while training: running statistics frozen, affine
    # weights trained (MMDetection's `norm_eval`, as HRNet-Object-Detection's backbones train)
    norm_eval: bool = field(default=False, metadata=_help("BatchNorm statistics frozen, affine trained"))

    # --- task specifics ---------------------------------------------------------------------
    # Gaussian sigma of the target heatmaps, in heatmap pixels (pose, landmarks)
    heatmap_sigma: float = field(default=2.0, metadata=_help("heatmap Gaussian sigma"))
    # pose: Gaussians centred on the exact sub-pixel joint position and decoded by a Newton step on
    # the log heatmap (DARK) instead of deep-high-resolution-net.pytorch's rounded centres and
    # quarter-pixel shift; matters when a heatmap pixel is large against the OKS tolerance (small
    # persons, small inputs)
    heatmap_subpixel: bool = field(default=False, metadata=_help("sub-pixel heatmap codec (DARK)"))
    # random horizontal flip of training images (flip pairs come from the dataset)
    hflip: bool = field(default=True, metadata=_help("random horizontal flip in training"))
    # detection training input: "flip" (the model resizes; random flip with hflip) or "centernet"
    # (CenterNet's random scale-crop warp to input_size, flip with hflip, colour augmentation)
    det_augment: str = field(
        default="flip", metadata=_help(f"detection augmentation, one of {', '.join(DET_AUGMENTS)}")
    )
    # CenterNet: evaluate each image at its own size, centred on a canvas padded to a multiple of 32
    # (CenterNet's --keep_res test) instead of resizing it to input_size
    test_keep_res: bool = field(
        default=False, metadata=_help("CenterNet: --keep_res test at the image's size")
    )
    # random scale range of the training augmentation (segmentation, pose, landmarks)
    scale_range: tuple[float, float] = field(default=(1.0, 1.0), metadata=_help("random scale range"))
    # max random rotation in degrees (pose, landmarks)
    rotation: float = field(default=0.0, metadata=_help("max random rotation, degrees"))
    # random brightness/contrast/saturation/hue/channel-order distortion (segmentation)
    photometric: bool = field(default=True, metadata=_help("photometric distortion in training"))
    # segmentation OHEM (HRNet-Semantic-Segmentation's OhemCrossEntropy): average the loss over the
    # pixels whose true-class probability is below ohem_thresh, at least the ohem_min_kept hardest
    # of a batch; 0 = off
    ohem_thresh: float = field(default=0.0, metadata=_help("segmentation OHEM threshold (0 = off)"))
    ohem_min_kept: int = field(default=100_000, metadata=_help("segmentation OHEM pixels kept per batch"))
    # detection model size knobs (0 or empty = the published architecture's value): one anchor
    # size per pyramid level (strides 4..64; 32..512), HRFPN width (256), RPN proposals kept per
    # image in training / at test (2000 / 1000), RoIs sampled per image (512), box-head fc width
    # (1024). Small images and CPU runs want smaller ones.
    anchor_sizes: tuple[int, ...] = field(
        default=(), metadata=_help("detection anchor size per pyramid level (empty = 32..512)")
    )
    fpn_channels: int = field(default=0, metadata=_help("detection HRFPN channels (0 = 256)"))
    rpn_post_nms_top_n_train: int = field(
        default=0, metadata=_help("detection proposals per image in training (0 = 2000)")
    )
    rpn_post_nms_top_n_test: int = field(
        default=0, metadata=_help("detection proposals per image at test (0 = 1000)")
    )
    box_batch_size_per_image: int = field(
        default=0, metadata=_help("detection RoIs sampled per image in training (0 = 512)")
    )
    representation_size: int = field(default=0, metadata=_help("detection box-head fc width (0 = 1024)"))

    # --- reproducibility, resources, bookkeeping --------------------------------------------
    seed: int = field(default=0, metadata=_help("random seed"))
    # torch.use_deterministic_algorithms and seeded data order/augmentation
    deterministic: bool = field(default=False, metadata=_help("deterministic algorithms"))
    workers: int = field(default=2, metadata=_help("data loader workers per process"))
    # write checkpoints/last.pt every N optimizer steps (and at the end); 0 = only at the end
    checkpoint_every: int = field(default=200, metadata=_help("checkpoint every N steps"))
    # log the running loss every N optimizer steps
    log_every: int = field(default=10, metadata=_help("log every N steps"))
    # auto (cuda when available), cpu, cuda or cuda:N
    device: str = field(default="auto", metadata=_help("auto, cpu, cuda or cuda:N"))
    # path to weights loaded into the model before training ('' = random init)
    pretrained: str = field(default="", metadata=_help("weights to start from"))
    # a whole task model's checkpoint (ours, or a published one in any supported layout) to
    # fine-tune from, loaded strictly after `pretrained`; layers whose shape follows the class
    # count (Task.class_layers) are re-initialised when the counts differ, and the log says so
    init_from: str = field(default="", metadata=_help("task checkpoint to fine-tune from"))
    # load what fits from init_from and report the rest (instead of failing)
    init_partial: bool = field(default=False, metadata=_help("partial load of init_from"))

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("warmup", self.warmup, WARMUPS)
        _check_choice("det_augment", self.det_augment, DET_AUGMENTS)
        if self.bias_lr_mult < 0 or self.bias_decay_mult < 0:
            raise HRNetError(
                f"config: bias_lr_mult and bias_decay_mult must be >= 0, got {self.bias_lr_mult}, {self.bias_decay_mult}"
            )
        _check_choice("amp", self.amp, AMP_MODES)
        positive = ("epochs", "batch_size", "accum_steps", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise HRNetError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "iters",
            "num_classes",
            "num_keypoints",
            "warmup_iters",
            "milestone_shift",
            "workers",
            "checkpoint_every",
            "ohem_min_kept",
            "fpn_channels",
            "rpn_post_nms_top_n_train",
            "rpn_post_nms_top_n_test",
            "box_batch_size_per_image",
            "representation_size",
        ):
            if getattr(self, name) < 0:
                raise HRNetError(f"config: {name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise HRNetError(f"config: lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ohem_thresh <= 1.0:
            raise HRNetError(f"config: ohem_thresh must be in [0, 1], got {self.ohem_thresh}")
        if not 0 < self.eval_crop_ratio <= 1:
            raise HRNetError(f"config: eval_crop_ratio must be in (0, 1], got {self.eval_crop_ratio}")
        if any(s < 1 for s in self.input_size):
            raise HRNetError(f"config: input_size must be positive, got {self.input_size}")
        if any(s < 1 for s in self.anchor_sizes):
            raise HRNetError(f"config: anchor_sizes must be positive, got {list(self.anchor_sizes)}")
        if list(self.milestones) != sorted(self.milestones):
            raise HRNetError(f"config: milestones must increase, got {list(self.milestones)}")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON/YAML types (tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate a trained model (the model's own TrainConfig gives the rest)."""

    # split name to evaluate on
    split: str = "val"
    # images per forward pass
    batch_size: int = 16
    workers: int = 2
    device: str = "auto"
    # segmentation: test scales (1.0 alone = single scale); each scale also flipped when flip
    scales: tuple[float, ...] = (1.0,)
    # flip test: segmentation multi-scale+flip, pose heatmap flip averaging
    flip: bool = False
    # segmentation: (height, width) each test image is rescaled to fit, keeping its aspect ratio
    # (the test scales multiply it); empty: the dataset's (MMSegmentation's sets), else its own size
    test_scale: tuple[int, ...] = ()
    # segmentation: predict from crop (height, width) windows stride (height, width) apart (empty:
    # from the whole image)
    slide_crop: tuple[int, ...] = ()
    slide_stride: tuple[int, ...] = ()
    # pose: "gt" uses the ground-truth person boxes, otherwise a COCO detection results JSON
    person_boxes: str = "gt"
    # number of prediction pictures written under plots/
    num_plots: int = 8
    # autocast during inference: none, bf16, fp16
    amp: str = "none"
    # progress bar over the batches (off in pipeline logs)
    progress: bool = True

    def __post_init__(self) -> None:
        _check_choice("amp", self.amp, AMP_MODES)
        if self.batch_size < 1:
            raise HRNetError(f"evaluate: batch_size must be >= 1, got {self.batch_size}")
        if not self.scales or any(s <= 0 for s in self.scales):
            raise HRNetError(f"test protocol: scales must be positive numbers, got {list(self.scales)}")
        for name in ("test_scale", "slide_crop", "slide_stride"):
            value = getattr(self, name)
            if value and (len(value) != 2 or any(v < 1 for v in value)):
                raise HRNetError(
                    f"test protocol: {name} must be two positive integers (height width), got {list(value)}"
                )
        if bool(self.slide_crop) != bool(self.slide_stride):
            raise HRNetError("test protocol: slide_crop and slide_stride go together (sliding-window test)")
        if self.slide_crop and any(s > c for s, c in zip(self.slide_stride, self.slide_crop)):
            raise HRNetError(
                f"test protocol: slide_stride {list(self.slide_stride)} is larger than slide_crop "
                f"{list(self.slide_crop)}: pixels between the windows would not be predicted"
            )

    @property
    def slide(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """``(crop, stride)`` of the sliding-window test, or None (whole images)."""
        if not self.slide_crop:
            return None
        return (self.slide_crop[0], self.slide_crop[1]), (self.slide_stride[0], self.slide_stride[1])


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise HRNetError(f"config: {name} {value!r} is not one of {', '.join(choices)}")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _coerce(name: str, annotation: Any, value: Any, source: str) -> Any:
    """Convert a YAML/JSON/CLI value to the field's type, or raise HRNetError naming it."""
    origin = typing.get_origin(annotation)
    try:
        if origin is tuple:
            args = typing.get_args(annotation)
            items = list(value) if isinstance(value, list | tuple) else [value]
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(args[0](v) for v in items)
            if len(items) == 1:  # one number means the same along every axis (square input)
                items = items * len(args)
            if len(items) != len(args):
                raise ValueError(f"expected {len(args)} values")
            return tuple(t(v) for t, v in zip(args, items))
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError("expected true or false")
            if not isinstance(value, bool | int):
                raise ValueError("expected true or false")
            return bool(value)
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("expected an integer")
        if isinstance(annotation, type):
            return annotation(value)
    except (TypeError, ValueError) as exc:
        raise HRNetError(f"{source}: {name}: cannot use {value!r} ({exc})") from None
    return value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def config_from_mapping(
    values: Mapping[str, Any], *, source: str, base: TrainConfig | None = None
) -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping of field names (a ``params.yaml`` row,
    CLI flags or a saved config), on top of ``base`` (defaults when None).

    Raises HRNetError naming ``source`` and the key for unknown keys and bad values.
    """
    hints = _field_types(TrainConfig)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise HRNetError(
            f"{source}: unknown key(s) {', '.join(unknown)}; TrainConfig fields are {', '.join(hints)}"
        )
    resolved = {k: _coerce(k, hints[k], v, source) for k, v in values.items()}
    return dataclasses.replace(base or TrainConfig(), **resolved)


# the EvalConfig fields of the test protocol: what a row's ``evaluate:`` entry (and the flags of
# ``hrnet evaluate``) set; its other keys (``data``, ``dataset``) say which data is scored
PROTOCOL_FIELDS = ("scales", "test_scale", "slide_crop", "slide_stride", "flip", "person_boxes")


def protocol_fields(*sources: Mapping[str, Any], source: str = "evaluate") -> dict[str, Any]:
    """The test protocol as :class:`EvalConfig` keyword arguments: each field from the first of
    ``sources`` that sets it (a value that is not None), else EvalConfig's default; values are
    converted to the field's type (HRNetError naming ``source`` and the key otherwise)."""
    hints = _field_types(EvalConfig)
    defaults = EvalConfig()
    fields = {}
    for name in PROTOCOL_FIELDS:
        value = next((m[name] for m in sources if m.get(name) is not None), None)
        fields[name] = getattr(defaults, name) if value is None else _coerce(name, hints[name], value, source)
    return fields


def evaluation_of(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a ``metrics.json`` measured: its split, dataset root and test protocol
    (:data:`PROTOCOL_FIELDS`); two evaluations with the same one measure the
    same numbers (batch size, workers, device and plots aside)."""
    settings = metrics.get("eval_settings") or {}
    fields = {name: settings.get(name) for name in PROTOCOL_FIELDS}
    return {
        "split": metrics.get("split"),
        "dataset": metrics.get("dataset"),
        **{k: list(v) if isinstance(v, tuple | list) else v for k, v in fields.items()},
    }


# --------------------------------------------------------------------------------------------
# CLI flags <-> fields
# --------------------------------------------------------------------------------------------


def add_config_arguments(parser: Any) -> None:
    """Add one ``--field-name`` flag per :class:`TrainConfig` field to an argparse parser.

    Flags default to ``argparse.SUPPRESS`` so that only flags given on the command line appear
    in the namespace (they override a ``params.yaml`` row); :func:`config_overrides` reads them.
    """
    import argparse

    group = parser.add_argument_group("training configuration (override the params.yaml row)")
    hints = _field_types(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        annotation = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        help_text = f"{f.metadata.get('help', '')} (default: {_plain(default)})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(annotation) is tuple:
            # variable-length tuples may be empty (config_to_flags writes a bare flag for them)
            kwargs["nargs"] = "*" if typing.get_args(annotation)[-1] is Ellipsis else "+"
            kwargs["metavar"] = f.name.upper()
        else:
            kwargs["metavar"] = annotation.__name__.upper()
        group.add_argument(flag, **kwargs)


def config_overrides(args: Any) -> dict[str, Any]:
    """The :class:`TrainConfig` fields given as flags in an argparse namespace."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names}


def config_to_flags(cfg: TrainConfig) -> list[str]:
    """Flags that rebuild ``cfg`` exactly from the defaults (to hand a config to workers)."""
    flags: list[str] = []
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, tuple):
            flags += [flag, *map(str, value)]
        else:
            flags += [flag, repr(value) if isinstance(value, float) else str(value)]
    return flags
