"""Run the paper rows' whole chains on tiny data in their real formats (the smoke mode)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rows", nargs="*", help="paper row ids (default: every runnable row)")
    parser.add_argument("--out", type=Path, default=Path("reports/smoke"), help="summary.json and the report")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the project copy (WORK/project, replaced by the next smoke) and the mirror here; each "
        "finished row's weight files (.pt, their DVC cache and MLflow copies) are deleted to save disk, its "
        "metrics, registry entry and report line stay",
    )
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI (default: SQLite in the copy)"
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="project root (default: .)")
    parser.add_argument(
        "--verify",
        nargs="*",
        default=None,
        metavar="ITEM",
        help="also run verify@ITEM from a checkpoint written in its publisher's layout on the mirror; "
        "with no ITEM, every verify@ of the rows named (with ITEMs and no row: only those)",
    )


def run(args: argparse.Namespace) -> int:
    from hrnet.errors import HRNetError
    from hrnet.mlops.smoke import main_summary, run_smoke

    if args.out.exists() and not args.out.is_dir():  # found now, not after every chain has run
        raise HRNetError(f"--out {args.out}: a file, not a folder (summary.json and the report go there)")

    if args.verify is None:  # no --verify: the rows' chains only
        rows, verify = args.rows or None, []
    elif not args.verify:  # --verify alone: the rows' chains and their verify@ items
        rows, verify = args.rows or None, None
    else:  # --verify ITEM...: those items, and the rows named (none by default)
        rows, verify = args.rows, list(args.verify)
    results = run_smoke(
        rows, root=args.root, work=args.work, out=args.out, tracking_uri=args.tracking_uri, verify=verify
    )
    print(f"wrote {args.out / 'summary.json'}")
    return main_summary(results)
