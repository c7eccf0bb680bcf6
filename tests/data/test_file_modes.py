"""Atomically written results get an ordinary file's mode (0666 / 0777 less the umask), not
the private 0600 / 0700 of mkstemp / mkdtemp: run folders and mirrors are read by a team."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writers_follow_the_umask(tmp_path, umask_022) -> None:
    import torch

    from hrnet.data.fetch import RemoteFile, fetch_files
    from hrnet.data.io import atomic_directory, write_json_atomic
    from hrnet.engine.checkpoint import save_atomic

    write_json_atomic(tmp_path / "metrics.json", {"top1": 1.0})
    save_atomic({"w": torch.zeros(1)}, tmp_path / "model.pt")
    with atomic_directory(tmp_path / "dataset") as folder:
        (folder / "a.txt").write_text("a")
    assert _mode(tmp_path / "metrics.json") == _mode(tmp_path / "model.pt") == 0o644
    assert _mode(tmp_path / "dataset") == 0o755

    source = tmp_path / "file.bin"
    source.write_bytes(b"x")
    result = fetch_files("toy", (RemoteFile(source.as_uri(), "file.bin"),), out=tmp_path / "out")
    assert _mode(result.path) == 0o755 and _mode(result.path / ".fetched.json") == 0o644
    assert _mode(result.path / "file.bin") == 0o644
