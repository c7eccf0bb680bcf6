"""Prefect flows over the DVC pipelines: Prefect schedules, retries, limits and shows the work;
DVC stays the single owner of lineage and caching.

Every step is one ``dvc repro --single-item <stage>`` of ``dvc.yaml`` (the embedded suite) or
``benchmarks/dvc.yaml`` (the paper rows), so a flow run and a plain ``dvc repro`` produce the
same versioned outputs and the same ``dvc.lock``::

    row_flow(row)
      generate@<dataset> | fetch@<dataset>   retried (I/O) for fetch
      validate@<dataset>
      train@<row>      \\ under the global concurrency limit `gpu` (one slot per GPU)
      evaluate@<row>   /
      register@<row>
      dvc push                              optional, retried (I/O)

    benchmark_flow(rows)   the rows one after another in this workspace (one `dvc repro` at a
                           time per workspace), or fanned out to a deployment of row_flow whose
                           runs each get their own checkout on a GPU worker (pipelines/prefect.yaml)

Each command runs in its own process group (``start_new_session=True``). If the flow run is
cancelled (the worker sends SIGTERM, Prefect raises ``TerminationSignal``), fails or is
interrupted, the whole group -- dvc, the shell, ``hrnet train`` and any torchrun workers -- is
terminated, then killed after a grace period: no training process outlives its flow run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.concurrency.sync import concurrency

__all__ = [
    "SUITES",
    "CommandError",
    "Suite",
    "benchmark_flow",
    "check_push_remote",
    "row_flow",
    "run_command",
    "verify_flow",
]

# seconds between SIGTERM and SIGKILL of a command's process group
KILL_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Suite:
    """Where a suite's rows and stages live, relative to the project root."""

    dvcfile: str  # the dvc.yaml holding the stages
    params: str  # the params file holding rows/benchmark
    data_stage: str  # the stage that makes a dataset: generate (embedded) or fetch (paper)

    def target(self, stage: str, item: str) -> str:
        """The DVC target of ``stage@item`` (``train@digits_cls``, ``benchmarks/dvc.yaml:fetch@coco``)."""
        name = f"{stage}@{item}"
        return name if self.dvcfile == "dvc.yaml" else f"{self.dvcfile}:{name}"


SUITES: dict[str, Suite] = {
    "embedded": Suite("dvc.yaml", "params.yaml", "generate"),
    "paper": Suite("benchmarks/dvc.yaml", "benchmarks/params.yaml", "fetch"),
}


class CommandError(RuntimeError):
    """A pipeline command exited with a non-zero status."""

    def __init__(self, argv: Sequence[str], returncode: int, tail: str) -> None:
        super().__init__(f"`{' '.join(argv)}` exited with status {returncode}\n{tail}")
        self.returncode = returncode


# --------------------------------------------------------------------------------------------
# Running a command in its own process group
# --------------------------------------------------------------------------------------------


