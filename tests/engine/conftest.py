"""Tiny datasets and a runner for the `hrnet` CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def make_image_folder(root: Path, *, per_class: int = 8, size: int = 16, seed: int = 0) -> Path:
    """Two classes told apart by colour (red-ish / blue-ish squares on noise), train and val."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c, name in enumerate(("blue", "red")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
                img[2:-2, 2:-2, 2 if c == 0 else 0] = 230
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("tiny") / "data")


def tiny_train_flags(data: Path) -> list[str]:
    """A small classification run: 16x16 inputs, batch 4, deterministic, no workers."""
    return [
        "--task", "classification", "--model", "hrnet_w18_small", "--data", str(data),
        "--input-size", "16", "--batch-size", "4", "--lr", "0.02", "--scale-range", "0.8", "1.0",
        "--deterministic", "--workers", "0", "--seed", "3", "--no-progress", "--no-mlflow",
    ]  # fmt: skip


def cli_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


def run_cli(args: list[str], *, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m hrnet.cli ARGS`` in a subprocess; fails the test with its output on error."""
    proc = subprocess.run(
        [sys.executable, "-m", "hrnet.cli", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"hrnet {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc
