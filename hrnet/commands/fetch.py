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
        "--checksums",
        type=Path,
        help="with --source: a JSON file {filename: sha256} of a mirror whose files differ from the "
        "published ones; it replaces the catalogue's checksum of each file it names",
    )
    parser.add_argument(
        "--endpoint-url", help="S3 endpoint (a moto server, a mirror); default $AWS_ENDPOINT_URL"
    )
    parser.add_argument("--force", action="store_true", help="fetch again and replace a published folder")
    parser.add_argument("--keep-archives", action="store_true", help="keep the downloads in OUT/.downloads")
    parser.add_argument("--retries", type=int, default=5, help="attempts per file on transient errors")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")


def read_checksums(path: Path) -> dict:
    """The ``{filename: Checksum}`` of a ``--checksums`` file (a JSON object of sha256 hex digests)."""
    import json

    from hrnet.data.fetch import Checksum
    from hrnet.errors import HRNetError

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HRNetError(f"{path}: --checksums file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HRNetError(f"{path}: --checksums is not a readable JSON file: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise HRNetError(f"{path}: --checksums must be a JSON object {{filename: sha256 hex}}")
    checksums = {}
    for name, digest in data.items():
        try:
            checksums[str(name)] = Checksum("sha256", digest)
        except HRNetError as exc:
            raise HRNetError(f"{path}: {name!r}: {exc}") from None
    return checksums


def run(args: argparse.Namespace) -> int:
    import dataclasses
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
    checksums = {}
    if args.checksums is not None:
        if not args.source:
            raise HRNetError("fetch: --checksums applies to a mirror: give --source too")
        checksums = read_checksums(args.checksums)
    known = args.dataset in catalog.list_datasets() or args.dataset in catalog.EMBEDDED
    prepare = None
    if known:
        entry = catalog.get_dataset(args.dataset)
        prepare = entry.prepare
        files = catalog.resolve_files(entry, args.source)
        # a mirror-wide listing may name other entries' files too; it must name one of these
        if checksums and not {f.filename for f in files} & set(checksums):
            raise HRNetError(
                f"{args.checksums}: names none of the files of {args.dataset} "
                f"({', '.join(f.filename for f in files)})"
            )
        files = tuple(
            dataclasses.replace(
                f, checksum=checksums[f.filename], checksum_from=f"--checksums {args.checksums}"
            )
            if f.filename in checksums
            else f
            for f in files
        )
        if sha256 is not None:
            if len(files) != 1:
                raise HRNetError(f"{args.dataset}: --sha256 applies to one-file datasets only")
            (only,) = files
            if only.checksum is not None:  # the publisher's: a mirror holds the same bytes
                raise HRNetError(
                    f"{args.dataset}: the catalogue holds the published checksum of {only.filename} "
                    f"({only.checksum}); --sha256 does not replace it. A mirror with other bytes: "
                    "--source with --checksums FILE (recorded as the mirror's checksum, not the publisher's)"
                )
            files = (dataclasses.replace(only, checksum=sha256, checksum_from="--sha256"),)
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
        given = sha256 or checksums.get(filename)
        source = "--sha256" if sha256 else f"--checksums {args.checksums}"
        files = (RemoteFile(args.source, filename, given, checksum_from=source if given else ""),)

    result = fetch_files(
        args.dataset,
        files,
        out=args.out,
        endpoint_url=args.endpoint_url,
        force=args.force,
        keep_archives=args.keep_archives,
        retry=RetryPolicy(attempts=max(1, args.retries)),
        prepare=prepare,
    )
    if result.already_present:
        console.print(
            f"{result.path}: already fetched ({result.manifest.get('fetched_at')}); --force to redo"
        )
        return 0
    for record in result.manifest["files"]:
        origin = record.get("checksum_from", "published")
        if not record["verified"]:
            how = "recorded (no published checksum)"
        elif origin == "published":
            how = "verified (the published checksum)"
        else:
            how = f"verified against {origin} (not a published checksum)"
        console.print(f"{record['filename']}: {record['checksum']} {how}")
    console.print(f"[green]published {result.path}")
    return 0
