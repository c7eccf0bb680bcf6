"""The readers and validators of DIS5K, MFN, ACDC, DADA-seg, SynPASS and BDD100K on their tiny
real-format fixtures (the smoke writers): the valid copy reads and validates; a bad record (a
label value the layout does not define, an image and mask of different sizes, a missing file) is
refused by the reader and reported by the validator, each naming the file and the reason."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hrnet.data import dis, mfn, smoke, smoke_driving
from hrnet.data.validation import validate_dataset
from hrnet.errors import HRNetError


def _unpack(files: dict[str, bytes], dest: Path) -> Path:
    for data in files.values():
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(dest)
    return dest


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Dataset name -> its root, unpacked from the smoke writers' archives."""
    base = tmp_path_factory.mktemp("benchmarks")

    def rng() -> np.random.Generator:
        return np.random.default_rng(0)

    _unpack(dis.smoke_archive(rng(), smoke._jpeg, smoke._png, smoke._zip), base / "dis")
    _unpack(mfn.smoke_archive(rng(), smoke._png, smoke._zip), base / "mfn")
    for name in ("acdc", "dada_seg", "synpass", "bdd100k"):
        _unpack(getattr(smoke_driving, name)(rng()), base / name)
    return {
        "dis5k": base / "dis" / "DIS5K",
        "mfn": base / "mfn" / "dataset",
        "acdc": base / "acdc",
        "dada_seg": base / "dada_seg" / "DADA_seg",
        "synpass": base / "synpass" / "SynPASS",
        "bdd100k": base / "bdd100k" / "bdd100k",
    }


def _copy(fixtures: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixtures[name], tmp_path / name))


