"""`hrnet validate`: valid datasets pass every suite; the CLI writes summary.json and Data Docs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hrnet.cli import main
from hrnet.data.embedded import EMBEDDED_DATASETS, generate_dataset
from hrnet.data.validate import validate_dataset
from tests.data.fixtures import (
    make_ade20k,
    make_cityscapes,
    make_coco_instances,
    make_coco_keypoints,
    make_imagefolder,
    make_pascal_context,
    make_cofw,
    make_voc,
    make_wflw,
    save_image,
)

# embedded dataset -> (format, validate keyword arguments)
EMBEDDED_FORMATS = {
    "digits": [("imagefolder", {"num_classes": 10})],
    "shapes": [("coco_instances", {}), ("mask_segmentation", {"num_classes": 4})],
    "figures": [("coco_keypoints", {})],
    "faces": [("landmarks_300w", {})],
}
CASES = [(name, fmt, kw) for name, runs in EMBEDDED_FORMATS.items() for fmt, kw in runs]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    for name in EMBEDDED_DATASETS:
        counts = {"num_train": 40, "num_val": 10} if name == "digits" else {"num_train": 3, "num_val": 2}
        generate_dataset(name, root / name, seed=0, **counts)
    return root


@pytest.mark.parametrize(("name", "fmt", "kwargs"), CASES, ids=[f"{n}-{f}" for n, f, _ in CASES])
def test_embedded_dataset_is_valid(embedded, name, fmt, kwargs):
    if name not in EMBEDDED_DATASETS:
        pytest.skip(f"the {name} generator is not written yet")
    report = validate_dataset(fmt, root=embedded / name, split="train", **kwargs)
    assert report.failures == []
    assert report.success
    assert all(outcome.success for outcome in report.expectations)
    assert min(report.rows.values()) > 0


def test_cli_valid_dataset_writes_summary_and_docs(embedded, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "validate",
            "coco_instances",
            "--root",
            str(embedded / "shapes"),
            "--split",
            "val",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "valid" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] is True and summary["failures"] == []
    assert summary["rows"]["images"] == 2
    assert {e["expectation"] for e in summary["expectations"]} >= {
        "ExpectColumnValuesToBeUnique",
        "ExpectColumnValuesToBeInSet",
        "ExpectColumnPairValuesToBeEqual",
        "ExpectTableRowCountToBeBetween",
    }
    assert (out / "data_docs" / "index.html").is_file()
    assert not list(out.glob(".summary.json.*"))  # no temp file left


def test_cli_invalid_dataset_prints_records_and_exits_nonzero(tmp_path, capsys):
    save_image(tmp_path / "images" / "train" / "a.png", np.zeros((4, 4, 3), np.uint8))
    save_image(tmp_path / "masks" / "train" / "a.png", np.full((4, 4), 7, np.uint8))
    out = tmp_path / "report"
    code = main(
        ["validate", "mask_segmentation", "--root", str(tmp_path), "--num-classes", "3", "--out", str(out)]
    )
    assert code == 1
    printed = capsys.readouterr().out
    assert "masks/train/a.png" in printed and "mask label out of range" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures"] == [
        {
            "file": "masks/train/a.png",
            "record": "label 7",
            "reason": "mask label out of range (classes 0..2, ignore 255): 7",
        }
    ]


def test_reader_fixtures_are_valid(tmp_path):
    """The readers' own fixtures: awkward image modes, non-contiguous categories, crowd RLE."""
    make_imagefolder(tmp_path / "folder")
    image_dir, ann_file = make_coco_instances(tmp_path / "coco")
    kp_images, kp_file, _ = make_coco_keypoints(tmp_path / "kp")
    reports = [
        validate_dataset("imagefolder", root=tmp_path / "folder", split="train"),
        validate_dataset("coco_instances", root=tmp_path / "coco", annotations=ann_file, images=image_dir),
        validate_dataset("coco_keypoints", root=tmp_path / "kp", annotations=kp_file, images=kp_images),
    ]
    for report in reports:
        assert report.failures == [], report.format


def test_arguments_are_checked(tmp_path):
    from hrnet.errors import HRNetError

    with pytest.raises(HRNetError, match="--num-classes is required"):
        validate_dataset("mask_segmentation", root=tmp_path)
    with pytest.raises(HRNetError, match="unknown format"):
        validate_dataset("voc_xml", root=tmp_path)
    with pytest.raises(HRNetError, match="dataset root not found"):
        validate_dataset("imagefolder", root=tmp_path / "nope")


