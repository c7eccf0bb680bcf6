"""pipelines/prefect.yaml: every deployment names a flow of pipelines/flows.py, passes only its
parameters, and the rows it names exist and can run."""

from __future__ import annotations

import inspect

import pytest
import yaml

from hrnet.mlops.rows import load_rows
from tests.pipeline.conftest import ROOT

SUITE_PARAMS = {"embedded": "params.yaml", "paper": "benchmarks/params.yaml"}


def _deployments() -> list[dict]:
    return yaml.safe_load((ROOT / "pipelines" / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_deployment_matches_its_flow(deployment):
    from pipelines import flows

    path, name = deployment["entrypoint"].split(":")
    assert (ROOT / path).is_file()
    flow = getattr(flows, name)
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment["parameters"]) <= accepted
    params = deployment["parameters"]
    assert deployment["work_pool"]["name"] == "gpu"
    if name == "verify_flow":  # a pattern of row ids with catalogued checkpoints
        from pipelines.flows import _verify_items

        assert _verify_items(params["rows"], str(ROOT))
        return
    ready = {r.id for r in load_rows(ROOT / SUITE_PARAMS[params["suite"]], suite="x") if r.status == "ready"}
    if "row" in params:
        assert params["row"] in ready
    else:  # ids or patterns: _suite_rows raises for one that names no ready row
        from pipelines.flows import SUITES, _suite_rows

        _suite_rows(params["rows"], SUITES[params["suite"]], str(ROOT))


def test_fan_out_targets_an_existing_deployment():
    names = {d["name"] for d in _deployments()}
    for d in _deployments():
        target = d["parameters"].get("deployment")
        if target:
            flow_name, deployment_name = target.split("/")
            assert flow_name == "row" and deployment_name in names


def test_nightly_schedule():
    (nightly,) = [d for d in _deployments() if d.get("schedules")]
    assert nightly["schedules"][0]["cron"] == "0 2 * * *"
    # the whole embedded suite, as its description says
    from pipelines.flows import SUITES, _suite_rows

    ready = [r.id for r in load_rows(ROOT / "params.yaml", suite="x") if r.status == "ready"]
    assert _suite_rows(nightly["parameters"]["rows"], SUITES["embedded"], str(ROOT)) == ready
    assert len(ready) == 5


def test_row_patterns():
    from pipelines.flows import SUITES, _suite_rows

    assert _suite_rows(["shapes_*"], SUITES["embedded"], str(ROOT)) == ["shapes_seg", "shapes_det"]
    with pytest.raises(ValueError, match="no runnable row matches 'nope'"):
        _suite_rows(["digits_cls", "nope"], SUITES["embedded"], str(ROOT))
