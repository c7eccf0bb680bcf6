"""`hrnet validate`: valid datasets pass every suite; the CLI writes summary.json and Data Docs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hrnet.cli import main
from hrnet.data.embedded import EMBEDDED_DATASETS, generate_dataset
from hrnet.data.validation import validate_dataset
from hrnet.errors import HRNetError
from tests.data.fixtures import (
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
    docs = out / "data_docs"
    assert (docs / "index.html").is_file()
    # the site built once after the last table still has every table's suite and result page,
    # and the index links each result
    index = (docs / "index.html").read_text()
    for table in summary["rows"]:
        assert (docs / "expectations" / "coco_instances" / f"{table}.html").is_file(), table
        (page,) = (docs / "validations" / "coco_instances" / table).rglob("*.html")
        assert page.relative_to(docs).as_posix() in index, table
    assert not list(out.glob(".summary.json.*"))  # no temp file left


def test_cli_several_formats_and_splits_in_one_process(embedded, tmp_path, capsys):
    """One process per dataset in the pipeline: out/<format>/<split>/, and the exit code is
    the worst of them (a failing format does not hide the others' reports)."""
    root = embedded / "shapes"
    args = ["validate", "coco_instances", "mask_segmentation", "--root", str(root), "--split", "train", "val"]
    assert main([*args, "--num-classes", "4", "--out", str(tmp_path / "ok")]) == 0
    for fmt in ("coco_instances", "mask_segmentation"):
        for split, images in (("train", 3), ("val", 2)):
            summary = json.loads((tmp_path / "ok" / fmt / split / "summary.json").read_text())
            assert summary["success"] is True and summary["rows"]["images"] == images, (fmt, split)
    capsys.readouterr()
    # its classes.txt names 4 classes: a different --num-classes is refused before any check
    assert main([*args, "--num-classes", "2", "--out", str(tmp_path / "refused")]) == 2
    assert "classes.txt: 4 classes but num_classes is 2" in capsys.readouterr().err
    # shapes' label maps hold classes 0..3: with 2 classes (and no classes.txt) only the mask check fails
    import shutil

    shutil.copytree(root, tmp_path / "shapes")
    (tmp_path / "shapes" / "classes.txt").unlink()
    args[args.index(str(root))] = str(tmp_path / "shapes")
    assert main([*args, "--num-classes", "2", "--out", str(tmp_path / "bad")]) == 1
    printed = capsys.readouterr().out
    assert "mask label out of range" in printed
    masks = json.loads((tmp_path / "bad" / "mask_segmentation" / "val" / "summary.json").read_text())
    assert masks["success"] is False and masks["failures"]
    assert (tmp_path / "bad" / "coco_instances" / "val" / "summary.json").is_file()


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
        "import sys, hrnet.data.validation, hrnet.data.fetch, hrnet.data.catalog, "
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


# --------------------------------------------------------------------------------------------
# One implementation: the validators validate exactly what the readers read
# --------------------------------------------------------------------------------------------


def test_every_format_is_documented_and_resolves():
    import hrnet.data.validation as validation
    from hrnet.data.validation.core import FORMATS, _builder

    for fmt in FORMATS:
        assert f"``{fmt}``" in validation.__doc__, fmt
        assert callable(_builder(fmt)), fmt


def test_validate_help_does_not_import_great_expectations():
    code = (
        "import sys\n"
        "from hrnet.cli import main\n"
        "try:\n    main(['validate', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('great_expectations', 'pandas', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--num-points" in result.stdout


def test_300w_validator_reads_the_reader_splits(tmp_path):
    """300W: the splits of HRNet-Facial-Landmark-Detection, as the reader defines them."""
    from hrnet.data.landmarks import Face300W, face300w_faces
    from tests.data.fixtures import make_300w

    root = make_300w(tmp_path / "300w")
    for split, faces in (("common", 2), ("challenging", 1), ("full", 3)):
        assert len(Face300W(root, split)) == faces
        assert len(face300w_faces(root, split)[0]) == faces
        report = validate_dataset("landmarks_300w", root=root, split=split)
        assert report.success and report.rows["faces"] == faces, report.failures
    report = validate_dataset("landmarks_300w", root=root, split="train")  # afw/ and trainsets absent
    assert not report.success
    assert report.failures[0].file == "afw" and "300W split 'train' not found" in report.failures[0].reason


def test_300w_missing_image_is_refused_by_the_reader_and_reported_by_the_validator(tmp_path):
    from hrnet.data.landmarks import Face300W, write_pts

    folder = tmp_path / "train"
    save_image(folder / "a.png", np.zeros((10, 10, 3), np.uint8))
    write_pts(folder / "a.pts", np.full((68, 2), 5.0))
    write_pts(folder / "b.pts", np.full((68, 2), 5.0))  # no image beside it
    with pytest.raises(Exception, match=r"b.pts: no image with the same name beside it"):
        Face300W(tmp_path, "train")
    report = validate_dataset("landmarks_300w", root=tmp_path, split="train")
    assert [(f.file, f.record, f.reason) for f in report.failures] == [
        ("train/b.jpg", "b.pts", "image file missing")
    ]


def test_imagefolder_validator_and_reader_skip_the_same_files(tmp_path):
    from hrnet.data.imagefolder import ImageFolderDataset

    make_imagefolder(tmp_path)
    save_image(tmp_path / "train" / "cat" / ".hidden" / "x.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    save_image(tmp_path / "train" / "cat" / "nested" / "deep.png", np.zeros((4, 4, 3), np.uint8))
    reader = ImageFolderDataset(tmp_path, "train")
    report = validate_dataset("imagefolder", root=tmp_path, split="train")
    assert report.success, report.failures
    assert report.rows["images"] == len(reader)
    names = [p.name for p, _ in reader.samples]
    assert "deep.png" in names and "x.png" not in names


def test_mask_folder_validator_and_reader_pair_the_same_files(tmp_path):
    from hrnet.data.segmentation import MaskFolderSegmentation

    for name in ("a.png", "b.jpg"):
        save_image(tmp_path / "images" / "train" / name, np.zeros((4, 4, 3), np.uint8))
        save_image(tmp_path / "masks" / "train" / f"{name[0]}.png", np.zeros((4, 4), np.uint8))
    save_image(tmp_path / "images" / "train" / "sub" / "c.png", np.zeros((4, 4, 3), np.uint8))  # not read
    reader = MaskFolderSegmentation(tmp_path / "images" / "train", tmp_path / "masks" / "train", classes=["a", "b"])
    report = validate_dataset("mask_segmentation", root=tmp_path, split="train", num_classes=2)
    assert report.success, report.failures
    assert report.rows["images"] == len(reader) == 2


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_segmentation_validators_validate_the_reader_pairs(fmt, tmp_path):
    from hrnet.data import segmentation as S

    make, split, kwargs, _ = LAYOUTS[fmt]
    root = make(tmp_path)
    reader = {
        "cityscapes": S.Cityscapes,
        "ade20k": S.ADE20K,
        "voc": S.PascalVOC,
        "pascal_context": S.PascalContext,
    }
    dataset = reader[fmt](root, split, **kwargs)
    report = validate_dataset(fmt, root=root, split=split, **kwargs)
    assert report.rows["images"] == len(dataset)
    assert validate_dataset(fmt, root=root, split="nope").failures[0].reason in {
        "split folder not found",
        "split file not found",
    }


def test_wflw_and_cofw_validators_report_what_the_readers_refuse(tmp_path):
    from hrnet.data.landmarks import COFW, WFLW
    from hrnet.errors import HRNetError

    root = make_wflw(tmp_path / "wflw")
    assert validate_dataset("landmarks_wflw", root=root, split="test").rows["faces"] == len(
        WFLW(root, "test")
    )
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_test.txt"
    ann.write_text("1 2 3 a.jpg\n")
    with pytest.raises(HRNetError, match="line 1: 4 fields, expected 207"):
        WFLW(root, "test")
    (failure,) = validate_dataset("landmarks_wflw", root=root, split="test").failures[:1]
    assert (failure.record, failure.reason) == ("line 1", "4 fields, expected 2K + 11")

    root = make_cofw(tmp_path / "cofw")
    csv_path = root / "cofw_test.csv"
    csv_path.write_text(csv_path.read_text() + "images/test/1.png,x\n")
    with pytest.raises(HRNetError, match="line 3: non-numeric or missing value"):
        COFW(root, "test")
    report = validate_dataset("landmarks_cofw", root=root, split="test")
    assert [(f.record, f.reason) for f in report.failures] == [("line 3", "non-numeric or missing value")]


_VALIDATE_WITHOUT_TORCH = """
import json, sys
import hrnet.data.coco, hrnet.data.dis, hrnet.data.driving, hrnet.data.imagefolder
import hrnet.data.landmarks, hrnet.data.mfn, hrnet.data.segmentation
from hrnet.data.validation import validate_dataset
from hrnet.errors import HRNetError
for fmt, root, split, kwargs in json.loads(sys.argv[1]):
    report = validate_dataset(fmt, root=root, split=split, **kwargs)
    assert report.success, (fmt, report.failures)
assert "torch" not in sys.modules, "a reader or validator imported torch"
print("validated", len(json.loads(sys.argv[1])))
"""


def test_validating_every_layout_imports_no_torch(embedded, tmp_path):
    """The readers' file indexes, which the validators share, need no torch: the readers import it
    where they make tensors, so each ``hrnet validate`` process skips its import (~1 s here)."""
    runs = [[fmt, str(embedded / name), "train", kw] for name, fmt, kw in CASES]
    for fmt, (make, split, kwargs, _) in LAYOUTS.items():
        runs.append([fmt, str(make(tmp_path / fmt)), split, kwargs])
    runs += [
        [fmt, str(make(tmp_path / fmt)), "test", {}]
        for fmt, make in (("landmarks_wflw", make_wflw), ("landmarks_cofw", make_cofw))
    ]
    out = subprocess.run(
        [sys.executable, "-c", _VALIDATE_WITHOUT_TORCH, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["validated", str(len(runs))]


def test_a_landmark_count_training_refuses_is_refused_by_validate_too(tmp_path):
    # 5 points has no inter-ocular pair or flip pairs: LandmarkDataset refuses it, so a report
    # that called such a set valid would send the user to a training run that cannot start
    root = make_cofw(tmp_path)
    with pytest.raises(HRNetError, match=r"5 landmarks per face; supported: 68 \(300W\), 98 \(WFLW\), 29"):
        validate_dataset("landmarks_cofw", root=root, split="test", num_points=5)
    assert validate_dataset("landmarks_cofw", root=root, split="test", num_points=29).success
