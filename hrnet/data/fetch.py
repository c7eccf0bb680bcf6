"""Download, verify and publish datasets: ``https://``, ``http://``, ``s3://`` and ``file://``.

The life of one fetch, and the guarantees it gives::

    <out>/.downloads/<file>.part   bytes arrive here; an interrupted download resumes from its
                                   size (HTTP ``Range`` / S3 ranged GET) on retry or next run
    <out>/.downloads/<file>        renamed from .part once the checksum matches
    <out>/.<name>.tmp-XXXX/        archives are extracted (safely) and plain files copied here
    <out>/<name>/                  os.replace of the temp dir, with .fetched.json inside

A dataset folder is therefore either complete (it holds ``.fetched.json``) or absent. A checksum
mismatch deletes the downloaded bytes, the ``.part`` included, and publishes nothing.

Transient failures (connection errors, timeouts, a truncated body, HTTP/S3 5xx) are retried with
exponential backoff; client errors (4xx, a missing S3 key or file) and checksum mismatches are
not. Archives are checked member by member before anything is extracted: an absolute path, a
``..`` component, a link that points outside the target or a device file refuses the whole
archive.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from hrnet.errors import HRNetError

__all__ = [
    "MANIFEST_NAME",
    "Checksum",
    "FetchResult",
    "RemoteFile",
    "RetryPolicy",
    "TransientError",
    "download",
    "fetch_files",
    "safe_extract",
]

MANIFEST_NAME = ".fetched.json"
CHUNK_SIZE = 1 << 20
MIN_PREFIX_DIGITS = 8  # shortest published checksum prefix accepted (torch.hub file names)
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
HASH_ALGORITHMS = ("sha256", "sha1", "md5")


# --------------------------------------------------------------------------------------------
# What to fetch
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checksum:
    """An expected digest of a file.

    ``algorithm`` is ``"sha256"`` where the publisher gives one; ``"md5"`` or ``"sha1"`` only
    where that is all that was published. ``prefix=True`` holds the leading hex digits only: the
    torch.hub convention of weight files named ``<name>-<first 8 hex digits of the sha256>.pth``,
    where the file name is the published checksum.
    """

    algorithm: str
    hexdigest: str
    prefix: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in HASH_ALGORITHMS:
            raise HRNetError(f"checksum: unknown algorithm {self.algorithm!r}; use one of {HASH_ALGORITHMS}")
        size = hashlib.new(self.algorithm).digest_size * 2
        digest = self.hexdigest.lower()
        length_ok = MIN_PREFIX_DIGITS <= len(digest) <= size if self.prefix else len(digest) == size
        if not length_ok or any(c not in "0123456789abcdef" for c in digest):
            wanted = f"{MIN_PREFIX_DIGITS} to {size}" if self.prefix else str(size)
            raise HRNetError(
                f"checksum: {self.hexdigest!r} is not a {self.algorithm} hex digest ({wanted} hex digits)"
            )
        object.__setattr__(self, "hexdigest", digest)

    def matches(self, actual: Checksum) -> bool:
        """Whether ``actual`` (a full digest of the same algorithm) is this checksum."""
        if actual.algorithm != self.algorithm:
            return False
        return (
            actual.hexdigest.startswith(self.hexdigest) if self.prefix else actual.hexdigest == self.hexdigest
        )

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}" + ("..." if self.prefix else "")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Attributes:
        url: where it is published (``https://``, ``http://``, ``s3://bucket/key``, ``file://``).
        filename: the name it is stored and recorded under.
        checksum: the published digest, or ``None`` when none is published (the fetch then
            computes a sha256 and records it in ``.fetched.json``: trust on first use).
        extract: unpack the archive into the dataset folder (else the file is copied there).
        extract_to: a sub-folder of the dataset folder to unpack (or copy) into, for archives
            published without a top-level folder (iBUG's ``helen.zip`` holds ``trainset/`` and
            ``testset/``); empty: the dataset folder itself.
        checksum_from: who vouches for ``checksum`` when it is not the publisher (``--checksums
            FILE`` of a mirror, ``--sha256``); recorded in ``.fetched.json`` beside it.
    """

    url: str
    filename: str
    checksum: Checksum | None = None
    extract: bool = True
    extract_to: str = ""
    checksum_from: str = ""

    def __post_init__(self) -> None:
        parts = PurePosixPath(self.extract_to).parts
        if self.extract_to and (PurePosixPath(self.extract_to).is_absolute() or ".." in parts):
            raise HRNetError(f"{self.filename}: extract_to {self.extract_to!r} must be a relative sub-folder")

    @property
    def is_archive(self) -> bool:
        return self.filename.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: waits ``base_delay * factor**k`` seconds (capped) between attempts."""

    attempts: int = 5
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0

    def delays(self) -> Iterator[float]:
        for k in range(self.attempts - 1):
            yield min(self.max_delay, self.base_delay * self.factor**k)


@dataclass(frozen=True)
class FetchResult:
    """Where a dataset landed, and what its manifest says."""

    path: Path
    manifest: dict = field(compare=False)
    already_present: bool = False


class TransientError(Exception):
    """A failure worth retrying (connection lost, timeout, truncated body, server error)."""


class _RangeNotSatisfiable(Exception):
    """The server refused the resume offset: the ``.part`` is not a prefix of the file."""


# --------------------------------------------------------------------------------------------
# Transports: each opens a byte stream starting at ``offset`` and says whether it honoured it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stream:
    body: BinaryIO
    resumed: bool  # True: bytes start at the requested offset; False: they start at 0
    total: int | None  # full size of the file, when known


def _open_http(url: str, offset: int, timeout: float) -> _Stream:
    request = urllib.request.Request(url, headers={"User-Agent": "hrnet-zoo"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is already complete (or longer than the file)
            raise _RangeNotSatisfiable from exc
        if exc.code >= 500 or exc.code == 429:
            raise TransientError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        raise HRNetError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    length = response.headers.get("Content-Length")
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")  # bytes a-b/total
        total = content_range.rpartition("/")[2]
        return _Stream(response, True, int(total) if total.isdigit() else None)
    return _Stream(response, False, int(length) if length and length.isdigit() else None)


def _s3_client(endpoint_url: str | None):
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    # one retry policy (ours) rather than two stacked ones
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=30, read_timeout=60)
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def _open_s3(url: str, offset: int, endpoint_url: str | None) -> _Stream:
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urllib.parse.urlparse(url)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise HRNetError(f"{url}: an S3 source is s3://bucket/key")
    client = _s3_client(endpoint_url)
    kwargs = {"Bucket": bucket, "Key": key}
    if offset:
        kwargs["Range"] = f"bytes={offset}-"
    try:
        response = client.get_object(**kwargs)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        if status == 416 or code == "InvalidRange":
            raise _RangeNotSatisfiable from exc
        if status >= 500 or code in {"SlowDown", "RequestTimeout", "InternalError"}:
            raise TransientError(f"{url}: S3 {code or status}") from exc
        raise HRNetError(f"{url}: S3 {code or status}: {exc}") from exc
    except BotoCoreError as exc:  # endpoint unreachable, connection closed, read timeout
        raise TransientError(f"{url}: {exc}") from exc
    content_range = response.get("ContentRange") or ""
    if content_range:
        total = content_range.rpartition("/")[2]
        return _Stream(response["Body"], True, int(total) if total.isdigit() else None)
    return _Stream(response["Body"], False, response.get("ContentLength"))


def _open_file(url: str, offset: int) -> _Stream:
    path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise HRNetError(f"{path}: no such file (source {url})") from exc
    except OSError as exc:
        raise HRNetError(f"{path}: cannot read: {exc.strerror}") from exc
    size = path.stat().st_size
    if offset > size:  # a .part longer than the file: not a prefix of it
        handle.close()
        raise _RangeNotSatisfiable
    handle.seek(offset)
    return _Stream(handle, True, size)


def _open(url: str, offset: int, *, endpoint_url: str | None, timeout: float) -> _Stream:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme in {"http", "https"}:
        return _open_http(url, offset, timeout)
    if scheme == "s3":
        return _open_s3(url, offset, endpoint_url)
    if scheme == "file":
        return _open_file(url, offset)
    raise HRNetError(f"{url}: unsupported source; use https://, http://, s3://bucket/key or file://")


# --------------------------------------------------------------------------------------------
# Download with resume, retries and checksum
# --------------------------------------------------------------------------------------------


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in chunks."""
    hasher = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
    return hasher.hexdigest()


