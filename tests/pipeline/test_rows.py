"""The benchmark rows in the params files against the published tables in /work/shared/seeds.

The seed files are parsed here, independently of how the params files were written: every
published row of every seed table must be present with its numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from hrnet.engine.config import config_from_mapping
from hrnet.errors import HRNetError
from hrnet.mlops.rows import BenchmarkRow, load_rows
from hrnet.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "seeds"
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"{SEEDS} not present")


def _seed(number: str) -> str:
    (path,) = SEEDS.glob(f"{number}_*.txt")
    return path.read_text(encoding="utf-8")


def _tables(text: str) -> list[list[dict[str, str]]]:
    """Markdown tables of a text (with a header and at least one row), each a list of
    {header: cell} rows. Lines that are a lone "|" (page debris between the rows of seed 001)
    are skipped."""
    tables, current, header = [], [], None
    for line in text.splitlines():
        line = line.strip()
        if line == "|":
            continue
        if not line.startswith("|"):
            if header is not None and current:
                tables.append(current)
            current, header = [], None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
        elif not all(set(c) <= set(":- ") for c in cells):
            current.append(dict(zip(header, cells)))
    if header is not None and current:
        tables.append(current)
    return tables


@pytest.fixture(scope="module")
def rows() -> dict[str, BenchmarkRow]:
    return {r.id: r for r in load_rows(ROOT / "benchmarks" / "params.yaml", suite="paper")}


# the publisher of each table, by its public name (what the rows' `source` says)
PUBLISHER = {
    "seed 000": "HRNet-Object-Detection",
    "seed 001": "mmpretrain",
    "seed 002": "timm",
    "seed 003": "Papers with Code",
    "seed 004": "MMSegmentation",
}
# the tables' metric names -> the keys the evaluators write
VOCABULARY = {"bbox_mAP": "box_AP", "segm_mAP": "mask_AP"}


def _has(row: BenchmarkRow, metric: str, value: float, source: str) -> bool:
    source, metric = PUBLISHER.get(source, source), VOCABULARY.get(metric, metric)
    return any(
        p.metric == metric and p.value == pytest.approx(value) and p.source == source for p in row.published
    )


def _find(rows: dict[str, BenchmarkRow], *, task: str, model: str, schedule: str | None = None, dataset=None):
    found = [
        r
        for r in rows.values()
        if r.status == "ready"
        and r.task == task
        and r.model == model
        and (schedule is None or r.schedule.startswith(schedule))
        and (dataset is None or r.dataset == dataset)
    ]
    assert len(found) == 1, (
        f"{task} {model} {schedule} {dataset}: {len(found)} rows ({[r.id for r in found]})"
    )
    return found[0]


def _width(backbone: str) -> str:
    """'HRNetV2p-W18-Small' / 'HRNetV2-W18' / 'HRNet-W18 (ssld)*' -> 'w18_small' / 'w18'."""
    m = re.search(r"W(\d+)(-Small)?", backbone)
    assert m, backbone
    return f"w{m.group(1)}" + ("_small" if m.group(2) else "")


@needs_seeds
def test_seed_000_detection(rows):
    faster, mask, cascade = _tables(_seed("000"))
    for r in faster:
        row = _find(
            rows,
            task="detection",
            model=f"fasterrcnn_hrnetv2p_{_width(r['Backbone'])}",
            schedule=r["Lr sched"],
        )
        assert _has(row, "bbox_mAP", float(r["mAP"]), "seed 000")
        assert _has(row, "params", float(r["#Params"].rstrip("M")), "seed 000")
        assert _has(row, "gflops", float(r["GFLOPs"]), "seed 000")
    for r in mask:
        row = _find(
            rows, task="detection", model=f"maskrcnn_hrnetv2p_{_width(r['Backbone'])}", schedule=r["Lr sched"]
        )
        assert _has(row, "bbox_mAP", float(r["box mAP"]), "seed 000")
        assert _has(row, "segm_mAP", float(r["mask mAP"]), "seed 000")
    assert len(faster) == 6 and len(mask) == 4 and len(cascade) == 2
    for r in cascade:
        if "HRNet" in r["Backbone"]:
            row = _find(rows, task="detection", model=f"cascadercnn_hrnetv2p_{_width(r['Backbone'])}")
        else:  # the ResNet-101 baseline: listed, not built
            row = rows["det_cascade_rcnn_r101_fpn_20e"]
            assert row.status == "not_built"
        assert _has(row, "bbox_mAP", float(r["mAP"]), "seed 000")


@needs_seeds
def test_seed_001_classification_mmpretrain(rows):
    (table,) = _tables(_seed("001"))
    assert len(table) == 9
    for r in table:
        model = "hrnet_" + _width(r["Model"])
        if "ssld" in r["Model"]:
            row = rows[f"cls_{model}_ssld"]
            assert row.status == "reference"
        else:
            row = _find(rows, task="classification", model=model)
        assert _has(row, "top1", float(r["Top-1 (%)"]), "seed 001")
        assert _has(row, "top5", float(r["Top-5 (%)"]), "seed 001")
        assert _has(row, "params", float(r["Params(M)"]), "seed 001")
        gflops = "gflops_mmpt"
        assert _has(row, gflops, float(r["Flops(G)"]), "seed 001")


@needs_seeds
def test_seed_002_classification_timm(rows):
    text = _seed("002")
    index = yaml.safe_load(text.split("<!--", 1)[1].split("-->", 1)[0])
    models = index["Models"]
    assert len(models) == 9
    for entry in models:
        row = _find(rows, task="classification", model=entry["Name"])
        (result,) = entry["Results"]
        metrics = result["Metrics"]
        assert _has(row, "top1", float(metrics["Top 1 Accuracy"].rstrip("%")), "seed 002")
        assert _has(row, "top5", float(metrics["Top 5 Accuracy"].rstrip("%")), "seed 002")


# the DIS listing's metric names -> the dichotomous task's metrics.json keys
DIS_METRICS = {
    "max F-Measure": "max_F",
    "weighted F-measure": "weighted_F",
    "MAE": "MAE",
    "S-Measure": "S_measure",
    "E-measure": "E_measure",
    "HCE": "HCE",
}


@needs_seeds
def test_seed_003_paper_listing(rows):
    """Every result line of the paperswithcode listing: the model line with its first metric,
    and the metric lines that follow it."""
    text = _seed("003").split("Results from the Paper", 1)[1]
    tasks = ("Instance Segmentation", "Semantic Segmentation", "Object Detection", "Face Alignment",
             "Dichotomous Image Segmentation", "Thermal Image Segmentation")  # fmt: skip
    by_label = {r.label: r for r in rows.values() if r.status != "ready"}
    # listing lines whose rows are runnable: listing label -> (row id, listing metric -> metrics key)
    listed = {
        "Instance Segmentation BDD100K val HRNet": ("det_bdd100k_val_hrnet", {"AP": "mask_AP"}),
        "Semantic Segmentation DADA-seg HRNet (ACDC)": ("seg_dada_seg_hrnet_acdc", {}),
        "Semantic Segmentation SynPASS HRNet": ("seg_synpass_hrnet", {}),
        "Dichotomous Image Segmentation DIS-VD HRNet": ("ext_dis_vd_hrnet", DIS_METRICS),
        **{
            f"Dichotomous Image Segmentation DIS-TE{k} HRNet": (
                "ext_dis_vd_hrnet",
                {name: f"DIS-TE{k}.{key}" for name, key in DIS_METRICS.items()},
            )
            for k in range(1, 5)
        },
        "Thermal Image Segmentation MFN Dataset HRNet": ("ext_mfn_dataset_hrnet", {"mIOU": "mIoU"}),
    }
    lmk = {"300W": "lmk_300w_w18", "COFW": "lmk_cofw_w18", "WFLW": "lmk_wflw_w18"}
    current, checked, mapping = None, 0, {}
    for line in text.splitlines():
        m = re.match(r"^(.*?) (-?[\d.]+)(%|G)? # \d+$", line.strip())
        if not m:
            continue
        head, value = m.group(1), float(m.group(2))
        if head.startswith(tasks):
            if "HRNet" not in head:  # a CFNet (ResNet-101) line in the listing
                current = None
                continue
            dataset = head.split(" ")[2] if head.startswith("Face Alignment") else None
            mapping = {}
            if dataset in lmk and "COFW-68" not in head:  # "Results from Other Papers": runnable rows
                current = rows[lmk[dataset]]
                metric = {"Full": "NME"}.get("Full" if "Full" in head else "", "NME")
            elif label := next((k for k in listed if head.startswith(k + " ")), None):
                current, mapping = rows[listed[label][0]], listed[label][1]
                assert current.status == "ready", current.id
                metric = mapping.get(head[len(label) + 1 :], head[len(label) + 1 :])
            else:
                current = next((r for label, r in by_label.items() if head.startswith(label + " ")), None)
                assert current is not None, f"seed 003: no row for {head!r}"
                metric = head[len(current.label) + 1 :]
            assert _has(current, metric, value, "seed 003"), f"{current.id}: {metric} {value}"
        elif current is not None:
            if current.id in lmk.values():
                metric = {"Common": "NME_common", "Challenge": "NME_challenge"}[
                    re.search(r"(Common|Challenge)", head)[1]
                ]
            else:
                metric = mapping.get(head, head)
            assert _has(current, metric, value, "seed 003"), f"{current.id}: {metric} {value}"
        checked += 1
    assert checked > 100


@needs_seeds
def test_seed_004_segmentation(rows):
    tables = _tables(_seed("004"))
    datasets = ["cityscapes", "ade20k", "voc_aug", "pascal_context"]
    assert [len(t) for t in tables] == [9, 6, 6, 2]
    for dataset, table in zip(datasets, tables):
        for r in table:
            width = _width(r["Backbone"])
            model = f"fcn_hrnetv2_{width}" + ("_v2" if width.endswith("_small") else "")  # mmseg's hr18s
            row = _find(
                rows, task="segmentation", model=model, dataset=dataset,
                schedule=f"{int(r['Lr schd']) // 1000}k",
            )  # fmt: skip
            assert _has(row, "mIoU", float(r["mIoU"]), "seed 004")
            assert _has(row, "mIoU_ms_flip", float(r["mIoU(ms+flip)"]), "seed 004")
            if r["Mem (GB)"] != "-":
                assert _has(row, "train_mem", float(r["Mem (GB)"]), "seed 004")
                assert _has(row, "infer_fps", float(r["Inf time (fps)"]), "seed 004")


def test_pose_rows_hrnet_md(rows):
    """deep-high-resolution-net.pytorch's COCO val2017 table: w32/w48 at 256x192 and 384x288."""
    expected = {
        ("w32", "256x192"): 74.4,
        ("w32", "384x288"): 75.8,
        ("w48", "256x192"): 75.1,
        ("w48", "384x288"): 76.3,
    }
    for (width, size), ap in expected.items():
        row = rows[f"pose_coco_{width}_{size}"]
        assert row.model == f"pose_hrnet_{width}" and _has(
            row, "keypoint_AP", ap, "deep-high-resolution-net.pytorch"
        )
        assert list(row.train["input_size"]) == [int(s) for s in size.split("x")]


