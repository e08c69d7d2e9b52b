"""Checks that an output path can receive a new file, made before any long work starts.

:func:`check_output` refuses folders, files the run reads, unknown extensions, existing files
(unless overwriting) and folders that cannot be written, each with a message naming the option,
so a run never ends with nowhere to put its result. Torch-free.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..errors import OutputError
from .formats import image_format


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
    store: bool = True,
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
    store : bool
        Whether the output may be a zarr store (a folder named ``.zarr``); False for outputs
        that are always one file (a model), so ``model.zarr`` is refused at once, not after training.

    Returns
    -------
    Path
        ``path`` as a Path. Missing parent folders are created by the writers.
    """
    p = Path(path)
    if str(path).strip() == "":
        raise OutputError(f"{option} is empty; give a file name")
    zarr_out = store and image_format(p) == "zarr" and (suffixes is None or ".zarr" in suffixes)
    if p.is_dir() and zarr_out and not any((p / n).exists() for n in (".zgroup", ".zarray", "zarr.json")):
        raise OutputError(f"{option} {str(p)!r} is a folder but not a zarr store; it is never replaced, choose another name")
    if p.is_dir() and not zarr_out:
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

