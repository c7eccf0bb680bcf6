"""verify@ in smoke mode: a checkpoint in each publisher's exact layout and container, served
over loopback HTTP with its checksum, goes through checkpoint@ -> validate@ -> verify@ on tiny
real-format data, and registers the number the same weights give when evaluated directly."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hrnet.mlops.smoke import run_smoke
from tests.pipeline.conftest import ROOT

pytestmark = pytest.mark.integration

# one verify@ item per publisher layout (the layouts of the runnable rows' checkpoints)
ONE_PER_LAYOUT = {
    "cls_hrnet_w18_small": "timm",
    "cls_hrnet_w18_mmpretrain": "mmpretrain",
    "det_faster_rcnn_w18_1x_faster_rcnn_hrnetv2p_w18_1x_coco": "mmdet",
    "seg_cityscapes_w18_small_40k": "mmseg",
    "pose_coco_w32_256x192_mmpose": "mmpose",
    "pose_coco_w32_256x192_deep_high_resolution_net_pytorch": "pose_repo",
    "lmk_300w_w18": "landmark_repo",
}


def test_published_checkpoints_of_every_layout_verify_and_register(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from hrnet.mlops.rows import load_suite
    from hrnet.mlops.verify import published_alias, row_checkpoints

    work, out = tmp_path / "work", tmp_path / "out"
    results = run_smoke([], root=ROOT, work=work, out=out, verify=list(ONE_PER_LAYOUT), progress=True)
    failed = {k: r.log[-3000:] for k, r in results.items() if r.status != "registered"}
    assert not failed, failed
    project = work / "project"
    items = row_checkpoints(load_suite(ROOT / "benchmarks" / "params.yaml"))
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    latest: dict[str, int] = {}
    for key, layout in ONE_PER_LAYOUT.items():
        row, entry = items[key]
        assert entry.layout == layout
        record = results[f"verify@{key}"].metrics
        assert record["checkpoint"] == entry.name and record["published"] == entry.value
        assert record["outcome"] in ("reproduced", "not reproduced") and record["ours"] is not None
        name, version = record["registered"].removeprefix("models:/").rsplit("/", 1)
        mv = client.get_model_version(name, version)
        assert mv.tags["published.source"] == entry.source and mv.tags["published.url"] == entry.url
        # the bytes evaluated are recorded as themselves: the smoke mirror's are not the publisher's
        fetched = project / record["file"]
        assert record["file_sha256"] == hashlib.sha256(fetched.read_bytes()).hexdigest()
        assert record["file_is_published"] == ("no" if entry.sha256 else "unknown")
        assert mv.tags["published.file_sha256"] == record["file_sha256"]
        # each publisher's latest verified checkpoint of the row keeps an alias of its own
        assert int(client.get_model_version_by_alias(name, published_alias(entry.source)).version) == int(
            version
        )
        latest[name] = max(latest.get(name, 0), int(version))
    for name, version in latest.items():  # @published: the latest verified checkpoint of the row
        assert int(client.get_model_version_by_alias(name, "published").version) == version
    # the same weights evaluated directly give the registered number
    for key in ("seg_cityscapes_w18_small_40k", "lmk_300w_w18"):
        row, entry = items[key]
        fixture = work / "mirror" / "checkpoints" / entry.filename
        direct = tmp_path / f"direct-{key}"
        argv = [sys.executable, "-m", "hrnet.cli", "evaluate", "--params", "benchmarks/params.yaml", "--row", row.id,
                "--weights", str(fixture), "--out", str(direct), "--device", "cpu", "--workers", "0", "--no-mlflow"]  # fmt: skip
        # the row's test protocol as the smoke project's params file writes it (sizes shrunk)
        argv += load_suite(project / "benchmarks" / "params.yaml").row(row.id).evaluate_flags()
        subprocess.run(argv, cwd=project, check=True, capture_output=True, text=True)
        metrics = json.loads(Path(direct / "metrics.json").read_text())
        unit_scale = 100.0 if results[f"verify@{key}"].metrics["unit"] == "%" else 1.0
        assert results[f"verify@{key}"].metrics["ours"] == pytest.approx(
            metrics[entry.metric] * unit_scale, abs=1e-3
        )


def test_a_tampered_checkpoint_is_refused_and_nothing_is_registered(tmp_path) -> None:
    """A published file whose bytes are not the ones its checksum names: checkpoint@ fails
    naming the file, verify@ does not run, no version is registered."""
    import hrnet.mlops.smoke as smoke

    original = smoke.write_published_fixture

    def tampered(train, layout, path, *, seed=0):
        digest = original(train, layout, path, seed=seed)
        with open(path, "ab") as f:
            f.write(b"tampered")
        return digest

    smoke.write_published_fixture = tampered
    try:
        results = run_smoke(
            [],
            root=ROOT,
            work=tmp_path / "w",
            out=tmp_path / "o",
            verify=["lmk_cofw_w18"],
        )
    finally:
        smoke.write_published_fixture = original
    result = results["verify@lmk_cofw_w18"]
    assert result.status == "failed" and not result.registered
    assert "checksum mismatch" in result.log and "checkpoint@" in result.log
    assert not (tmp_path / "w" / "project" / "runs").exists()


def test_a_corrupted_dataset_archive_fails_at_fetch_and_nothing_downstream_runs(tmp_path) -> None:
    """A mirror file whose bytes are not the ones its checksum names: fetch@ fails naming the
    file; validate@, train@ and the rest never run."""
    import hrnet.data.smoke as smoke_data

    original = smoke_data.write_smoke_mirror

    def corrupted(names, out_dir, seed=0):
        written = original(names, out_dir, seed=seed)
        for name, files in written.items():
            for filename in files:
                with open(Path(out_dir) / name / filename, "r+b") as f:
                    f.seek(10)
                    f.write(b"\x00corrupt\x00")
        return written

    smoke_data.write_smoke_mirror = corrupted
    try:
        results = run_smoke(["lmk_wflw_w18"], root=ROOT, work=tmp_path / "w", out=tmp_path / "o", verify=[])
    finally:
        smoke_data.write_smoke_mirror = original
    result = results["lmk_wflw_w18"]
    assert result.status == "failed" and not result.registered
    assert "checksum mismatch" in result.log and "fetch@wflw" in result.log
    assert "Running stage 'benchmarks/dvc.yaml:validate@wflw'" not in result.log
    assert not (tmp_path / "w" / "project" / "runs").exists()
    published = tmp_path / "w" / "project" / "data" / "wflw"
    assert not published.exists() or not any(published.iterdir())  # nothing published
