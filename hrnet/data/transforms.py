"""Input pipelines per task (the recipes of the HRNet papers) and the batch collate functions.

All pipelines are torchvision ``transforms.v2`` compositions called as
``transforms(image, target)``: boxes (``tv_tensors.BoundingBoxes``) and masks
(``tv_tensors.Mask``) inside the target move with the image. Images enter as
``tv_tensors.Image`` uint8 ``[3, H, W]`` (or PIL) and leave as float32 ``[3, H, W]``,
normalised with the ImageNet mean/std for every task but detection, whose images leave in
0..1 (torchvision detection models normalise internally).

The pose and landmark pipelines are top-down affine crops around a centre/scale; they are
written here (no equivalent in torchvision) with their heatmap targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as F
from torchvision import tv_tensors

from hrnet.errors import HRNetError

__all__ = [
    "CENTERNET_EIG_VAL",
    "CENTERNET_EIG_VEC",
    "CENTERNET_SCALES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RandomCropCatMax",
    "RandomRescale",
    "CenterNetCrop",
    "TopDownTransform",
    "centernet_color",
    "centernet_train_transforms",
    "classification_eval_transforms",
    "classification_train_transforms",
    "collate_classification",
    "collate_detection",
    "collate_keypoints",
    "collate_segmentation",
    "detection_eval_transforms",
    "detection_train_transforms",
    "flip_joints",
    "landmark_eval_transforms",
    "landmark_train_transforms",
    "pose_eval_transforms",
    "pose_train_transforms",
    "segmentation_eval_transforms",
    "segmentation_train_transforms",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _to_float(mean: Sequence[float] | None, std: Sequence[float] | None) -> list[T.Transform]:
    """uint8 image -> float32 in 0..1, then normalised when mean/std are given (images only)."""
    steps: list[T.Transform] = [T.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True)]
    if mean is not None and std is not None:
        steps.append(T.Normalize(mean=list(mean), std=list(std)))
    return steps


# --------------------------------------------------------------------------------------------
# classification


def classification_train_transforms(
    *,
    size: int | tuple[int, int] = 224,
    scale: tuple[float, float] = (0.08, 1.0),
    hflip_prob: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """ImageNet training: RandomResizedCrop(``size``, ``scale``) + horizontal flip + normalise.

    ``size`` is an int (square) or ``(height, width)``. Output image: float32
    ``[3, size, size]``. For the 32x32 ``digits`` set use ``size=32``,
    ``scale=(0.6, 1.0)`` and ``hflip_prob=0`` (mirrored digits are other symbols).
    """
    steps: list[T.Transform] = [T.ToImage(), T.RandomResizedCrop(size, scale=scale, antialias=True)]
    if hflip_prob > 0:
        steps.append(T.RandomHorizontalFlip(hflip_prob))
    return T.Compose(steps + _to_float(mean, std))


def classification_eval_transforms(
    *,
    size: int | tuple[int, int] = 224,
    resize_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """ImageNet evaluation: resize the short side to ``resize_size`` then centre-crop ``size``.

    ``size`` is an int (square) or ``(height, width)``; ``resize_size`` (the short side) defaults
    to ``round(min(size) * 256 / 224)`` (256 for 224). Output image: float32 ``[3, *size]``.
    """
    short = size if isinstance(size, int) else min(size)
    resize_size = round(short * 256 / 224) if resize_size is None else resize_size
    steps: list[T.Transform] = [T.ToImage(), T.Resize(resize_size, antialias=True), T.CenterCrop(size)]
    return T.Compose(steps + _to_float(mean, std))


def collate_classification(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(image [3,H,W], label)]`` -> ``(images float [B,3,H,W], labels int64 [B])``."""
    images = torch.stack([torch.as_tensor(image) for image, _ in batch])
    labels = torch.as_tensor([int(label) for _, label in batch], dtype=torch.int64)
    return images.as_subclass(torch.Tensor), labels


# --------------------------------------------------------------------------------------------
# segmentation


