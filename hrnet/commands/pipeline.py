"""Write dvc.yaml and benchmarks/dvc.yaml from the params files (`sync`), or check them (`--check`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("sync", "deps"),
        help="sync: write the dvc.yaml files; deps: print the code a command's stages depend on",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default=None,
        help="with deps: generate, fetch, validate, train, evaluate, register or report",
    )
    parser.add_argument(
        "--check", action="store_true", help="with sync: fail (exit 1) when a file is out of step"
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="project root (default: .)")


def run(args: argparse.Namespace) -> int:
    from hrnet.errors import HRNetError
    from hrnet.mlops import pipeline

    if args.action == "deps" and args.check:
        raise HRNetError("--check goes with pipeline sync, not deps")
    if args.action == "deps":
        if args.command not in pipeline._COMMANDS:
            raise HRNetError(f"pipeline deps: name one of {', '.join(pipeline._COMMANDS)}")
        print("\n".join(pipeline.command_deps(args.command)))
        return 0
    if args.command is not None:  # `hrnet pipeline sync check`: not silently a plain sync
        raise HRNetError(
            f"pipeline sync takes no argument, got {args.command!r} (did you mean --{args.command}?)"
        )
    try:
        stale = pipeline.sync(args.root, check=args.check)
    except HRNetError as exc:
        if args.check:
            print(exc)
            return 1
        raise
    for path in stale:
        print(f"wrote {path}")
    if not stale:
        print("dvc.yaml files are in step with the params files")
    return 0