def test_importing_the_modules_loads_no_heavy_dependency():
    code = (
        "import sys, hrnet.data.validate, hrnet.data.fetch, hrnet.data.catalog, "
        "hrnet.commands.validate, hrnet.commands.fetch\n"
        "heavy = [m for m in ('great_expectations', 'boto3', 'pandas', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# The paper segmentation layouts (tiny fixtures in the real formats)
# --------------------------------------------------------------------------------------------

# format -> (fixture builder, split, validate kwargs, label map of the first image from the root)
LAYOUTS = {
    "cityscapes": (make_cityscapes, "val", {}, "gtFine/val/lindau/lindau_000000_000019_gtFine_labelIds.png"),
    "ade20k": (make_ade20k, "validation", {}, "annotations/validation/ADE_val_00000001.png"),
    "voc": (make_voc, "train_aug", {"aug": True}, "SegmentationClassAug/2007_000032.png"),
    "pascal_context": (make_pascal_context, "val", {}, "SegmentationClassContext/2008_000002.png"),
}


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_paper_segmentation_layouts_validate(fmt, tmp_path):
    make, split, kwargs, _ = LAYOUTS[fmt]
    root = make(tmp_path)
    report = validate_dataset(fmt, root=root, split=split, **kwargs)
    assert report.success and report.failures == [], report.failures
    assert report.rows["images"] >= 1


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_paper_segmentation_layouts_name_the_bad_label_map(fmt, tmp_path):
    make, split, kwargs, label = LAYOUTS[fmt]
    root = make(tmp_path)
    save_image(root / label, np.full((4, 8), 200, np.uint8))  # a value no layout defines
    report = validate_dataset(fmt, root=root, split=split, **kwargs)
    assert not report.success
    assert any(
        f.file == label and f.record == "label 200" and "out of range" in f.reason for f in report.failures
    )
    (root / label).unlink()
    report = validate_dataset(fmt, root=root, split=split, **kwargs)
    assert any(f.record == label and f.reason == "label map missing" for f in report.failures), (
        report.failures
    )


def test_voc_without_its_split_file_fails_naming_it(tmp_path):
    root = make_voc(tmp_path)
    report = validate_dataset("voc", root=root, split="test")
    assert not report.success
    assert report.failures[0].file.endswith("ImageSets/Segmentation/test.txt")
    assert report.failures[0].reason == "split file not found"


# --------------------------------------------------------------------------------------------
# WFLW and COFW (the paper landmark layouts)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "make"), [("landmarks_wflw", make_wflw), ("landmarks_cofw", make_cofw)])
def test_paper_landmark_layouts_validate(fmt, make, tmp_path):
    report = validate_dataset(fmt, root=make(tmp_path), split="test")
    assert report.success and report.failures == [], report.failures
    assert report.rows["faces"] == (2 if fmt == "landmarks_wflw" else 1)


def test_wflw_names_the_bad_line_and_the_point_outside_the_image(tmp_path):
    root = make_wflw(tmp_path)
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_test.txt"
    first, second = ann.read_text().splitlines()
    fields = second.split()
    fields[0] = "500.0"  # x of the first landmark, far right of the 64-px image
    ann.write_text(first.replace(first.split()[3], "abc", 1) + "\n" + " ".join(fields) + "\n")
    report = validate_dataset("landmarks_wflw", root=root, split="test")
    assert not report.success
    reasons = {(f.record, f.reason.split(":")[0]) for f in report.failures}
    assert ("line 1", "non-numeric coordinate or flag") in reasons
    assert any(f.record == "line 2" and "outside the image" in f.reason for f in report.failures)


def test_cofw_names_a_face_with_the_wrong_landmark_count(tmp_path):
    root = make_cofw(tmp_path)
    csv_path = root / "cofw_test.csv"
    header, row = csv_path.read_text().splitlines()
    csv_path.write_text(header + "\n" + ",".join(row.split(",")[:-2]) + "\n")  # 28 points
    report = validate_dataset("landmarks_cofw", root=root, split="test")
    assert not report.success
    assert any(f.record == "line 2" and "landmark count is not 29" in f.reason for f in report.failures)
    assert (
        validate_dataset("landmarks_cofw", root=root, split="train").failures[0].reason
        == "landmark CSV not found"
    )
