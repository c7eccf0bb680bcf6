"""Every paper row's key recipe fields against the table of docs/RECIPES.md, which was written
from the source configs (HRNet-Object-Detection, MMSegmentation, HRNet-Image-Classification,
deep-high-resolution-net.pytorch, HRNet-Facial-Landmark-Detection) and names each file."""

from __future__ import annotations

import fnmatch
import re

import pytest

from hrnet.mlops.rows import load_suite
from tests.pipeline.conftest import ROOT

HEADER = "| rows | source config (repository: path) | length | milestones | lr | batch | input | sigma |"


def _table() -> list[dict[str, str]]:
    text = (ROOT / "docs" / "RECIPES.md").read_text(encoding="utf-8")
    lines = text[text.index(HEADER) :].splitlines()
    keys = [c.strip() for c in lines[0].strip("|").split("|")]
    out = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        out.append(dict(zip(keys, (c.strip().strip("`") for c in line.strip("|").split("|")))))
    return out


TABLE = _table()
ROWS = {r.id: r for r in load_suite(ROOT / "benchmarks" / "params.yaml").ready}


def test_every_runnable_row_has_exactly_one_line() -> None:
    for rid in ROWS:
        lines = [t["rows"] for t in TABLE if fnmatch.fnmatchcase(rid, t["rows"])]
        assert len(lines) == 1, f"{rid}: matched by {lines}"
    for t in TABLE:
        assert any(fnmatch.fnmatchcase(rid, t["rows"]) for rid in ROWS), f"{t['rows']}: no such row"
        assert re.match(r"^[\w.-]+: `?\S+", t["source config (repository: path)"]), t


@pytest.mark.parametrize("line", TABLE, ids=[t["rows"] for t in TABLE])
def test_key_fields_follow_the_source(line: dict[str, str]) -> None:
    for rid, row in ROWS.items():
        if not fnmatch.fnmatchcase(rid, line["rows"]):
            continue
        train = row.train
        length = line["length"]
        if length.endswith("k"):
            assert train["iters"] == int(length[:-1]) * 1000, rid
        else:
            assert train["epochs"] == int(length) and not train.get("iters"), rid
        if ".." in line["milestones"]:  # "a..b": every epoch from a to b (a per-epoch decay)
            first, last = (int(m) for m in line["milestones"].split(".."))
            milestones = list(range(first, last + 1))
        else:
            milestones = [] if line["milestones"] == "-" else [int(m) for m in line["milestones"].split(",")]
        assert list(train.get("milestones", [])) == milestones, rid
        assert train["lr"] == pytest.approx(float(line["lr"])), rid
        per_gpu = int(line["batch"].split("x")[0])
        assert train["batch_size"] == per_gpu, rid
        assert list(train["input_size"]) == [int(s) for s in line["input"].split("x")], rid
        if line["sigma"] != "-":
            assert train["heatmap_sigma"] == pytest.approx(float(line["sigma"])), rid
