"""``imagefolder``: ``ROOT/SPLIT/<class>/<image>``, as :func:`hrnet.data.imagefolder.imagefolder_files`
lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrnet.data.validation.core import IMAGE_COLUMNS, Table, Tables, image_checks, probe_image, rel, unique


def imagefolder(root: Path, split: str, options: dict[str, Any]) -> Tables:
    """Images: non-empty, each present and decodable, files unique; with ``num_classes`` the
    number of class folders. The images are those :class:`~hrnet.data.imagefolder.ImageFolderDataset`
    reads."""
    from hrnet.data.imagefolder import imagefolder_files
    from hrnet.data.io import DataFileError

    dataset = Tables(root)
    folder = root / split
    table = Table("images", ("class", *IMAGE_COLUMNS))
    table.checks = [*image_checks(f"images under {folder}/<class>/"), unique("file", "duplicate file")]
    dataset.tables.append(table)
    try:
        classes, samples = imagefolder_files(root, split)
    except DataFileError as exc:
        return dataset.fail_from(exc, relative=False)
    for path, label in samples:
        name = classes[label]
        table.rows.append(
            {"file": rel(path, root), "record": f"class {name}", "class": name, **probe_image(path)}
        )
    expected = options.get("num_classes")
    if expected is not None and len(classes) != expected:
        dataset.fail(folder, f"expected {expected} class folders, found {len(classes)}")
    return dataset
