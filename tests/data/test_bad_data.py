"""The bad-data catalogue (docs/DATA.md): each kind of bad data gets its documented outcome.

Outcomes are a failing validation record naming file, record and reason, or an HRNetError from
the reader -- never a traceback. Grayscale, CMYK and EXIF-rotated images are accepted.

To keep Great Expectations runs few, one COCO instances set carries most kinds of bad data at
once (validated once per module) and each test asserts the record of its own kind.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hrnet.data.io import load_json, open_image
from hrnet.data.validation import Failure, validate_dataset
from hrnet.errors import HRNetError
from tests.data.fixtures import save_image, write_json

CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def _image(image_id: int, name: str, width: int = 8, height: int = 6) -> dict:
    return {"id": image_id, "file_name": name, "width": width, "height": height}


def _box(ann_id: int, image_id: int, bbox: list[float], category_id: int = 1) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": bbox,
        "area": 1.0,
        "iscrowd": 0,
    }


@pytest.fixture(scope="module")
def bad_coco(tmp_path_factory) -> tuple[Path, list[Failure]]:
    """A COCO instances split with one image or annotation per kind of bad (or awkward) data."""
    root = tmp_path_factory.mktemp("bad_coco")
    images = root / "images" / "train"
    rgb = np.full((6, 8, 3), 90, np.uint8)
    save_image(images / "good.png", rgb)
    (images / "truncated.jpg").write_bytes(_jpeg_bytes(Image.fromarray(rgb))[:120])
    save_image(images / "small.png", np.zeros((5, 7, 3), np.uint8))  # the JSON claims 8x6
    save_image(images / "gray.png", np.full((6, 8), 128, np.uint8))
    save_image(images / "cmyk.jpg", Image.new("CMYK", (8, 6), (0, 255, 255, 0)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: stored 8x6, displayed 6x8
    (images / "exif.jpg").write_bytes(_jpeg_bytes(Image.new("RGB", (8, 6), "red"), exif=exif.tobytes()))
    (images / "exif_stored.jpg").write_bytes((images / "exif.jpg").read_bytes())
    coco = {
        "images": [
            _image(1, "good.png"),
            _image(2, "truncated.jpg"),
            _image(3, "missing.png"),
            _image(4, "small.png"),
            _image(5, "gray.png"),
            _image(6, "cmyk.jpg"),
            _image(7, "exif.jpg", width=6, height=8),  # the displayed size: accepted
            _image(8, "exif_stored.jpg", width=8, height=6),  # the stored size: a size mismatch
            _image(1, "good.png"),  # duplicate image id
        ],
        "annotations": [
            _box(10, 1, [1, 1, 4, 3]),
            _box(11, 1, [5, 3, 6, 6]),  # box outside the 8x6 image
            _box(12, 1, [2, 2, 0, 3]),  # zero width
            _box(13, 1, [1, 1, 2, 2], category_id=7),  # unknown category
            _box(14, 5, [0, 0, 8, 6]),
            _box(14, 6, [0, 0, 8, 6]),  # duplicate annotation id
            _box(15, 7, [0, 0, 6, 8]),  # fills the displayed (rotated) image exactly
        ],
        "categories": CATEGORIES,
    }
    write_json(root / "annotations" / "instances_train.json", coco)
    report = validate_dataset("coco_instances", root=root, split="train", out=root / "report")
    return root, report


def _reasons(report, file: str | None = None, record: str | None = None) -> list[str]:
    return [
        f.reason
        for f in report.failures
        if (file is None or f.file == file) and (record is None or (f.record or "").startswith(record))
    ]


def test_summary_json_lists_the_failing_records(bad_coco):
    root, report = bad_coco
    assert not report.success
    summary = json.loads((root / "report" / "summary.json").read_text())
    assert summary["success"] is False
    assert {"file", "record", "reason"} <= set(summary["failures"][0])
    assert len(summary["failures"]) == len(report.failures)
    assert (root / "report" / "data_docs" / "index.html").is_file()


def test_truncated_jpeg(bad_coco):
    _, report = bad_coco
    (reason,) = _reasons(report, "images/train/truncated.jpg")
    assert reason.startswith("image not decodable: cannot decode image")
    with pytest.raises(HRNetError, match=r"truncated\.jpg.*cannot decode"):
        open_image(bad_coco[0] / "images/train/truncated.jpg")


def test_missing_image(bad_coco):
    _, report = bad_coco
    assert _reasons(report, "images/train/missing.png") == ["image file missing"]


def test_box_outside_the_image(bad_coco):
    _, report = bad_coco
    (reason,) = _reasons(report, record="annotation id=11 ")
    assert reason.startswith("box outside the image")


def test_box_of_zero_area(bad_coco):
    _, report = bad_coco
    assert _reasons(report, record="annotation id=12 ") == ["box of zero area (width <= 0): 0"]


def test_unknown_category(bad_coco):
    _, report = bad_coco
    assert _reasons(report, record="annotation id=13 ") == ["unknown category id: 7"]


def test_duplicate_ids(bad_coco):
    _, report = bad_coco
    assert _reasons(report, record="annotation id=14 ") == ["duplicate annotation id: 14"] * 2
    assert _reasons(report, "images/train/good.png") == ["duplicate image id: 1"] * 2


def test_image_size_mismatch(bad_coco):
    _, report = bad_coco
    assert _reasons(report, "images/train/small.png") == [
        "image width differs from the annotation file",
        "image height differs from the annotation file",
    ]


def test_grayscale_and_cmyk_images_are_accepted(bad_coco):
    root, report = bad_coco
    assert _reasons(report, "images/train/gray.png") == []
    assert _reasons(report, "images/train/cmyk.jpg") == []
    assert open_image(root / "images/train/gray.png").mode == "RGB"
    assert open_image(root / "images/train/cmyk.jpg").mode == "RGB"


def test_exif_orientation_is_applied_and_the_oriented_size_is_checked(bad_coco):
    root, report = bad_coco
    assert _reasons(report, "images/train/exif.jpg") == []  # claims the displayed 6x8
    assert _reasons(report, record="annotation id=15 ") == []  # a box over the displayed image
    assert len(_reasons(report, "images/train/exif_stored.jpg")) == 2  # claims the stored 8x6
    assert open_image(root / "images/train/exif.jpg").size == (6, 8)


def test_no_other_failures(bad_coco):
    """Every failing record is one of the planted kinds: nothing fires by accident."""
    _, report = bad_coco
    planted_files = {
        "images/train/truncated.jpg",
        "images/train/missing.png",
        "images/train/small.png",
        "images/train/exif_stored.jpg",
        "images/train/good.png",
    }
    planted_annotations = {"annotation id=11 ", "annotation id=12 ", "annotation id=13 ", "annotation id=14 "}
    for failure in report.failures:
        assert failure.file in planted_files or any(
            (failure.record or "").startswith(a) for a in planted_annotations
        ), failure


def test_malformed_json(tmp_path):
    ann = tmp_path / "annotations" / "instances_train.json"
    ann.parent.mkdir(parents=True)
    ann.write_text('{"images": [], "annotations": [,]}')
    report = validate_dataset("coco_instances", root=tmp_path, split="train", out=tmp_path / "report")
    (failure,) = report.failures
    assert failure.file == "annotations/instances_train.json"
    assert failure.reason.startswith("malformed JSON at line 1, column")
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["success"] is False
    with pytest.raises(HRNetError, match="malformed JSON"):
        load_json(ann)


def test_coco_record_missing_keys_is_a_record_not_a_traceback(tmp_path):
    write_json(
        tmp_path / "annotations" / "instances_train.json",
        {"images": [{"id": 1}], "annotations": [{"id": 3, "bbox": "x"}], "categories": CATEGORIES},
    )
    report = validate_dataset("coco_instances", root=tmp_path, split="train")
    assert ("images[0]", "image record lacks 'file_name', 'width', 'height'") in [
        (f.record, f.reason) for f in report.failures
    ]
    assert any(f.record == "annotations[0]" for f in report.failures)


def test_an_image_size_that_is_not_a_number_is_a_record_not_a_traceback(tmp_path):
    images = [_image(1, "a.png"), {**_image(2, "b.png"), "width": "640"}, {**_image(3, "c.png"), "height": None}]
    boxes = [_box(10, 2, [1, 1, 2, 2]), _box(11, 3, [1, 1, 2, 2])]
    write_json(
        tmp_path / "annotations" / "instances_train.json",
        {"images": images, "annotations": boxes, "categories": CATEGORIES},
    )
    report = validate_dataset("coco_instances", root=tmp_path, split="train")
    reasons = [(f.record, f.reason) for f in report.failures]
    assert ("image id=2", "width '640': not a positive number") in reasons
    assert ("image id=3", "height None: not a positive number") in reasons
    assert not report.success


def test_a_string_id_is_shown_as_a_string(tmp_path):
    """image_id "1" for the image 1: the message must show why they differ."""
    write_json(
        tmp_path / "annotations" / "instances_train.json",
        {"images": [_image(1, "a.png")], "annotations": [_box(3, "1", [1, 1, 2, 2])], "categories": CATEGORIES},
    )
    report = validate_dataset("coco_instances", root=tmp_path, split="train")
    assert ("annotation id=3 (image id='1')", "annotation refers to an image id not in 'images': '1'") in [
        (f.record, f.reason) for f in report.failures
    ]


def test_empty_dataset(tmp_path):
    write_json(
        tmp_path / "annotations" / "instances_train.json", {"images": [], "annotations": [], "categories": []}
    )
    report = validate_dataset("coco_instances", root=tmp_path, split="train")
    (failure,) = report.failures
    assert failure.record is None and failure.reason.startswith("dataset is empty")


def test_wrong_keypoint_count_and_flags(tmp_path):
    save_image(tmp_path / "images" / "train" / "p.png", np.zeros((6, 8, 3), np.uint8))
    good = [1, 1, 2] * 17
    people = [
        {"keypoints": good, "num_keypoints": 17},
        {"keypoints": good[:-3], "num_keypoints": 16},  # 16 keypoints: length 48
        {"keypoints": [1, 1, 3, *good[3:]], "num_keypoints": 17},  # visibility 3
        {"keypoints": [0, 0, 0, *good[3:]], "num_keypoints": 17},  # 16 labelled, says 17
    ]
    annotations = [{**_box(20 + i, 1, [0, 0, 4, 4]), **person} for i, person in enumerate(people)]
    write_json(
        tmp_path / "annotations" / "person_keypoints_train.json",
        {
            "images": [_image(1, "p.png")],
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}],
        },
    )
    report = validate_dataset("coco_keypoints", root=tmp_path, split="train")
    by_record = {(f.record or "").split(" ")[1]: f.reason for f in report.failures}
    assert by_record == {
        "id=21": "keypoints array length is not 51: 48",
        "id=22": "keypoint visibility flag not in {0, 1, 2} (count): 1",
        "id=23": "num_keypoints differs from the number of labelled keypoints",
    }


def test_mask_label_out_of_range(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0], mask[1, 1], mask[2, 2] = 2, 255, 9  # class 2 and ignore are fine; 9 is not
    save_image(tmp_path / "images" / "train" / "a.png", rgb)
    save_image(tmp_path / "masks" / "train" / "a.png", mask)
    save_image(tmp_path / "images" / "train" / "b.png", rgb)  # its label map is missing
    report = validate_dataset("mask_segmentation", root=tmp_path, split="train", num_classes=4)
    assert [(f.file, f.reason) for f in report.failures] == [
        ("images/train/b.png", "label map missing"),
        ("masks/train/a.png", "mask label out of range (classes 0..3, ignore 255): 9"),
    ]


def test_landmarks_wrong_count_and_malformed_pts(tmp_path):
    folder = tmp_path / "train"
    save_image(folder / "a.png", np.zeros((10, 10, 3), np.uint8))
    (folder / "a.pts").write_text("version: 1\nn_points: 2\n{\n1 1\n2 2\n}\n")
    save_image(folder / "b.png", np.zeros((10, 10, 3), np.uint8))
    (folder / "b.pts").write_text("version: 1\nn_points: 68\n{\n1 1\n")
    report = validate_dataset("landmarks_300w", root=tmp_path, split="train")
    assert [(f.file, f.record, f.reason.split(" (")[0]) for f in report.failures] == [
        ("train/b.pts", None, "malformed .pts file"),
        ("train/a.png", "a.pts", "landmark count is not 68: 2"),
    ]


def test_missing_split_folder_or_file(tmp_path):
    """The reader raises the validator's reason; the validator names the folder or file."""
    from hrnet.data.imagefolder import ImageFolderDataset
    from hrnet.data.landmarks import Face300W
    from hrnet.data.segmentation import PascalVOC

    for fmt, reader, split, name, reason in (
        ("imagefolder", ImageFolderDataset, "val", "val", "split folder not found"),
        ("landmarks_300w", Face300W, "challenging", "ibug", "folder of 300W split 'challenging' not found"),
        ("voc", PascalVOC, "val", "val.txt", "split file not found"),
    ):
        with pytest.raises(HRNetError, match=reason):
            reader(tmp_path, split)
        report = validate_dataset(fmt, root=tmp_path, split=split)
        assert not report.success
        (first, *_) = report.failures
        assert first.file.endswith(name) and first.record is None and first.reason == reason, fmt


