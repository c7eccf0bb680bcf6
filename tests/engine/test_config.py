"""TrainConfig: resolution order (defaults < params.yaml row < flags), validation, round trips."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from hrnet.engine.config import (
    TrainConfig,
    add_config_arguments,
    config_from_mapping,
    config_overrides,
    config_to_flags,
    load_params_row,
)
from hrnet.errors import HRNetError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return parser


def test_every_field_has_help() -> None:
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name


def test_params_row_then_flags_override(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "rows:\n  digits_w18s:\n    task: classification\n    data: data/embedded/digits\n"
        "    input_size: 32\n    epochs: 3\n    lr: 0.05\n    milestones: [1, 2]\n"
    )
    row = config_from_mapping(load_params_row(str(params), "digits_w18s"), source="params")
    args = _parser().parse_args(["--lr", "0.1", "--no-hflip"])
    cfg = config_from_mapping(config_overrides(args), source="flags", base=row)
    assert cfg.input_size == (32, 32)
    assert cfg.epochs == 3
    assert cfg.lr == 0.1  # the flag wins over the row
    assert cfg.hflip is False
    assert cfg.milestones == (1, 2)
    assert cfg.batch_size == TrainConfig().batch_size  # untouched default


def test_unknown_key_names_the_key(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("rows:\n  r1:\n    lr: 0.1\n    learning_rate: 0.2\n")
    with pytest.raises(HRNetError, match="learning_rate"):
        config_from_mapping(load_params_row(str(params), "r1"), source=f"{params} rows.r1")


def test_missing_row_and_bad_values(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("rows:\n  r1: {lr: 0.1}\n")
    with pytest.raises(HRNetError, match="no row 'r2'"):
        load_params_row(str(params), "r2")
    with pytest.raises(HRNetError, match="optimizer"):
        config_from_mapping({"optimizer": "lamb"}, source="x")
    with pytest.raises(HRNetError, match="epochs"):
        config_from_mapping({"epochs": "many"}, source="x")
    with pytest.raises(HRNetError, match="input_size"):
        config_from_mapping({"input_size": [1, 2, 3]}, source="x")


def test_flags_round_trip() -> None:
    cfg = TrainConfig(
        task="segmentation",
        dataset="mask_segmentation",
        data="d",
        input_size=(64, 96),
        milestones=(3, 5),
        lr=0.0125,
        hflip=False,
        amp="bf16",
    )
    args = _parser().parse_args(config_to_flags(cfg))
    assert config_from_mapping(config_overrides(args), source="flags") == cfg
    assert config_from_mapping(cfg.to_dict(), source="saved") == cfg
