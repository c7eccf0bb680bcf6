"""The embedded dataset generators: deterministic, complete-or-absent, readable by the readers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hrnet.data.embedded import generate_dataset
from hrnet.data.imagefolder import ImageFolderDataset
from hrnet.errors import HRNetError


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return generate_dataset(
        "digits", tmp_path_factory.mktemp("gen") / "digits", seed=3, num_train=60, num_val=20
    )


def test_digits_layout_and_reader(digits):
    train = ImageFolderDataset(digits, "train")
    val = ImageFolderDataset(digits, "val")
    assert train.classes == [str(c) for c in range(10)] == val.classes
    assert len(train) == 60 and len(val) == 20
    image, label = train[0]
    assert image.shape == (3, 32, 32) and 0 <= label < 10
    assert len(set(train.targets)) >= 8  # stratified: most classes present even in a small subset
    assert not {p.name for p, _ in train.samples} & {p.name for p, _ in val.samples}  # disjoint split


def test_generators_are_deterministic(tmp_path, digits):
    again = generate_dataset("digits", tmp_path / "digits", seed=3, num_train=60, num_val=20)
    assert _hashes(again) == _hashes(digits)
    other = generate_dataset("digits", tmp_path / "other", seed=4, num_train=60, num_val=20)
    assert _hashes(other) != _hashes(digits)


def test_generate_refuses_to_overwrite_and_cleans_up(tmp_path):
    out = generate_dataset("digits", tmp_path / "d", num_train=5, num_val=2)
    with pytest.raises(HRNetError, match="already exists"):
        generate_dataset("digits", out, num_train=5, num_val=2)
    generate_dataset("digits", out, num_train=7, num_val=2, force=True)
    assert len(ImageFolderDataset(out, "train")) == 7

    def fail(done, total):
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        generate_dataset("digits", tmp_path / "broken", num_train=5, num_val=2, progress=fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no partial folder, no temp left
    with pytest.raises(HRNetError, match="unknown embedded dataset"):
        generate_dataset("nope", tmp_path / "x")


def test_generate_command(tmp_path):
    import argparse

    from hrnet.commands import generate

    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    out = tmp_path / "d"
    argv = ["digits", "--out", str(out), "--num-train", "4", "--num-val", "2", "--quiet"]
    assert generate.run(parser.parse_args(argv)) == 0
    assert json.loads((out / "dataset.json").read_text())["num_train"] == 4
    with pytest.raises(HRNetError, match="already exists"):
        generate.run(parser.parse_args(argv))
    assert generate.run(parser.parse_args([*argv, "--force", "--num-train", "5"])) == 0


@pytest.mark.parametrize("name", ["shapes", "figures", "faces"])
def test_every_generator_is_deterministic(tmp_path, name):
    first = generate_dataset(name, tmp_path / "a", seed=5, num_train=3, num_val=2)
    second = generate_dataset(name, tmp_path / "b", seed=5, num_train=3, num_val=2)
    hashes = _hashes(first)
    assert hashes == _hashes(second)
    assert len([p for p in hashes if p.endswith(".png") and not p.startswith("masks/")]) == 5
    manifest = json.loads((first / "dataset.json").read_text())
    assert manifest["name"] == name and manifest["seed"] == 5 and manifest["num_train"] == 3


def test_generate_refuses_counts_it_cannot_give(tmp_path) -> None:
    from hrnet.data.embedded import generate_dataset
    from hrnet.errors import HRNetError

    with pytest.raises(HRNetError, match=r"digits: 1438 training and 359 validation images at most \(got 5000, 10\)"):
        generate_dataset("digits", tmp_path / "d", num_train=5000, num_val=10)
    with pytest.raises(HRNetError, match=r"shapes: image counts must be >= 1 \(got 0, 0\)"):
        generate_dataset("shapes", tmp_path / "s", num_train=0, num_val=0)
    assert not (tmp_path / "d").exists() and not (tmp_path / "s").exists()


def test_generate_command_prints_a_refusal_alone_and_a_bar_for_the_work(tmp_path, capsys) -> None:
    from hrnet.cli import main

    assert main(["generate", "digits", "--num-train", "5000", "--out", str(tmp_path / "d")]) == 2
    out = capsys.readouterr()
    assert "━" not in out.out + out.err and "0:00:0" not in out.out  # no empty bar before the error
    assert "1438 training and 359 validation images at most" in out.err
    assert main(["generate", "shapes", "--num-train", "3", "--num-val", "2", "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "━" in out and "5/5" in out and f"wrote {tmp_path / 's'}" in out
