"""Shared test settings: one CPU thread (the machine is shared) and a fixed seed per test."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    """Seed Python and torch before every test; keep torch on one thread."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    random.seed(0)
