"""The smoke copies of the paper datasets and weights: fetched as a mirror, validated, read."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from hrnet.cli import main
from hrnet.data import catalog
from hrnet.data import coco as C
from hrnet.data import landmarks as L
from hrnet.data import segmentation as S
from hrnet.data.imagefolder import ImageFolderDataset
from hrnet.data.smoke import (
    SMOKE_FETCH,
    SMOKE_WEIGHT_MODELS,
    smoke_counts,
    write_smoke_dataset,
    write_smoke_mirror,
    write_smoke_weights,
)

PARAMS = Path(__file__).resolve().parents[2] / "benchmarks" / "params.yaml"
DATASETS = yaml.safe_load(PARAMS.read_text())["datasets"]


def _rebase(path: str, base: Path) -> Path:
    """A ``data/...`` path of params.yaml under ``base`` instead."""
    return base / Path(path).relative_to("data")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mirror")
    sums = write_smoke_mirror(DATASETS, folder)
    for name, digests in sums.items():
        (folder / f"{name}.sha256.json").write_text(json.dumps(digests))
    return folder, sums


def _fetch(dataset_id: str, mirror: Path, data: Path) -> None:
    for name in DATASETS[dataset_id]["fetch"]:
        code = main(
            [
                "fetch",
                name,
                "--out",
                str(data / dataset_id),
                "--source",
                (mirror / name).as_uri() + "/",
                "--checksums",
                str(mirror / f"{name}.sha256.json"),
                "--retries",
                "1",
            ]
        )
        assert code == 0, name
    prepare = DATASETS[dataset_id]["prepare"]
    if prepare:
        argv = [str(_rebase(a, data)) if a.startswith("data/") else a for a in shlex.split(prepare)]
        assert argv[0] == "hrnet"
        assert main(argv[1:]) == 0


def _read(dataset_id: str, root: Path, split: str) -> list:
    """The row's reader of ``split``; returns the datasets read (first item decoded)."""
    if dataset_id == "imagenet":
        datasets = [ImageFolderDataset(root, split)]
        assert len(datasets[0].classes) == 1000
    elif dataset_id == "coco":
        images = root / split  # the published zips unpack into train2017/ and val2017/
        datasets = [
            C.CocoDetection(images, root / "annotations" / f"instances_{split}.json", with_masks=True),
            C.CocoKeypoints(
                images, root / "annotations" / f"person_keypoints_{split}.json", input_size=(48, 64)
            ),
        ]
        assert len(datasets[0].classes) == 80
    elif dataset_id == "coco_stuff":  # COCO with the stuffthingmaps HTC reads
        images = root / split
        datasets = [
            C.CocoDetection(
                images,
                root / "annotations" / f"instances_{split}.json",
                with_masks=True,
                semantic_dir=root / "stuffthingmaps" / split,
            )
        ]
        assert datasets[0][0][1]["semantic"].shape == datasets[0][0][0].shape[-2:]
    elif dataset_id == "bdd100k":  # BDD100K's COCO-format instance file + its 10K images
        from hrnet.data import bdd100k

        datasets = [
            C.CocoDetection(
                bdd100k.image_folder(root, split), bdd100k.annotation_file(root, split), with_masks=True
            )
        ]
        assert len(datasets[0].classes) == 8
    else:
        from hrnet.data.dis import DIS5K
        from hrnet.data.driving import ACDC, DADASeg, SynPASS
        from hrnet.data.mfn import MFN

        reader = {
            "cityscapes": S.Cityscapes,
            "ade20k": S.ADE20K,
            "voc_aug": lambda r, s: S.PascalVOC(r, s, aug=True),
            "pascal_context": S.PascalContext,
            "300w": L.Face300W,
            "wflw": L.WFLW,
            "cofw": L.COFW,
            "dis5k": DIS5K,
            "mfn": MFN,
            "acdc": ACDC,
            "dada_seg": DADASeg,
            "synpass": SynPASS,
        }[dataset_id]
        datasets = [reader(root, split)]
    for dataset in datasets:
        dataset[0]
    return datasets


@pytest.mark.parametrize("dataset_id", sorted(DATASETS))
def test_smoke_copy_fetches_validates_and_reads(dataset_id, mirror, tmp_path):
    folder, _ = mirror
    data = tmp_path / "data"
    _fetch(dataset_id, folder, data)
    entry = DATASETS[dataset_id]
    root = _rebase(entry["root"], data)
    validate = entry["validate"]
    for fmt in validate["formats"]:
        argv = ["validate", fmt, "--root", str(root), "--split", *validate["splits"]]
        argv += ["--out", str(tmp_path / "report" / fmt), *shlex.split(validate["args"])]
        assert main(argv) == 0, fmt
    for split, expected in smoke_counts()[dataset_id].items():
        datasets = _read(dataset_id, root, split)
        if dataset_id in ("coco_stuff", "bdd100k"):
            assert len(datasets[0].coco.getImgIds()) == expected
        elif dataset_id == "coco":
            detection, keypoints = datasets
            assert len(detection.coco.getImgIds()) == expected
            assert len(keypoints) == expected  # one person per image
        else:
            assert len(datasets[0]) == expected, split
    manifest = json.loads((data / dataset_id / entry["fetch"][0] / ".fetched.json").read_text())
    assert all(record["verified"] for record in manifest["files"])


def test_smoke_copies_are_deterministic_and_named_as_the_catalogue(tmp_path):
    for name in ("voc2012", "cofw", "300w", "sbd"):
        first = write_smoke_dataset(name, tmp_path / "a" / name, seed=3)
        again = write_smoke_dataset(name, tmp_path / "b" / name, seed=3)
        assert first == again
        assert list(first) == [f.filename for f in catalog.get_dataset(name).files]
        other = write_smoke_dataset(name, tmp_path / "c" / name, seed=4)
        assert other != first
    assert set(SMOKE_FETCH) == set(DATASETS)
    assert all(tuple(DATASETS[d]["fetch"]) == names for d, names in SMOKE_FETCH.items())


def test_a_tampered_smoke_file_is_refused_and_nothing_is_published(mirror, tmp_path, capsys):
    folder, sums = mirror
    source = tmp_path / "source"
    source.mkdir()
    for filename in sums["wflw"]:
        data = (folder / "wflw" / filename).read_bytes()
        if filename == "WFLW_images.tar.gz":
            data = data[:-10] + bytes(10)  # corrupted in transit
        (source / filename).write_bytes(data)
    argv = ["fetch", "wflw", "--out", str(tmp_path / "out"), "--source", source.as_uri() + "/"]
    argv += ["--checksums", str(folder / "wflw.sha256.json"), "--retries", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch for WFLW_images.tar.gz" in err
    assert not (tmp_path / "out" / "wflw").exists()
    assert not list((tmp_path / "out").glob(".wflw.tmp-*"))


@pytest.mark.parametrize("name", sorted(SMOKE_WEIGHT_MODELS))
def test_smoke_weights_load_into_the_backbone(name, tmp_path):
    import torch

    from hrnet.models import create_model, load_pretrained

    written = write_smoke_weights([name], tmp_path)
    ((filename, digest),) = written[name].items()
    assert filename == catalog.get_dataset(name).files[0].filename
    path = tmp_path / name / filename
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert "classifier.weight" in state and "incre_modules.0.0.conv1.weight" in state
    # the backbone of a row's model (the classifier of that width) takes every tensor
    report = load_pretrained(create_model(SMOKE_WEIGHT_MODELS[name]), path)
    assert report.layout == "official" and len(report.loaded) == len(state)
    if name == "hrnetv2_w18_small_imagenet":  # the smallest: same bytes again, and a row's path
        assert write_smoke_weights([name], tmp_path / "again")[name] == {filename: digest}
        from hrnet.models.convert import HEAD_MODULES

        model = create_model("fcn_hrnetv2_w18_small_v2", num_classes=19)
        report = load_pretrained(model.backbone, path)
        assert not report.missing and not report.mismatched
        assert {key.split(".", 1)[0] for key in report.unused} <= set(HEAD_MODULES)
