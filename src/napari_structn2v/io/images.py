"""Image file input/output with clear errors, and safe output files.

Reading: TIFF (``.tif``/``.tiff``), ``.npy`` and zarr / OME-Zarr (``.zarr``/``.ome.zarr``, read
lazily, axes from the OME metadata); large TIFFs and ``.npy`` files are memory-mapped where their
layout allows. Writing: the same formats, chosen by the extension (anything else is refused),
always atomically: the data go to a temporary file (a temporary folder for zarr) in the destination
folder, which then takes the destination's place in one step (:func:`commit_file`); an interrupted
or failed write (a full disk, SIGTERM in the CLI) leaves the old file as it was and no temporary
file behind, and a file that appeared at the destination while writing is never replaced unless
replacing was asked for (the result is kept next to it). :func:`open_output` streams a result into such a temporary file
piece by piece (TIFF and ``.npy`` as memory maps, BigTIFF above 4 GB; zarr chunk by chunk).
:func:`check_output` checks a destination before any long work starts, so a run never ends with
nowhere to put its result.

zarr is optional (the ``big`` extra) and imported only when a ``.zarr`` path is used. OME-Zarr
reading and writing (version 0.4) is :mod:`~napari_structn2v.io.ome_zarr`'s, the output checks are
:mod:`~napari_structn2v.io.outputs`'; their public names are importable from here too.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import DataError, OutputError, OutputExistsError, StructN2VError
from .formats import IMAGE_FORMATS, image_format
from .ome_zarr import create_ome_zarr, default_chunks, import_zarr, ome_metadata, read_zarr, settle_writes
from .outputs import check_output, check_output_folder

__all__ = [
    "BIGTIFF_BYTES", "IMAGE_FORMATS", "MEMMAP_BYTES", "OpenedImage", "atomic_file", "check_output", "check_output_folder",
    "commit_file", "create_ome_zarr", "default_chunks", "free_name", "image_format", "metadata_axes", "ome_metadata",
    "open_image", "open_output", "read_image", "write_atomic", "write_image",
]

#: files at least this large are memory-mapped (TIFF, .npy) instead of read whole; smaller ones
#: are read into memory as before (faster to use, and writable)
MEMMAP_BYTES = 256 << 20
#: TIFFs whose data pass 4 GB - 32 MB (room for the tags) are written as BigTIFF
BIGTIFF_BYTES = 2**32 - 2**25


@dataclass(frozen=True)
class OpenedImage:
    """An image opened by :func:`open_image`: ``data`` (numpy, memmap or a lazy zarr array),
    ``axes`` from the file's metadata (None if it has none) and the per-axis ``scale``."""

    data: Any
    axes: str | None = None
    scale: tuple[float, ...] | None = None


