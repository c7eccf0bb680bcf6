"""Download a public dataset (or a mirror of it), verify its checksums and publish it atomically."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dataset", nargs="?", help="catalogue name (see --list), or any name with --source and --sha256"
    )
    parser.add_argument("--out", type=Path, default=Path("data"), help="parent folder (default: data)")
    parser.add_argument(
        "--source",
        help="override the official location: https://, http://, s3://bucket/key or file://; for a "
        "several-file dataset a prefix ending in / to which each file name is appended",
    )
    parser.add_argument("--sha256", help="expected sha256 of the --source file (one-file fetches)")
    parser.add_argument(
        "--endpoint-url", help="S3 endpoint (a moto server, a mirror); default $AWS_ENDPOINT_URL"
    )
    parser.add_argument("--force", action="store_true", help="fetch again and replace a published folder")
    parser.add_argument("--keep-archives", action="store_true", help="keep the downloads in OUT/.downloads")
    parser.add_argument("--retries", type=int, default=5, help="attempts per file on transient errors")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")


def run(args: argparse.Namespace) -> int:
    from urllib.parse import urlparse

    from rich.console import Console

    from hrnet.data import catalog
    from hrnet.data.fetch import Checksum, RemoteFile, RetryPolicy, fetch_files
    from hrnet.errors import HRNetError

    console = Console(stderr=True)
    if args.list:
        for name in catalog.list_datasets():
            entry = catalog.get_dataset(name)
            tag = " (manual step)" if entry.manual else ""
            print(f"{name}{tag}: {entry.description}")
        return 0
    if not args.dataset:
        raise HRNetError("fetch: name a dataset (hrnet fetch --list shows the catalogue)")

    sha256 = Checksum("sha256", args.sha256) if args.sha256 else None
    known = args.dataset in catalog.list_datasets() or args.dataset in catalog.EMBEDDED
    if known:
        entry = catalog.get_dataset(args.dataset)
        files = catalog.resolve_files(entry, args.source)
        if sha256 is not None:
            if len(files) != 1:
                raise HRNetError(f"{args.dataset}: --sha256 applies to one-file datasets only")
            (only,) = files
            files = (RemoteFile(only.url, only.filename, sha256, only.extract),)
    else:
        if not args.source:
            catalog.get_dataset(args.dataset)  # raises with the list of known names
        filename = Path(urlparse(args.source).path).name
        if not filename:
            raise HRNetError(f"{args.source}: a custom source must name a file")
        if sha256 is None:
            console.print(
                "[yellow]no --sha256 given: the checksum is computed and recorded (trust on first use)"
            )
        files = (RemoteFile(args.source, filename, sha256),)

    result = fetch_files(
        args.dataset,
        files,
        out=args.out,
        endpoint_url=args.endpoint_url,
        force=args.force,
        keep_archives=args.keep_archives,
        retry=RetryPolicy(attempts=max(1, args.retries)),
    )
    if result.already_present:
        console.print(
            f"{result.path}: already fetched ({result.manifest.get('fetched_at')}); --force to redo"
        )
        return 0
    for record in result.manifest["files"]:
        how = "verified" if record["verified"] else "recorded (no published checksum)"
        console.print(f"{record['filename']}: {record['checksum']} {how}")
    console.print(f"[green]published {result.path}")
    return 0
