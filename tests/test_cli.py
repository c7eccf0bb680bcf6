"""The ``hrnet`` executable (:func:`hrnet.cli.console`) against :func:`hrnet.cli.main`."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

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


def test_every_hrnet_command_in_the_readme_parses() -> None:
    """The README's ``hrnet ...`` lines are commands the CLI accepts (flags spelt as it spells them)."""
    import re
    import shlex
    from pathlib import Path

    from hrnet.cli import build_parser

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    parser = build_parser()
    lines = [
        line.split("  #")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
    ]
    commands = [line for line in lines if line.startswith("hrnet ") and "..." not in line and "[" not in line]
    assert len(commands) >= 20
    for line in commands:
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit:
            raise AssertionError(f"README: {line}") from None


def test_stray_arguments_of_pipeline_are_refused(capsys) -> None:
    from hrnet.cli import main

    assert main(["pipeline", "sync", "check"]) == 2  # not a silent `sync` that rewrites the files
    assert "did you mean --check?" in capsys.readouterr().err
    assert main(["pipeline", "deps", "train", "--check"]) == 2
    assert "--check goes with pipeline sync" in capsys.readouterr().err


def test_another_evaluation_is_never_logged_as_the_runs_own() -> None:
    from hrnet.commands.evaluate import _logged_as

    run = Path("runs/x")
    assert _logged_as(run, run) == "eval"
    assert _logged_as(run, run / "eval") == "eval-eval"
    assert _logged_as(run, Path("/tmp/evaluation")) == "eval-evaluation"
    assert _logged_as(run, run / "eval-test") == "eval-test"