def test_bad_segmentations_fail_validation_and_the_reader_alike(tmp_path):
    """What pycocotools cannot rasterise (its own errors are "Argument 'bb' has incorrect type",
    "input type is not supported") is a record with a reason, in validation and in the reader."""
    from hrnet.data.coco import CocoDetection

    save_image(tmp_path / "images" / "train" / "a.png", np.zeros((6, 8, 3), np.uint8))
    segmentations = [
        [[1, 1, 5, 1, 5, 4]],  # a triangle: fine
        {"size": [6, 8], "counts": [48]},  # RLE: fine
        [[1, 2, 3, 4]],  # two points
        "oops",
        [[1, 1, 5, 1, 5]],  # odd length
        {"size": [6], "counts": "x"},
        [],  # a box-only export: no mask, fine for validation
        [[1, 1, 5, 1, 5, 4], [5, 5, 6, 6]],  # a degenerate polygon beside a good one: dropped
    ]
    annotations = [{**_box(30 + i, 1, [0, 0, 4, 4]), "segmentation": s} for i, s in enumerate(segmentations)]
    ann_file = tmp_path / "annotations" / "instances_train.json"
    write_json(ann_file, {"images": [_image(1, "a.png")], "annotations": annotations, "categories": CATEGORIES})
    report = validate_dataset("coco_instances", root=tmp_path, split="train")
    by_record = {f.record: f.reason for f in report.failures}
    assert by_record == {
        "annotation id=32": "segmentation: no polygon of at least 3 points (flat x, y pairs of numbers)",
        "annotation id=33": "segmentation: expected a list of polygons or an RLE object, got 'oops'",
        "annotation id=34": "segmentation: no polygon of at least 3 points (flat x, y pairs of numbers)",
        "annotation id=35": "segmentation: RLE 'size' must be [height, width], got [6]",
    }
    dataset = CocoDetection(tmp_path / "images" / "train", ann_file, with_masks=True)
    with pytest.raises(HRNetError, match=r"annotation id 32: bad segmentation: no polygon of at least 3 points"):
        dataset[0]
    from hrnet.data.coco import usable_segmentation

    assert usable_segmentation([[1, 1, 5, 1, 5, 4], [5, 5, 6, 6]]) == [[1, 1, 5, 1, 5, 4]]
    assert usable_segmentation([]) is None


def test_the_keypoint_reader_refuses_a_visibility_flag_validation_refuses(tmp_path):
    from hrnet.data.coco import load_coco

    good = [1, 1, 2] * 17
    person = {**_box(40, 1, [0, 0, 4, 4]), "keypoints": [1, 1, 5, *good[3:]], "num_keypoints": 17}
    ann_file = tmp_path / "person_keypoints_train.json"
    write_json(
        ann_file,
        {
            "images": [_image(1, "p.png")],
            "annotations": [person],
            "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)]}],
        },
    )
    with pytest.raises(HRNetError, match=r"annotation id 40: keypoint visibility 5 is not 0, 1 or 2"):
        load_coco(ann_file, keypoints=True)
