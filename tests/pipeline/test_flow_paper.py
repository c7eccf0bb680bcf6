"""A paper row whose dataset needs a manual download fails at its first task, without retries,
with the manual steps in the error."""

from __future__ import annotations

import os

import pytest

from tests.pipeline.conftest import BIN

pytestmark = pytest.mark.integration


def test_missing_imagenet_fails_at_fetch_without_retries(project, prefect_api, monkeypatch):
    from prefect import get_client

    from pipelines.flows import row_flow

    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    state = row_flow(
        "cls_hrnet_w18", suite="paper", project_dir=str(project), gpu_limit=None, return_state=True
    )
    assert state.is_failed()
    with pytest.raises(Exception, match=r"image-net\.org"):
        state.result()
    with get_client(sync_client=True) as client:
        runs = [t for t in client.read_task_runs() if t.flow_run_id == state.state_details.flow_run_id]
    assert [t.name for t in runs] == ["benchmarks/dvc.yaml:fetch@imagenet"]
    assert runs[0].run_count == 1  # a manual step is not retried
    assert not (project / "runs").exists()
