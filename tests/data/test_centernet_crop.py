"""CenterNet's training input (xingyizhou/CenterNet src/lib/datasets/sample/ctdet.py): the random
scale-crop warp must move the boxes with the picture, draw the side from CenterNet's scales and
the centre inside its border; the colour augmentation only shifts colours.

The checks read the warped picture itself (where a drawn rectangle lands), so they do not depend
on how the warp is written; the border values are worked out by hand from ``_get_border``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from hrnet.data.transforms import (
    CENTERNET_EIG_VAL,
    CENTERNET_EIG_VEC,
    CENTERNET_SCALES,
    CenterNetCrop,
    centernet_color,
)
from hrnet.errors import HRNetError


def _picture(height: int = 200, width: int = 300) -> tuple[torch.Tensor, dict]:
    image = torch.zeros(3, height, width)
    image[:, 40:120, 50:150] = 1.0  # a white rectangle: pixels x 50..149, y 40..119
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            torch.tensor([[50.0, 40.0, 150.0, 120.0], [280.0, 190.0, 299.0, 199.0]]),
            format=tv_tensors.BoundingBoxFormat.XYXY,
            canvas_size=(height, width),
        ),
        "labels": torch.tensor([1, 2]),
        "iscrowd": torch.tensor([0, 0]),
        "area": torch.tensor([8000.0, 171.0]),
        "ann_id": torch.tensor([7, 8]),
        "image_id": 3,
    }
    return image, target


@pytest.mark.parametrize(("side", "expected"), [(512, 128), (300, 128), (200, 64), (100, 32), (40, 16), (1, 0)])
def test_border_follows_centernet(side: int, expected: int) -> None:
    # _get_border(128, side): halve 128 until side - b > b
    assert CenterNetCrop.border(128, side) == expected


@pytest.mark.parametrize("size", [(128, 128), (64, 128)])
def test_boxes_follow_the_picture_and_the_side_is_one_of_centernets_scales(size: tuple[int, int]) -> None:
    out_h, out_w = size
    crop = CenterNetCrop(size, hflip_prob=0.5, color=False)
    seen_scales = set()
    for seed in range(40):
        torch.manual_seed(seed)
        image, target = _picture()
        out, t = crop(image, target)
        assert out.shape == (3, *size) and t["boxes"].canvas_size == size
        assert len(t["labels"]) == len(t["boxes"]) == len(t["ann_id"]) == len(t["area"])
        white = out[0] > 0.5
        if 1 not in t["labels"].tolist():
            assert white.sum() <= 2  # the rectangle left the crop (at most an edge's blur)
            continue
        box = t["boxes"][t["labels"].tolist().index(1)]
        rows, cols = torch.nonzero(white, as_tuple=True)
        drawn = torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)
        # clipped as on the stride-4 heatmap: x <= out_w - 4, y <= out_h - 4
        limit = torch.tensor([out_w - 4, out_h - 4, out_w - 4, out_h - 4], dtype=torch.float32)
        # where the warped rectangle is, within the resampling's pixel and CenterNet's x -> w - x - 1
        assert torch.allclose(box, torch.minimum(drawn, limit), atol=2.0), (seed, box, drawn)
        x0, y0, x1, y1 = box.tolist()
        if 0 < x0 and x1 < out_w - 4 and 0 < y0 and y1 < out_h - 4:  # not clipped: its size gives the scale
            k = (y1 - y0) / 80.0
            ratio = out_w / (k * 300)
            seen_scales.add(min(CENTERNET_SCALES, key=lambda r: abs(r - ratio)))
            assert min(abs(r - ratio) for r in CENTERNET_SCALES) < 0.01, ratio
    assert len(seen_scales) >= 3


def test_every_centre_stays_inside_the_border() -> None:
    # a picture whose pixels hold their own x and y: the output's centre pixel reads the centre
    crop = CenterNetCrop((64, 64), hflip_prob=0.0, color=False)
    height, width = 200, 300
    xs = torch.arange(width, dtype=torch.float32).expand(height, width)
    ys = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    for seed in range(30):
        torch.manual_seed(seed)
        image = torch.stack([xs, ys, torch.zeros_like(xs)])
        target = {"boxes": tv_tensors.BoundingBoxes(torch.zeros(0, 4), format="XYXY", canvas_size=(height, width))}
        out, _ = crop(image, target)
        # the output's centre (32, 32) samples the input at the drawn centre (cx, cy)
        cx, cy = float(out[0, 32, 32]), float(out[1, 32, 32])
        assert 128 <= cx < 300 - 128 and 64 <= cy < 200 - 64, (cx, cy)  # numpy's randint(low, high)
        assert cx == pytest.approx(round(cx), abs=1e-3) and cy == pytest.approx(round(cy), abs=1e-3)


def test_masks_are_refused() -> None:
    image, target = _picture()
    target["masks"] = tv_tensors.Mask(torch.zeros(2, 200, 300, dtype=torch.uint8))
    with pytest.raises(HRNetError, match="boxes only"):
        CenterNetCrop((64, 64))(image, target)


def _reference_color_aug(bgr: np.ndarray, order, factors, alpha) -> np.ndarray:
    """CenterNet src/lib/utils/image.py color_aug on an HxWx3 BGR float32 array, with the draws
    given (its functions list [brightness_, contrast_, saturation_] in ``order``)."""
    image = bgr.copy()
    gs = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    gs_mean = gs.mean()
    for op, f in zip(order, factors):
        if op == 0:  # brightness_
            image *= f
        elif op == 1:  # contrast_: blend_(alpha, image, gs_mean)
            image *= f
            image += gs_mean * (1 - f)
        else:  # saturation_: blend_(alpha, image, gs[:, :, None])
            image *= f
            image += gs[:, :, None] * (1 - f)
    image += np.dot(np.array(CENTERNET_EIG_VEC, np.float32), np.array(CENTERNET_EIG_VAL, np.float32) * alpha)
    return image


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_colour_augmentation_matches_centernets_on_the_bgr_picture(order) -> None:
    torch.manual_seed(0)
    rgb = torch.rand(3, 12, 16)
    factors, alpha = (1.3, 0.7, 1.1), np.array([0.05, -0.12, 0.2], np.float32)
    ours = centernet_color(rgb, order=order, factors=factors, lighting=torch.from_numpy(alpha))
    bgr = rgb.flip(0).permute(1, 2, 0).numpy().astype(np.float32)
    theirs = _reference_color_aug(bgr, order, factors, alpha)
    assert np.allclose(ours.flip(0).permute(1, 2, 0).numpy(), theirs, atol=1e-4)


def test_colour_draws_are_centernets() -> None:
    torch.manual_seed(0)
    grey = torch.rand(1, 16, 16).expand(3, 16, 16).clone()
    out = centernet_color(grey)  # brightness / contrast / saturation keep a grey picture grey
    diff = out - out[1:2]  # the lighting adds one constant per channel
    assert torch.allclose(diff, diff[:, :1, :1].expand_as(diff), atol=1e-6)
    assert 0 < diff.abs().max() < 0.2


def test_centernet_rows_train_on_every_image_and_annotation(tmp_path) -> None:
    from hrnet.engine.config import config_from_mapping
    from hrnet.tasks import get_task

    root = _coco_root(tmp_path)
    task = get_task("detection")
    for augment, images, crowd in (("centernet", 3, True), ("flip", 1, False)):
        cfg = config_from_mapping({**_DETECTION, "data": str(root), "det_augment": augment}, source="test")
        data = task.dataset(cfg, "train2017", train=True)
        assert len(data) == images  # CenterNet keeps the image without and the one with only crowd
        with_crowd = any(int(data[i][1]["iscrowd"].sum()) > 0 for i in range(len(data)))
        assert with_crowd is crowd


def test_the_centernet_rows_train_on_the_warped_input(tmp_path) -> None:
    from hrnet.engine.config import config_from_mapping
    from hrnet.tasks import get_task

    root = _coco_root(tmp_path)
    cfg = config_from_mapping({**_DETECTION, "data": str(root), "det_augment": "centernet"}, source="test")
    task = get_task("detection")
    image, target = task.dataset(cfg, "train2017", train=True)[0]
    assert image.shape == (3, 64, 64) and target["boxes"].canvas_size == (64, 64)
    image, _ = task.dataset(cfg, "train2017", train=False)[0]  # evaluation: the picture as it is
    assert image.shape == (3, 24, 32)


_DETECTION = {
    "task": "detection",
    "model": "centernet_hrnetv2_w18",
    "dataset": "coco_instances",
    "input_size": [64, 64],
}


def _coco_root(tmp_path):
    """The fixture's three 32x24 images in the published layout (<root>/train2017,
    annotations/instances_train2017.json): one with boxes and a crowd region, one without
    annotations, one with a crowd region only."""
    from tests.data.fixtures import make_coco_instances

    image_dir, ann_file = make_coco_instances(tmp_path / "src")
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    image_dir.rename(root / "train2017")
    ann_file.rename(root / "annotations" / "instances_train2017.json")
    return root


def test_keep_res_test_centres_the_image_and_moves_the_boxes_back() -> None:
    """CenterNet src/lib/detectors/base_detector.py pre_process (keep_res): canvas (h | 31) + 1
    by (w | 31) + 1, c = (w // 2, h // 2) on the canvas centre; ctdet post_process maps output
    point p back to 4 p - canvas / 2 + c."""
    from hrnet.models.detection_anchor_free import build_centernet

    model = build_centernet("hrnet_w18_small", num_classes=3, head_channels=16, test_keep_res=True).eval()
    seen = []
    model.backbone.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))

    def head(_features):  # one peak, class 2, at output (x 10, y 8); size 4 x 2 output pixels
        heatmap = torch.full((1, 2, 16, 24), -20.0)
        heatmap[0, 1, 8, 10] = 5.0
        wh = torch.zeros(1, 2, 16, 24)
        wh[0, :, 8, 10] = torch.tensor([4.0, 2.0])
        return {"heatmap": heatmap, "wh": wh, "offset": torch.zeros(1, 2, 16, 24)}

    model.head.forward = head  # type: ignore[method-assign]
    with torch.inference_mode():
        (det,) = model([torch.ones(3, 40, 70)])
    (batch,) = seen
    assert batch.shape == (1, 3, 64, 96)  # (40 | 31) + 1, (70 | 31) + 1
    black = model.transform.normalize(torch.zeros(3, 1, 1))[:, 0, 0]
    inside = torch.zeros(64, 96, dtype=torch.bool)
    inside[12:52, 13:83] = True  # top 64 / 2 - 40 // 2 = 12, left 96 / 2 - 70 // 2 = 13
    assert torch.allclose(batch[0][:, ~inside], black[:, None].expand(3, int((~inside).sum())))
    assert not torch.isclose(batch[0][:, inside], black[:, None]).any()
    top = det["scores"].argmax()
    # canvas box (10 -+ 2, 8 -+ 1) * 4 = (32, 28, 48, 36), moved back by (13, 12)
    assert det["boxes"][top].tolist() == pytest.approx([19.0, 16.0, 35.0, 24.0])
    assert int(det["labels"][top]) == 2