def _progress(total: int | None, initial: int, name: str):
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (CI logs, tests)
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name, disable=None)


def _download_once(url: str, part: Path, *, endpoint_url: str | None, timeout: float) -> None:
    """Appends to ``part`` from its current size to the end of the file."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        stream = _open(url, offset, endpoint_url=endpoint_url, timeout=timeout)
    except _RangeNotSatisfiable:
        part.unlink()  # stale or over-long .part: start again from zero
        stream = _open(url, 0, endpoint_url=endpoint_url, timeout=timeout)
        offset = 0
    if not stream.resumed:
        offset = 0
    mode = "ab" if offset else "wb"
    written = offset
    try:
        with part.open(mode) as out, _progress(stream.total, offset, part.name[: -len(".part")]) as bar:
            while True:
                try:
                    chunk = stream.body.read(CHUNK_SIZE)
                except Exception as exc:  # urllib/http.client/botocore all raise their own kinds
                    raise TransientError(f"{url}: connection lost after {written} bytes: {exc}") from exc
                if not chunk:
                    break
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    finally:
        with contextlib.suppress(Exception):
            stream.body.close()
    if stream.total is not None and written < stream.total:
        raise TransientError(f"{url}: connection closed after {written} of {stream.total} bytes")


def download(
    url: str,
    dest: Path,
    *,
    checksum: Checksum | None = None,
    endpoint_url: str | None = None,
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Checksum:
    """Downloads ``url`` to ``dest`` via ``dest.part``, resuming a partial ``.part``.

    Returns the verified checksum (the expected one, or a computed sha256 when ``checksum`` is
    None). On a mismatch the bytes are deleted and :class:`HRNetError` is raised.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    delays = retry.delays()
    while True:
        try:
            _download_once(url, part, endpoint_url=endpoint_url, timeout=timeout)
            break
        except TransientError as exc:
            delay = next(delays, None)
            if delay is None:
                kept = (
                    f"the partial download {part} ({part.stat().st_size} bytes) is kept; run again to resume"
                    if part.is_file() and part.stat().st_size
                    else "nothing was downloaded"
                )
                raise HRNetError(f"{url}: giving up after {retry.attempts} attempts: {exc} ({kept})") from exc
            sleep(delay)
    algorithm = checksum.algorithm if checksum else "sha256"
    actual = Checksum(algorithm, file_digest(part, algorithm))
    if checksum is not None and not checksum.matches(actual):
        part.unlink()
        raise HRNetError(
            f"{url}: checksum mismatch for {dest.name}: expected {checksum}, got {actual}; "
            "the download was deleted and nothing was published"
        )
    os.replace(part, dest)
    return actual


