"""The catalogue of published checkpoints (hrnet.data.checkpoints) against the paper rows."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from hrnet.data.checkpoints import (
    CHECKPOINTS,
    LAYOUTS,
    MANUAL,
    METRICS,
    PublishedCheckpoint,
    checkpoints_for_row,
)
from hrnet.mlops.rows import load_suite
from hrnet.models import list_models

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "benchmarks" / "params.yaml"
HEX = re.compile(r"^[0-9a-f]+$")


@pytest.fixture(scope="module")
def rows() -> dict:
    return {row.id: row for row in load_suite(PAPER).rows}


def _ids(checkpoints: tuple[PublishedCheckpoint, ...]) -> list[str]:
    return [c.name for c in checkpoints]


def test_names_are_unique() -> None:
    repeated = [name for name, n in Counter(_ids(CHECKPOINTS)).items() if n > 1]
    assert not repeated


def test_every_row_exists(rows: dict) -> None:
    unknown = [(c.name, c.row) for c in CHECKPOINTS if c.row and c.row not in rows]
    assert not unknown


def test_every_model_is_built_or_explained() -> None:
    models = set(list_models())
    unknown = [(c.name, c.model) for c in CHECKPOINTS if c.model and c.model not in models]
    assert not unknown
    assert all(c.note for c in CHECKPOINTS if not c.model)


def test_values_are_the_rows_numbers_or_explained(rows: dict) -> None:
    """Where the row publishes the entry's metric from the same source the value is one of those
    numbers; anything else (another source, a replaced file, no row) carries a note."""
    unexplained = []
    for c in CHECKPOINTS:
        same = (
            [p.value for p in rows[c.row].published if p.metric == c.metric and p.source == c.source]
            if c.row
            else []
        )
        if same and any(abs(c.value - v) < 1e-9 for v in same):
            continue
        if not c.note:
            unexplained.append((c.name, c.row, c.metric, c.value, same))
    assert not unexplained


def test_the_converted_and_mirrored_tables_match_their_rows(rows: dict) -> None:
    """mmpretrain, timm and MMSegmentation entries under a row without a note are the row's numbers
    (the rows were written from those tables)."""
    for c in CHECKPOINTS:
        if (
            c.source in ("mmpretrain", "timm", "MMSegmentation")
            and c.row
            and not c.note.startswith("MMSegmentation's retrained")
        ):
            published = {(p.metric, p.source): p.value for p in rows[c.row].published}
            assert published.get((c.metric, c.source)) == pytest.approx(c.value), c.name


def test_checksums_and_locations() -> None:
    for c in CHECKPOINTS:
        assert c.url.startswith(("https://", MANUAL)), c.name
        assert c.filename == c.url.rsplit("/", 1)[-1], c.name
        assert c.homepage.startswith("https://"), c.name
        if c.sha256:
            assert HEX.match(c.sha256) and len(c.sha256) >= 8, c.name
            assert c.sha256_prefix == (len(c.sha256) < 64), c.name
            assert f"-{c.sha256}" in c.filename, c.name
        else:
            assert not c.sha256_prefix, c.name
        if c.url.startswith(MANUAL):
            assert c.source in (
                "deep-high-resolution-net.pytorch",
                "HRNet-Facial-Landmark-Detection",
                "HRNet-Semantic-Segmentation",
            ), c.name
            assert c.note, c.name  # where the drive link is


def test_openmmlab_and_timm_files_carry_their_sha_prefix() -> None:
    for c in CHECKPOINTS:
        if c.source in ("mmpretrain", "timm", "MMSegmentation", "MMDetection", "mmpose"):
            assert c.sha256_prefix and len(c.sha256) == 8, c.name
            assert c.filename.startswith(c.name.split("_2020")[0]), c.name


def test_fields_use_the_known_vocabularies() -> None:
    for c in CHECKPOINTS:
        assert c.layout in LAYOUTS, c.name
        assert c.metric in METRICS, c.name
        assert c.source and c.config, c.name
        assert 0 < c.value < 100, c.name


def test_the_published_tables_are_all_there() -> None:
    counts = Counter(c.source for c in CHECKPOINTS)
    assert counts["mmpretrain"] >= 9
    assert counts["timm"] >= 9
    assert counts["MMSegmentation"] >= 23
    assert counts["MMDetection"] >= 30
    assert counts["mmpose"] >= 7
    names = set(_ids(CHECKPOINTS))
    assert {"pose_hrnet_w32_256x192", "HR18-300W", "fcn_hr48_512x1024_40k_cityscapes"} <= names


def test_checkpoints_for_row(rows: dict) -> None:
    found = checkpoints_for_row("seg_cityscapes_w48_40k")
    assert [c.name for c in found] == ["fcn_hr48_512x1024_40k_cityscapes"]
    assert {c.source for c in checkpoints_for_row("cls_hrnet_w18")} == {"mmpretrain", "timm"}
    assert {c.source for c in checkpoints_for_row("pose_coco_w32_256x192")} == {
        "mmpose",
        "deep-high-resolution-net.pytorch",
    }
    assert checkpoints_for_row("") == []
    assert checkpoints_for_row("no_such_row") == []
    # every runnable row has a published checkpoint, except the rows whose sources published none:
    # FCOS W48 and CenterNet (the HRNet paper's figures only), ACDC -> DADA-seg and SynPASS (no HRNet
    # weights found)
    no_checkpoint = {
        "det_fcos_w48_2x",
        "det_centernet_w48",
        "seg_dada_seg_hrnet_acdc",
        "seg_synpass_hrnet",
    }
    ready = [r for r in rows.values() if r.status == "ready"]
    missing = {
        r.id
        for r in ready
        if r.id.startswith(("cls_", "det_", "seg_", "pose_", "lmk_")) and not checkpoints_for_row(r.id)
    }
    assert missing == no_checkpoint
