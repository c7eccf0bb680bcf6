"""hrnet.mlops.rows: one reader of the params files; rows written once, the rest derived."""

from __future__ import annotations

import argparse
import textwrap

import pytest

from hrnet.engine.config import TrainConfig, add_config_arguments, config_from_mapping, config_overrides
from hrnet.errors import HRNetError
from hrnet.mlops.rows import load_suite, train_settings

PARAMS = """
datasets:
  digits:
    generate: {seed: 0, num_train: 10, num_val: 5}
    validate: {formats: [imagefolder], splits: [train, val], args: ""}
launch:
  device: cpu
  workers: 0
  progress: false
register:
  prefix: test-
rows:
  a:
    table: "T"
    dataset: digits
    schedule: "1e"
    metric: top1
    mode: max
    published:
      - {metric: top1, value: 90.0, unit: "%", source: "target (minimum)"}
    train:
      task: classification
      model: hrnet_w18_small
      dataset: imagefolder
      input_size: 32
      epochs: 3
      lr: 0.05
      milestones: [1, 2]
  b:
    table: "T"
    dataset: digits
    schedule: "1e"
    metric: top1
    mode: max
    published: []
    evaluate: {flip: true, scales: [0.5, 1.0]}
    train:
      task: classification
      model: hrnet_w18_small
      dataset: imagefolder
      pretrained: runs/a/model.pt
"""


def _write(tmp_path, text: str = PARAMS):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_row_recipe_then_launch_then_flags(tmp_path) -> None:
    values, launch = train_settings(_write(tmp_path), "a")
    row = config_from_mapping(values, source="params")
    assert row.data == "data/embedded/digits"  # derived from the dataset, not written in the row
    assert row.device == "cpu" and row.workers == 0  # this machine's launch settings
    assert launch.progress is False and launch.resume is False
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    cfg = config_from_mapping(
        config_overrides(parser.parse_args(["--lr", "0.1", "--no-hflip"])), source="flags", base=row
    )
    assert cfg.input_size == (32, 32) and cfg.epochs == 3 and cfg.milestones == (1, 2)
    assert cfg.lr == 0.1 and cfg.hflip is False  # the flags win over the row
    assert cfg.batch_size == TrainConfig().batch_size


def test_derived_init_split_protocol_and_names(tmp_path) -> None:
    suite = load_suite(_write(tmp_path))
    a, b = suite.row("a"), suite.row("b")
    assert suite.name == "embedded"
    assert a.init.kind == "scratch" and a.train["pretrained"] == ""
    assert b.starts_from_row == "a" and b.init.dep == "runs/a/model.pt"
    assert a.split == "val" and a.evaluate_flags() == ["--split", "val"]
    assert b.evaluate_flags() == ["--split", "val", "--flip", "--scales", "0.5", "1.0"]
    assert suite.registered_name(a) == "test-a"


def test_catalogue_weights_resolve_to_the_fetched_file(tmp_path) -> None:
    text = PARAMS.replace("pretrained: runs/a/model.pt", "pretrained: hrnetv2_w18_imagenet")
    suite = load_suite(_write(tmp_path, text))
    init = suite.row("b").init
    assert init.kind == "weights" and init.dep == "data/pretrained/hrnetv2_w18_imagenet"
    assert init.path == "data/pretrained/hrnetv2_w18_imagenet/hrnetv2_w18-00eb2006.pth"
    assert suite.weights() == ["hrnetv2_w18_imagenet"]


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (
            "    train:\n      task: classification\n      model: hrnet_w18_small\n      dataset: imagefolder\n      input_size",
            "    train:\n      task: classification\n      data: somewhere\n      model: hrnet_w18_small\n      dataset: imagefolder\n      input_size",
            "'data' is derived from datasets.digits.root",
        ),
        ("pretrained: runs/a/model.pt", "pretrained: no_such_weights", "neither a fetch-catalogue name"),
        ("pretrained: runs/a/model.pt", "pretrained: runs/zz/model.pt", "not the model of another row"),
        ("  progress: false", "  progress: false\n  gpus: 8", "launch: unknown key"),
        (
            "  progress: false",
            "  progress: false\n  cpu_isa: avx3",
            "launch: cpu_isa 'avx3' is not one of avx2",
        ),
        (
            '    dataset: digits\n    schedule: "1e"\n    metric: top1\n    mode: max\n    published:\n      - {metric: top1',
            '    dataset: nowhere\n    schedule: "1e"\n    metric: top1\n    mode: max\n    published:\n      - {metric: top1',
            "dataset 'nowhere' is not an entry",
        ),
        (
            '    schedule: "1e"\n    metric: top1\n    mode: max\n    published:\n      - {metric: top1',
            '    schedule: "1e"\n    metric: top1\n    mode: max\n    split: val\n    published:\n      - {metric: top1',
            "unknown key",
        ),
    ],
)
def test_bad_params_name_the_file_row_and_reason(tmp_path, old, new, match) -> None:
    assert old in PARAMS
    path = _write(tmp_path, PARAMS.replace(old, new, 1))
    with pytest.raises(HRNetError, match=match) as err:
        load_suite(path)
    assert str(path) in str(err.value)


def test_unknown_row_and_launch_setting_in_a_recipe(tmp_path) -> None:
    path = _write(tmp_path)
    with pytest.raises(HRNetError, match=r"no row 'zz'.*rows: a, b"):
        train_settings(path, "zz")
    path = _write(tmp_path, PARAMS.replace("      epochs: 3\n", "      epochs: 3\n      workers: 4\n"))
    with pytest.raises(HRNetError, match="launch setting"):
        train_settings(path, "a")
