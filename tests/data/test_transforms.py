"""The per-task input pipelines: shapes, dtypes, and targets that move with the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from hrnet.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomCropCatMax,
    TopDownTransform,
    classification_eval_transforms,
    classification_train_transforms,
    collate_classification,
    collate_detection,
    collate_keypoints,
    collate_segmentation,
    detection_train_transforms,
    flip_joints,
    landmark_train_transforms,
    pose_eval_transforms,
    segmentation_eval_transforms,
    segmentation_train_transforms,
)


def _image(height: int, width: int) -> tv_tensors.Image:
    return tv_tensors.Image(torch.randint(0, 256, (3, height, width), dtype=torch.uint8))


def test_classification_pipelines():
    torch.manual_seed(0)
    train = classification_train_transforms(size=24)
    image, label = train(_image(40, 60), 3)
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32 and label == 3
    evaluate = classification_eval_transforms(size=224)
    out, _ = evaluate(tv_tensors.Image(torch.full((3, 300, 400), 255, dtype=torch.uint8)), 0)
    assert out.shape == (3, 224, 224)
    expected = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out[:, 100, 100], expected)
    images, labels = collate_classification([(out, 1), (out, 2)])
    assert images.shape == (2, 3, 224, 224) and labels.dtype == torch.int64 and labels.tolist() == [1, 2]
    assert type(images) is torch.Tensor


def test_classification_eval_crops_the_centre():
    # a 256x320 image whose centre 224x224 region is white: the eval crop sees only white
    image = torch.zeros(3, 256, 320, dtype=torch.uint8)
    image[:, 16:240, 48:272] = 255
    out, _ = classification_eval_transforms(size=224, mean=(0, 0, 0), std=(1, 1, 1))(
        tv_tensors.Image(image), 0
    )
    assert out.min() > 0.99


# --------------------------------------------------------------------------------------------
# detection: boxes and masks follow the image


def _boxed_sample():
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    image[:, 5:15, 10:30] = 255  # the object: x 10..30, y 5..15
    masks = torch.zeros(2, 40, 60, dtype=torch.uint8)
    masks[0, 5:15, 10:30] = 1
    masks[1, 30:32, 58:60] = 1
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            [[10, 5, 30, 15], [58, 30, 60, 32]], format="XYXY", canvas_size=(40, 60)
        ),
        "labels": torch.tensor([1, 2]),
        "masks": tv_tensors.Mask(masks),
        "iscrowd": torch.tensor([0, 0]),
        "image_id": 3,
    }
    return tv_tensors.Image(image), target


def test_detection_flip_and_resize_move_boxes_and_masks():
    image, target = _boxed_sample()
    out, t = detection_train_transforms(min_size=80, max_size=200, hflip_prob=1.0)(image, target)
    assert out.shape == (3, 80, 120) and out.dtype == torch.float32 and out.max() <= 1.0
    x0, y0, x1, y1 = t["boxes"][0].round().int().tolist()
    assert (x0, y0, x1, y1) == (60, 10, 100, 30)  # mirrored then doubled
    assert out[0, y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].min() > 0.99  # the object is inside its box
    assert out[0].sum() == pytest.approx((x1 - x0) * (y1 - y0), rel=0.05)  # and nowhere else
    agree = (t["masks"][0].bool() == (out[0] > 0.5)).float().mean()
    assert agree > 0.99  # the mask covers the object (edges blur under bilinear resizing)
    assert t["labels"].tolist() == [1, 2] and t["image_id"] == 3


def test_detection_sanitize_drops_degenerate_boxes_with_their_fields():
    image, target = _boxed_sample()
    target["boxes"] = tv_tensors.BoundingBoxes(
        [[10, 5, 30, 15], [58, 30, 58, 32]], format="XYXY", canvas_size=(40, 60)
    )
    _, t = detection_train_transforms(hflip_prob=0.0)(image, target)
    assert len(t["boxes"]) == 1 and t["labels"].tolist() == [1] and t["masks"].shape[0] == 1
    assert t["iscrowd"].tolist() == [0]
    images, targets = collate_detection([(image, target), (image, target)])
    assert isinstance(images, list) and len(targets) == 2


# --------------------------------------------------------------------------------------------
# segmentation: the mask follows the image


def _class_coded_sample(height=96, width=128):
    """An image whose red channel is 60 * class, and the matching mask (classes 0..3 in blocks)."""
    mask = torch.zeros(height, width, dtype=torch.uint8)
    mask[: height // 2, width // 2 :] = 1
    mask[height // 2 :, : width // 3] = 2
    mask[height // 2 :, width // 3 : width // 2] = 3
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[0] = mask * 60
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def test_segmentation_train_keeps_mask_aligned():
    torch.manual_seed(0)
    transforms = segmentation_train_transforms(
        crop_size=(64, 80), photometric=False, mean=(0, 0, 0), std=(1, 1, 1)
    )
    for _ in range(10):
        image, mask = transforms(*_class_coded_sample())
        assert image.shape == (3, 64, 80) and mask.shape == (64, 80) and mask.dtype == torch.int64
        labelled = mask != 255
        decoded = (image[0] * 255 / 60).round().long()
        agree = (decoded[labelled] == mask[labelled]).float().mean()
        assert agree > 0.93  # only pixels on class borders may differ (bilinear vs nearest)
        assert (image[:, ~labelled] == 0).all()  # padding: image 0, mask ignored


def test_random_crop_cat_max_ratio_avoids_one_class_crops():
    mask = torch.zeros(100, 100, dtype=torch.uint8)
    mask[:, 90:] = 1  # class 1 only in a 10-px strip on the right
    crop = RandomCropCatMax((20, 20), cat_max_ratio=0.75)
    torch.manual_seed(0)
    hits = 0
    for _ in range(20):
        _, m = crop(tv_tensors.Image(torch.zeros(3, 100, 100, dtype=torch.uint8)), tv_tensors.Mask(mask))
        hits += int((m == 1).any())
    # a uniform crop reaches the strip ~ 1 time in 8; ten retries make it most of the time
    assert hits >= 10


def test_random_crop_cat_max_ratio_keeps_the_first_crop_that_passes_mmsegmentations_rule():
    """Replays the offsets the crop draws and applies MMSegmentation's rule (np.unique counts
    without the ignored label: more than one class and max / sum < cat_max_ratio) to each."""
    gen = torch.Generator().manual_seed(3)
    mask = torch.randint(0, 3, (40, 50), generator=gen, dtype=torch.uint8)
    mask[:, :35] = 0  # mostly one class: most crops fail the rule
    mask[:5] = 255
    image = torch.arange(3 * 40 * 50, dtype=torch.int32).reshape(3, 40, 50) % 251
    crop = RandomCropCatMax((16, 16), cat_max_ratio=0.75)
    for seed in range(30):
        torch.manual_seed(seed)
        _, out = crop(tv_tensors.Image(image.to(torch.uint8)), tv_tensors.Mask(mask))
        torch.manual_seed(seed)
        for _ in range(10):
            top, left = int(torch.randint(0, 40 - 16 + 1, ())), int(torch.randint(0, 50 - 16 + 1, ()))
            labels, counts = np.unique(mask[top : top + 16, left : left + 16].numpy(), return_counts=True)
            counts = counts[labels != 255]
            if len(counts) > 1 and np.max(counts) / np.sum(counts) < 0.75:
                break
        assert torch.equal(out.as_subclass(torch.Tensor), mask[top : top + 16, left : left + 16]), seed


def test_segmentation_eval_keeps_mask_size():
    image, mask = _class_coded_sample(40, 80)
    out, m = segmentation_eval_transforms(resize=(20, 40))(image, mask)
    assert out.shape == (3, 20, 40) and m.shape == (40, 80) and m.dtype == torch.int64
    images, masks = collate_segmentation([segmentation_eval_transforms()(image, mask)] * 2)
    assert images.shape == (2, 3, 40, 80) and masks.shape == (2, 40, 80)


# --------------------------------------------------------------------------------------------
# pose / landmarks: keypoints follow the affine crop


def _dotted_person(points):
    """A 100x120 image with a 7x7 dot of brightness 250 - 100 k on joint k; all joints visible."""
    image = torch.zeros(3, 100, 120, dtype=torch.uint8)
    for k, (x, y) in enumerate(points):
        image[:, y - 3 : y + 4, x - 3 : x + 4] = 250 - 100 * k
    keypoints = torch.tensor([[x, y, 2] for x, y in points], dtype=torch.float32)
    target = {
        "keypoints": keypoints,
        "center": torch.tensor([60.0, 50.0]),
        "scale": torch.tensor([0.45, 0.6]),
        "image_id": 1,
        "bbox_score": 1.0,
    }
    return tv_tensors.Image(image), target


@pytest.mark.parametrize("seed", range(4))
def test_top_down_affine_keeps_keypoints_on_their_pixels(seed):
    torch.manual_seed(seed)
    points = [(40, 30), (80, 35), (60, 70)]
    transform = TopDownTransform(
        train=True,
        input_size=(48, 64),
        flip_pairs=[(0, 1)],
        flip_prob=0.5,
        rotation_prob=1.0,
        half_body_prob=0.0,
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    image, target = _dotted_person(points)
    crop, out = transform(image, target)
    assert crop.shape == (3, 64, 48) and out["heatmaps"].shape == (3, 16, 12)
    swapped = {0: 1, 1: 0, 2: 2} if out["flipped"] else {0: 0, 1: 1, 2: 2}
    for k in range(3):
        x, y, w = out["joints"][k].tolist()
        if w == 0:
            continue
        # joint k sits on a dot: its own, or after a flip its left/right partner's (labels swap)
        expected = (250 - 100 * swapped[k]) / 255
        assert crop[0, round(y), round(x)] == pytest.approx(expected, abs=0.15), (k, x, y)
        peak = int(out["heatmaps"][k].argmax())
        assert abs(peak % 12 - x / 4) <= 1 and abs(peak // 12 - y / 4) <= 1


def test_pose_and_landmark_pipelines_collate():
    image, target = _dotted_person([(40, 30), (80, 35), (60, 70)])
    batch = [pose_eval_transforms(input_size=(48, 64))(image, target) for _ in range(2)]
    images, t = collate_keypoints(batch)
    assert images.shape == (2, 3, 64, 48) and t["heatmaps"].shape == (2, 3, 16, 12)
    assert t["target_weight"].shape == (2, 3) and t["image_id"].dtype == torch.int64
    assert t["center"].shape == (2, 2) and t["bbox_score"].dtype == torch.float32
    crop, out = landmark_train_transforms(flip_pairs=[(0, 1)])(image, target)
    assert crop.shape == (3, 256, 256) and out["heatmaps"].shape == (3, 64, 64)


def test_flip_joints_swaps_pairs():
    joints = np.array([[1.0, 2.0, 2], [5.0, 6.0, 1], [3.0, 3.0, 2]])
    out = flip_joints(joints, 10, [(0, 1)])
    assert out.tolist() == [[4.0, 6.0, 1], [8.0, 2.0, 2], [6.0, 3.0, 2]]


def test_classification_rectangular_sizes():
    image = _image(60, 80)
    out, _ = classification_eval_transforms(size=(24, 32))(image, 0)
    assert out.shape == (3, 24, 32)
    out, _ = classification_train_transforms(size=(24, 32))(image, 0)
    assert out.shape == (3, 24, 32)
