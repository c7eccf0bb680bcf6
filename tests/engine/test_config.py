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
)
from hrnet.errors import HRNetError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return parser


def test_every_field_has_help() -> None:
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name


def test_bad_values_name_the_field() -> None:
    with pytest.raises(HRNetError, match="optimizer"):
        config_from_mapping({"optimizer": "lamb"}, source="x")
    with pytest.raises(HRNetError, match="epochs"):
        config_from_mapping({"epochs": "many"}, source="x")
    with pytest.raises(HRNetError, match="input_size"):
        config_from_mapping({"input_size": [1, 2, 3]}, source="x")
    with pytest.raises(HRNetError, match="learning_rate"):
        config_from_mapping({"lr": 0.1, "learning_rate": 0.2}, source="x")


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
