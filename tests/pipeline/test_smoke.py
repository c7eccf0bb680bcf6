"""The smoke mode of the paper suite: each row's own chain (fetch -> validate -> train ->
evaluate -> register -> report) on tiny data in its real on-disk format, served from loopback
HTTP and moto S3 through the row's own fetch@ stage with checksums."""

from __future__ import annotations

import json

import pytest

from hrnet.data.segmentation import TEST_SCALES
from hrnet.mlops.rows import load_suite
from hrnet.mlops.smoke import S3_DATASET, run_smoke, smoke_params
from tests.pipeline.conftest import ROOT

pytestmark = pytest.mark.integration

# one row of every table (the cheapest width of each)
ONE_PER_TABLE = [
    "cls_hrnet_w18_small",
    "det_faster_rcnn_w18_1x",
    "det_mask_rcnn_w18_1x",
    "det_cascade_rcnn_w32_20e",
    "seg_cityscapes_w18_small_40k",
    "seg_ade20k_w18_small_80k",
    "seg_voc_aug_w18_small_20k",
    "seg_pascal_context_w48_40k",
    "pose_coco_w32_256x192",
    "pose_coco_w32_384x288",
    "lmk_300w_w18",
    "lmk_wflw_w18",
    "lmk_cofw_w18",
]


def test_smoke_params_shrink_only_sizes_and_steps() -> None:
    import yaml

    paper = yaml.safe_load((ROOT / "benchmarks" / "params.yaml").read_text())
    suite = load_suite(ROOT / "benchmarks" / "params.yaml")
    mirror = {d: f"http://127.0.0.1:1/{d}/" for d in suite.datasets} | {
        "weights": "http://127.0.0.1:1/weights/"
    }
    mirror |= {f"{k}.checksums": f"/x/{k}.json" for k in [*suite.datasets, "weights"]}
    params = smoke_params(paper, suite, ONE_PER_TABLE, mirror)
    for rid in ONE_PER_TABLE:
        ours, theirs = params["rows"][rid], paper["rows"][rid]
        assert ours["metric"] == theirs["metric"] and ours["published"] == theirs["published"]
        # the row's own protocol; segmentation's test scale and windows shrink as its crop (/ 8)
        sizes = ("test_scale", "slide_crop", "slide_stride")
        protocol = {k: v for k, v in (ours.get("evaluate") or {}).items() if k not in sizes}
        assert protocol == {k: v for k, v in (theirs.get("evaluate") or {}).items() if k not in sizes}
        if ours["train"]["task"] == "segmentation":
            scale = TEST_SCALES[ours["train"]["dataset"]]
            assert ours["evaluate"]["test_scale"] == [s // 8 for s in scale], rid
        if rid.startswith("seg_pascal_context_"):
            assert (ours["evaluate"]["slide_crop"], ours["evaluate"]["slide_stride"]) == ([60, 60], [40, 40])
        for key in ("task", "model", "dataset", "pretrained", "train_split", "val_split", "num_classes"):
            assert ours["train"].get(key) == theirs["train"].get(key), (rid, key)
        assert ours["train"]["iters"] == 2
    assert set(params["datasets"]) == {suite.row(r).dataset for r in ONE_PER_TABLE}


# one chain per task, covering what differs between chains: the S3 source (COFW), instance
# masks, the multi-scale + flip segmentation protocol, pose flip test, landmarks
ONE_PER_TASK = [
    "cls_hrnet_w18_small",
    "det_mask_rcnn_w18_1x",
    "seg_cityscapes_w18_small_40k",
    "pose_coco_w32_256x192",
    "lmk_cofw_w18",
]


@pytest.mark.timeout(1800)
def test_work_folder_replaces_only_a_copy_smoke_made(tmp_path) -> None:
    from hrnet.errors import HRNetError

    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "notes.txt").write_text("mine")
    with pytest.raises(HRNetError, match="project exists and is not a copy an earlier smoke made"):
        run_smoke(["cls_hrnet_w18_small"], root=ROOT, work=tmp_path, out=tmp_path / "out", progress=False)
    assert (tmp_path / "project" / "notes.txt").read_text() == "mine"


def test_one_row_of_every_task_registers(tmp_path) -> None:
    """Five whole chains (227 s together in a fresh-clone CI run on the 2-core machine)."""
    _check_chains(ONE_PER_TASK, tmp_path)


# 13 whole chains: 33-66 s per row alone on the 2-core machine; 860 s for all 13 beside a CI run
@pytest.mark.tables_smoke
@pytest.mark.timeout(3600)
def test_one_row_of_every_table_registers(tmp_path) -> None:
    """Every table's chain in one go (`make test-tables`)."""
    _check_chains(ONE_PER_TABLE, tmp_path)


def _check_chains(rows: list[str], tmp_path) -> None:
    """Each row registered a version, wrote its metric and is in the report."""
    out = tmp_path / "out"
    results = run_smoke(rows, root=ROOT, work=tmp_path / "work", out=out, progress=True)
    failed = {r: res.log[-3000:] for r, res in results.items() if res.status != "registered"}
    assert not failed, failed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == set(rows)
    for rid, entry in summary.items():
        assert entry["registered"].startswith(f"models:/hrnet-{rid}/"), entry
        row = load_suite(ROOT / "benchmarks" / "params.yaml").row(rid)
        assert row.metric in entry["metrics"], (rid, sorted(entry["metrics"]))
        # every published accuracy-type number of the row has ours beside it (the report's
        # "also published" column: multi-scale + flip mIoU, mask AP, 300W's subsets)
        for p in row.published:
            assert p.unit != "%" or p.metric in entry["metrics"], (rid, p.metric, sorted(entry["metrics"]))
    seg = summary["seg_cityscapes_w18_small_40k"]["metrics"]
    assert "mIoU_ms_flip" in seg  # the published multi-scale + flip protocol ran
    report = (out / "report" / "BENCHMARKS.md").read_text()
    for rid in rows:
        assert f"`{rid}`" in report
    assert any(load_suite(ROOT / "benchmarks" / "params.yaml").row(r).dataset == S3_DATASET for r in rows)


@pytest.mark.full_smoke
def test_every_runnable_paper_row_registers(tmp_path) -> None:
    """The whole paper suite in smoke mode (`make smoke-paper`)."""
    results = run_smoke(None, root=ROOT, work=tmp_path / "work", out=tmp_path / "out", progress=True)
    failed = {r: res.log[-2000:] for r, res in results.items() if res.status != "registered"}
    assert not failed, failed