def _kill_group(pgid: int, grace: float, leader: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group, wait up to ``grace`` seconds, then SIGKILL what is left.
    ``leader`` (the group's first process, our child) is reaped while waiting: an exited but
    unreaped leader would keep the group "alive" for the whole grace period."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        try:
            os.killpg(pgid, 0)  # raises once no process of the group is left
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def run_command(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    env: dict[str, str] | None = None,
    grace: float = KILL_GRACE_SECONDS,
) -> None:
    """Run ``argv`` in ``cwd`` as the leader of a new process group and stream its output to the
    run logger. On any exception while it runs (``TerminationSignal`` on cancellation,
    ``KeyboardInterrupt``) the whole group is terminated before the exception propagates.

    Raises:
        CommandError: the command exited non-zero; the message holds the last lines it printed.
    """
    logger = get_run_logger()
    logger.info("$ %s", " ".join(argv))
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group: killable as a whole
    )
    tail: list[str] = []
    try:
        for line in proc.stdout:  # type: ignore[union-attr]  # PIPE was asked for
            line = line.rstrip()
            logger.info(line)
            tail = [*tail[-39:], line]
        returncode = proc.wait()
    except BaseException:
        logger.warning("interrupted: stopping process group %d", proc.pid)
        _kill_group(proc.pid, grace, proc)
        proc.wait()
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    if returncode != 0:
        raise CommandError(argv, returncode, "\n".join(tail))


def _dvc() -> str:
    """The dvc executable next to this Python (the project's venv), else the one on PATH."""
    candidate = Path(sys.executable).with_name("dvc")
    return str(candidate) if candidate.exists() else "dvc"


# --------------------------------------------------------------------------------------------
# Tasks: one DVC stage each
# --------------------------------------------------------------------------------------------


def _repro(target: str, project_dir: str, pull: bool) -> str:
    argv = [_dvc(), "repro", "--single-item", target]
    if pull:
        argv.append("--pull")  # fetch cached outputs and missing deps from the remote first
    run_command(argv, cwd=project_dir)
    return target


# what `hrnet fetch` says when a dataset needs a manual download: retrying cannot help
MANUAL_STEP = "cannot be downloaded automatically"


def _worth_retrying(task: object, task_run: object, state: Any) -> bool:
    """Retry a failed fetch unless it failed on a manual step."""
    try:
        state.result()
    except CommandError as exc:
        return MANUAL_STEP not in str(exc)
    except Exception:
        return True
    return False


@task(
    name="fetch",
    retries=2,
    retry_delay_seconds=30,
    retry_condition_fn=_worth_retrying,
    task_run_name="{target}",
)
def fetch_stage(target: str, project_dir: str, pull: bool = False) -> str:
    """Download a paper dataset (network I/O: retried, except when a manual step is missing)."""
    return _repro(target, project_dir, pull)


@task(name="stage", task_run_name="{target}")
def dvc_stage(target: str, project_dir: str, pull: bool = False) -> str:
    """Reproduce one DVC stage (not retried: a failing stage fails the same way again)."""
    return _repro(target, project_dir, pull)


def check_push_remote(project_dir: str, remote: str | None = None) -> str:
    """The URL ``dvc push`` would send ``project_dir``'s outputs to (``remote``, else the default
    remote); ValueError, before any stage runs, when there is none, or when it is a folder the
    run's own clean-up deletes.

    A flow run that a worker started from a deployment works in a clone that its pull step made
    in a temporary folder, deleted when the run ends; the project's default remote
    (``../../hrnet-zoo-dvc-remote`` in ``.dvc/config``, resolved beside the checkout) would be in
    that folder too, and the pushes would be lost while the run reports success."""
    import os
    import tempfile

    from dvc.config import Config

    config = Config(dvc_dir=Path(project_dir) / ".dvc")  # system, global, repo and local levels
    name = remote or config["core"].get("remote")
    remotes = config["remote"]
    if not name:
        raise ValueError(f"{project_dir}: no default DVC remote to push to; name one (remote=...)")
    if name not in remotes:
        raise ValueError(
            f"{project_dir}: no DVC remote {name!r} (configured: {', '.join(remotes) or 'none'})"
        )
    url = str(remotes[name]["url"])
    if "PREFECT__FLOW_RUN_ID" in os.environ and "://" not in url:  # a worker's run; a local folder
        folder = Path(url).resolve()
        clone_parent = Path(project_dir).resolve().parent
        if folder.is_relative_to(clone_parent) and clone_parent.is_relative_to(
            Path(tempfile.gettempdir()).resolve()
        ):
            raise ValueError(
                f"DVC remote {name!r} is {folder}, a folder beside this flow run's clone ({project_dir}) "
                "in the temporary folder the worker deletes when the run ends: the pushed outputs would be "
                "lost. Give the deployment a remote that outlives the run: commit one as the default "
                "(`dvc remote add -d store s3://BUCKET/hrnet-zoo`, then commit .dvc/config), or configure "
                "one on the worker (`dvc remote add --global store s3://BUCKET/hrnet-zoo`, or an absolute "
                "folder the workers share) and name it in the run's `remote` parameter"
            )
    return url


@task(name="push", retries=3, retry_delay_seconds=20)
def push_outputs(targets: list[str], project_dir: str, remote: str | None = None) -> list[str]:
    """``dvc push`` the outputs of ``targets`` to the remote (network I/O: retried)."""
    argv = [_dvc(), "push", *(["--remote", remote] if remote else []), *targets]
    run_command(argv, cwd=project_dir)
    return targets


# --------------------------------------------------------------------------------------------
# Flows
# --------------------------------------------------------------------------------------------


def _row(row: str, suite: Suite, project_dir: str) -> Any:
    """The runnable ``BenchmarkRow`` named ``row`` of the suite's params file; fails when the
    checkout's dvc.yaml files are out of step with its params files (`hrnet pipeline sync`)."""
    from hrnet.mlops.pipeline import check_in_step
    from hrnet.mlops.rows import load_rows

    check_in_step(project_dir)

    rows = {r.id: r for r in load_rows(Path(project_dir) / suite.params, suite="")}
    if row not in rows:
        raise ValueError(f"{suite.params}: no row {row!r}")
    if rows[row].status != "ready":
        raise ValueError(f"{suite.params}: row {row!r} is {rows[row].status} ({rows[row].reason})")
    return rows[row]


def _suite_rows(patterns: list[str], suite: Suite, project_dir: str) -> list[str]:
    """The runnable rows of the suite named by ``patterns`` (row ids or shell patterns of row
    ids: ``*`` is every ready row), in the params file's order; a pattern matching no ready row
    is an error naming it."""
    import fnmatch

    from hrnet.mlops.rows import load_rows

    ready = [r.id for r in load_rows(Path(project_dir) / suite.params, suite="") if r.status == "ready"]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(r, pattern) for r in ready):
            raise ValueError(
                f"{suite.params}: no runnable row matches {pattern!r} (rows: {', '.join(ready)})"
            )
    return [r for r in ready if any(fnmatch.fnmatchcase(r, p) for p in patterns)]


