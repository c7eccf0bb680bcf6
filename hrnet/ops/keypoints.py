"""Heatmap and affine-geometry helpers shared by the pose/landmark models and their data pipelines.

Conventions (those of the top-down pose reference, deep-high-resolution-net.pytorch):

- A person box is described by ``center (x, y)`` and ``scale (sx, sy)`` in units of
  :data:`PIXEL_STD` = 200 pixels; :func:`box_to_center_scale` makes them from an ``xywh`` box.
- :func:`get_affine_transform` maps image pixels to the network input (or heatmap) pixels; the data
  pipeline warps images and keypoints with it, and the decoder maps heatmap peaks back with its
  inverse.
- Heatmaps are ``float [K, h, w]`` (one channel per joint) at 1/4 of the input; a keypoint at input
  pixel ``(x, y)`` sits at heatmap pixel ``(x / stride, y / stride)``.

Pure numpy for the per-sample geometry (data side), torch for the batched heatmap work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "COCO_FLIP_PAIRS",
    "COCO_KEYPOINT_SIGMAS",
    "PIXEL_STD",
    "affine_transform_points",
    "box_to_center_scale",
    "decode_heatmaps",
    "flip_back",
    "generate_heatmaps",
    "get_affine_transform",
    "heatmap_to_image_coords",
    "keypoint_oks",
    "oks_nms",
    "warp_affine",
]

PIXEL_STD = 200.0  # the unit of `scale` (deep-high-resolution-net.pytorch's pixel_std)

# COCO keypoints: 0 nose, 1/2 eyes, 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips,
# 13/14 knees, 15/16 ankles (left, right): the pairs that swap under a horizontal flip.
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (3, 4),
    (5, 6),
    (7, 8),
    (9, 10),
    (11, 12),
    (13, 14),
    (15, 16),
)


# --------------------------------------------------------------------------------------------
# Affine geometry (numpy, one sample)
# --------------------------------------------------------------------------------------------


def box_to_center_scale(
    box_xywh: Sequence[float], *, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Person box ``(x, y, w, h)`` in pixels -> ``center (2,)`` pixels and ``scale (2,)`` in 200 px.

    The box is grown to the input aspect ratio ``aspect_ratio = width / height`` (192/256 for
    256x192 inputs) and then by ``padding``.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    center = np.array([x + 0.5 * w, y + 0.5 * h], dtype=np.float64)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    scale = np.array([w, h], dtype=np.float64) / PIXEL_STD * padding
    return center, scale


def get_affine_transform(
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    rot: float,
    output_size: Sequence[int],
    *,
    shift: Sequence[float] = (0.0, 0.0),
    inverse: bool = False,
) -> np.ndarray:
    """The ``2x3`` matrix mapping image pixels to output pixels (or back with ``inverse=True``).

    The point ``center + shift * scale * 200`` goes to the output centre ``(w / 2, h / 2)``; the
    box width ``scale[0] * 200`` becomes the output width ``output_size[0]`` (one isotropic factor,
    so the aspect ratio is that of the output); the content is rotated by ``rot`` degrees
    (counter-clockwise as seen on screen, deep-high-resolution-net.pytorch's convention).

    Args:
        center: ``(x, y)`` in image pixels.
        scale: ``(sx, sy)`` in units of :data:`PIXEL_STD`; only ``sx`` sets the zoom.
        rot: rotation in degrees.
        output_size: ``(width, height)`` of the output in pixels.
        shift: offset of the centre as a fraction of the box size.
        inverse: return the output->image matrix instead.

    Returns:
        ``float64 [2, 3]``: ``[x', y'] = M @ [x, y, 1]``.
    """
    scale_px = np.asarray(scale, dtype=np.float64) * PIXEL_STD
    src_center = np.asarray(center, dtype=np.float64) + scale_px * np.asarray(shift, dtype=np.float64)
    dst_center = np.array([output_size[0] * 0.5, output_size[1] * 0.5], dtype=np.float64)
    zoom = output_size[0] / scale_px[0]
    # image y points down, so a positive angle that turns the content counter-clockwise on screen
    # is the matrix [[c, s], [-s, c]] applied to (x - cx, y - cy)
    theta = math.radians(rot)
    c, s = math.cos(theta) * zoom, math.sin(theta) * zoom
    linear = np.array([[c, s], [-s, c]], dtype=np.float64)
    if inverse:
        linear_inv = np.linalg.inv(linear)
        return np.concatenate([linear_inv, (src_center - linear_inv @ dst_center)[:, None]], axis=1)
    return np.concatenate([linear, (dst_center - linear @ src_center)[:, None]], axis=1)


def affine_transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a ``2x3`` matrix to points ``[..., 2]`` (x, y); returns the same shape."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp_affine(
    image: Tensor, matrix: np.ndarray, output_size: Sequence[int], *, mode: str = "bilinear"
) -> Tensor:
    """Warp ``image [C, H, W]`` by ``matrix`` (image -> output pixels) into ``[C, h, w]``.

    ``output_size`` is ``(width, height)``. Pixel ``(x, y)`` means the centre of column ``x`` / row
    ``y``; outside the image reads zeros. Integer tensors are warped as float and cast back.
    """
    w_out, h_out = int(output_size[0]), int(output_size[1])
    _, h_in, w_in = image.shape
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    ys, xs = torch.meshgrid(
        torch.arange(h_out, dtype=torch.float64), torch.arange(w_out, dtype=torch.float64), indexing="ij"
    )
    inv_t = torch.from_numpy(inv)
    src_x = inv_t[0, 0] * xs + inv_t[0, 1] * ys + inv_t[0, 2]
    src_y = inv_t[1, 0] * xs + inv_t[1, 1] * ys + inv_t[1, 2]
    # grid_sample with align_corners=True: -1 and 1 are the centres of the first and last pixels
    grid = torch.stack([2 * src_x / max(w_in - 1, 1) - 1, 2 * src_y / max(h_in - 1, 1) - 1], dim=-1)
    src = image.unsqueeze(0).to(torch.float32)
    out = F.grid_sample(src, grid.unsqueeze(0).to(torch.float32), mode=mode, align_corners=True)[0]
    return out if image.is_floating_point() else out.round().to(image.dtype)


# --------------------------------------------------------------------------------------------
# Heatmaps (torch)
# --------------------------------------------------------------------------------------------


def generate_heatmaps(
    keypoints: Tensor,
    visible: Tensor,
    *,
    image_size: Sequence[int],
    heatmap_size: Sequence[int],
    sigma: float = 2.0,
    joint_weights: Tensor | None = None,
    subpixel: bool = False,
) -> tuple[Tensor, Tensor]:
    """Gaussian heatmap targets for one sample (deep-high-resolution-net.pytorch's target encoding).

    The Gaussian of joint ``k`` is centred on the heatmap pixel nearest to ``keypoints[k] / stride``
    and cut at ``3 * sigma``; a joint that is not visible, or whose Gaussian lies wholly outside the
    map, gets weight 0 and an all-zero map. With ``subpixel=True`` the Gaussian is centred on
    ``keypoints[k] / stride`` itself (no rounding; DARK's unbiased encoding), to be decoded with
    ``decode_heatmaps(..., subpixel=True)``.

    Args:
        keypoints: ``float [K, 2]`` (x, y) in network-input pixels.
        visible: ``[K]``, > 0 where the joint is labelled.
        image_size: input ``(width, height)``.
        heatmap_size: heatmap ``(width, height)``.
        sigma: Gaussian std in heatmap pixels (2 for 256x192, 3 for 384x288).
        joint_weights: optional ``[K]`` multipliers of the target weights.
        subpixel: centre the Gaussians on the exact (unrounded) heatmap position.

    Returns:
        ``heatmaps float [K, h, w]`` (peak 1) and ``target_weight float [K]`` (0 or 1, times
        ``joint_weights``).
    """
    w, h = int(heatmap_size[0]), int(heatmap_size[1])
    stride_x, stride_y = image_size[0] / w, image_size[1] / h
    weight = (torch.as_tensor(visible) > 0).to(torch.float32)
    radius = int(3 * sigma)
    # all joints at once: separable Gaussians [K, w] and [K, h], cut at 3 sigma
    points = torch.as_tensor(keypoints, dtype=torch.float64)
    mu_x, mu_y = points[:, 0] / stride_x, points[:, 1] / stride_y
    if not subpixel:
        # int(v + 0.5), as deep-high-resolution-net.pytorch rounds
        mu_x, mu_y = (mu_x + 0.5).trunc(), (mu_y + 0.5).trunc()
    outside = (mu_x - radius >= w) | (mu_y - radius >= h) | (mu_x + radius + 1 < 0) | (mu_y + radius + 1 < 0)
    weight[outside] = 0
    dx = torch.arange(w, dtype=torch.float64)[None, :] - mu_x[:, None]
    dy = torch.arange(h, dtype=torch.float64)[None, :] - mu_y[:, None]
    gx = torch.exp(-(dx**2) / (2 * sigma**2)) * (dx.abs() <= radius)
    gy = torch.exp(-(dy**2) / (2 * sigma**2)) * (dy.abs() <= radius)
    heatmaps = (gy[:, :, None] * gx[:, None, :]).to(torch.float32) * (weight > 0)[:, None, None]
    if joint_weights is not None:
        weight = weight * joint_weights.to(torch.float32)
    return heatmaps, weight


def decode_heatmaps(
    heatmaps: Tensor, *, subpixel: bool = False, blur_sigma: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Peaks of ``heatmaps [B, K, h, w]`` -> ``coords float [B, K, 2]`` (x, y) and ``maxvals [B, K]``.

    Coordinates are in heatmap pixels: the arg-max, moved a quarter pixel toward the higher of its
    two neighbours along each axis (where both neighbours exist). Joints whose maximum is not
    positive get ``(0, 0)``, as in deep-high-resolution-net.pytorch.

    With ``subpixel=True`` the arg-max is refined instead by one Newton step on the logarithm of
    the map smoothed with a Gaussian of ``blur_sigma`` heatmap pixels (DARK, Zhang et al. 2020):
    ``offset = -H^-1 g`` from finite differences at the arg-max. A Gaussian's logarithm is
    quadratic, so targets made with ``generate_heatmaps(..., subpixel=True)`` decode exactly.
    """
    if subpixel:
        return _decode_subpixel(heatmaps, blur_sigma)
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, h * w)
    maxvals, idx = flat.max(dim=-1)
    px, py = idx % w, idx // w
    coords = torch.stack([px, py], dim=-1).to(heatmaps.dtype)

    inner_x = (px > 0) & (px < w - 1)
    inner_y = (py > 0) & (py < h - 1)
    hm = heatmaps.reshape(b * k, h, w)
    n = torch.arange(b * k, device=heatmaps.device)
    pxf, pyf = px.reshape(-1), py.reshape(-1)
    right = hm[n, pyf, (pxf + 1).clamp(max=w - 1)]
    left = hm[n, pyf, (pxf - 1).clamp(min=0)]
    down = hm[n, (pyf + 1).clamp(max=h - 1), pxf]
    up = hm[n, (pyf - 1).clamp(min=0), pxf]
    dx = torch.sign(right - left).reshape(b, k) * inner_x
    dy = torch.sign(down - up).reshape(b, k) * inner_y
    coords = coords + 0.25 * torch.stack([dx, dy], dim=-1).to(coords.dtype)
    coords = coords * (maxvals > 0).unsqueeze(-1).to(coords.dtype)
    return coords, maxvals


def _gaussian_blur(heatmaps: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian smoothing of ``[B, K, h, w]``, radius ``3 * sigma``; near the borders
    the weights are renormalised over the pixels inside the map (no pull toward zero padding)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=heatmaps.dtype, device=heatmaps.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    b, k, h, w = heatmaps.shape

    def blur(x: Tensor) -> Tensor:
        x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
        return F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))

    norm = blur(heatmaps.new_ones(1, 1, h, w))
    return (blur(heatmaps.reshape(b * k, 1, h, w)) / norm).reshape(b, k, h, w)


def _decode_subpixel(heatmaps: Tensor, blur_sigma: float) -> tuple[Tensor, Tensor]:
    """:func:`decode_heatmaps` with ``subpixel=True`` (see there)."""
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, h * w)
    maxvals, idx = flat.max(dim=-1)
    px, py = idx % w, idx // w
    smooth = _gaussian_blur(heatmaps.float(), blur_sigma) if blur_sigma > 0 else heatmaps.float()
    log = smooth.clamp(min=1e-10).log().reshape(b * k, h, w)
    n = torch.arange(b * k, device=heatmaps.device)
    x, y = px.reshape(-1), py.reshape(-1)

    def at(dx: int, dy: int) -> Tensor:
        return log[n, (y + dy).clamp(0, h - 1), (x + dx).clamp(0, w - 1)]

    gx, gy = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
    hxx = at(1, 0) - 2 * at(0, 0) + at(-1, 0)
    hyy = at(0, 1) - 2 * at(0, 0) + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = hxx * hyy - hxy**2
    # a maximum has a negative definite Hessian; elsewhere (flat maps, borders) keep the arg-max
    ok = (det > 1e-12) & (hxx < 0) & (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1)
    safe = torch.where(ok, det, torch.ones_like(det))
    ox = -(hyy * gx - hxy * gy) / safe
    oy = -(hxx * gy - hxy * gx) / safe
    offset = torch.stack([ox, oy], dim=-1)
    offset = torch.where(ok[:, None], offset.clamp(-0.5, 0.5), torch.zeros_like(offset))
    coords = torch.stack([x, y], dim=-1).to(offset.dtype) + offset
    coords = coords.reshape(b, k, 2).to(heatmaps.dtype)
    coords = coords * (maxvals > 0).unsqueeze(-1).to(coords.dtype)
    return coords, maxvals


