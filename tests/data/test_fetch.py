"""`hrnet fetch` against real servers on loopback: an HTTP server with Range support and a moto S3."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hrnet.cli import main
from hrnet.data import catalog
from hrnet.data.fetch import (
    MANIFEST_NAME,
    Checksum,
    RemoteFile,
    RetryPolicy,
    download,
    fetch_files,
    safe_extract,
)
from hrnet.errors import HRNetError

NO_WAIT = RetryPolicy(attempts=4, base_delay=0.0)


# --------------------------------------------------------------------------------------------
# archives
# --------------------------------------------------------------------------------------------


def _tar_bytes(members: dict[str, bytes], *, extra: list[tarfile.TarInfo] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buffer.getvalue()


def _good_archive() -> bytes:
    # large enough (~300 kB, incompressible) that a connection dropped midway leaves a real .part
    payload = hashlib.sha256(b"seed").digest() * 10_000
    rng = bytes((i * 7919 + (i >> 8)) % 251 for i in range(1 << 18))
    return _tar_bytes({"toy/README.txt": b"hello\n", "toy/data.bin": payload[:40_000] + rng})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# a tiny HTTP server: Range support, N failures with 503, a connection dropped midway
# --------------------------------------------------------------------------------------------


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes]
    requests: list[dict]
    fail_first: int = 0  # answer 503 this many times
    drop_first_after: int | None = None  # first full request: send this many bytes, then hang up

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append({"path": self.path, "range": self.headers.get("Range")})
        if server.fail_first > 0:
            server.fail_first -= 1
            self.send_error(503, "busy")
            return
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404, "not found")
            return
        start = 0
        ranged = self.headers.get("Range")
        if ranged:
            start = int(ranged.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_error(416, "range not satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if server.drop_first_after is not None and not ranged:
            cut, server.drop_first_after = server.drop_first_after, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.files, server.requests = {}, []
    server.fail_first, server.drop_first_after = 0, None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _leftovers(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def test_http_good_archive_lands_complete_with_manifest(http_server, tmp_path):
    archive = _good_archive()
    http_server.files["/toy.tar.gz"] = archive
    code = main(["fetch", "toy", "--out", str(tmp_path), "--source", f"{http_server.url}/toy.tar.gz",
                 "--sha256", _sha256(archive)])  # fmt: skip
    assert code == 0
    assert (tmp_path / "toy" / "toy" / "README.txt").read_bytes() == b"hello\n"
    manifest = json.loads((tmp_path / "toy" / MANIFEST_NAME).read_text())
    assert manifest["files"][0]["checksum"] == f"sha256:{_sha256(archive)}"
    assert manifest["files"][0]["verified"] is True and manifest["files"][0]["checksum_from"] == "--sha256"
    assert manifest["files"][0]["source"].endswith("/toy.tar.gz")
    assert _leftovers(tmp_path) == [
        "toy",
        "toy/.fetched.json",
        "toy/toy",
        "toy/toy/README.txt",
        "toy/toy/data.bin",
    ]
    # a second fetch finds it published and downloads nothing
    before = len(http_server.requests)
    assert main(["fetch", "toy", "--out", str(tmp_path), "--source", f"{http_server.url}/toy.tar.gz"]) == 0
    assert len(http_server.requests) == before


def test_http_checksum_mismatch_leaves_nothing(http_server, tmp_path, capsys):
    http_server.files["/toy.tar.gz"] = _good_archive()
    code = main(["fetch", "toy", "--out", str(tmp_path), "--source", f"{http_server.url}/toy.tar.gz",
                 "--sha256", "0" * 64])  # fmt: skip
    assert code == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert _leftovers(tmp_path) == []  # no folder, no .part, no temp dir


def test_http_connection_dropped_midway_resumes_with_range(http_server, tmp_path):
    archive = _good_archive()
    http_server.files["/toy.tar.gz"] = archive
    http_server.drop_first_after = len(archive) // 3
    files = (RemoteFile(f"{http_server.url}/toy.tar.gz", "toy.tar.gz", Checksum("sha256", _sha256(archive))),)
    result = fetch_files("toy", files, out=tmp_path, retry=NO_WAIT)
    assert (result.path / "toy" / "README.txt").exists()
    ranges = [r["range"] for r in http_server.requests]
    assert ranges[0] is None
    assert ranges[1] == f"bytes={len(archive) // 3}-"


def test_http_existing_part_file_resumes(http_server, tmp_path):
    archive = _good_archive()
    http_server.files["/toy.tar.gz"] = archive
    part = tmp_path / ".downloads" / "toy.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(archive[:1000])  # left by an earlier, interrupted run
    files = (RemoteFile(f"{http_server.url}/toy.tar.gz", "toy.tar.gz", Checksum("sha256", _sha256(archive))),)
    fetch_files("toy", files, out=tmp_path, retry=NO_WAIT)
    assert [r["range"] for r in http_server.requests] == ["bytes=1000-"]
    assert not part.exists()


def test_http_retries_5xx_with_backoff(http_server, tmp_path):
    archive = _good_archive()
    http_server.files["/toy.tar.gz"] = archive
    http_server.fail_first = 2
    waits = []
    files = (RemoteFile(f"{http_server.url}/toy.tar.gz", "toy.tar.gz", Checksum("sha256", _sha256(archive))),)
    policy = RetryPolicy(attempts=4, base_delay=0.5, factor=2.0)
    fetch_files("toy", files, out=tmp_path, retry=policy, sleep=waits.append)
    assert waits == [0.5, 1.0]  # exponential
    assert len(http_server.requests) == 3


def test_http_gives_up_after_attempts_and_never_retries_4xx(http_server, tmp_path):
    http_server.files["/toy.tar.gz"] = _good_archive()
    http_server.fail_first = 10
    files = (RemoteFile(f"{http_server.url}/toy.tar.gz", "toy.tar.gz"),)
    with pytest.raises(HRNetError, match="giving up after 3 attempts") as err:
        fetch_files("toy", files, out=tmp_path, retry=RetryPolicy(attempts=3, base_delay=0.0))
    assert len(http_server.requests) == 3
    assert not (tmp_path / "toy").exists()
    # no byte arrived: no partial download is named (there is none, nor its folder)
    assert "nothing was downloaded" in str(err.value) and not (tmp_path / ".downloads").exists()

    http_server.fail_first, http_server.requests[:] = 0, []
    missing = (RemoteFile(f"{http_server.url}/missing.tar.gz", "missing.tar.gz"),)
    with pytest.raises(HRNetError, match="HTTP 404"):
        fetch_files("missing", missing, out=tmp_path, retry=NO_WAIT)
    assert len(http_server.requests) == 1


def test_unknown_checksum_is_computed_and_recorded(http_server, tmp_path):
    archive = _good_archive()
    http_server.files["/toy.tar.gz"] = archive
    result = fetch_files("toy", (RemoteFile(f"{http_server.url}/toy.tar.gz", "toy.tar.gz"),), out=tmp_path)
    (record,) = result.manifest["files"]
    assert record == {**record, "checksum": f"sha256:{_sha256(archive)}", "verified": False}
    # trust on first use: a forced re-fetch of changed bytes is refused
    http_server.files["/toy.tar.gz"] = _tar_bytes({"toy/README.txt": b"tampered\n"})
    with pytest.raises(HRNetError, match="checksum mismatch"):
        fetch_files(
            "toy", (RemoteFile(f"{http_server.url}/toy.tar.gz", "toy.tar.gz"),), out=tmp_path, force=True
        )
    assert (tmp_path / "toy" / "toy" / "README.txt").read_bytes() == b"hello\n"  # old copy intact


# --------------------------------------------------------------------------------------------
# malicious archives: refused whole, nothing extracted
# --------------------------------------------------------------------------------------------


def _symlink(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


MALICIOUS_TARS = {
    "dotdot": (_tar_bytes({"ok.txt": b"ok", "../evil.txt": b"evil"}), "'..'"),
    "nested_dotdot": (_tar_bytes({"ok.txt": b"ok", "a/../../evil.txt": b"evil"}), "'..'"),
    "absolute": (_tar_bytes({"ok.txt": b"ok", "/tmp/evil.txt": b"evil"}), "absolute path"),
    "symlink_escape": (_tar_bytes({"ok.txt": b"ok"}, extra=[_symlink("link", "../../etc")]), "symlink"),
    "symlink_absolute": (_tar_bytes({"ok.txt": b"ok"}, extra=[_symlink("link", "/etc/passwd")]), "symlink"),
    "hardlink_escape": (
        _tar_bytes({"ok.txt": b"ok"}, extra=[_symlink("h", "../outside", hard=True)]),
        "hard link",
    ),
    "device": (_tar_bytes({"ok.txt": b"ok"}, extra=[_device("dev")]), "device"),
}


@pytest.mark.parametrize("kind", sorted(MALICIOUS_TARS))
def test_malicious_tar_is_refused_and_extracts_nothing(kind, tmp_path):
    data, reason = MALICIOUS_TARS[kind]
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(data)
    target = tmp_path / "target"
    with pytest.raises(HRNetError, match=reason):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_malicious_zip_is_refused_and_extracts_nothing(name, tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", b"ok")
        zf.writestr(zipfile.ZipInfo(name), b"evil")
    target = tmp_path / "target"
    with pytest.raises(HRNetError, match="refusing the whole archive"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []


def test_malicious_archive_fetch_publishes_nothing(http_server, tmp_path):
    data, _ = MALICIOUS_TARS["dotdot"]
    http_server.files["/bad.tar.gz"] = data
    out = tmp_path / "out"
    code = main(["fetch", "bad", "--out", str(out), "--source", f"{http_server.url}/bad.tar.gz",
                 "--sha256", _sha256(data)])  # fmt: skip
    assert code == 2
    assert not (out / "bad").exists()
    assert [p.name for p in out.iterdir() if not p.name.startswith(".downloads")] == []
    assert not (tmp_path / "evil.txt").exists()


# --------------------------------------------------------------------------------------------
# S3 (moto server on loopback) and file://
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    import boto3

    boto3.setup_default_session()  # a fresh session that reads this environment
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = "team-mirror"
    if bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=bucket)
    yield client
    boto3.DEFAULT_SESSION = None


def test_s3_mirror_of_a_catalogue_dataset(s3_env, tmp_path):
    archive = _good_archive()
    s3_env.put_object(Bucket="team-mirror", Key="ade/ADEChallengeData2016.zip", Body=archive)
    # the catalogue's md5 is kept for a mirror: these bytes are not the real ADE20K, so refused
    code = main(
        [
            "fetch",
            "ade20k",
            "--out",
            str(tmp_path),
            "--source",
            "s3://team-mirror/ade/ADEChallengeData2016.zip",
        ]
    )
    assert code == 2
    assert _leftovers(tmp_path) == []


def test_s3_fetch_resumes_with_ranged_get(s3_env, tmp_path):
    import boto3

    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w") as zf:
        zf.writestr("faces/a.txt", b"a" * 5000)
    archive = zip_buffer.getvalue()
    s3_env.put_object(Bucket="team-mirror", Key="faces.zip", Body=archive)
    ranges = []
    boto3.DEFAULT_SESSION.events.register(
        "before-call.s3.GetObject", lambda params, **_: ranges.append(params.get("headers", {}).get("Range"))
    )
    part = tmp_path / ".downloads" / "faces.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(archive[:100])
    code = main(["fetch", "faces_mirror", "--out", str(tmp_path), "--source", "s3://team-mirror/faces.zip",
                 "--sha256", _sha256(archive)])  # fmt: skip
    assert code == 0
    assert ranges == ["bytes=100-"]
    assert (tmp_path / "faces_mirror" / "faces" / "a.txt").read_bytes() == b"a" * 5000


def test_s3_missing_key_is_a_user_error_without_retry(s3_env, tmp_path):
    files = (RemoteFile("s3://team-mirror/nope.zip", "nope.zip"),)
    with pytest.raises(HRNetError, match="NoSuchKey"):
        fetch_files("nope", files, out=tmp_path, retry=RetryPolicy(attempts=3, base_delay=100.0))
    assert _leftovers(tmp_path) == []


def test_file_source_multi_file_prefix(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "WFLW_annotations.tar.gz").write_bytes(_tar_bytes({"WFLW_annotations/list.txt": b"x"}))
    (mirror / "WFLW_images.tar.gz").write_bytes(_tar_bytes({"WFLW_images/0.jpg": b"y"}))
    out = tmp_path / "data"
    assert main(["fetch", "wflw", "--out", str(out), "--source", f"{mirror.as_uri()}/"]) == 0
    assert (out / "wflw" / "WFLW_annotations" / "list.txt").exists()
    assert (out / "wflw" / "WFLW_images" / "0.jpg").exists()


# --------------------------------------------------------------------------------------------
# catalogue
# --------------------------------------------------------------------------------------------


def test_embedded_dataset_is_not_fetched(capsys):
    assert main(["fetch", "digits"]) == 2
    assert "hrnet generate digits" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["imagenet", "cityscapes", "300w"])
def test_login_datasets_explain_the_manual_step(name):
    with pytest.raises(HRNetError, match=r"--source") as info:
        catalog.resolve_files(catalog.get_dataset(name), None)
    for remote in catalog.get_dataset(name).files:
        assert remote.filename in str(info.value)


def test_catalogue_entries_are_well_formed():
    for name in catalog.list_datasets():
        entry = catalog.get_dataset(name)
        assert entry.files and entry.homepage.startswith("http")
        for remote in entry.files:
            assert remote.url.startswith(("http://", "https://", "manual://"))
            assert entry.manual or not remote.url.startswith("manual://")
        mirrored = catalog.resolve_files(entry, "s3://mirror/x/")
        assert [f.url for f in mirrored] == [f"s3://mirror/x/{f.filename}" for f in entry.files]


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", ""])
def test_dataset_name_cannot_leave_the_out_folder(name, tmp_path):
    with pytest.raises(HRNetError, match="dataset name"):
        fetch_files(name, (RemoteFile("file:///nonexistent.tar", "x.tar"),), out=tmp_path / "out")
    assert not (tmp_path / "escape").exists()


# --------------------------------------------------------------------------------------------
# Pretrained weights: the published checksum is the sha256 prefix in the file name
# --------------------------------------------------------------------------------------------


def test_sha256_prefix_checksum_verifies_and_records_the_full_digest(http_server, tmp_path):
    blob = b"weights" * 1000
    http_server.files["/w.pth"] = blob
    full = _sha256(blob)
    got = download(
        f"{http_server.url}/w.pth", tmp_path / "w.pth", checksum=Checksum("sha256", full[:8], prefix=True)
    )
    assert got == Checksum("sha256", full) and (tmp_path / "w.pth").read_bytes() == blob
    other = "0" * 8 if not full.startswith("0" * 8) else "f" * 8
    with pytest.raises(HRNetError, match="checksum mismatch"):
        download(
            f"{http_server.url}/w.pth", tmp_path / "v.pth", checksum=Checksum("sha256", other, prefix=True)
        )
    assert not (tmp_path / "v.pth").exists() and not (tmp_path / "v.pth.part").exists()


def test_checksum_prefix_needs_eight_hex_digits():
    with pytest.raises(HRNetError, match="8 to 64 hex digits"):
        Checksum("sha256", "00eb20", prefix=True)
    with pytest.raises(HRNetError, match="64 hex digits"):
        Checksum("sha256", "00eb2006")  # a prefix is only accepted when marked as one


def test_catalogue_weights_are_held_to_the_prefix_in_their_file_name(http_server, tmp_path, capsys):
    entry = catalog.get_dataset("hrnetv2_w18_imagenet")
    (remote,) = entry.files
    assert remote.filename == "hrnetv2_w18-00eb2006.pth" and not remote.extract
    assert remote.checksum == Checksum("sha256", "00eb2006", prefix=True)
    http_server.files["/hrnetv2_w18-00eb2006.pth"] = b"not the published weights"
    code = main(["fetch", "hrnetv2_w18_imagenet", "--out", str(tmp_path), "--source", f"{http_server.url}/"])
    assert code == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# --checksums (a mirror with its own bytes), extract_to, the layout step
# --------------------------------------------------------------------------------------------


def _sbd_mirror(folder: Path) -> dict:
    folder.mkdir(parents=True)
    (folder / "benchmark.tgz").write_bytes(_tar_bytes({"benchmark_RELEASE/dataset/train.txt": b"a\n"}))
    (folder / "train_noval.txt").write_bytes(b"a\n")
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("benchmark.tgz", "train_noval.txt")
    }


def _tar_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_checksums_file_replaces_the_catalogue_checksums_of_a_mirror(tmp_path, capsys):
    sums = _sbd_mirror(tmp_path / "mirror")
    (tmp_path / "sums.json").write_text(json.dumps(sums))
    source = (tmp_path / "mirror").as_uri() + "/"
    argv = ["fetch", "sbd", "--out", str(tmp_path / "out"), "--source", source, "--retries", "1"]
    assert main([*argv, "--checksums", str(tmp_path / "sums.json")]) == 0
    published = tmp_path / "out" / "sbd"
    assert (published / "benchmark_RELEASE" / "dataset" / "train.txt").is_file()
    manifest = json.loads((published / ".fetched.json").read_text())
    assert {r["filename"]: r["checksum"] for r in manifest["files"]} == {
        k: f"sha256:{v}" for k, v in sums.items()
    }
    assert all(r["verified"] for r in manifest["files"])
    # recorded as the mirror's checksums, not the publisher's
    assert {r["checksum_from"] for r in manifest["files"]} == {f"--checksums {tmp_path / 'sums.json'}"}
    assert "verified against --checksums" in " ".join(capsys.readouterr().err.split())  # rich wraps


def test_sha256_never_replaces_a_published_checksum(tmp_path, capsys):
    # a catalogued checkpoint with a published checksum: --sha256 of other bytes must not
    # publish them under its name as verified
    other = tmp_path / "hrnetv2_w18-00eb2006.pth"
    other.write_bytes(b"other bytes")
    argv = ["fetch", "hrnetv2_w18_imagenet", "--out", str(tmp_path / "out"), "--source", other.as_uri()]
    assert main([*argv, "--sha256", _sha256(b"other bytes")]) == 2
    err = capsys.readouterr().err
    assert "the catalogue holds the published checksum of hrnetv2_w18-00eb2006.pth" in err
    assert "--checksums FILE" in err
    assert not (tmp_path / "out" / "hrnetv2_w18_imagenet").exists()


def test_checksums_file_keeps_the_catalogue_checksum_of_a_file_it_does_not_name(tmp_path, capsys):
    sums = _sbd_mirror(tmp_path / "mirror")
    (tmp_path / "sums.json").write_text(json.dumps({"benchmark.tgz": sums["benchmark.tgz"]}))
    argv = ["fetch", "sbd", "--out", str(tmp_path / "out"), "--source", (tmp_path / "mirror").as_uri() + "/"]
    assert main([*argv, "--checksums", str(tmp_path / "sums.json"), "--retries", "1"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch for train_noval.txt" in err and "md5:79bff800" in err
    assert not (tmp_path / "out" / "sbd").exists()


def test_checksums_file_refuses_a_tampered_file_naming_it(tmp_path, capsys):
    sums = _sbd_mirror(tmp_path / "mirror")
    (tmp_path / "sums.json").write_text(json.dumps(sums))
    with (tmp_path / "mirror" / "benchmark.tgz").open("ab") as handle:
        handle.write(b"tampered")
    argv = ["fetch", "sbd", "--out", str(tmp_path / "out"), "--source", (tmp_path / "mirror").as_uri() + "/"]
    assert main([*argv, "--checksums", str(tmp_path / "sums.json"), "--retries", "1"]) == 2
    assert "checksum mismatch for benchmark.tgz" in capsys.readouterr().err
    assert not (tmp_path / "out" / "sbd").exists()
    assert not list((tmp_path / "out").glob(".downloads/*"))


def test_checksums_file_needs_a_source_and_one_of_the_file_names(tmp_path, capsys):
    sums = _sbd_mirror(tmp_path / "mirror")
    (tmp_path / "sums.json").write_text(json.dumps({**sums, "other.zip": "0" * 64}))
    assert (
        main(["fetch", "sbd", "--out", str(tmp_path / "out"), "--checksums", str(tmp_path / "sums.json")])
        == 2
    )
    assert "give --source" in capsys.readouterr().err
    argv = ["fetch", "sbd", "--out", str(tmp_path / "out"), "--source", (tmp_path / "mirror").as_uri() + "/"]
    (tmp_path / "others.json").write_text(json.dumps({"other.zip": "0" * 64}))
    assert main([*argv, "--checksums", str(tmp_path / "others.json")]) == 2
    assert "names none of the files of sbd" in capsys.readouterr().err
    # a mirror-wide listing (other entries' files too) is fine
    assert main([*argv, "--checksums", str(tmp_path / "sums.json")]) == 0
    argv[3] = str(tmp_path / "out2")
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main([*argv, "--checksums", str(tmp_path / "bad.json")]) == 2
    assert "JSON object" in capsys.readouterr().err
    (tmp_path / "short.json").write_text(json.dumps({"benchmark.tgz": "abc"}))
    assert main([*argv, "--checksums", str(tmp_path / "short.json")]) == 2
    assert (
        f"{tmp_path / 'short.json'}: 'benchmark.tgz': checksum: 'abc' is not a sha256"
        in capsys.readouterr().err
    )


def test_extract_to_unpacks_into_a_sub_folder(tmp_path):
    archive = tmp_path / "helen.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("trainset/a.pts", "x")
    files = (RemoteFile(archive.as_uri(), "helen.zip", extract_to="helen"),)
    result = fetch_files("300w", files, out=tmp_path / "out", retry=NO_WAIT)
    assert (result.path / "helen" / "trainset" / "a.pts").is_file()
    with pytest.raises(HRNetError, match="relative sub-folder"):
        RemoteFile(archive.as_uri(), "helen.zip", extract_to="../x")


def test_a_failing_layout_step_publishes_nothing(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x.txt", "x")

    def prepare(folder: Path) -> None:
        assert (folder / "x.txt").is_file()
        raise HRNetError("layout step failed")

    files = (RemoteFile(archive.as_uri(), "a.zip"),)
    with pytest.raises(HRNetError, match="layout step failed"):
        fetch_files("toy", files, out=tmp_path / "out", retry=NO_WAIT, prepare=prepare)
    assert not (tmp_path / "out" / "toy").exists()
    assert not list((tmp_path / "out").glob(".toy.tmp-*"))