@flow(name="row", flow_run_name="{row}", log_prints=True)
def row_flow(
    row: str,
    suite: str = "embedded",
    project_dir: str = ".",
    push: bool = False,
    remote: str | None = None,
    pull: bool = False,
    gpu_limit: str | None = "gpu",
) -> dict[str, str]:
    """Run one benchmark row end to end through its DVC stages.

    Args:
        row: the row id (``digits_cls``, ``seg_cityscapes_w48_40k``...).
        suite: ``embedded`` (dvc.yaml) or ``paper`` (benchmarks/dvc.yaml).
        project_dir: the project checkout (a DVC repository).
        push: ``dvc push`` the row's outputs to ``remote`` (the default remote when None).
        pull: let DVC pull cached outputs and missing dependencies from the remote first
            (a fresh checkout on a worker).
        gpu_limit: the global concurrency limit held while training and evaluating; None to
            run without one. A limit that does not exist is not waited for.

    Returns:
        ``{"row", "model", "metrics", "registered"}``: paths of the row's outputs.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, not {suite!r}")
    spec = SUITES[suite]
    project_dir = str(Path(project_dir).resolve())
    benchmark_row = _row(row, spec, project_dir)
    if push:
        check_push_remote(project_dir, remote)  # before any stage: pushes that would be lost
    dataset, upstream = benchmark_row.dataset, benchmark_row.starts_from_row
    if upstream:  # the row starts from another row's model: that row runs first (a no-op when done)
        row_flow(upstream, suite=suite, project_dir=project_dir, push=push, remote=remote, pull=pull,
                 gpu_limit=gpu_limit)  # fmt: skip

    data_target = spec.target(spec.data_stage, dataset)
    if spec.data_stage == "fetch":
        fetch_stage(data_target, project_dir, pull)
    else:
        dvc_stage(data_target, project_dir, pull)
    dvc_stage(spec.target("validate", dataset), project_dir, pull)
    weights = benchmark_row.init.name if benchmark_row.init.kind == "weights" else None
    if weights:  # the published ImageNet backbone the row starts from
        fetch_stage(spec.target("weights", weights), project_dir, pull)
    if gpu_limit:
        with concurrency(gpu_limit, occupy=1):
            dvc_stage(spec.target("train", row), project_dir, pull)
            dvc_stage(spec.target("evaluate", row), project_dir, pull)
    else:
        dvc_stage(spec.target("train", row), project_dir, pull)
        dvc_stage(spec.target("evaluate", row), project_dir, pull)
    dvc_stage(spec.target("register", row), project_dir, pull)
    if push:
        stages = [spec.target(s, dataset) for s in (spec.data_stage, "validate")]
        stages += [spec.target("weights", weights)] if weights else []
        stages += [spec.target(s, row) for s in ("train", "evaluate", "register")]
        push_outputs(stages, project_dir, remote)
    run_dir = Path(project_dir) / "runs" / row
    return {
        "row": row,
        "model": str(run_dir / "model.pt"),
        "metrics": str(run_dir / "metrics.json"),
        "registered": str(run_dir / "registered.json"),
    }


@flow(name="benchmark", log_prints=True)
def benchmark_flow(
    rows: list[str],
    suite: str = "embedded",
    project_dir: str = ".",
    deployment: str | None = None,
    push: bool = False,
    remote: str | None = None,
    gpu_limit: str | None = "gpu",
) -> dict[str, str]:
    """Run several rows (ids or shell patterns of ids, ``["*"]``: the whole suite); return
    ``{row: final state name}``, or fail naming the rows that did not complete (after all rows
    have run).

    Without ``deployment`` the rows run here, one after another, in ``project_dir`` (DVC runs
    one ``dvc repro`` per workspace). With ``deployment`` (``row/gpu``) every row becomes a
    flow run of that deployment -- each in its own checkout on a GPU worker, pulling inputs
    from and pushing outputs to the DVC remote -- all submitted at once; the work pool's
    workers and the ``gpu`` concurrency limit decide how many train at the same time.
    """
    logger = get_run_logger()
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, not {suite!r}")
    rows = _suite_rows(list(rows), SUITES[suite], project_dir)
    states: dict[str, str] = {}
    if deployment is None and push:
        check_push_remote(str(Path(project_dir).resolve()), remote)
    if deployment is None:
        for row in rows:
            state = row_flow(
                row,
                suite=suite,
                project_dir=project_dir,
                push=push,
                remote=remote,
                gpu_limit=gpu_limit,
                return_state=True,
            )
            states[row] = state.name
            logger.info("%s: %s", row, state.name)
    else:
        from prefect.deployments import run_deployment

        params = {"suite": suite, "push": True, "pull": True, "remote": remote, "gpu_limit": gpu_limit}
        runs = {row: run_deployment(deployment, parameters={"row": row, **params}, timeout=0) for row in rows}
        for row, flow_run in runs.items():
            states[row] = _wait_for(flow_run.id)
            logger.info("%s: %s (flow run %s)", row, states[row], flow_run.id)
    failed = sorted(row for row, name in states.items() if name != "Completed")
    if failed:
        raise RuntimeError(f"rows not completed: {', '.join(f'{r} ({states[r]})' for r in failed)}")
    return states


def _verify_items(pattern: str, project_dir: str) -> dict[str, Any]:
    """The verify@ items of the paper rows whose row id matches the shell pattern ``pattern``."""
    import fnmatch

    from hrnet.mlops.pipeline import check_in_step
    from hrnet.mlops.rows import load_suite
    from hrnet.mlops.verify import row_checkpoints

    check_in_step(project_dir)
    suite = load_suite(Path(project_dir) / SUITES["paper"].params)
    items = {k: v for k, v in row_checkpoints(suite).items() if fnmatch.fnmatchcase(v[0].id, pattern)}
    if not items:
        raise ValueError(f"no paper row with a catalogued checkpoint matches {pattern!r}")
    return items


@flow(name="verify", flow_run_name="verify {rows}", log_prints=True)
def verify_flow(
    rows: str = "seg_cityscapes_*",
    project_dir: str = ".",
    pull: bool = False,
    push: bool = False,
    remote: str | None = None,
    gpu_limit: str | None = "gpu",
) -> dict[str, str]:
    """Verify the paper rows matching ``rows`` (a shell pattern of row ids: one table) from their
    published checkpoints: for each, ``checkpoint@`` (the file, with its published checksum), the
    dataset's fetch/validate, then ``verify@`` (strict load, the row's protocol, compared with the
    published number, registered with the alias ``published``) under the ``gpu`` limit.

    Returns ``{verify item: outcome}`` (``reproduced``, ``not reproduced`` or the failure).
    """
    import json

    logger = get_run_logger()
    project_dir = str(Path(project_dir).resolve())
    spec = SUITES["paper"]
    outcomes: dict[str, str] = {}
    items = _verify_items(rows, project_dir)
    if push:
        check_push_remote(project_dir, remote)
    for key, (row, checkpoint) in items.items():
        try:
            fetch_stage(spec.target("checkpoint", checkpoint.name), project_dir, pull)
            fetch_stage(spec.target(spec.data_stage, row.dataset), project_dir, pull)
            dvc_stage(spec.target("validate", row.dataset), project_dir, pull)
            if gpu_limit:
                with concurrency(gpu_limit, occupy=1):
                    dvc_stage(spec.target("verify", key), project_dir, pull)
            else:
                dvc_stage(spec.target("verify", key), project_dir, pull)
            from hrnet.mlops.verify import source_slug

            record = (
                Path(project_dir)
                / "runs"
                / row.id
                / f"verify-{source_slug(checkpoint.name)}"
                / "verified.json"
            )
            outcomes[key] = json.loads(record.read_text())["outcome"]
            if push:
                push_outputs([spec.target("verify", key)], project_dir, remote)
        except (
            Exception
        ) as exc:  # one row's failure (a manual download, a missing dataset) does not stop the table
            outcomes[key] = f"failed: {str(exc).splitlines()[0][:200]}"
        logger.info("%s: %s", key, outcomes[key])
    return outcomes


def _wait_for(flow_run_id: object, poll_seconds: float = 10.0) -> str:
    """Wait for a flow run to reach a final state; return the state's name."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(flow_run_id).state
            if state is not None and state.is_final():
                return state.name
            time.sleep(poll_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.flows ROW [ROW...] [--suite paper] [--push]``: run rows here."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipelines.flows", description=main.__doc__)
    parser.add_argument("rows", nargs="+", help="row ids")
    parser.add_argument("--suite", choices=sorted(SUITES), default="embedded")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--push", action="store_true", help="dvc push the outputs")
    parser.add_argument("--remote", default=None, help="DVC remote (default: the configured default)")
    args = parser.parse_args(argv)
    state = benchmark_flow(
        args.rows,
        suite=args.suite,
        project_dir=args.project_dir,
        push=args.push,
        remote=args.remote,
        return_state=True,
    )
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
