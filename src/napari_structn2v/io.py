"""Image file input/output with clear errors, and safe output files.

Reading: TIFF (``.tif``/``.tiff``) and ``.npy``. Writing: the same two formats, chosen by the
extension (anything else is refused), always atomically: the data go to a temporary file in the
destination folder, which then replaces the destination in one ``os.replace``; an interrupted or
failed write leaves the old file as it was. :func:`check_output` checks a destination before any
long work starts, so a run never ends with nowhere to put its result.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import numpy as np

from .errors import DataError, OutputError

#: extensions write_image understands, with their format
IMAGE_FORMATS = {".tif": "tiff", ".tiff": "tiff", ".npy": "npy"}


def read_image(path: str | Path) -> np.ndarray:
    """Read a TIFF (``.tif``/``.tiff``) or ``.npy`` image; errors name the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"image file {str(p)!r} does not exist")
    if p.is_dir():
        raise DataError(f"{str(p)!r} is a folder, not an image file")
    try:
        if p.suffix.lower() == ".npy":
            image = np.load(p, allow_pickle=False)
        else:
            import tifffile

            image = tifffile.imread(p)
    except Exception as exc:
        raise DataError(f"cannot read {str(p)!r} as a TIFF or .npy image: {exc}") from exc
    if image.size == 0:
        raise DataError(f"{str(p)!r} holds an empty image (shape {image.shape})")
    return image


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(
    path: str | Path,
    *,
    option: str = "output",
    overwrite: bool = False,
    inputs: Mapping[str, str | Path] | None = None,
    protected: Mapping[str, str | Path] | None = None,
    suffixes: tuple[str, ...] | None = None,
) -> Path:
    """Check that ``path`` can receive a new file; raise :class:`OutputError` otherwise.

    Parameters
    ----------
    path : path
        The destination file.
    option : str
        How the user named it (``"--out"``), for the messages.
    overwrite : bool
        Allow replacing an existing file, including one of ``inputs``.
    inputs : mapping of description to path, optional
        Files the run reads whose kind matches the output (replaceable with ``overwrite``).
    protected : mapping of description to path, optional
        Files the run reads that are never replaced (an image named as the model output).
    suffixes : tuple of str, optional
        Allowed extensions (lower case, with the dot); None allows any.

    Returns
    -------
    Path
        ``path`` as a Path. Missing parent folders are created by the writers.
    """
    p = Path(path)
    if str(path).strip() == "":
        raise OutputError(f"{option} is empty; give a file name")
    if p.is_dir():
        raise OutputError(f"{option} {str(p)!r} is a folder; give a file name inside it")
    for what, other in (protected or {}).items():
        if _same_file(p, Path(other)):
            raise OutputError(f"{option} {str(p)!r} is {what}; writing there would destroy it, choose another name")
    for what, other in (inputs or {}).items():
        if _same_file(p, Path(other)) and not overwrite:
            raise OutputError(f"{option} {str(p)!r} is {what}; choose another name or add --overwrite to replace it")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise OutputError(
            f"{option} {str(p)!r} has an unknown extension {p.suffix or '(none)'!r}; use {', '.join(suffixes)}"
        )
    if p.exists() and not overwrite:
        raise OutputError(f"{option} {str(p)!r} already exists; choose another name or add --overwrite to replace it")
    _check_writable(p.parent, option, p)
    return p


def check_output_folder(path: str | Path, *, option: str = "output folder") -> Path:
    """Check that ``path`` is, or can be created as, a writable folder."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{option} {str(p)!r} is a file, not a folder")
    _check_writable(p, option, p)
    return p


def _check_writable(folder: Path, option: str, target: Path) -> None:
    """Create and remove a file in ``folder`` (or its nearest existing ancestor, where the missing
    folders would be made): permission bits say nothing for root or read-only mounts."""
    folder = folder if str(folder) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{option} {str(target)!r} cannot be created: {str(folder)!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".structn2v-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{option} {str(target)!r} cannot be written in {str(folder)!r}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``path`` for binary writing; on success it replaces ``path``.

    The temporary file lives in the same folder (``os.replace`` is atomic only within one file
    system) and is removed if the writer fails, so ``path`` is either the old file or the new one.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    os.close(fd)  # reopened by name: tifffile wants a file object with a real name
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, writer: Callable[[IO[bytes]], object]) -> Path:
    """Call ``writer(fh)`` on a temporary file that then replaces ``path`` (see :func:`atomic_file`)."""
    with atomic_file(path) as fh:
        writer(fh)
    return Path(path)


def write_image(path: str | Path, image: np.ndarray, *, axes: str | None = None) -> Path:
    """Write ``image`` as float32, atomically, in the format named by the extension.

    ``.tif``/``.tiff``: a TIFF whose metadata keep the shape and, when given, the ``axes`` (so a
    ``(2, 2, 64, 64)`` array reads back as such, not as 4 pages); ``.npy``: a NumPy file. Any other
    extension raises :class:`OutputError` (nothing is written under a misleading name).
    """
    p = Path(path)
    fmt = IMAGE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"cannot write {str(p)!r}: unknown extension {p.suffix or '(none)'!r}; use {', '.join(IMAGE_FORMATS)}"
        )
    arr = np.asarray(image, dtype=np.float32)
    if axes is not None and len(axes) != arr.ndim:
        raise DataError(f"axes {axes!r} do not describe an array of shape {arr.shape}")
    if fmt == "npy":
        return write_atomic(p, lambda fh: np.save(fh, arr, allow_pickle=False))
    import tifffile

    metadata = {"axes": axes.upper()} if axes else {}
    return write_atomic(p, lambda fh: tifffile.imwrite(fh, arr, metadata=metadata))
