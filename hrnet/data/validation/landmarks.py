"""Facial landmarks: ``landmarks_300w``, ``landmarks_wflw``, ``landmarks_cofw``.

The faces of a split are the file index of its reader in :mod:`hrnet.data.landmarks`
(:func:`~hrnet.data.landmarks.face300w_faces`, :func:`~hrnet.data.landmarks.wflw_faces`,
:func:`~hrnet.data.landmarks.cofw_faces`), parsed by the same code (one ``.pts`` parser,
one WFLW line parser, one CSV row parser): the validator checks exactly the faces the reader
reads, and every record the reader would refuse is a failure here. Faces: non-empty, image
present and decodable, ``num_points`` landmarks, landmarks inside the image
(:data:`~hrnet.data.validation.core.BOX_TOLERANCE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.data.validation.core import (
    BOX_TOLERANCE,
    IMAGE_COLUMNS,
    Table,
    Tables,
    at_most,
    image_checks,
    in_set,
    probe_image,
    rel,
)


def _faces(root: Path, index, num_points: int, what: str) -> Tables:
    """The faces table of a reader's file index (``index()`` returns faces and errors).
    ``num_points`` must be a count the readers train on (HRNetError otherwise: a bad argument,
    not bad data)."""
    from hrnet.data.io import DataFileError
    from hrnet.data.landmarks import check_landmark_count

    check_landmark_count(num_points, f"validate --num-points {num_points}")

    dataset = Tables(root)
    table = Table("faces", (*IMAGE_COLUMNS, "n_points", "point_overflow"))
    dataset.tables.append(table)
    table.checks = [
        *image_checks(what),
        in_set("n_points", [num_points], f"landmark count is not {num_points}", "n_points"),
        at_most("point_overflow", BOX_TOLERANCE, "landmark outside the image (pixels beyond the border)"),
    ]
    try:
        faces, errors = index()
    except DataFileError as exc:  # the split's folder or annotation file is missing
        return dataset.fail_from(exc)
    for error in errors:
        dataset.fail_from(error)
    for face in faces:
        # a .pts without an image beside it: reported as the missing <stem>.jpg
        image = face.image if face.image is not None else face.source.with_suffix(".jpg")
        probe = probe_image(image)
        overflow = 0.0
        if probe["decodable"]:
            w, h = probe["width"], probe["height"]
            overflow = round(
                max([max(-x, -y, x - w, y - h, 0.0) for x, y in face.points.tolist()], default=0.0), 3
            )
        table.rows.append(
            {
                "file": rel(image, root),
                "record": face.record if face.record is not None else face.source.name,
                **probe,
                "n_points": len(face.points),
                "point_overflow": overflow,
            }
        )
    return dataset


def landmarks_300w(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """``<image>`` + ``<stem>.pts`` in the folders of a 300W split: ``ROOT/SPLIT`` when it exists,
    else HRNet-Facial-Landmark-Detection's ``train``, ``common``, ``challenging`` or ``full``
    (see :mod:`hrnet.data.landmarks`)."""
    from hrnet.data.landmarks import face300w_faces

    return _faces(
        root,
        lambda: face300w_faces(root, split),
        options.get("num_points") or 68,
        f"images with .pts in 300W split {split!r} of {root}",
    )


def landmarks_wflw(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """WFLW's lists: 2K x/y (K = 98), a box, six attribute flags and the image path per line."""
    from hrnet.data.landmarks import wflw_annotation_file, wflw_faces

    return _faces(
        root,
        lambda: wflw_faces(root, split, num_points=None),  # any K: a wrong count is a face row
        options.get("num_points") or 98,
        f"faces listed in {wflw_annotation_file(root, split)}",
    )


def landmarks_cofw(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """COFW in HRNet-Facial-Landmark-Detection's CSV layout: ``cofw_SPLIT.csv`` with a header,
    then image name, scale, centre x, centre y and the x/y pairs."""
    from hrnet.data.landmarks import cofw_faces

    return _faces(
        root,
        lambda: cofw_faces(root, split),
        options.get("num_points") or 29,
        f"faces listed in {root / f'cofw_{split}.csv'}",
    )