class RandomRescale(T.Transform):
    """Rescale by a random ratio of a base size, keeping the aspect ratio (masks: nearest).

    The image is scaled so that it fits in ``ratio * base_size`` (``(height, width)``, the long
    and short sides compared as such), ratio drawn uniformly from ``ratio_range``. Without a
    base size the ratio applies to the image's own size.
    """

    def __init__(
        self, *, base_size: tuple[int, int] | None, ratio_range: tuple[float, float] = (0.5, 2.0)
    ) -> None:
        super().__init__()
        self.base_size = base_size
        self.ratio_range = ratio_range

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = _canvas_size(flat_inputs)
        ratio = float(torch.empty(()).uniform_(*self.ratio_range))
        if self.base_size is None:
            factor = ratio
        else:
            long_side, short_side = max(self.base_size) * ratio, min(self.base_size) * ratio
            factor = min(long_side / max(height, width), short_side / min(height, width))
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        # masks: nearest with pixel centres at +0.5 as the bilinear image resize (plain NEAREST
        # samples floor(i * scale) and shifts the labels by up to half a pixel)
        mode = (
            T.InterpolationMode.NEAREST_EXACT
            if isinstance(inpt, tv_tensors.Mask)
            else T.InterpolationMode.BILINEAR
        )
        return self._call_kernel(F.resize, inpt, size=params["size"], interpolation=mode, antialias=True)


class RandomCropCatMax(T.Transform):
    """Random crop of ``size`` where no single class covers more than ``cat_max_ratio``.

    Up to 10 crops are drawn; the first whose most frequent non-ignored class covers at most
    ``cat_max_ratio`` of the labelled pixels (and that holds more than one class) is kept,
    otherwise the last one. Inputs smaller than ``size`` are padded afterwards: image with 0,
    mask with ``ignore_index``.
    """

    def __init__(
        self, size: tuple[int, int], *, cat_max_ratio: float = 0.75, ignore_index: int = 255
    ) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = _canvas_size(flat_inputs)
        crop_h, crop_w = min(self.size[0], height), min(self.size[1], width)
        # the label map as a numpy array: each try is a handful of array operations (with tensor
        # operations the ~10 tries per image cost about as much as the rest of the pipeline);
        # ignored pixels are left out of the counts, the ratio is float64 as in MMSegmentation
        masks = [x for x in flat_inputs if isinstance(x, tv_tensors.Mask)]
        label = masks[0].as_subclass(torch.Tensor).reshape(height, width).numpy() if masks else None
        for _ in range(10):
            top = int(torch.randint(0, height - crop_h + 1, ()))
            left = int(torch.randint(0, width - crop_w + 1, ()))
            if label is None or self.cat_max_ratio >= 1.0:
                break
            crop = label[top : top + crop_h, left : left + crop_w]
            counts = np.bincount(crop[crop != self.ignore_index].ravel().astype(np.int64))
            counts = counts[counts > 0]
            if len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                break
        pad = [0, 0, self.size[1] - crop_w, self.size[0] - crop_h]  # left, top, right, bottom
        return {"top": top, "left": left, "height": crop_h, "width": crop_w, "pad": pad}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = self._call_kernel(
            F.crop, inpt, params["top"], params["left"], params["height"], params["width"]
        )
        if any(params["pad"]):
            fill = self.ignore_index if isinstance(inpt, tv_tensors.Mask) else 0
            out = self._call_kernel(F.pad, out, params["pad"], fill=fill)
        return out


class _MaskToLong(T.Transform):
    """The label map as int64 ``[H, W]`` (the loss's target type)."""

    _transformed_types = (tv_tensors.Mask,)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return tv_tensors.Mask(inpt.to(torch.int64).reshape(inpt.shape[-2:]))