# --------------------------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------------------------


def _inside(target: Path, relative: str) -> bool:
    resolved = (target / relative).resolve()
    return resolved == target or target in resolved.parents


def _check_name(archive: Path, name: str, target: Path) -> None:
    posix = name.replace("\\", "/")
    if posix.startswith("/") or PurePosixPath(posix).is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        raise HRNetError(f"{archive}: member {name!r}: absolute path; refusing the whole archive")
    if ".." in PurePosixPath(posix).parts:
        raise HRNetError(f"{archive}: member {name!r}: '..' in the path; refusing the whole archive")
    if not _inside(target, posix):
        raise HRNetError(f"{archive}: member {name!r}: lands outside the target; refusing the whole archive")


def _check_tar(archive: Path, tar: tarfile.TarFile, target: Path) -> None:
    for member in tar.getmembers():
        _check_name(archive, member.name, target)
        if (
            member.isdev()
            or member.isfifo()
            or not (member.isfile() or member.isdir() or member.issym() or member.islnk())
        ):
            raise HRNetError(
                f"{archive}: member {member.name!r}: device or special file; refusing the whole archive"
            )
        if member.issym():
            link = member.linkname.replace("\\", "/")
            parent = PurePosixPath(member.name.replace("\\", "/")).parent
            if PurePosixPath(link).is_absolute() or not _inside(target, str(parent / link)):
                raise HRNetError(
                    f"{archive}: member {member.name!r}: symlink to {member.linkname!r} points outside "
                    "the target; refusing the whole archive"
                )
        if member.islnk():
            link = member.linkname.replace("\\", "/")
            if (
                PurePosixPath(link).is_absolute()
                or ".." in PurePosixPath(link).parts
                or not _inside(target, link)
            ):
                raise HRNetError(
                    f"{archive}: member {member.name!r}: hard link to {member.linkname!r} points outside "
                    "the target; refusing the whole archive"
                )


