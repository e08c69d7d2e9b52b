"""Image file formats by extension: the one table the readers, the writers and the output checks share."""
from __future__ import annotations

from pathlib import Path

#: extensions write_image understands, with their format
IMAGE_FORMATS = {".tif": "tiff", ".tiff": "tiff", ".npy": "npy", ".zarr": "zarr"}


def image_format(path: str | Path) -> str | None:
    """``"tiff"``, ``"npy"``, ``"zarr"`` (also for ``.ome.zarr``) or None, from the extension."""
    return IMAGE_FORMATS.get(Path(path).suffix.lower())