@pytest.mark.parametrize("params", ["params.yaml", "benchmarks/params.yaml"])
def test_every_row_is_a_valid_train_config(params):
    """`hrnet train --params ... --row ID` accepts every runnable row as it is written."""
    for row in load_rows(ROOT / params, suite="x"):
        if row.status == "ready":
            cfg = config_from_mapping(row.train, source=f"{params} rows.{row.id}")
            get_task(cfg.task, dataset=cfg.dataset)  # a known task, and a format it reads
            assert cfg.model == row.model and cfg.task == row.task
            assert row.published_value() is not None, f"{row.id}: no published {row.metric}"


def test_dense_paper_rows_start_from_the_published_imagenet_weights():
    """Every detection, segmentation, pose and landmark row loads the ImageNet backbone of its
    width (a fetch-catalogue entry, fetched by its weights@ stage); classification rows train
    from scratch."""
    from hrnet.data.catalog import WEIGHTS

    files = {w.name: w.files[0].filename for w in WEIGHTS}
    for row in load_rows(ROOT / "benchmarks/params.yaml", suite="x"):
        if row.status != "ready":
            continue
        if row.task == "classification":
            assert row.init.kind == "scratch" and not row.train["pretrained"], row.id
            continue
        assert row.init.kind == "weights", row.id
        name = row.init.name
        assert row.train["pretrained"] == f"data/pretrained/{name}/{files[name]}", row.id
        width = re.search(r"_(w\d+(?:_small)?)(?:_v2)?$", row.model).group(1)
        expected = f"hrnet_{width}_imagenet_pose" if row.task == "pose" else f"hrnetv2_{width}_imagenet"
        assert name == expected, f"{row.id}: {row.model} starts from {name}"


def test_a_row_that_starts_from_another_row_depends_on_its_model():
    """The embedded chain digits -> segmentation -> detection: each train@ stage depends on the
    model it starts from (so a retrained upstream re-runs it); the Prefect row flow runs it first."""
    from hrnet.mlops.pipeline import stages_of
    from hrnet.mlops.rows import load_suite

    suite = load_suite(ROOT / "params.yaml")
    train = stages_of(suite)["train"]
    assert "${item.init}" in train["do"]["deps"]
    chain = {"shapes_seg": "digits_cls", "shapes_det": "shapes_seg"}
    for row in suite.ready:
        upstream = chain.get(row.id)
        assert row.starts_from_row == upstream, row.id
        if upstream:
            assert row.init.dep == train["foreach"][row.id]["init"] == f"runs/{upstream}/model.pt"


def test_rows_that_start_from_each_other_in_a_loop_are_refused(tmp_path):
    from hrnet.mlops.rows import load_suite

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["rows"]["digits_cls"]["train"]["pretrained"] = "runs/shapes_det/model.pt"
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    with pytest.raises(HRNetError, match="digits_cls -> shapes_det -> shapes_seg -> digits_cls"):
        load_suite(bad)