def heatmap_to_image_coords(
    coords: Tensor, center: np.ndarray, scale: np.ndarray, heatmap_size: Sequence[int]
) -> np.ndarray:
    """Heatmap-pixel ``coords [K, 2]`` of one sample -> original image pixels ``float64 [K, 2]``.

    Inverse of the crop that produced the input: :func:`get_affine_transform` with the sample's
    ``center``/``scale`` at heatmap resolution (``heatmap_size = (w, h)``), inverted.
    """
    inv = get_affine_transform(center, scale, 0.0, heatmap_size, inverse=True)
    return affine_transform_points(coords.detach().cpu().double().numpy(), inv)


def flip_back(
    heatmaps: Tensor, flip_pairs: Sequence[tuple[int, int]], *, shift: bool = False, subpixel: bool = False
) -> Tensor:
    """Heatmaps predicted on horizontally flipped images -> heatmaps of the original images.

    Mirrors ``heatmaps [B, K, h, w]`` along ``w`` and swaps each (left, right) pair of channels.
    With ``shift=True`` the result is also moved one pixel to the right
    (deep-high-resolution-net.pytorch's ``SHIFT_HEATMAP``): the mirrored peak lands 3/4 px left of
    where it belongs (input column ``x`` goes to ``W - 1 - x``, i.e. heatmap column ``u`` to ``w -
    1/4 - u``, while mirroring the map sends ``u`` to ``w - 1 - u``). With ``subpixel=True`` as
    well, the shift is that exact 3/4 px (linear interpolation), for the sub-pixel codec.
    """
    out = heatmaps.flip(-1)
    perm = list(range(heatmaps.shape[1]))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    out = out[:, perm]
    if shift:
        moved = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
        out = 0.25 * out + 0.75 * moved if subpixel else moved
    return out


