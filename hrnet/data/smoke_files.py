"""Deterministic encoders, archives and synthetic pictures of the smoke copies
(:mod:`hrnet.data.smoke` and :mod:`hrnet.data.smoke_driving`): the same bytes on every run, so a
copy's checksums can be recorded once. Standard library, numpy and PIL only.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile

import numpy as np
from PIL import Image

Members = dict[str, bytes]

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by hrnet.data.smoke"


def _encode(array: np.ndarray | Image.Image, fmt: str, **kwargs) -> bytes:
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    return _encode(array, "JPEG", quality=90)


def _png(array: np.ndarray | Image.Image) -> bytes:
    return _encode(array, "PNG")


def _palette_png(label: np.ndarray) -> bytes:
    """A palette PNG of class indices, with VOC's colour map (index i -> bit-interleaved RGB)."""
    image = Image.fromarray(label.astype(np.uint8), mode="P")
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    image.putpalette(palette)
    return _png(image)


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _mat(variables: dict) -> bytes:
    """A MATLAB 5 file (scipy) whose header text is fixed (scipy writes the creation time)."""
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, variables, do_compression=False, oned_as="column")
    data = bytearray(buffer.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def _zip(members: Members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    return buffer.getvalue()


def _tar(members: Members, *, gz: bool = False) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(members[name]))
    if not gz:
        return raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as handle:
        handle.write(raw.getvalue())
    return out.getvalue()


def _noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random RGB image (a coarse grid upsampled), which JPEG keeps small."""
    coarse = rng.integers(0, 256, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    return np.array(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))


def _blobs(
    rng: np.random.Generator, height: int, width: int, values: list[int], dtype: type = np.uint8
) -> np.ndarray:
    """A label map of rectangles of ``values`` on ``values[0]``."""
    label = np.full((height, width), values[0], dtype)
    for value in values[1:]:
        h, w = int(rng.integers(height // 4, height // 2)), int(rng.integers(width // 4, width // 2))
        y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
        label[y : y + h, x : x + w] = value
    return label