def segmentation_train_transforms(
    *,
    crop_size: tuple[int, int],
    base_size: tuple[int, int] | None = None,
    ratio_range: tuple[float, float] = (0.5, 2.0),
    cat_max_ratio: float = 0.75,
    hflip_prob: float = 0.5,
    photometric: bool = True,
    ignore_index: int = 255,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """The segmentation recipe: random rescale 0.5-2.0, crop (cat_max_ratio 0.75), flip, photometric.

    Called as ``transforms(image, mask)`` with ``mask`` a ``tv_tensors.Mask`` uint8 ``[H, W]``.
    Returns ``(image float32 [3, *crop_size], mask int64 [*crop_size])`` with ``ignore_index``
    where padded. ``base_size`` is ``(height, width)`` (Cityscapes (1024, 2048), ADE20K
    (512, 2048), VOC (512, 2048), Context (480, 520)); None scales relative to the image itself.
    """
    steps: list[T.Transform] = [
        T.ToImage(),
        RandomRescale(base_size=base_size, ratio_range=ratio_range),
        RandomCropCatMax(crop_size, cat_max_ratio=cat_max_ratio, ignore_index=ignore_index),
    ]
    if hflip_prob > 0:
        steps.append(T.RandomHorizontalFlip(hflip_prob))
    if photometric:
        steps.append(T.RandomPhotometricDistort(p=0.5))
    return T.Compose([*steps, *_to_float(mean, std), _MaskToLong()])


def segmentation_eval_transforms(
    *,
    resize: tuple[int, int] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """Evaluation: optional resize of the image to fit ``resize`` (height, width), then normalise.

    The mask is never resized: evaluate logits upsampled to the mask's (original) size. With
    ``resize=None`` image and mask keep their size.
    """
    steps: list[T.Transform] = [T.ToImage()]
    if resize is not None:
        steps.append(_ImageOnly(RandomRescale(base_size=resize, ratio_range=(1.0, 1.0))))
    return T.Compose([*steps, *_to_float(mean, std), _MaskToLong()])


class _ImageOnly(T.Transform):
    """Apply a transform to the image and leave the target (mask) as it is."""

    def __init__(self, inner: T.Transform) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *inputs: Any) -> Any:
        image, *rest = inputs if len(inputs) > 1 else (inputs[0],)
        image = self.inner(image)
        return (image, *rest) if rest else image


def collate_segmentation(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(image [3,H,W], mask [H,W])]`` -> ``(images float [B,3,H,W], masks int64 [B,H,W])``."""
    images = torch.stack([torch.as_tensor(image) for image, _ in batch]).as_subclass(torch.Tensor)
    masks = torch.stack([torch.as_tensor(mask) for _, mask in batch]).as_subclass(torch.Tensor)
    return images, masks.to(torch.int64)


# --------------------------------------------------------------------------------------------
# detection


def detection_train_transforms(
    *,
    min_size: int | Sequence[int] | None = None,
    max_size: int | None = None,
    hflip_prob: float = 0.5,
) -> T.Compose:
    """Detection training: optional resize (short side ``min_size``, long side at most
    ``max_size``; several ``min_size`` values draw one per image), flip, drop empty boxes.

    Called as ``transforms(image, target)`` with ``target["boxes"]`` a
    ``tv_tensors.BoundingBoxes`` (and ``"masks"`` a ``tv_tensors.Mask``, ``"labels"``): they move
    with the image; boxes that become degenerate are removed with their labels and masks.
    Output image: float32 ``[3, H, W]`` in 0..1 (not normalised). Leaving ``min_size`` None lets
    the torchvision model resize (its own ``min_size``/``max_size``).
    """
    steps: list[T.Transform] = [T.ToImage()]
    if min_size is not None:
        sizes = [min_size] if isinstance(min_size, int) else list(min_size)
        steps.append(T.RandomShortestSize(min_size=sizes, max_size=max_size, antialias=True))
    if hflip_prob > 0:
        steps.append(T.RandomHorizontalFlip(hflip_prob))
    steps.append(_PerImageMaskKept(T.SanitizeBoundingBoxes(labels_getter=_detection_labels)))
    return T.Compose(steps + _to_float(None, None))


# CenterNet's colour augmentation: the PCA of ImageNet colours (src/lib/datasets/dataset/coco.py
# ``_eig_val`` / ``_eig_vec``, in BGR order there), brightness / contrast / saturation 0.4 and
# lighting 0.1 (src/lib/utils/image.py ``color_aug``)
CENTERNET_EIG_VAL = (0.2141788, 0.01817699, 0.00341571)
CENTERNET_EIG_VEC = (
    (-0.58752847, -0.69563484, 0.41340352),
    (-0.5832747, 0.00994535, -0.81221408),
    (-0.56089297, 0.71832671, 0.41158938),
)
CENTERNET_SCALES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3)  # np.arange(0.6, 1.4, 0.1)


class CenterNetCrop:
    """CenterNet's training input (xingyizhou/CenterNet ``src/lib/datasets/sample/ctdet.py``,
    ``not_rand_crop`` off): a square of side ``max(h, w) * r`` (``r`` drawn from
    :data:`CENTERNET_SCALES`) around a random centre at least ``border`` pixels inside the
    image (128, halved until it fits) is mapped by an affine warp (bilinear, zeros outside) onto
    ``size``; the image is mirrored with ``hflip_prob`` first (centre and boxes as there:
    ``x -> w - x - 1``); the boxes' corners go through the same warp, are clipped to the output
    as CenterNet clips them on its stride-``down_ratio`` heatmap (``[0, out / down_ratio - 1]``
    there, ``[0, out - down_ratio]`` in input pixels) and dropped when empty; then, with
    ``color``, CenterNet's colour augmentation.

    Called as ``(image, target)`` with the image float ``[3, H, W]`` in 0..1 (RGB) and the target
    of :class:`hrnet.data.coco.CocoDetection` without masks; returns the warped image and target.
    Random draws come from torch's generator (the engine seeds it per item).
    """

    def __init__(
        self, size: tuple[int, int], *, hflip_prob: float = 0.5, color: bool = True, down_ratio: int = 4
    ) -> None:
        self.size = (int(size[0]), int(size[1]))  # (height, width)
        self.hflip_prob = hflip_prob
        self.color = color
        self.down_ratio = down_ratio  # src/lib/opts.py --down_ratio 4

    @staticmethod
    def border(border: int, side: int) -> int:
        """CenterNet's ``_get_border``: ``border`` halved until ``side - b > b``."""
        i = 1
        while side - border // i <= border // i:
            i *= 2
        return border // i

    def __call__(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        if "masks" in target or "semantic" in target:
            raise HRNetError("CenterNet's crop takes boxes only (its models predict no masks)")
        height, width = image.shape[-2:]
        out_h, out_w = self.size
        side = max(height, width) * CENTERNET_SCALES[int(torch.randint(len(CENTERNET_SCALES), ()))]
        bw, bh = self.border(128, width), self.border(128, height)
        cx = float(torch.randint(bw, width - bw, ()))
        cy = float(torch.randint(bh, height - bh, ()))
        boxes = torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor).clone().float()
        image = torch.as_tensor(image).as_subclass(torch.Tensor)
        if float(torch.rand(())) < self.hflip_prob:
            image = image.flip(-1)
            cx = width - cx - 1
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]] - 1
        # CenterNet's get_affine_transform without rotation: the side maps onto the output width,
        # the centre onto the output's centre (pixel centres at integers, as cv2.warpAffine)
        k = out_w / side
        warped = self._warp(image, k, cx, cy)
        boxes[:, [0, 2]] = (k * (boxes[:, [0, 2]] - cx) + out_w / 2).clamp(0, out_w - self.down_ratio)
        boxes[:, [1, 3]] = (k * (boxes[:, [1, 3]] - cy) + out_h / 2).clamp(0, out_h - self.down_ratio)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out = dict(target)
        out["boxes"] = tv_tensors.BoundingBoxes(
            boxes[keep], format=tv_tensors.BoundingBoxFormat.XYXY, canvas_size=(out_h, out_w)
        )
        for key in ("labels", "iscrowd", "area", "ann_id"):
            if key in out:
                out[key] = out[key][keep]
        if self.color:
            warped = centernet_color(warped)
        return tv_tensors.Image(warped), out

    def _warp(self, image: torch.Tensor, k: float, cx: float, cy: float) -> torch.Tensor:
        """Output pixel ``(x, y)`` samples the input at ``((x - W/2) / k + cx, (y - H/2) / k + cy)``."""
        import torch.nn.functional as nnf

        out_h, out_w = self.size
        height, width = image.shape[-2:]
        xs = (torch.arange(out_w, dtype=torch.float32, device=image.device) - out_w / 2) / k + cx
        ys = (torch.arange(out_h, dtype=torch.float32, device=image.device) - out_h / 2) / k + cy
        # grid_sample (align_corners=False): pixel i of n is at (2 i + 1) / n - 1
        gx = (2 * xs + 1) / width - 1
        gy = (2 * ys + 1) / height - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
        return nnf.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def centernet_color(
    image: torch.Tensor,
    *,
    order: Sequence[int] | None = None,
    factors: Sequence[float] | None = None,
    lighting: torch.Tensor | None = None,
) -> torch.Tensor:
    """CenterNet's ``color_aug`` of a float RGB image ``[3, H, W]`` in 0..1: brightness (0),
    contrast (1) and saturation (2) in a random ``order``, each with a factor ``1 + U(-0.4, 0.4)``
    (``factors``, in the order applied) against the grey image before them (``0.299 R + 0.587 G
    + 0.114 B``), then PCA lighting with ``alpha ~ N(0, 0.1)`` per eigenvector (``lighting``);
    no clipping, as there. The draws come from torch's generator unless given."""
    order = torch.randperm(3).tolist() if order is None else list(order)
    if factors is None:
        factors = [1.0 + float(torch.empty(()).uniform_(-0.4, 0.4)) for _ in order]
    alpha = torch.randn(3) * 0.1 if lighting is None else lighting
    grey = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    grey_mean = grey.mean()
    out = image.clone()
    for op, f in zip(order, factors):
        if op == 0:  # brightness
            out = out * f
        elif op == 1:  # contrast
            out = out * f + grey_mean * (1 - f)
        else:  # saturation
            out = out * f + grey[None] * (1 - f)
    shift_bgr = torch.tensor(CENTERNET_EIG_VEC) @ (torch.tensor(CENTERNET_EIG_VAL) * alpha)
    return out + shift_bgr.flip(0)[:, None, None].to(out)  # BGR -> RGB


