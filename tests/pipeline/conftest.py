"""Fixtures of the pipeline tests: throw-away DVC repositories and a Prefect test server.

DVC always runs in a temporary git repository (a copy of the working tree, or a toy project),
never in the checkout itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def run(argv: list[str], cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing its output; on failure show it."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **kwargs.pop("env", {})}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def git_commit_all(repo: Path) -> None:
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], repo)


def copy_project(dst: Path) -> Path:
    """The working tree (tracked and untracked, not ignored files) copied into a new git repo."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith(".dvc/tmp"):
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    if not (dst / ".dvc" / "config").exists():
        run([str(BIN / "dvc"), "init", "-q"], dst)
    git_commit_all(dst)
    return dst


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project in a fresh git repository."""
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A Prefect test server for the session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield PREFECT_API_URL.value()
