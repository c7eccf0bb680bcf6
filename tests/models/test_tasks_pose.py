"""Top-down pose: geometry and heatmap helpers (hrnet.ops.keypoints), the pose model and its size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from hrnet.models import create_model
from hrnet.models.flops import count_flops, count_params
from hrnet.models.pose import flip_test, joints_mse_loss
from hrnet.ops.keypoints import (
    COCO_FLIP_PAIRS,
    affine_transform_points,
    box_to_center_scale,
    decode_heatmaps,
    flip_back,
    generate_heatmaps,
    get_affine_transform,
    heatmap_to_image_coords,
    warp_affine,
)


def _three_point_affine(center, scale, rot, output_size) -> np.ndarray:
    """PE's construction, written from its description: centre, a rotated 'up' point, and the
    point 90 degrees from it map to the output centre, its top-centre and the corresponding point."""
    src_w = scale[0] * 200.0
    dst_w, dst_h = output_size
    t = math.radians(rot)
    up = np.array([0.0, -0.5 * src_w])
    src_dir = np.array([up[0] * math.cos(t) - up[1] * math.sin(t), up[0] * math.sin(t) + up[1] * math.cos(t)])
    src = [np.asarray(center, float), np.asarray(center, float) + src_dir]
    dst = [np.array([dst_w * 0.5, dst_h * 0.5]), np.array([dst_w * 0.5, dst_h * 0.5 - 0.5 * dst_w])]
    for pts in (src, dst):
        d = pts[0] - pts[1]
        pts.append(pts[1] + np.array([-d[1], d[0]]))
    a = np.array([[x, y, 1.0] for x, y in src])
    return np.linalg.solve(a, np.array(dst)).T


@pytest.mark.parametrize("rot", [0.0, 30.0, -45.0])
def test_affine_transform_matches_the_three_point_construction(rot: float) -> None:
    center, scale = np.array([120.0, 80.0]), np.array([0.9, 1.2])
    ours = get_affine_transform(center, scale, rot, (192, 256))
    np.testing.assert_allclose(ours, _three_point_affine(center, scale, rot, (192, 256)), atol=1e-9)
    inv = get_affine_transform(center, scale, rot, (192, 256), inverse=True)
    pts = np.array([[10.0, 20.0], [150.0, 90.0]])
    np.testing.assert_allclose(
        affine_transform_points(affine_transform_points(pts, ours), inv), pts, atol=1e-9
    )


def test_box_to_center_scale_grows_to_the_aspect_ratio() -> None:
    center, scale = box_to_center_scale((10, 20, 30, 100), aspect_ratio=0.75, padding=1.25)
    np.testing.assert_allclose(center, [25.0, 70.0])
    np.testing.assert_allclose(scale, [75.0 / 200 * 1.25, 100.0 / 200 * 1.25])


def test_warp_affine_moves_a_pixel_where_the_matrix_says() -> None:
    image = torch.zeros(1, 40, 60)
    image[0, 10, 30] = 1.0
    matrix = get_affine_transform(np.array([30.0, 20.0]), np.array([0.3, 0.2]), 0.0, (30, 20))  # zoom 0.5
    out = warp_affine(image, matrix, (30, 20), mode="nearest")
    y, x = divmod(int(out[0].argmax()), 30)
    expected = affine_transform_points(np.array([30.0, 10.0]), matrix)
    assert (x, y) == (round(expected[0]), round(expected[1]))


def test_encode_then_decode_recovers_keypoints_within_half_a_pixel() -> None:
    g = torch.Generator().manual_seed(0)
    image_size, heatmap_size = (192, 256), (48, 64)
    keypoints = torch.rand(17, 2, generator=g) * torch.tensor([180.0, 240.0]) + 6
    visible = torch.ones(17)
    visible[3] = 0
    heatmaps, weight = generate_heatmaps(keypoints, visible, image_size=image_size, heatmap_size=heatmap_size)
    assert heatmaps.shape == (17, 64, 48) and weight[3] == 0 and heatmaps[3].abs().sum() == 0
    assert torch.allclose(heatmaps.amax(dim=(1, 2))[weight > 0], torch.ones(16))
    coords, maxvals = decode_heatmaps(heatmaps[None])
    error = (coords[0] - keypoints / 4).norm(dim=-1)
    assert error[weight > 0].max() <= 0.5 * math.sqrt(2) + 1e-6
    assert (coords[0] - keypoints / 4).abs()[weight > 0].max() <= 0.5 + 1e-6  # per axis
    assert maxvals[0, 3] == 0


def test_a_keypoint_far_outside_the_crop_gets_weight_zero() -> None:
    keypoints = torch.tensor([[-100.0, 50.0], [50.0, 50.0]])
    _, weight = generate_heatmaps(keypoints, torch.ones(2), image_size=(192, 256), heatmap_size=(48, 64))
    assert weight.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("subpixel", [False, True])
def test_heatmaps_match_one_gaussian_per_joint_written_out(subpixel: bool) -> None:
    """The vectorised encoder against the definition, joint by joint: a Gaussian around the
    (rounded unless subpixel) heatmap position, cut at 3 sigma; edge, outside and hidden joints."""
    g = torch.Generator().manual_seed(1)
    keypoints = torch.rand(40, 2, generator=g) * torch.tensor([260.0, 330.0]) - 30  # some outside
    keypoints[0] = torch.tensor([-13.0, 20.0])  # partly outside: kept, Gaussian cut by the border
    visible = (torch.rand(40, generator=g) > 0.2).float()
    sigma, (w, h) = 2.0, (48, 64)
    heatmaps, weight = generate_heatmaps(
        keypoints, visible, image_size=(192, 256), heatmap_size=(w, h), sigma=sigma, subpixel=subpixel
    )
    radius = int(3 * sigma)
    for k in range(40):
        mx, my = float(keypoints[k, 0]) / 4, float(keypoints[k, 1]) / 4
        if not subpixel:
            mx, my = int(mx + 0.5), int(my + 0.5)
        inside = not (mx - radius >= w or my - radius >= h or mx + radius + 1 < 0 or my + radius + 1 < 0)
        assert weight[k] == float(visible[k] > 0 and inside)
        expected = torch.zeros(h, w)
        if weight[k]:
            for y in range(h):
                for x in range(w):
                    if abs(x - mx) <= radius and abs(y - my) <= radius:
                        expected[y, x] = math.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * sigma**2))
        torch.testing.assert_close(heatmaps[k], expected, atol=1e-6, rtol=1e-5)


def test_decode_shifts_a_quarter_pixel_toward_the_higher_neighbour() -> None:
    hm = torch.zeros(1, 1, 8, 8)
    hm[0, 0, 4, 4], hm[0, 0, 4, 5], hm[0, 0, 3, 4] = 1.0, 0.5, 0.2
    coords, _ = decode_heatmaps(hm)
    assert coords[0, 0].tolist() == [4.25, 3.75]


def test_heatmap_to_image_coords_inverts_the_crop() -> None:
    center, scale = np.array([200.0, 150.0]), np.array([1.0, 4 / 3])
    matrix = get_affine_transform(center, scale, 0.0, (48, 64))
    image_pts = np.array([[180.0, 140.0], [230.0, 200.0]])
    heat = torch.from_numpy(affine_transform_points(image_pts, matrix))
    np.testing.assert_allclose(heatmap_to_image_coords(heat, center, scale, (48, 64)), image_pts, atol=1e-6)


def test_flip_back_swaps_pairs_and_is_an_involution() -> None:
    hm = torch.rand(2, 17, 8, 6)
    back = flip_back(hm, COCO_FLIP_PAIRS)
    assert torch.equal(back[:, 1], hm[:, 2].flip(-1)) and torch.equal(back[:, 0], hm[:, 0].flip(-1))
    assert torch.equal(flip_back(back, COCO_FLIP_PAIRS), hm)
    shifted = flip_back(hm, COCO_FLIP_PAIRS, shift=True)
    assert torch.equal(shifted[..., 1:], back[..., :-1])


def _mirror_model(images: Tensor) -> Tensor:
    """A stand-in pose network that is exactly mirror-equivariant: joint 1 ("left") responds to
    bright pixels in the right half of the image, joint 2 ("right") in the left half, joint 0 anywhere
    (4x4 pooling aligned with the image border, so a mirror maps cells onto cells)."""
    pooled = F.avg_pool2d(images.mean(dim=1, keepdim=True), 4)
    w = pooled.shape[-1]
    right = (torch.arange(w) >= w // 2).to(pooled.dtype)
    return torch.cat([pooled, pooled * right, pooled * (1 - right)], dim=1)


def test_flip_test_on_a_mirror_symmetric_input_equals_the_plain_result() -> None:
    image = torch.zeros(1, 3, 32, 24)
    image[..., 8:12, 2:6] = 1.0
    image = image + image.flip(-1)  # mirror-symmetric: a bright spot on each side
    pairs = ((1, 2),)
    plain = _mirror_model(image)
    assert torch.allclose(flip_test(_mirror_model, image, flip_pairs=pairs, shift=False), plain)
    a, _ = decode_heatmaps(plain)
    b, _ = decode_heatmaps(flip_test(_mirror_model, image, flip_pairs=pairs, shift=False))
    assert torch.equal(a, b)
    # without the pair swap the mirror model's left/right joints would be exchanged
    assert not torch.allclose(flip_test(_mirror_model, image, flip_pairs=(), shift=False), plain)


def test_joints_mse_loss_is_half_the_weighted_mean_square() -> None:
    pred, gt = torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    weight = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert joints_mse_loss(pred, gt, weight).item() == pytest.approx(0.5 * 4 / 6)


def test_pose_model_overfits_a_tiny_batch() -> None:
    model = create_model("pose_hrnet_w18_small", num_joints=3)
    images = torch.randn(2, 3, 64, 48)
    keypoints = torch.tensor(
        [[[12.0, 16.0], [30.0, 40.0], [20.0, 52.0]], [[36.0, 12.0], [8.0, 30.0], [24.0, 24.0]]]
    )
    targets = [
        generate_heatmaps(k, torch.ones(3), image_size=(48, 64), heatmap_size=(12, 16)) for k in keypoints
    ]
    batch = {
        "heatmaps": torch.stack([t[0] for t in targets]),
        "target_weight": torch.stack([t[1] for t in targets]),
    }
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(60):
        loss = model(images, batch)["loss_heatmap"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    with torch.no_grad():
        heatmaps = model(images)
    assert heatmaps.shape == (2, 3, 16, 12)
    coords, _ = decode_heatmaps(heatmaps)
    assert (coords - keypoints / 4).norm(dim=-1).max() < 1.5


@pytest.mark.parametrize(("name", "published_m"), [("pose_hrnet_w32", 28.5), ("pose_hrnet_w48", 63.6)])
def test_pose_parameter_counts(name: str, published_m: float) -> None:
    """PE's table: 28.5M / 63.6M parameters (unit: 10^6) with 17 joints."""
    with torch.device("meta"):
        model = create_model(name)
    assert count_params(model) / 1e6 == pytest.approx(published_m, rel=0.01)


def test_pose_w32_gflops_at_256x192() -> None:
    """PE's table: 7.1 GFLOPs at 256x192 (unit: conv+linear multiply-adds / 2^30, flops.py)."""
    with torch.device("meta"):
        model = create_model("pose_hrnet_w32")
    assert count_flops(model, (256, 192)).gflops == pytest.approx(7.1, rel=0.02)


def test_unknown_keyword_raises() -> None:
    with pytest.raises(TypeError, match="num_joint"):
        create_model("pose_hrnet_w32", num_joint=17)