def _save(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def _shrink(path: Path) -> None:
    """Re-save a mask / label map one pixel narrower than its image."""
    array = np.asarray(Image.open(path))
    _save(path, np.ascontiguousarray(array[:, :-1]))


def _failures(report) -> list[tuple[str, str | None, str]]:
    return [(f.file, f.record, f.reason) for f in report.failures]


def _has(failures, file: str, reason: str) -> bool:
    return any(f == file and reason in why for f, _, why in failures)


# --------------------------------------------------------------------------------------------
# DIS5K


def test_dis5k_reads_every_set(fixtures):
    for split, count in dis.SMOKE_COUNTS.items():
        data = dis.DIS5K(fixtures["dis5k"], split)
        assert len(data) == count
        image, mask = data[0]
        assert image.shape[0] == 3 and tuple(image.shape[1:]) == tuple(mask.shape)
        assert set(np.unique(mask.numpy())) <= {0, 255}


def test_dis5k_reader_names_the_bad_record(fixtures, tmp_path):
    root = _copy(fixtures, "dis5k", tmp_path)
    (image, mask), (image2, mask2), (_, mask3) = dis.dis_files(root, "DIS-TR")
    _shrink(mask)
    with pytest.raises(HRNetError, match=rf"{mask}: mask is .* but its image {image.name} is"):
        dis.DIS5K(root, "DIS-TR")[0]
    Image.fromarray(np.full((4, 4), 300, np.uint16)).save(mask2)  # a 16-bit mask: 300 > 8 bits
    with pytest.raises(HRNetError, match=rf"{mask2} \(mask of {image2.name}\): mask values outside 0..255"):
        dis.DIS5K(root, "DIS-TR")[1]
    mask3.unlink()
    with pytest.raises(HRNetError, match=rf"{mask3}: mask of .* not found"):
        dis.DIS5K(root, "DIS-TR")
    with pytest.raises(HRNetError, match="split folder not found"):
        dis.DIS5K(root, "DIS-XX")


def test_dis5k_validator(fixtures, tmp_path):
    assert validate_dataset("dis5k", root=fixtures["dis5k"], split="DIS-TE1").success
    root = _copy(fixtures, "dis5k", tmp_path)
    pairs = dis.dis_files(root, "DIS-TR") + dis.dis_files(root, "DIS-VD")
    (i0, m0), (i1, m1), (i2, m2), (i3, m3), (i4, _) = pairs
    _shrink(m0)  # size mismatch
    grey = np.asarray(Image.open(m1)).copy()
    grey[:, : grey.shape[1] // 2] = 77  # half the mask grey: not binary
    _save(m1, grey)
    _save(m2, np.zeros_like(np.asarray(Image.open(m2))))  # no foreground
    m3.unlink()  # missing mask
    i4.write_bytes(b"not a jpeg")  # undecodable image
    failures = []
    for split in ("DIS-TR", "DIS-VD"):
        report = validate_dataset("dis5k", root=root, split=split)
        assert not report.success
        failures += _failures(report)
    rel = lambda p: str(p.relative_to(root))  # noqa: E731
    assert _has(failures, rel(i0), "mask width differs from the image")
    assert _has(failures, rel(i1), "mask is not binary")
    assert _has(failures, rel(i2), "mask has no foreground")
    assert _has(failures, rel(i3), "mask missing")
    assert _has(failures, rel(i4), "image not decodable")
    assert len(failures) == 5, failures


# --------------------------------------------------------------------------------------------
# MFN


def test_mfn_reads_four_channels_and_labels_0_to_8(fixtures):
    data = mfn.MFN(fixtures["mfn"], "train")
    assert len(data) == mfn.SMOKE_SPLITS["train"]
    image, label = data[0]
    assert image.shape == (4, 48, 64) and label.shape == (48, 64)
    assert set(np.unique(label.numpy())) == set(range(9))  # "unlabeled" (0) is a class


def test_mfn_reader_names_the_bad_record(fixtures, tmp_path):
    root = _copy(fixtures, "mfn", tmp_path)
    (i0, l0), (i1, l1), (i2, _) = mfn.mfn_files(root, "train")
    _shrink(l0)
    with pytest.raises(HRNetError, match=rf"{l0}: label map is .* but its image {i0.name} is"):
        mfn.MFN(root, "train")[0]
    label = np.asarray(Image.open(l1)).copy()
    label[0, 0] = 9
    _save(l1, label)
    with pytest.raises(HRNetError, match=rf"{l1} \(label map of {i1.name}\): label 9 outside MFN's 0..8"):
        mfn.MFN(root, "train")[1]
    _save(i2, np.zeros((48, 64, 3), np.uint8))  # RGB only
    with pytest.raises(HRNetError, match=rf"{i2}: image has mode 'RGB'; expected 4 channels"):
        mfn.MFN(root, "train")[2]
    i2.unlink()
    with pytest.raises(HRNetError, match=rf"{i2}: image file not found"):
        mfn.MFN(root, "train")[2]


def test_mfn_validator(fixtures, tmp_path):
    assert validate_dataset("mfn", root=fixtures["mfn"], split="train").success
    root = _copy(fixtures, "mfn", tmp_path)
    (_, l0), (_, l1), (i2, _) = mfn.mfn_files(root, "train")
    _shrink(l0)
    label = np.asarray(Image.open(l1)).copy()
    label[0, 0] = 9
    _save(l1, label)
    _save(i2, np.zeros((48, 64, 3), np.uint8))
    (_, l3), _ = mfn.mfn_files(root, "val")
    l3.unlink()
    failures = _failures(validate_dataset("mfn", root=root, split="train"))
    assert _has(failures, "images/00001D.png", "label map width differs from the image")
    assert ("labels/00002N.png", "label 9", "mask label out of range (MFN 0..8): 9") in failures
    assert _has(failures, "images/00003D.png", "image is not RGB + thermal: image has mode 'RGB'")
    assert len(failures) == 3, failures
    failures = _failures(validate_dataset("mfn", root=root, split="val"))
    assert failures == [("images/00004N.png", "labels/00004N.png", "label map missing")]


# --------------------------------------------------------------------------------------------
# ACDC, DADA-seg, SynPASS


def test_driving_readers_map_their_labels(fixtures):
    from hrnet.data.driving import ACDC, DADA_CROP, DADASeg, SynPASS

    acdc = ACDC(fixtures["acdc"], "train")
    assert len(acdc) == 2
    image, mask = acdc[0]
    stored = np.asarray(Image.open(acdc.samples[0][1]))
    np.testing.assert_array_equal(mask.numpy(), stored)  # trainIds 0..18 and 255 as stored
    assert image.shape[1:] == mask.shape

    synpass = SynPASS(fixtures["synpass"], "train")
    _, mask = synpass[0]
    stored = np.asarray(Image.open(synpass.samples[0][1])).astype(np.int64)
    expected = np.where(stored == 0, 255, stored - 1)  # 0 ignored, k -> k - 1
    np.testing.assert_array_equal(mask.numpy(), expected)
    assert set(np.unique(mask.numpy())) - {255} <= set(range(22))
    lut = synpass.lut  # values without a SynPASS class (23..254) are ignored, not ids above 21
    assert lut[0] == 255 and lut[1] == 0 and lut[22] == 21 and (lut[23:] == 255).all()

    dada = DADASeg(fixtures["dada_seg"], "val")
    image, mask = dada[0]
    stored = Image.open(dada.samples[0][1])
    expected = np.asarray(stored.crop(DADA_CROP).resize(stored.size, Image.Resampling.NEAREST))
    np.testing.assert_array_equal(mask.numpy(), expected)
    assert tuple(image.shape[1:]) == (stored.height, stored.width)
    # the fixture is black (255 in the label) outside the box: the crop removed all of it
    assert 255 not in np.unique(mask.numpy())


def test_driving_readers_name_the_bad_record(fixtures, tmp_path):
    from hrnet.data.driving import ACDC, DADASeg, SynPASS, acdc_files, dada_seg_files, synpass_files

    root = _copy(fixtures, "acdc", tmp_path)
    (image, mask), (_, mask2) = acdc_files(root, "train")
    _shrink(mask)
    with pytest.raises(HRNetError, match=rf"{mask}: label map is .* but its image {image.name}"):
        ACDC(root, "train")[0]
    mask2.unlink()
    with pytest.raises(HRNetError, match=rf"{mask2}: label map of .* not found"):
        ACDC(root, "train")
    with pytest.raises(HRNetError, match=r"no <condition>/nosplit folder"):
        ACDC(root, "nosplit")

    root = _copy(fixtures, "synpass", tmp_path)
    (image, mask), _ = synpass_files(root, "train")
    _shrink(mask)
    with pytest.raises(HRNetError, match=rf"{mask}: label map is .* but its image {image.name}"):
        SynPASS(root, "train")[0]

    root = _copy(fixtures, "dada_seg", tmp_path)
    (image, mask), (_, mask2) = dada_seg_files(root, "val")
    small = np.asarray(Image.open(mask))[:500, :1000]
    _save(mask, np.ascontiguousarray(small))
    with pytest.raises(HRNetError, match=rf"{mask}: 1000x500 is smaller than the DADA-seg crop box"):
        DADASeg(root, "val")[0]
    mask2.unlink()
    with pytest.raises(HRNetError, match=r"1 \*labelTrainIds.png label maps for 2 images"):
        DADASeg(root, "val")


@pytest.mark.parametrize(
    ("fmt", "split", "bad_value", "rule"),
    [
        ("acdc", "train", 19, "Cityscapes trainIds 0..18, 255"),
        ("dada_seg", "val", 19, "Cityscapes trainIds 0..18, 255"),
        ("synpass", "train", 23, "SynPASS 0 (ignored), 1..22, 255"),
    ],
)
def test_driving_validators(fixtures, tmp_path, fmt, split, bad_value, rule):
    from hrnet.data import driving

    assert validate_dataset(fmt, root=fixtures[fmt], split=split).success
    root = _copy(fixtures, fmt, tmp_path)
    (i0, m0), (i1, m1) = getattr(driving, f"{fmt}_files")(root, split)[:2]
    _shrink(m0)
    label = np.asarray(Image.open(m1)).copy()
    label[0, 0] = bad_value
    _save(m1, label)
    failures = _failures(validate_dataset(fmt, root=root, split=split))
    rel = lambda p: str(p.relative_to(root))  # noqa: E731
    assert _has(failures, rel(i0), "label map width differs from the image")
    assert (rel(m1), f"label {bad_value}", f"mask label out of range ({rule}): {bad_value}") in failures
    assert len(failures) == 2, failures
    if fmt != "dada_seg":  # DADA-seg pairs by position: a missing file is a count mismatch
        m1.unlink()
        failures = _failures(validate_dataset(fmt, root=root, split=split))
        assert (rel(i1), rel(m1), "label map missing") in failures


# --------------------------------------------------------------------------------------------
# BDD100K instance segmentation


@pytest.fixture(scope="module")
def bdd_root(fixtures, tmp_path_factory) -> Path:
    """The BDD100K fixture with its COCO-format files made by the official converter."""
    from hrnet.data.bdd100k import prepare_bdd100k

    root = Path(shutil.copytree(fixtures["bdd100k"], tmp_path_factory.mktemp("bdd") / "bdd100k"))
    prepare_bdd100k(root.parent)
    return root


def test_bdd100k_converter_and_validator(bdd_root, tmp_path):
    from hrnet.data import bdd100k

    coco = json.loads(bdd100k.annotation_file(bdd_root, "train").read_text())
    assert [(i["width"], i["height"]) for i in coco["images"]] == [(128, 72)] * 2
    assert {a["iscrowd"] for a in coco["annotations"]} == {0, 1}  # the fixture's crowd instance
    assert validate_dataset("bdd100k_ins_seg", root=bdd_root, split="train").success

    root = Path(shutil.copytree(bdd_root, tmp_path / "bdd100k"))
    masks = sorted(bdd100k.bitmask_folder(root, "val").glob("*.png"))
    _shrink(masks[0])
    bitmask = np.asarray(Image.open(masks[1])).copy()
    bitmask[0, 0] = (9, 0, 0, 1)
    _save(masks[1], bitmask)
    failures = _failures(validate_dataset("bdd100k_ins_seg", root=root, split="val"))
    rel = lambda p: str(p.relative_to(root))  # noqa: E731
    assert _has(failures, rel(masks[0]), "bitmask width differs from the image")
    assert _has(failures, rel(masks[1]), "category id above 8: 9")
    masks[0].unlink()
    failures = _failures(validate_dataset("bdd100k_ins_seg", root=root, split="val"))
    assert _has(failures, rel(masks[0]), "bitmask missing")


def _instances(bitmask_path: Path) -> tuple[np.ndarray, list[int]]:
    """The instances of a BDD100K bitmask: bool masks ``[N, H, W]`` and category ids (R)."""
    array = np.asarray(Image.open(bitmask_path)).astype(np.int64)
    ids = (array[..., 2] << 8) + array[..., 3]
    indices = [int(i) for i in np.unique(ids) if i]
    masks = np.stack([ids == i for i in indices])
    return masks, [int(array[..., 0][m][0]) for m in masks]


def _predict(bdd_root: Path, out: Path, change=None) -> dict:
    """Predictions of the val ground truth through :class:`BitmaskWriter` (``change`` edits
    each image's masks and categories), scored by the official evaluator."""
    import torch

    from hrnet.data.bdd100k import BitmaskWriter, bitmask_folder

    writer = BitmaskWriter(out)
    gt = bitmask_folder(bdd_root, "val")
    for path in sorted(gt.glob("*.png")):
        masks, categories = _instances(path)
        if change is not None:
            masks, categories = change(masks, categories)
        pred = {
            "labels": torch.tensor(categories, dtype=torch.int64),  # label l = category_ids[l - 1]
            "scores": torch.linspace(0.9, 0.5, len(categories)),
            "masks": torch.from_numpy(masks[:, None].astype(np.float32)),
        }
        writer.add(f"{path.stem}.jpg", masks.shape[1:], pred, list(range(1, 9)))
    return writer.evaluate(gt)


def test_bdd100k_official_evaluation_perfect_and_wrong(bdd_root, tmp_path):
    """``bdd100k.eval.ins_seg.evaluate_ins_seg`` (percent): the ground truth itself scores 100,
    shifted masks or wrong categories less, no detection 0."""
    perfect = _predict(bdd_root, tmp_path / "perfect")
    assert perfect["AP"] == pytest.approx(100.0) and perfect["AP50"] == pytest.approx(100.0)
    present = {k: v for k, v in perfect["per_class"].items() if v is not None}
    assert present and all(v == pytest.approx(100.0) for v in present.values())

    def shift(masks, categories):
        return np.roll(masks, masks.shape[2] // 8, axis=2), categories

    def relabel(masks, categories):
        return masks, [c % 8 + 1 for c in categories]

    shifted = _predict(bdd_root, tmp_path / "shifted", shift)
    assert shifted["AP"] < 100.0
    assert _predict(bdd_root, tmp_path / "relabelled", relabel)["AP"] == pytest.approx(0.0)
    nothing = _predict(bdd_root, tmp_path / "nothing", lambda m, c: (m[:0], c[:0]))
    assert nothing["AP"] == pytest.approx(0.0)
