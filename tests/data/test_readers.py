"""The dataset readers on tiny fixtures in each dataset's real layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hrnet.data.coco import CocoDetection, CocoKeypoints
from hrnet.data.imagefolder import ImageFolderDataset
from hrnet.data.landmarks import COFW, WFLW, Face300W, read_pts
from hrnet.data.segmentation import ADE20K, Cityscapes, MaskFolderSegmentation, PascalContext, PascalVOC
from hrnet.errors import HRNetError
from tests.data.fixtures import (
    make_300w,
    make_ade20k,
    make_cityscapes,
    make_coco_instances,
    make_coco_keypoints,
    make_cofw,
    make_imagefolder,
    make_pascal_context,
    make_voc,
    make_wflw,
    save_image,
    write_json,
)

# --------------------------------------------------------------------------------------------
# ImageFolder


def test_imagefolder_classes_modes_and_exif(tmp_path):
    make_imagefolder(tmp_path, classes=("cat", "dog", "emu"))
    ds = ImageFolderDataset(tmp_path, "train")
    assert ds.classes == ["cat", "dog", "emu"]
    assert ds.class_to_idx == {"cat": 0, "dog": 1, "emu": 2}
    names = [p.name for p, _ in ds.samples]
    assert names == ["alpha.png", "gray.png", "palette.png", "rgb.png", "cmyk.jpg", "rotated.jpg", "only.png"]
    assert ds.targets == [0, 0, 0, 0, 1, 1, 2]
    for i in range(len(ds)):
        image, label = ds[i]
        assert image.dtype == torch.uint8 and image.shape[0] == 3, names[i]
        assert label == ds.targets[i]
    assert ds[names.index("rotated.jpg")][0].shape == (3, 6, 4)  # EXIF orientation applied
    assert ds[names.index("cmyk.jpg")][0].shape == (3, 4, 6)
    gray = ds[names.index("gray.png")][0]
    assert torch.equal(gray[0], gray[2]) and int(gray[0, 0, 0]) == 128
    rgb = ds[names.index("palette.png")][0]
    assert rgb[:, 0, 0].tolist() == [0, 255, 0]


def test_imagefolder_transforms_receive_image_and_label(tmp_path):
    make_imagefolder(tmp_path)
    seen = []

    def transforms(image, label):
        seen.append(label)
        return image.float(), label + 10

    ds = ImageFolderDataset(tmp_path, "train", transforms=transforms)
    image, label = ds[len(ds) - 1]
    assert image.dtype == torch.float32 and label == 11 and seen == [1]


def test_imagefolder_errors_name_the_file(tmp_path):
    with pytest.raises(HRNetError, match="split folder not found"):
        ImageFolderDataset(tmp_path, "val")
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(HRNetError, match="no images"):
        ImageFolderDataset(tmp_path, "train")
    good = save_image(tmp_path / "train" / "a" / "good.png", np.zeros((4, 4, 3), np.uint8))
    data = good.read_bytes()
    (tmp_path / "train" / "a" / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "train" / "a" / "text.jpg").write_bytes(b"this is not a jpeg")
    ds = ImageFolderDataset(tmp_path, "train")
    for i, (path, _) in enumerate(ds.samples):
        if path.name == "good.png":
            continue
        with pytest.raises(HRNetError, match=path.name):
            ds[i]


# --------------------------------------------------------------------------------------------
# COCO instances


def test_coco_detection_targets_labels_and_crowd(tmp_path):
    image_dir, ann_file = make_coco_instances(tmp_path)
    ds = CocoDetection(image_dir, ann_file, with_masks=True)
    assert ds.ids == [1, 2, 3] and ds.classes == ["box", "bar"] and ds.num_classes == 2
    assert ds.cat_id_to_label == {5: 1, 9: 2} and ds.label_to_cat_id == {1: 5, 2: 9}
    image, target = ds[0]
    assert image.shape == (3, 24, 32) and target["image_id"] == 1
    assert target["boxes"].tolist() == [[4, 2, 12, 8], [20, 10, 28, 20]]  # xyxy, crowd left out
    assert target["boxes"].dtype == torch.float32 and tuple(target["boxes"].canvas_size) == (24, 32)
    assert target["labels"].tolist() == [1, 2] and target["iscrowd"].tolist() == [0, 0]
    masks = target["masks"]
    assert masks.shape == (2, 24, 32) and masks.dtype == torch.uint8
    assert masks[0, 2:8, 4:12].all() and int(masks[0].sum()) == 48  # the polygon covers the drawn box
    assert torch.equal(masks[1].bool(), image[0] == 128)
    assert ds[1][1]["boxes"].shape == (0, 4) and ds[1][1]["masks"].shape == (0, 24, 32)

    with_crowd = CocoDetection(image_dir, ann_file, with_masks=True, include_crowd=True)
    _, target = with_crowd[0]
    assert target["iscrowd"].tolist() == [0, 0, 1] and int(target["masks"][2].sum()) == 32
    training = CocoDetection(image_dir, ann_file, skip_empty=True)
    assert training.ids == [1]  # crowd-only image 3 skipped too
    assert training.notes == [
        f"{ann_file}: 2 of 3 images have no non-crowd annotation and are left out of training "
        "(torchvision's and MMDetection's filter_empty_gt); evaluation scores every image"
    ]
    assert CocoDetection(image_dir, ann_file).notes == [] and with_crowd.ids == [1, 2, 3]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["annotations"][0].update(category_id=4), "unknown category_id 4"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image_id 99"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "negative"),
        (lambda d: d["annotations"][0].pop("bbox"), "missing 'bbox'"),
        (lambda d: d["images"].append(dict(d["images"][0])), "repeats id 1"),
        (lambda d: d.pop("categories"), "'categories'"),
    ],
)
def test_coco_bad_records_are_named(tmp_path, change, message):
    image_dir, ann_file = make_coco_instances(tmp_path)
    data = json.loads(ann_file.read_text())
    change(data)
    write_json(ann_file, data)
    with pytest.raises(HRNetError, match=message) as info:
        CocoDetection(image_dir, ann_file)
    assert str(ann_file) in str(info.value)


def test_coco_bad_files_are_named(tmp_path):
    image_dir, ann_file = make_coco_instances(tmp_path)
    text = ann_file.read_text()
    ann_file.write_text(text[:-10])
    with pytest.raises(HRNetError, match="malformed JSON at line 1"):
        CocoDetection(image_dir, ann_file)
    ann_file.write_text(text)
    ds = CocoDetection(image_dir, ann_file)
    save_image(image_dir / "a.png", np.zeros((20, 32, 3), np.uint8))  # size differs from the record
    with pytest.raises(HRNetError, match=r"a.png \(image id 1 of instances.json\): image is 32x20"):
        ds[0]
    (image_dir / "b.png").unlink()
    with pytest.raises(HRNetError, match=r"b.png.*not found"):
        ds[1]
    (image_dir / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(HRNetError, match=r"c.png.*cannot decode"):
        ds[2]


def test_embedded_shapes_load_in_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    from hrnet.data.embedded import generate_dataset

    root = generate_dataset("shapes", tmp_path / "shapes", seed=1, num_train=6, num_val=2)
    coco = COCO(str(root / "annotations" / "instances_val.json"))
    assert len(coco.imgs) == 2 and sorted(coco.cats) == [1, 2, 3]
    ds = CocoDetection(
        root / "images" / "train", root / "annotations" / "instances_train.json", with_masks=True
    )
    from hrnet.data.segmentation import mask_folder_classes

    classes = mask_folder_classes(root)  # the generator's classes.txt
    assert classes == ["background", "circle", "square", "triangle"]
    seg = MaskFolderSegmentation(root / "images" / "train", root / "masks" / "train", classes=classes)
    assert len(ds) == len(seg) == 6
    for i in range(6):
        _, target = ds[i]
        _, mask = seg[i]
        # each instance mask agrees with the semantic map (apart from its ignored outline)
        for m, label in zip(target["masks"], target["labels"]):
            inside = mask[m.bool()]
            assert ((inside == label) | (inside == 255)).float().mean() > 0.95
            assert (inside == label).any()
        assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 255}


# --------------------------------------------------------------------------------------------
# COCO person keypoints


def test_coco_keypoints_ground_truth_samples(tmp_path):
    image_dir, ann_file, _ = make_coco_keypoints(tmp_path)
    ds = CocoKeypoints(image_dir, ann_file, input_size=(192, 256))
    assert len(ds) == 1  # the person with no labelled joint and the crowd are skipped
    image, target = ds[0]
    assert image.shape == (3, 48, 64) and target["image_id"] == 7
    # box (10, 5, 20, 30) -> centre (19.5, 19.5) of the clipped box (x 10..29, y 5..34),
    # grown to 3:4 (w 21.75 for h 29) and padded 1.25, in units of 200 px
    torch.testing.assert_close(target["center"], torch.tensor([19.5, 19.5]))
    torch.testing.assert_close(target["scale"], torch.tensor([21.75, 29.0]) * 1.25 / 200)
    assert target["keypoints"][:2].tolist() == [[15, 10, 2], [25, 12, 1]]
    assert len(CocoKeypoints(image_dir, ann_file, skip_invisible=False)) == 2


def test_coco_keypoints_detected_boxes(tmp_path):
    image_dir, ann_file, det_file = make_coco_keypoints(tmp_path)
    ds = CocoKeypoints(image_dir, ann_file, detections=det_file)
    assert [s["bbox_score"] for s in ds.samples] == [0.9, 0.1]  # the non-person box is dropped
    assert len(CocoKeypoints(image_dir, ann_file, detections=det_file, min_score=0.5)) == 1
    _, target = ds[0]
    assert float(target["keypoints"].abs().sum()) == 0 and target["bbox_score"] == 0.9
    write_json(det_file, [{"image_id": 8, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])
    with pytest.raises(HRNetError, match="image_id 8"):
        CocoKeypoints(image_dir, ann_file, detections=det_file)


def test_coco_keypoints_wrong_joint_count(tmp_path):
    image_dir, ann_file, _ = make_coco_keypoints(tmp_path)
    data = json.loads(ann_file.read_text())
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    write_json(ann_file, data)
    with pytest.raises(HRNetError, match="annotation id 1: expected 51 keypoint values"):
        CocoKeypoints(image_dir, ann_file)


def test_embedded_figures_are_coco_keypoints(tmp_path):
    from pycocotools.coco import COCO

    from hrnet.data.embedded import COCO_KEYPOINT_NAMES, generate_dataset

    root = generate_dataset("figures", tmp_path / "figures", seed=2, num_train=6, num_val=2)
    ann_file = root / "annotations" / "person_keypoints_train.json"
    coco = COCO(str(ann_file))
    category = coco.loadCats(1)[0]
    assert tuple(category["keypoints"]) == COCO_KEYPOINT_NAMES and len(category["skeleton"]) == 19
    visibility = set()
    for ann in coco.anns.values():
        v = ann["keypoints"][2::3]
        visibility |= set(v)
        assert ann["num_keypoints"] == sum(1 for x in v if x > 0)
        assert 0 < ann["area"] <= ann["bbox"][2] * ann["bbox"][3]
        assert int(coco.annToMask(ann).sum()) == ann["area"]
    assert visibility >= {1, 2}
    ds = CocoKeypoints(root / "images" / "train", ann_file)
    assert len(ds) >= 6
    image, _ = ds[0]
    assert image.shape == (3, 96, 96)


# --------------------------------------------------------------------------------------------
# semantic segmentation benchmarks


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    ds = Cityscapes(make_cityscapes(tmp_path), "val")
    assert len(ds) == 1 and ds.num_classes == 19 and ds.classes[13] == "car"
    image, mask = ds[0]
    assert image.shape == (3, 4, 8) and mask.dtype == torch.uint8
    # road 7->0, car 26->13, bicycle 33->18, unlabeled/ego/ground/255 -> ignore, person 24->11
    assert mask[0].tolist() == [0, 13, 18, 255, 255, 255, 255, 11]
    assert (mask[1:] == 0).all()


def test_ade20k_reduce_zero_label(tmp_path):
    ds = ADE20K(make_ade20k(tmp_path), "val")
    assert ds.num_classes == 150
    _, mask = ds[0]
    assert mask[0, :4].tolist() == [255, 0, 149, 74]


def test_voc_palette_boundary_and_aug(tmp_path):
    root = make_voc(tmp_path)
    ds = PascalVOC(root, "val")
    assert ds.num_classes == 21 and ds.classes[15] == "person"
    _, mask = ds[0]
    assert mask[0, :4].tolist() == [0, 15, 255, 20]  # palette indices, 255 boundary kept as ignore
    aug = PascalVOC(root, "train_aug", aug=True)
    assert [p.stem for p, _ in aug.samples] == ["2007_000032", "2011_000001"]
    assert aug[1][1][0, :3].tolist() == [0, 1, 255]
    with pytest.raises(HRNetError, match=r"2011_000001.png: label map of 2011_000001.jpg not found"):
        PascalVOC(root, "train_aug", aug=False)


def test_pascal_context_59(tmp_path):
    ds = PascalContext(make_pascal_context(tmp_path), "val")
    assert ds.num_classes == 59 and ds.classes[0] == "aeroplane" and ds.classes[-1] == "wood"
    _, mask = ds[0]
    assert mask[0, :4].tolist() == [255, 0, 58, 29]


def test_pascal_context_60_keeps_background_as_class_0(tmp_path):
    """MMSegmentation's 60-class Pascal Context (reduce_zero_label=False): the stored values are
    the training ids, background included."""
    ds = PascalContext(make_pascal_context(tmp_path), "val", background=True)
    assert ds.num_classes == 60 and ds.classes[0] == "background" and ds.classes[-1] == "wood"
    _, mask = ds[0]
    assert mask[0, :4].tolist() == [0, 1, 59, 30]


def test_segmentation_size_mismatch_and_colour_maps(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    save_image(images / "a.png", np.zeros((4, 8, 3), np.uint8))
    save_image(masks / "a.png", np.zeros((4, 6), np.uint8))
    save_image(images / "b.png", np.zeros((4, 8, 3), np.uint8))
    save_image(masks / "b.png", np.zeros((4, 8, 3), np.uint8))
    ds = MaskFolderSegmentation(images, masks, classes=["a", "b"])
    with pytest.raises(HRNetError, match=r"label map is 6x4 but its image a.png is 8x4"):
        ds[0]
    with pytest.raises(HRNetError, match=r"b.png.*single-channel"):
        ds[1]
    save_image(images / "c.png", np.zeros((4, 8, 3), np.uint8))
    with pytest.raises(HRNetError, match=r"c.png: label map of c.png not found"):
        MaskFolderSegmentation(images, masks, classes=["a", "b"])


# --------------------------------------------------------------------------------------------
# facial landmarks


def test_300w_splits_points_and_normalisation(tmp_path):
    root = make_300w(tmp_path)
    assert len(Face300W(root, "common")) == 2 and len(Face300W(root, "challenging")) == 1
    ds = Face300W(root, "full")
    assert len(ds) == 3 and ds.num_points == 68 and (36, 45) in ds.flip_pairs
    image, target = ds[0]
    assert image.shape == (3, 48, 64) and target["points"].shape == (68, 2)
    assert target["points"][1].tolist() == [12.0, 8.0]
    # points span x 10..28, y 8..20: centre (19, 14), scale 18 / 200 * 1.25
    assert target["center"].tolist() == [19.0, 14.0]
    torch.testing.assert_close(target["scale"], torch.tensor([0.1125, 0.1125]))
    # inter-ocular: points 36 (x 22, y 14) and 45 (x 20, y 16)
    assert target["norm_dist"] == pytest.approx(np.hypot(2, 2))
    with pytest.raises(HRNetError, match="split 'train' not found"):
        Face300W(root, "train")


def test_pts_errors(tmp_path):
    bad = tmp_path / "a.pts"
    bad.write_text("version: 1\nn_points:  3\n{\n1 2\n3 4\n}\n")
    with pytest.raises(HRNetError, match="n_points is 3 but 2 points"):
        read_pts(bad)
    bad.write_text("garbage")
    with pytest.raises(HRNetError, match=r"malformed \.pts"):
        read_pts(bad)


def test_wflw_annotation_lines(tmp_path):
    ds = WFLW(make_wflw(tmp_path), "test")
    assert len(ds) == 2 and ds.num_points == 98 and (96, 97) in ds.flip_pairs
    assert ds.attributes[:, 4].tolist() == [0, 1]
    image, target = ds[1]
    assert image.shape == (3, 48, 64) and target["points"][0].tolist() == [15.0, 8.0]
    assert target["center"].tolist() == [17.0, 23.0]  # box 4, 6, 30, 40
    torch.testing.assert_close(target["scale"], torch.tensor([34 / 200 * 1.25] * 2))
    assert target["norm_dist"] == pytest.approx(np.hypot(4, 2))  # points 60 (x 15, y 20), 72 (x 19, y 22)
    ann = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_test.txt"
    ann.write_text("1 2 3 a.jpg\n")
    with pytest.raises(HRNetError, match="line 1: 4 fields, expected 207"):
        WFLW(tmp_path, "test")


def test_cofw_csv(tmp_path):
    ds = COFW(make_cofw(tmp_path), "test")
    assert len(ds) == 1 and ds.num_points == 29 and ds.norm_indices == (8, 9)
    _, target = ds[0]
    assert target["center"].tolist() == [20.0, 15.0]
    torch.testing.assert_close(target["scale"], torch.tensor([0.25, 0.25]))
    assert target["norm_dist"] == pytest.approx(2.0)


def test_embedded_faces_read_as_300w(tmp_path):
    from hrnet.data.embedded import generate_dataset
    from hrnet.data.transforms import collate_keypoints, landmark_train_transforms

    root = generate_dataset("faces", tmp_path / "faces", seed=0, num_train=3, num_val=1)
    ds = Face300W(
        root, "train", transforms=landmark_train_transforms(flip_pairs=Face300W(root, "val").flip_pairs)
    )
    images, target = collate_keypoints([ds[i] for i in range(3)])
    assert images.shape == (3, 3, 256, 256) and target["heatmaps"].shape == (3, 68, 64, 64)
    assert target["points"].shape == (3, 68, 2) and target["norm_dist"].shape == (3,)
    assert (target["norm_dist"] > 10).all()


def test_imagefolder_labels_follow_the_given_classes_by_name(tmp_path) -> None:
    """A split scored against a model's classes: folders keep their class's index whatever other
    folders are missing; a folder the model does not know is an error naming it."""
    from hrnet.data.imagefolder import ImageFolderDataset
    from hrnet.errors import HRNetError
    from tests.engine.conftest import make_image_folder

    root = make_image_folder(tmp_path / "data", per_class=2)  # val/blue, val/red
    own = ImageFolderDataset(root, "val")
    assert own.classes == ["blue", "red"] and own.targets == [0, 0, 1, 1]
    model_classes = ["azure", "blue", "green", "red"]  # trained with four
    scored = ImageFolderDataset(root, "val", classes=model_classes)
    assert scored.classes == model_classes and scored.targets == [1, 1, 3, 3]
    with pytest.raises(HRNetError, match=r"val: class folders red are not among the model's 2 classes"):
        ImageFolderDataset(root, "val", classes=["blue", "green"])


def test_mask_folder_classes_and_labels_outside_them(tmp_path):
    """A user's own mask folders: the classes come from ``classes.txt`` or a class count, and a
    label that is neither a class nor 255 is an error naming the file and the labels."""
    from hrnet.data.segmentation import mask_folder_classes

    with pytest.raises(HRNetError, match=r"number of classes is not known: write .*classes.txt"):
        mask_folder_classes(tmp_path)
    assert mask_folder_classes(tmp_path, 3) == ["class 0", "class 1", "class 2"]
    (tmp_path / "classes.txt").write_text("sky\n\nroad\n")
    with pytest.raises(HRNetError, match=r"classes.txt: line 2 is blank"):
        mask_folder_classes(tmp_path)
    (tmp_path / "classes.txt").write_text("sky\nroad\ncar\nperson\nbike\ntree\n\n")  # trailing blank lines end it
    assert mask_folder_classes(tmp_path) == ["sky", "road", "car", "person", "bike", "tree"]
    with pytest.raises(HRNetError, match=r"classes.txt: 6 classes but num_classes is 4"):
        mask_folder_classes(tmp_path, 4)
    images, masks = tmp_path / "images", tmp_path / "masks"
    save_image(images / "a.png", np.zeros((2, 4, 3), np.uint8))
    save_image(masks / "a.png", np.array([[0, 5, 255, 1], [2, 3, 4, 5]], np.uint8))
    save_image(images / "b.png", np.zeros((2, 4, 3), np.uint8))
    save_image(masks / "b.png", np.array([[0, 6, 255, 9], [9, 1, 1, 1]], np.uint8))
    ds = MaskFolderSegmentation(images, masks, classes=mask_folder_classes(tmp_path))
    assert ds[0][1].tolist() == [[0, 5, 255, 1], [2, 3, 4, 5]]  # six classes and the ignore index
    with pytest.raises(HRNetError, match=r"masks/b.png: label map of b.png holds 6, 9: neither a class \(0..5\)"):
        ds[1]