def _check_zip(archive: Path, zf: zipfile.ZipFile, target: Path) -> None:
    for info in zf.infolist():
        _check_name(archive, info.filename, target)
        mode = info.external_attr >> 16
        if mode and (stat.S_ISLNK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
            # zipfile would write a link as a plain file holding its target: refuse instead
            raise HRNetError(
                f"{archive}: member {info.filename!r}: link or special file; refusing the whole archive"
            )


def safe_extract(archive: Path, target: Path) -> None:
    """Extracts a tar or zip archive into ``target`` after checking every member.

    Raises :class:`HRNetError` (naming the archive, the member and the reason) before writing
    anything if one member is unsafe: absolute path, ``..``, a symlink or hard link leading
    outside ``target``, or a device/FIFO. Tar extraction also uses the ``"data"`` filter.
    """
    target.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _check_zip(archive, zf, target)
                zf.extractall(target)
        else:
            with tarfile.open(archive) as tar:
                _check_tar(archive, tar, target)
                tar.extractall(target, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise HRNetError(f"{archive}: not a readable archive: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Fetch a set of files into one dataset folder, published atomically
# --------------------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict | None:
    """The ``.fetched.json`` of a published dataset folder, or None."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise HRNetError(f"{path}: malformed manifest: {exc}") from exc


def fetch_files(
    name: str,
    files: tuple[RemoteFile, ...],
    *,
    out: Path,
    endpoint_url: str | None = None,
    force: bool = False,
    keep_archives: bool = False,
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    prepare: Callable[[Path], None] | None = None,
) -> FetchResult:
    """Downloads ``files``, verifies them, extracts archives and publishes ``out/name``.

    The folder appears complete, with ``.fetched.json`` (dataset, per file: source, filename,
    checksum and whether it was verified against a published one, time), or not at all.
    Downloads are cached in ``out/.downloads`` until the publish succeeds (kept afterwards only
    with ``keep_archives``), so an interrupted fetch resumes. ``prepare`` is called with the
    extracted (not yet published) folder to bring it into the layout the readers read (the
    catalogue's :attr:`~hrnet.data.catalog.Dataset.prepare`); an error there publishes nothing.
    """
    if not files:
        raise HRNetError(f"{name}: nothing to fetch")
    if not name or name.startswith(".") or any(not (c.isalnum() or c in "_.-") for c in name):
        raise HRNetError(
            f"{name!r}: a dataset name is letters, digits, '_', '.', '-' (not starting with '.')"
        )
    out = Path(out)
    final = out / name
    if final.exists():
        manifest = read_manifest(final)
        if manifest is not None and not force:
            return FetchResult(final, manifest, already_present=True)
        if manifest is None and not force:
            raise HRNetError(
                f"{final}: exists but has no {MANIFEST_NAME} (not fetched by hrnet, or incomplete); "
                "remove it or pass --force"
            )
    # trust on first use: a file without a published checksum is held to the one recorded
    # when it was first fetched (re-fetch with --force)
    recorded = {}
    if final.exists():
        for entry in (read_manifest(final) or {}).get("files", []):
            algorithm, _, digest = str(entry.get("checksum", "")).partition(":")
            with contextlib.suppress(HRNetError):
                recorded[entry.get("filename")] = Checksum(algorithm, digest)
    out.mkdir(parents=True, exist_ok=True)
    downloads = out / ".downloads"
    records = []
    local_files = []
    try:
        for remote in files:
            local = downloads / remote.filename
            expected = remote.checksum or recorded.get(remote.filename)
            verified = download(
                remote.url,
                local,
                checksum=expected,
                endpoint_url=endpoint_url,
                retry=retry,
                timeout=timeout,
                sleep=sleep,
            )
            local_files.append(local)
            records.append(
                {
                    "source": remote.url,
                    "filename": remote.filename,
                    "checksum": str(verified),
                    "verified": expected is not None,
                    # whose checksum it was checked against: the publisher's, one the user gave
                    # (a mirror's --checksums, --sha256), or the one recorded on first fetch
                    "checksum_from": (remote.checksum_from or "published")
                    if remote.checksum is not None
                    else ("first fetch" if expected is not None else "computed"),
                    "bytes": local.stat().st_size,
                }
            )
    finally:
        with contextlib.suppress(OSError):
            downloads.rmdir()  # only when empty: nothing partial or cached is left

    from hrnet.data.io import temporary_folder, write_json_atomic

    staging = temporary_folder(out, f".{name}.tmp-")
    try:
        for remote, local in zip(files, local_files):
            target = staging / remote.extract_to if remote.extract_to else staging
            if remote.extract and remote.is_archive:
                safe_extract(local, target)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target / remote.filename)
        if prepare is not None:
            prepare(staging)
        manifest = {
            "dataset": name,
            "files": records,
            "fetched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        write_json_atomic(staging / MANIFEST_NAME, manifest, indent=2)
        if final.exists():  # --force: move the old folder aside, publish, then delete it
            trash = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=out))
            os.replace(final, trash / name)
            os.replace(staging, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_archives:
        for local in local_files:
            local.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            downloads.rmdir()  # only when empty
    return FetchResult(final, manifest)