def centernet_train_transforms(size: tuple[int, int], *, hflip_prob: float = 0.5) -> T.Compose:
    """CenterNet detection training: :class:`CenterNetCrop` to ``size`` with colour augmentation;
    output image float32 ``[3, *size]`` in 0..1 before the colour shifts (not normalised)."""
    return T.Compose([T.ToImage(), *_to_float(None, None), CenterNetCrop(size, hflip_prob=hflip_prob)])


class _PerImageMaskKept(T.Transform):
    """Runs ``sanitize`` with the target's per-image ``semantic`` map (HTC's COCO-stuff labels,
    a ``Mask [H, W]``) set aside: SanitizeBoundingBoxes indexes every ``Mask`` by the kept boxes,
    which is right for the instance masks ``[N, H, W]`` only."""

    def __init__(self, sanitize: T.Transform) -> None:
        super().__init__()
        self.sanitize = sanitize

    def forward(self, *inputs: Any) -> Any:
        image, target = inputs if len(inputs) == 2 else inputs[0]
        semantic = target.pop("semantic", None) if isinstance(target, dict) else None
        image, target = self.sanitize(image, target)
        if semantic is not None:
            target["semantic"] = semantic
        return image, target


def detection_eval_transforms() -> T.Compose:
    """Detection evaluation: the image as float32 in 0..1, boxes untouched (original coordinates)."""
    return T.Compose([T.ToImage(), *_to_float(None, None)])