# --------------------------------------------------------------------------------------------
# OKS non-maximum suppression (detected person boxes)
# --------------------------------------------------------------------------------------------

# Per-keypoint OKS constants of COCO (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles), as pycocotools' COCOeval uses them.
COCO_KEYPOINT_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    *,
    threshold: float = 0.9,
    sigmas: Sequence[float] = COCO_KEYPOINT_SIGMAS,
    visibility_threshold: float = 0.2,
) -> list[int]:
    """Greedy NMS of one image's pose instances by object keypoint similarity
    (deep-high-resolution-net.pytorch's test step with detected boxes: several boxes on one
    person give near-identical poses).

    Args:
        keypoints: ``[N, K, 3]`` (x, y, confidence) in image pixels.
        scores: ``[N]`` instance scores (highest kept first).
        areas: ``[N]`` the area that normalises the distances (the instance's box area).
        threshold: an instance whose OKS with a kept one exceeds it is dropped.
        sigmas: per-keypoint OKS constants.
        visibility_threshold: only keypoints confident above it in both instances count.

    Returns:
        Indices of the kept instances, by decreasing score.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores, areas = np.asarray(scores, dtype=np.float64), np.asarray(areas, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3 or keypoints.shape[1] != len(sigmas):
        raise ValueError(f"keypoints must be [N, {len(sigmas)}, 3], got {list(keypoints.shape)}")
    variances = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i, rest = order[0], np.asarray(order[1:], dtype=np.int64)
        keep.append(int(i))
        if rest.size == 0:
            break
        oks = keypoint_oks(
            keypoints[i], keypoints[rest], areas[i], areas[rest], variances, visibility_threshold
        )
        order = [int(j) for j, o in zip(rest, oks) if o <= threshold]
    return keep


def keypoint_oks(
    reference: np.ndarray,
    others: np.ndarray,
    reference_area: float,
    other_areas: np.ndarray,
    variances: np.ndarray,
    visibility_threshold: float,
) -> np.ndarray:
    """OKS of ``others [R, K, 3]`` with ``reference [K, 3]``: the mean, over the keypoints
    confident above ``visibility_threshold`` in both, of ``exp(-d^2 / (2 s (2 sigma)^2))`` with
    ``s`` the mean of the two areas; 0 where no keypoint counts. ``variances`` = ``(2 sigma)^2``."""
    d2 = ((others[:, :, :2] - reference[None, :, :2]) ** 2).sum(-1)  # [R, K]
    scale = (other_areas + reference_area)[:, None] / 2 + np.spacing(1)
    e = d2 / variances[None, :] / scale / 2
    counted = (others[:, :, 2] > visibility_threshold) & (reference[None, :, 2] > visibility_threshold)
    n = counted.sum(-1)
    return np.where(n > 0, (np.exp(-e) * counted).sum(-1) / np.maximum(n, 1), 0.0)
