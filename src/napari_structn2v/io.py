"""Image file input/output with clear errors (TIFF, and .npy for convenience)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError


def read_image(path: str | Path) -> np.ndarray:
    """Read a TIFF (``.tif``/``.tiff``) or ``.npy`` image; errors name the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"image file {str(p)!r} does not exist")
    if p.is_dir():
        raise DataError(f"{str(p)!r} is a folder, not an image file")
    try:
        if p.suffix.lower() == ".npy":
            return np.load(p, allow_pickle=False)
        import tifffile

        return tifffile.imread(p)
    except Exception as exc:  # noqa: BLE001 - one clear message for any unreadable file
        raise DataError(f"cannot read {str(p)!r} as a TIFF or .npy image: {exc}") from exc


def write_image(path: str | Path, image: np.ndarray, *, axes: str | None = None) -> Path:
    """Write ``image`` as a float32 TIFF (ImageJ-compatible axes metadata when possible)."""
    import tifffile

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(image, dtype=np.float32)
    metadata = {"axes": axes} if axes else None
    tifffile.imwrite(p, arr, metadata=metadata)
    return p
