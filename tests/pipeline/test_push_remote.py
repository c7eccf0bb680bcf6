"""The remote a flow pushes to: a worker's run refuses, before any stage, a remote that its own
clean-up deletes (the project's default, which resolves beside the temporary clone)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.flows import check_push_remote
from tests.pipeline.conftest import ROOT


def _clone(parent: Path) -> Path:
    """A checkout's DVC configuration (the committed .dvc/config) at ``parent/hrnet-zoo``."""
    project = parent / "hrnet-zoo"
    (project / ".dvc").mkdir(parents=True)
    shutil.copy(ROOT / ".dvc" / "config", project / ".dvc" / "config")
    return project


@pytest.fixture(autouse=True)
def no_user_dvc_config(tmp_path, monkeypatch):
    """DVC's global and system levels of this test only (the developer's are not read)."""
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "global"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "system"))
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)


def test_the_default_remote_beside_a_checkout(tmp_path):
    project = _clone(tmp_path)
    # run by hand (or by a flow called in the checkout): the folder beside the checkout
    assert check_push_remote(str(project)) == str(tmp_path / "hrnet-zoo-dvc-remote")


def test_a_workers_run_refuses_a_remote_in_its_temporary_clone(tmp_path, monkeypatch):
    project = _clone(tmp_path)
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "0190-test")
    with pytest.raises(ValueError, match="would be lost") as err:
        check_push_remote(str(project))
    message = str(err.value)
    assert "'local'" in message and str(tmp_path / "hrnet-zoo-dvc-remote") in message
    assert "dvc remote add -d store s3://" in message and "`remote` parameter" in message


def test_a_workers_run_pushes_to_a_remote_that_outlives_it(tmp_path, monkeypatch):
    project = _clone(tmp_path / "work")  # the worker's temporary folder
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "0190-test")
    config = project / ".dvc" / "config"
    # a committed S3 default (what the deployment test's project has)
    config.write_text(config.read_text() + "['remote \"store\"']\n    url = s3://bucket/hrnet-zoo\n")
    assert check_push_remote(str(project), "store") == "s3://bucket/hrnet-zoo"
    # a remote configured on the worker, named by the run's `remote` parameter
    (tmp_path / "global").mkdir()
    shared = tmp_path / "global" / "shared-remote"  # not beside the clone
    (tmp_path / "global" / "config").write_text(f"['remote \"shared\"']\n    url = {shared}\n")
    assert check_push_remote(str(project), "shared") == str(shared)
    with pytest.raises(ValueError, match="no DVC remote 'nope' \\(configured: shared, local, store\\)"):
        check_push_remote(str(project), "nope")
