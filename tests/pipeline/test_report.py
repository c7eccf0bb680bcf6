"""`hrnet report`: every row with its published number, ours or its status, and the links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hrnet.cli import main
from hrnet.errors import HRNetError
from hrnet.mlops.report import STATUS_TEXT, build_entries, count_model, write_report
from hrnet.mlops.rows import load_rows

PARAMS = """\
datasets:
  digits: {generate: {num_train: 10, num_val: 5}}
  faces: {generate: {num_train: 10, num_val: 5}}
rows:
  toy_cls:
    table: Toy table
    dataset: digits
    schedule: 1e
    metric: top1
    mode: max
    published:
      - {metric: top1, value: 90.0, unit: "%", source: test}
      - {metric: top5, value: 98.0, unit: "%", source: test}
      - {metric: top5, value: 97.5, unit: "%", source: another}
      - {metric: params, value: 11.0, unit: "M", source: test}
    train: {task: classification, model: hrnet_w18_small, num_classes: 10, input_size: [32, 32]}
  toy_lmk:
    table: Toy table
    dataset: faces
    schedule: 1e
    metric: NME
    mode: min
    published:
      - {metric: NME, value: 3.5, unit: "%", source: test}
      - {metric: NME_common, value: 2.5, unit: "%", source: test}
    train: {task: landmarks, model: landmark_hrnetv2_w18, num_keypoints: 68, input_size: [64, 64], val_split: test}
reference:
  toy_htc:
    task: detection
    status: not_built
    reason: architecture not built
    label: "HTC (HRNetV2p-W48)"
    published:
      - {metric: box AP, value: 47.0, unit: "%", source: test}
"""

LOCK = """\
schema: '2.0'
stages:
  train@toy_cls:
    cmd: hrnet train
    outs:
      - path: runs/toy_cls/model.pt
        md5: 0123456789abcdef0123456789abcdef
        size: 10
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(PARAMS)
    (tmp_path / "dvc.lock").write_text(LOCK)
    run = tmp_path / "runs" / "toy_cls"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"task": "classification", "top1": 0.925, "top5": 0.99}))
    (run / "mlflow_run.json").write_text(json.dumps({"run_id": "abc123", "experiment_id": "7"}))
    registered = {"uri": "models:/hrnet-embedded-toy_cls/3", "champion": True, "version": 3}
    (run / "registered.json").write_text(json.dumps(registered))
    verified = {"metric": "top1", "source": "timm", "ours": 89.8, "delta": -0.2, "outcome": "reproduced"}
    (run / "verify-toy").mkdir()
    (run / "verify-toy" / "verified.json").write_text(json.dumps(verified))
    return tmp_path


def test_entries_compare_ours_with_published(project):
    entries = {
        e.row.id: e
        for e in build_entries(
            [(project / "params.yaml", "embedded")], root=project, mlflow_ui="http://ui:5000"
        )
    }
    cls = entries["toy_cls"]
    assert cls.state == "run" and cls.ours == pytest.approx(92.5)  # metrics.json fraction -> percent
    assert cls.delta == pytest.approx(2.5)
    assert cls.published_params == 11.0
    # the row's other published number, its first figure (as for the headline)
    assert cls.others == (("top5", 98.0, pytest.approx(99.0)),)
    assert cls.mlflow == "http://ui:5000/#/experiments/7/runs/abc123?workflowType=machine_learning"
    assert cls.registered == "models:/hrnet-embedded-toy_cls/3 @champion"
    assert cls.checkpoint == "runs/toy_cls/model.pt (md5 0123456789)"
    assert entries["toy_lmk"].state == "not_run" and entries["toy_lmk"].ours is None
    htc = entries["toy_htc"]
    assert htc.state == "not_built" and htc.published == 47.0 and htc.delta is None


def test_a_metrics_json_of_another_evaluation_is_not_the_rows_number(project):
    """toy_lmk is scored on its `test` split: a metrics.json of its `val` split (or of `test`
    with the flip protocol the row does not name) is not shown as the row's result."""
    run = project / "runs" / "toy_lmk"
    run.mkdir()
    settings = {"scales": [1.0], "test_scale": [], "slide_crop": [], "slide_stride": [], "flip": False}
    for split, flip, state in (
        ("val", False, "other_eval"),
        ("test", True, "other_eval"),
        ("test", False, "run"),
    ):
        metrics = {
            "NME": 0.04,
            "split": split,
            "eval_settings": {**settings, "flip": flip, "person_boxes": "gt"},
        }
        (run / "metrics.json").write_text(json.dumps(metrics))
        entries = {e.row.id: e for e in build_entries([(project / "params.yaml", "embedded")], root=project)}
        lmk = entries["toy_lmk"]
        assert lmk.state == state, (split, flip)
        assert lmk.ours == (pytest.approx(4.0) if state == "run" else None)
    assert "metrics.json holds another evaluation" in STATUS_TEXT["other_eval"]


def test_cli_writes_markdown_html_and_plots(project, tmp_path):
    out = tmp_path / "reports"
    code = main(
        [
            "report",
            "--out-dir",
            str(out),
            "--params",
            str(project / "params.yaml"),
            "--root",
            str(project),
            "--no-flops",
        ]
    )
    assert code == 0
    markdown = (out / "BENCHMARKS.md").read_text()
    # published, verified (the published checkpoint evaluated here) and reproduced (trained here)
    assert (
        "| `toy_cls` | hrnet_w18_small | 1e | top1 (%) | 90.00 | 89.80 (-0.20, reproduced; timm) | 92.50 | +2.50 | "
        "top5 98.00 / 99.00 |" in markdown
    )
    assert "| `toy_lmk` |" in markdown and "not run | - | NME_common 2.50 / - |" in markdown
    assert (
        "| `toy_htc` | HTC (HRNetV2p-W48) | box AP (%) | 47.00 | not built | architecture not built |"
        in markdown
    )
    page = (out / "index.html").read_text()
    assert "<img src='plots/published_vs_ours.png'" in page and "toy_htc" in page
    assert "<td>top5 98.00 / 99.00</td>" in page
    assert (out / "plots" / "published_vs_ours.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert {s["row"]: s["state"] for s in summary} == {
        "toy_cls": "run",
        "toy_lmk": "not_run",
        "toy_htc": "not_built",
    }
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_counts_are_cached_and_match_the_model(project, tmp_path):
    (row,) = [r for r in load_rows(project / "params.yaml", suite="x") if r.id == "toy_cls"]
    counts = count_model(row)
    assert counts["params"] > 1e6 and counts["macs"] > 0
    cache = tmp_path / "out" / "flops_cache.json"
    entries = write_report(
        [(project / "params.yaml", "embedded")], tmp_path / "out", root=project, plots=False
    )
    cached = json.loads(cache.read_text())
    assert any(v == counts for v in cached.values())
    first = {e.row.id: e.gflops for e in entries}
    assert first["toy_cls"] == pytest.approx(counts["macs"] / 2**30)
    # a second report reads the cache instead of counting: a doctored cache value shows through
    key = next(k for k, v in cached.items() if v == counts)
    cached[key] = {"params": 1, "macs": 2**30}
    cache.write_text(json.dumps(cached))
    again = write_report([(project / "params.yaml", "embedded")], tmp_path / "out", root=project, plots=False)
    assert {e.row.id: e.gflops for e in again}["toy_cls"] == 1.0


def test_missing_params_file_names_it(tmp_path):
    with pytest.raises(HRNetError, match=r"nope\.yaml: cannot read"):
        write_report([(tmp_path / "nope.yaml", "x")], tmp_path / "out")
