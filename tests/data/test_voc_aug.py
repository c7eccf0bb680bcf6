"""`hrnet prepare-voc-aug`: SegmentationClassAug and train_aug.txt from tiny VOC 2012 + SBD
folders in their real formats (palette PNGs, MATLAB GTcls files)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from hrnet.cli import main
from hrnet.data.io import read_label_map
from hrnet.data.segmentation import PascalVOC
from hrnet.data.validation import validate_dataset
from hrnet.errors import HRNetError
from tests.data.fixtures import save_image


def _palette_png(path, label):
    img = Image.fromarray(label, mode="P")
    img.putpalette([(i * 37) % 256 for i in range(768)])
    save_image(path, img)


def _tree(tmp_path):
    """VOC: train [a], val [b], label maps for a and b. SBD: train [c, b], val [d], .mat for b, c, d
    (b's SBD label differs from VOC's: VOC's must win)."""
    voc, sbd = tmp_path / "VOCdevkit" / "VOC2012", tmp_path / "benchmark_RELEASE" / "dataset"
    for i in "abcd":
        save_image(voc / "JPEGImages" / f"{i}.jpg", np.zeros((4, 6, 3), np.uint8))
    labels = {i: np.full((4, 6), n, np.uint8) for n, i in enumerate("abcd", start=1)}
    labels["a"][0, 0] = 255  # a VOC boundary pixel
    for i in "ab":
        _palette_png(voc / "SegmentationClass" / f"{i}.png", labels[i])
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("a\n")
    (sets / "val.txt").write_text("b\n")
    (sbd / "cls").mkdir(parents=True)
    (sbd / "train.txt").write_text("c\nb\n")
    (sbd / "val.txt").write_text("d\n")
    for i in "bcd":
        seg = labels[i] if i != "b" else np.full((4, 6), 9, np.uint8)
        savemat(sbd / "cls" / f"{i}.mat", {"GTcls": {"Segmentation": seg, "CategoriesPresent": [1]}})
    return voc, sbd, labels


def test_builds_the_aug_set_and_the_reader_and_validator_accept_it(tmp_path, capsys):
    voc, sbd, labels = _tree(tmp_path)
    assert main(["prepare-voc-aug", "--voc", str(voc), "--sbd", str(sbd), "--quiet"]) == 0
    assert "2 label maps from VOC, 2 from SBD; train_aug.txt lists 3 images" in capsys.readouterr().out
    assert (voc / "ImageSets" / "Segmentation" / "train_aug.txt").read_text() == "a\nc\nd\n"
    for i in "abcd":
        label = read_label_map(voc / "SegmentationClassAug" / f"{i}.png")
        np.testing.assert_array_equal(label, labels[i])
        assert label.flags.writeable  # torch.from_numpy of it must not warn or alias a read-only buffer
    assert len(PascalVOC(voc, "train_aug", aug=True)) == 3
    assert validate_dataset("voc", root=voc, split="train_aug", aug=True).success
    assert validate_dataset("voc", root=voc, split="val", aug=True).success
    # a second run leaves the built set alone
    assert main(["prepare-voc-aug", "--voc", str(voc), "--sbd", str(sbd), "--quiet"]) == 0
    assert "already built" in capsys.readouterr().out


def test_a_missing_sbd_file_fails_naming_it_and_writes_nothing(tmp_path, capsys):
    voc, sbd, _ = _tree(tmp_path)
    (sbd / "cls" / "d.mat").unlink()
    assert main(["prepare-voc-aug", "--voc", str(voc), "--sbd", str(sbd), "--quiet"]) == 2
    assert f"{sbd / 'cls' / 'd.mat'}: SBD label file not found" in capsys.readouterr().err
    assert not (voc / "SegmentationClassAug").exists()
    assert not (voc / "ImageSets" / "Segmentation" / "train_aug.txt").exists()
    assert [p.name for p in voc.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_an_sbd_file_with_foreign_labels_is_refused(tmp_path):
    from hrnet.data.voc_aug import build_voc_aug

    voc, sbd, _ = _tree(tmp_path)
    savemat(sbd / "cls" / "c.mat", {"GTcls": {"Segmentation": np.full((4, 6), 40, np.uint8)}})
    with pytest.raises(HRNetError, match=r"c\.mat: GTcls.Segmentation has labels outside 0..20/255: \[40\]"):
        build_voc_aug(voc, sbd)
    assert not (voc / "SegmentationClassAug").exists()
