"""The ``hrnet`` executable (:func:`hrnet.cli.console`) against :func:`hrnet.cli.main`."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

# runs the executable's entry in a fresh interpreter; the atexit hook sees the collector as the
# interpreter is about to shut down (after console() returned)
_PROBE = """
import atexit, gc, sys
from hrnet.cli import console
atexit.register(lambda: print(gc.get_threshold(), gc.get_freeze_count() > 0))
sys.argv = ["hrnet", "info", "--help"]
sys.exit(console())
"""


def test_executable_raises_gc_threshold_and_freezes_before_exit():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "(10000, 10, 10) True"


def test_main_leaves_the_collector_as_it_found_it(capsys):
    from hrnet.cli import main

    before = (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled())
    with pytest.raises(SystemExit) as exit_:
        main(["info", "--help"])
    assert exit_.value.code == 0
    assert (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == before
    assert "usage: hrnet info" in capsys.readouterr().out