def _detection_labels(inputs: Any) -> tuple[torch.Tensor, ...]:
    """The per-box tensors SanitizeBoundingBoxes must filter along with the boxes."""
    target = inputs[1]
    return tuple(target[key] for key in ("labels", "iscrowd", "area", "ann_id") if key in target)


def collate_detection(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """``[(image, target)]`` -> ``(list of images [3,H,W], list of targets)`` (sizes differ)."""
    images = [torch.as_tensor(image).as_subclass(torch.Tensor) for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets


def _canvas_size(flat_inputs: list[Any]) -> tuple[int, int]:
    for x in flat_inputs:
        if isinstance(x, tv_tensors.Image | tv_tensors.Mask) or (
            hasattr(x, "size") and not torch.is_tensor(x)
        ):
            height, width = F.get_size(x)
            return int(height), int(width)
    raise TypeError("no image or mask among the inputs")


# --------------------------------------------------------------------------------------------
# top-down pose and facial landmarks (affine crop around a centre/scale + heatmap targets)


class TopDownTransform:
    """Top-down keypoint pipeline: affine crop of one instance, heatmap targets, normalisation.

    Geometry follows the pose reference (deep-high-resolution-net.pytorch) through
    :mod:`hrnet.ops.keypoints`: ``center`` in pixels and ``scale`` in units of 200 px. In
    training, in this order: horizontal flip (``flip_prob``, joints swapped by ``flip_pairs``),
    half-body crop (``half_body_prob`` when more than ``half_body_min_joints`` joints are
    labelled), random scale
    ``clip(1 + N(0, 1) * scale_factor, 1 - s, 1 + s)`` and, with probability ``rotation_prob``,
    rotation ``clip(N(0, 1) * rotation, -2r, 2r)`` degrees (the face recipe,
    ``uniform_jitter=True``, draws scale and rotation uniformly in ``±scale_factor``,
    ``±rotation`` instead).

    Called as ``transform(image, target)`` with ``image`` uint8 ``[3, H, W]`` and ``target``
    holding ``keypoints`` float ``[K, 3]`` (x, y, v) in image pixels, ``center`` ``[2]`` and
    ``scale`` ``[2]`` (plus pass-through fields such as ``image_id``, ``bbox_score``).
    Returns ``image`` float32 ``[3, h, w]`` normalised (``input_size = (w, h)``) and ``target``
    with ``heatmaps`` float32 ``[K, h/4, w/4]`` (``heatmap_size``), ``target_weight`` float32
    ``[K]``, the (augmented) ``center``/``scale``/``rotation`` used for the crop, ``flipped``,
    and ``joints`` float32 ``[K, 3]``: the keypoints in input pixels with their weights.
    ``subpixel=True`` centres the target Gaussians on the exact joint positions
    (:func:`hrnet.ops.keypoints.generate_heatmaps`).
    """

    def __init__(
        self,
        *,
        train: bool,
        input_size: Sequence[int] = (192, 256),
        heatmap_size: Sequence[int] | None = None,
        sigma: float = 2.0,
        flip_pairs: Sequence[tuple[int, int]] = (),
        flip_prob: float = 0.5,
        scale_factor: float = 0.35,
        rotation: float = 45.0,
        rotation_prob: float = 0.6,
        uniform_jitter: bool = False,
        half_body_prob: float = 0.3,
        half_body_min_joints: int = 8,
        upper_body_ids: Sequence[int] = tuple(range(11)),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        subpixel: bool = False,
    ) -> None:
        self.train = train
        self.subpixel = subpixel
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (
            (self.input_size[0] // 4, self.input_size[1] // 4)
            if heatmap_size is None
            else tuple(heatmap_size)
        )
        self.sigma = sigma
        self.flip_pairs = [tuple(p) for p in flip_pairs]
        self.flip_prob = flip_prob
        self.scale_factor = scale_factor
        self.rotation = rotation
        self.rotation_prob = rotation_prob
        self.uniform_jitter = uniform_jitter
        self.half_body_prob = half_body_prob
        self.half_body_min_joints = half_body_min_joints
        self.upper_body_ids = set(upper_body_ids)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        from hrnet.ops.keypoints import (
            affine_transform_points,
            generate_heatmaps,
            get_affine_transform,
            warp_affine,
        )

        image = torch.as_tensor(image).as_subclass(torch.Tensor)
        width = image.shape[-1]
        joints = np.asarray(target["keypoints"], dtype=np.float64).copy()
        center = np.asarray(target["center"], dtype=np.float64).copy()
        scale = np.asarray(target["scale"], dtype=np.float64).copy()
        rotation, flipped = 0.0, False
        if self.train:
            if self.flip_prob > 0 and float(torch.rand(())) < self.flip_prob:
                image = image.flip(-1)
                joints = flip_joints(joints, width, self.flip_pairs)
                center[0] = width - center[0] - 1
                flipped = True
            visible = joints[:, 2] > 0
            if visible.sum() > self.half_body_min_joints and float(torch.rand(())) < self.half_body_prob:
                half = self._half_body(joints, visible)
                if half is not None:
                    center, scale = half
            if self.uniform_jitter:
                scale = scale * float(torch.empty(()).uniform_(1 - self.scale_factor, 1 + self.scale_factor))
                if float(torch.rand(())) < self.rotation_prob:
                    rotation = float(torch.empty(()).uniform_(-self.rotation, self.rotation))
            else:
                jitter = float(torch.randn(())) * self.scale_factor + 1
                scale = scale * min(max(jitter, 1 - self.scale_factor), 1 + self.scale_factor)
                if float(torch.rand(())) < self.rotation_prob:
                    rotation = min(
                        max(float(torch.randn(())) * self.rotation, -2 * self.rotation), 2 * self.rotation
                    )
        matrix = get_affine_transform(center, scale, rotation, self.input_size)
        crop = warp_affine(image.float(), matrix, self.input_size)
        crop = ((crop / 255.0) - self.mean) / self.std
        joints[:, :2] = affine_transform_points(joints[:, :2], matrix)
        points = torch.from_numpy(joints[:, :2]).to(torch.float32)
        heatmaps, weight = generate_heatmaps(
            points,
            torch.from_numpy(joints[:, 2] > 0),
            image_size=self.input_size,
            heatmap_size=self.heatmap_size,
            sigma=self.sigma,
            subpixel=self.subpixel,
        )
        out = dict(target)
        out.update(
            heatmaps=heatmaps,
            target_weight=weight,
            center=torch.from_numpy(center).to(torch.float32),
            scale=torch.from_numpy(scale).to(torch.float32),
            rotation=rotation,
            flipped=flipped,
            joints=torch.cat([points, weight[:, None]], dim=1),
        )
        return crop, out

    def _half_body(self, joints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Centre/scale of the upper or the lower body's labelled joints (the half-body crop of
        deep-high-resolution-net.pytorch)."""
        from hrnet.ops.keypoints import PIXEL_STD

        upper = [k for k in np.flatnonzero(visible) if k in self.upper_body_ids]
        lower = [k for k in np.flatnonzero(visible) if k not in self.upper_body_ids]
        chosen = (
            upper
            if (float(torch.rand(())) < 0.5 and len(upper) > 2)
            else (lower if len(lower) > 2 else upper)
        )
        if len(chosen) < 2:
            return None
        pts = joints[chosen, :2]
        center = pts.mean(axis=0)
        w, h = pts.max(axis=0) - pts.min(axis=0)
        aspect = self.input_size[0] / self.input_size[1]
        if w > aspect * h:
            h = w / aspect
        else:
            w = h * aspect
        return center, np.array([w, h]) / PIXEL_STD * 1.5


def flip_joints(joints: np.ndarray, width: int, flip_pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mirror keypoints ``[K, >=2]`` (x, y, ...) of an image ``width`` wide and swap left/right pairs.

    Column ``x`` maps to ``width - 1 - x`` (pixel centres), as a horizontal image flip does.
    """
    out = joints.copy()
    out[:, 0] = width - 1 - out[:, 0]
    for a, b in flip_pairs:
        out[[a, b]] = out[[b, a]]
    return out


def collate_keypoints(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Pose/landmark batch: ``(images [B,3,h,w], target)``; tensors in ``target`` stacked to ``[B, ...]``,
    numbers to 1-D tensors (``image_id`` int64, floats float32), anything else kept as a list."""
    images = torch.stack([torch.as_tensor(image) for image, _ in batch]).as_subclass(torch.Tensor)
    target: dict[str, Any] = {}
    for key in batch[0][1]:
        values = [t[key] for _, t in batch]
        if all(torch.is_tensor(v) for v in values) and len({tuple(v.shape) for v in values}) == 1:
            target[key] = torch.stack(values)
        elif all(isinstance(v, bool) for v in values):
            target[key] = torch.tensor(values, dtype=torch.bool)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            target[key] = torch.tensor(values, dtype=torch.int64)
        elif all(isinstance(v, int | float) for v in values):
            target[key] = torch.tensor(values, dtype=torch.float32)
        else:
            target[key] = values
    return images, target


def pose_train_transforms(
    *,
    input_size: Sequence[int] = (192, 256),
    sigma: float = 2.0,
    flip_pairs: Sequence[tuple[int, int]] | None = None,
    flip_prob: float = 0.5,
    scale_factor: float = 0.35,
    rotation: float = 45.0,
    subpixel: bool = False,
) -> TopDownTransform:
    """COCO pose training (deep-high-resolution-net.pytorch recipe): flip (``flip_prob``, pairs
    default COCO's), half-body p 0.3, scale ``scale_factor`` 0.35, rotation ``rotation`` 45 (p 0.6), sigma 2;
    ``subpixel`` centres the target Gaussians on the exact joints."""
    from hrnet.ops.keypoints import COCO_FLIP_PAIRS

    pairs = COCO_FLIP_PAIRS if flip_pairs is None else flip_pairs
    return TopDownTransform(
        train=True,
        input_size=input_size,
        sigma=sigma,
        flip_pairs=pairs,
        flip_prob=flip_prob,
        scale_factor=scale_factor,
        rotation=rotation,
        subpixel=subpixel,
    )


def pose_eval_transforms(
    *, input_size: Sequence[int] = (192, 256), sigma: float = 2.0, subpixel: bool = False
) -> TopDownTransform:
    """COCO pose evaluation: the crop of the (ground-truth or detected) box, no augmentation."""
    return TopDownTransform(train=False, input_size=input_size, sigma=sigma, subpixel=subpixel)


def landmark_train_transforms(
    *,
    flip_pairs: Sequence[tuple[int, int]],
    input_size: int = 256,
    heatmap_size: int | None = None,
    sigma: float = 1.5,
    flip_prob: float = 0.5,
    scale_factor: float = 0.25,
    rotation: float = 30.0,
) -> TopDownTransform:
    """Facial landmark training (HRNet-Facial-Landmark-Detection recipe): 256x256 crop, scale
    ``scale_factor`` ±25%, rotation ``rotation`` ±30° (p 0.6), both drawn uniformly, flip
    (``flip_prob``) with the dataset's pairs, heatmaps at 1/4 of the input (64x64) with sigma
    1.5; no half-body."""
    heatmap_size = input_size // 4 if heatmap_size is None else heatmap_size
    return TopDownTransform(
        train=True,
        input_size=(input_size, input_size),
        heatmap_size=(heatmap_size, heatmap_size),
        sigma=sigma,
        flip_pairs=flip_pairs,
        flip_prob=flip_prob,
        scale_factor=scale_factor,
        rotation=rotation,
        rotation_prob=0.6,
        uniform_jitter=True,
        half_body_prob=0.0,
    )


def landmark_eval_transforms(
    *, input_size: int = 256, heatmap_size: int = 64, sigma: float = 1.5
) -> TopDownTransform:
    """Facial landmark evaluation: the 256x256 crop of the face box, 64x64 heatmaps."""
    return TopDownTransform(
        train=False,
        input_size=(input_size, input_size),
        heatmap_size=(heatmap_size, heatmap_size),
        sigma=sigma,
    )