def open_image(path: str | Path) -> OpenedImage:
    """Open an image without loading it where the format allows.

    ``.zarr``/``.ome.zarr``: a lazy zarr array (the first resolution level of an OME-Zarr image)
    with the axes and scale of its OME metadata. TIFF and ``.npy`` of at least
    :data:`MEMMAP_BYTES`: a read-only memory map (TIFF: when uncompressed and contiguous; else a
    lazy zarr view through ``tifffile.aszarr`` if zarr is installed, else read whole). Errors name
    the file and the problem (:class:`DataError`).
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"image file {str(p)!r} does not exist")
    fmt = image_format(p)
    if p.is_dir() and fmt != "zarr":
        raise DataError(f"{str(p)!r} is a folder, not an image file")
    try:
        if fmt == "zarr":
            opened = OpenedImage(*read_zarr(p))
        elif fmt == "npy":
            big = p.stat().st_size >= MEMMAP_BYTES
            opened = OpenedImage(np.load(p, allow_pickle=False, mmap_mode="r" if big else None))
        else:
            opened = _open_tiff(p)
    except DataError:
        raise
    except Exception as exc:
        kind = {"zarr": "a zarr / OME-Zarr", "npy": "a .npy"}.get(fmt or "", "a TIFF")
        raise DataError(f"cannot read {str(p)!r} as {kind} image: {exc}") from exc
    if int(np.prod(opened.data.shape)) == 0:
        raise DataError(f"{str(p)!r} holds an empty image (shape {tuple(opened.data.shape)})")
    axes = metadata_axes(opened.axes, len(opened.data.shape), p)
    scale = opened.scale if axes is not None and opened.scale is not None and len(opened.scale) == len(axes) else None
    return OpenedImage(opened.data, axes, scale)


def metadata_axes(raw: Any, ndim: int, source: str | Path) -> str | None:
    """The axes a file's metadata give (TIFF ``axes``, a zarr array's ``axes`` attribute, OME
    multiscales axes), checked in this one place: None when there are none; axes that are not
    valid or do not fit the ``ndim``-D image are ignored with a :class:`MetadataWarning` naming
    the file, so that they are neither blamed on the user nor dropped silently."""
    from ..axes import validate_axes
    from ..errors import AxesError, MetadataWarning

    if raw is None:
        return None
    try:
        if not isinstance(raw, str):
            raise AxesError(f"axes {raw!r} are not a string of letters")
        return validate_axes(raw.upper(), ndim)
    except AxesError as exc:
        warnings.warn(f"ignoring the axes metadata of {str(source)!r} ({exc}); give the axes yourself if the "
                      "default ones are wrong", MetadataWarning, stacklevel=3)
        return None


def read_image(path: str | Path) -> np.ndarray:
    """Read a TIFF (``.tif``/``.tiff``), ``.npy`` or zarr/OME-Zarr image; errors name the file and
    the problem. Large files come back lazy (see :func:`open_image`), small ones as arrays."""
    return open_image(path).data


def _open_tiff(p: Path) -> OpenedImage:
    import tifffile

    with tifffile.TiffFile(p) as tif:
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
        axes = meta.get("axes") if isinstance(meta, dict) else None  # checked by metadata_axes
    if p.stat().st_size >= MEMMAP_BYTES:
        with contextlib.suppress(ValueError):  # compressed or scattered strips cannot be mapped
            return OpenedImage(tifffile.memmap(p, mode="r"), axes)
        with contextlib.suppress(ImportError):
            import zarr

            return OpenedImage(zarr.open(tifffile.imread(p, aszarr=True), mode="r"), axes)
    return OpenedImage(tifffile.imread(p), axes)


@contextlib.contextmanager
def atomic_file(path: str | Path, *, replace: bool | None = None) -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``path`` for binary writing; on success it becomes ``path``.

    The temporary file lives in the same folder (``os.replace`` is atomic only within one file
    system) and is removed if the writer fails or the process is stopped by a signal the CLI
    turns into an exception, so ``path`` is either the old file or the new one. A full disk
    raises :class:`OutputError` naming the file.

    ``replace``: True replaces an existing ``path``; False never does (a file that appears there
    while writing is kept, and the result is saved next to it under a new name, see
    :func:`commit_file`); None (the default) replaces only a file that was there when the
    write started.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    replace = _replace_rule(p, replace)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    os.close(fd)  # reopened by name: tifffile wants a file object with a real name
    try:
        try:
            with open(tmp, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise _write_error(p, exc) from exc
        commit_file(Path(tmp), p, replace=replace)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _replace_rule(p: Path, replace: bool | None) -> bool:
    """``replace`` decided now: None means "only what is there at the start"."""
    return p.exists() if replace is None else bool(replace)


#: errno values that mean "the disk (or the user's quota, or the file size limit) is full"
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _write_error(p: Path, exc: OSError, *, full_only: bool = False) -> StructN2VError | OSError:
    """One clear :class:`OutputError` for a write that failed for lack of space (or, unless
    ``full_only``: of permission, or a folder removed meanwhile); other errors as they are."""
    if exc.errno in _FULL:
        return OutputError(f"cannot write {str(p)!r}: {exc.strerror or 'no space left on device'}")
    if not full_only and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
        return OutputError(f"cannot write {str(p)!r}: {exc.strerror}")
    return exc


def commit_file(tmp: Path, target: Path, *, replace: bool) -> Path:
    """Put the finished temporary file (or folder) ``tmp`` at ``target``.

    ``replace=True``: one ``os.replace`` (a folder: the old one is moved aside first). False: a
    hard link, which fails if ``target`` appeared meanwhile instead of replacing it (a folder: a
    rename, which fails on a non-empty folder or a file). Then the result is kept under a new
    name next to ``target`` and :class:`OutputError` says where: nothing is lost either way.
    """
    mode = (0o777 if tmp.is_dir() else 0o666) & ~_umask()
    os.chmod(tmp, mode)  # mkstemp / mkdtemp make private files; give the usual permissions
    if tmp.is_dir():
        if replace:
            _replace_folder(tmp, target)
            return target
        try:
            os.rename(tmp, target)
            return target
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise
    elif replace:
        os.replace(tmp, target)
        return target
    else:
        try:
            os.link(tmp, target)  # atomic and never replaces: EEXIST if someone was faster
            os.unlink(tmp)
            return target
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: the check and the rename are two steps
            if not target.exists() and not target.is_symlink():
                os.rename(tmp, target)
                return target
    kept = _keep_aside(tmp, target)
    raise OutputExistsError(
        f"{str(target)!r} appeared while the result was being written and was left as it is; "
        f"the result was saved to {str(kept)!r} instead", str(kept)
    )


def free_name(target: str | Path) -> Path:
    """The first ``<name>.structn2v-<n><suffix>`` next to ``target`` that does not exist (the
    suffix kept, ``.ome.zarr`` whole, so the file still opens as what it is)."""
    target = Path(target)
    name = target.name
    suffix = "".join(target.suffixes[-2:]) if name.lower().endswith(".ome.zarr") else target.suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    for n in range(1, 10_000):
        candidate = target.with_name(f"{stem}.structn2v-{n}{suffix}")
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise OutputError(f"no free name next to {str(target)!r}; clean up its .structn2v-N copies")


def _keep_aside(tmp: Path, target: Path) -> Path:
    """Move ``tmp`` to a :func:`free_name` next to ``target``, never replacing anything."""
    for _ in range(100):  # another writer may take the name between the look and the move
        candidate = free_name(target)
        try:
            if tmp.is_dir():
                os.rename(tmp, candidate)  # fails on a non-empty folder
            else:
                os.link(tmp, candidate)
                os.unlink(tmp)
            return candidate
        except OSError:
            continue
    raise OutputError(f"{str(target)!r} appeared while the result was being written; no free name was found next to it")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, writer: Callable[[IO[bytes]], object], *, replace: bool | None = None) -> Path:
    """Call ``writer(fh)`` on a temporary file that then becomes ``path`` (see :func:`atomic_file`)."""
    with atomic_file(path, replace=replace) as fh:
        writer(fh)
    return Path(path)


def _format_or_fail(p: Path) -> str:
    fmt = image_format(p)
    if fmt is None:
        raise OutputError(
            f"cannot write {str(p)!r}: unknown extension {p.suffix or '(none)'!r}; use {', '.join(IMAGE_FORMATS)}"
        )
    return fmt


def write_image(
    path: str | Path, image: np.ndarray, *, axes: str | None = None, scale: Sequence[float] | None = None,
    replace: bool | None = None,
) -> Path:
    """Write ``image`` as float32, atomically, in the format named by the extension.

    ``.tif``/``.tiff``: a TIFF whose metadata keep the shape and, when given, the ``axes`` (so a
    ``(2, 2, 64, 64)`` array reads back as such, not as 4 pages), BigTIFF above
    :data:`BIGTIFF_BYTES`; ``.npy``: a NumPy file; ``.zarr``/``.ome.zarr``: an OME-Zarr 0.4 image
    with ``axes`` and ``scale`` (see :func:`open_output`). Any other extension raises
    :class:`OutputError` (nothing is written under a misleading name). A lazy ``image`` (zarr,
    dask, memmap) is copied block by block. ``replace`` as for :func:`atomic_file`.
    """
    p = Path(path)
    fmt = _format_or_fail(p)
    if axes is not None and len(axes) != len(np.shape(image) if not hasattr(image, "shape") else image.shape):
        raise DataError(f"axes {axes!r} do not describe an array of shape {tuple(np.shape(image))}")
    from ..prediction.predict import is_lazy, iter_blocks

    if fmt == "zarr" or is_lazy(image):
        with open_output(p, tuple(image.shape), axes=axes, scale=scale, replace=replace) as out:
            for key in iter_blocks(image.shape):
                out[key] = np.asarray(image[key], dtype=np.float32)
        return p
    arr = np.asarray(image, dtype=np.float32)
    if fmt == "npy":
        return write_atomic(p, lambda fh: np.save(fh, arr, allow_pickle=False), replace=replace)
    import tifffile

    metadata = {"axes": axes.upper()} if axes else {}
    return write_atomic(p, lambda fh: tifffile.imwrite(
        fh, arr, metadata=metadata, bigtiff=arr.nbytes >= BIGTIFF_BYTES, photometric="minisblack"  # a 3-long axis is not RGB
    ), replace=replace)


@contextlib.contextmanager
def open_output(
    path: str | Path,
    shape: Sequence[int],
    *,
    axes: str | None = None,
    scale: Sequence[float] | None = None,
    chunks: Sequence[int] | None = None,
    replace: bool | None = None,
) -> Iterator[Any]:
    """A writable float32 array-like of ``shape`` that becomes ``path`` when the block ends.

    Results are written into it piece by piece (``out[region] = tile``), so the whole image is
    never held in memory: ``.zarr``/``.ome.zarr`` is an OME-Zarr 0.4 image (zarr format 2, one
    level ``"0"``, chunks from :func:`default_chunks`), ``.tif``/``.tiff`` a memory-mapped TIFF
    (BigTIFF above :data:`BIGTIFF_BYTES`), ``.npy`` a memory-mapped NumPy file. Everything is
    written into a temporary file or folder next to ``path``, which becomes ``path`` only when the
    block ends without an exception (the old file or store is kept otherwise, and the temporary
    one removed). The disk space of a memory-mapped file is reserved before the block starts: a
    full disk is an :class:`OutputError` then, not a bus error (SIGBUS) when a tile is written
    into the mapping. ``replace`` as for :func:`atomic_file`.
    """
    p = Path(path)
    fmt = _format_or_fail(p)
    shape = tuple(int(s) for s in shape)
    if axes is not None and len(axes) != len(shape):
        raise DataError(f"axes {axes!r} do not describe an array of shape {shape}")
    p.parent.mkdir(parents=True, exist_ok=True)
    replace = _replace_rule(p, replace)
    if fmt == "zarr":
        import_zarr()  # a missing zarr fails before any folder is made
        tmp = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part"))
    else:
        fd, tmp_name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
    try:
        try:
            array = _create_output(tmp, fmt, shape, axes, scale, chunks)
        except OSError as exc:
            raise _write_error(p, exc) from exc
        yield array
        try:
            if fmt != "zarr":
                array.flush()
        except OSError as exc:
            raise _write_error(p, exc) from exc
        del array
        commit_file(tmp, p, replace=replace)
    except OSError as exc:  # a zarr chunk written on a full disk (the block's other errors pass as they are)
        _remove(tmp)
        raise _write_error(p, exc, full_only=True) from exc
    except BaseException:
        _remove(tmp)
        raise


def _create_output(tmp: Path, fmt: str, shape: tuple[int, ...], axes, scale, chunks) -> Any:
    """The writable array of :func:`open_output` in the temporary file or folder ``tmp``."""
    if fmt == "zarr":
        return create_ome_zarr(tmp, shape, axes=axes, scale=scale, chunks=chunks)
    if fmt == "npy":
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    else:
        import tifffile

        metadata = {"axes": axes.upper()} if axes else {}
        big = int(np.prod(shape)) * 4 >= BIGTIFF_BYTES
        array = tifffile.memmap(tmp, shape=shape, dtype=np.float32, bigtiff=big, metadata=metadata, photometric="minisblack")
    _reserve(tmp)
    return array


def _reserve(path: Path) -> None:
    """Allocate every block of the (sparse) file ``path``: writing into a memory map of a sparse
    file on a full disk kills the process with SIGBUS, an allocation fails with ENOSPC instead.
    (Without ``posix_fallocate``, on macOS and Windows, the file stays as it is.)"""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)  # glibc writes zeros where the file system cannot allocate
    finally:
        os.close(fd)


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        settle_writes()  # a zarr chunk still being written would re-create the folder
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _replace_folder(new: Path, target: Path) -> None:
    """Put the finished folder ``new`` at ``target``: one rename, after moving an old ``target``
    aside (removed only once the new one is in place)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.rmdir(old)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
