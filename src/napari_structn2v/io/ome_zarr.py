"""OME-Zarr images: reading (plain zarr arrays, groups of one array, OME multiscales 0.4/0.5) and
writing version 0.4 (zarr format 2 on disk, which every OME-Zarr reader understands), one
resolution level ``0`` with ``axes`` and a ``scale`` transformation.

zarr is optional (the ``big`` extra) and imported only when a ``.zarr`` path is used.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError

#: OME-NGFF axis names <-> our letters (``s`` for samples is not an NGFF name but is allowed as custom)
_OME_NAME = {"T": "t", "C": "c", "Z": "z", "Y": "y", "X": "x", "S": "s"}
_OME_TYPE = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def import_zarr() -> Any:
    """The zarr package, or a :class:`DataError` that names the extra to install."""
    try:
        import zarr
    except ImportError as exc:
        raise DataError("reading or writing .zarr needs the zarr package: pip install 'napari-structn2v[big]'") from exc
    return zarr


def _ome_multiscales(attrs: Mapping) -> list | None:
    ms = attrs.get("multiscales")
    if ms is None and isinstance(attrs.get("ome"), Mapping):  # OME-Zarr 0.5 nests it under "ome"
        ms = attrs["ome"].get("multiscales")
    return ms if isinstance(ms, list) and ms else None


def read_zarr(p: Path) -> tuple[Any, str | None, tuple[float, ...] | None]:
    """A zarr store opened lazily: ``(array, axes, scale)``. A plain array's axes come from its
    ``axes`` attribute; an OME-Zarr image gives its first resolution level with the axes and scale
    of its multiscales metadata; a group without them must hold exactly one array."""
    zarr = import_zarr()
    node = zarr.open(str(p), mode="r")
    if hasattr(node, "shape"):  # a plain zarr array; its axes are checked by io.metadata_axes
        return node, node.attrs.get("axes"), None
    ms = _ome_multiscales(node.attrs)
    if ms is None:
        arrays = sorted(name for name, _ in node.arrays())
        if len(arrays) != 1:
            raise DataError(f"{str(p)!r} is a zarr group without OME multiscales metadata and holds {len(arrays)} arrays, not one")
        return node[arrays[0]], None, None
    try:
        first = ms[0]["datasets"][0]
        where = first["path"]
    except (KeyError, IndexError, TypeError) as exc:
        raise DataError(f"{str(p)!r} has OME multiscales metadata without a first dataset path") from exc
    try:
        data = node[where]
    except KeyError as exc:
        raise DataError(f"{str(p)!r}: its OME multiscales metadata name the dataset {where!r}, which the store does not hold") from exc
    if not hasattr(data, "shape"):
        raise DataError(f"{str(p)!r}: its OME multiscales dataset {where!r} is a group, not an array")
    letters = {v: k for k, v in _OME_NAME.items()}
    names = [a.get("name", "?") if isinstance(a, Mapping) else str(a) for a in ms[0].get("axes") or []]
    axes = "".join(letters.get(str(n).lower(), "?") for n in names) or None  # checked by io.metadata_axes
    scale = None
    for tr in first.get("coordinateTransformations") or []:
        if isinstance(tr, Mapping) and tr.get("type") == "scale":
            try:
                scale = tuple(float(v) for v in tr["scale"])
            except (KeyError, TypeError, ValueError):
                scale = None  # a scale that cannot be read is no scale
    return data, axes, scale


#: chunk sides of outputs (and read blocks of unchunked sources, data.DEFAULT_BLOCK): about 4 MB of float32
CHUNK_LIMITS = {"Z": 16, "Y": 256, "X": 256}


def default_chunks(shape: Sequence[int], axes: str | None) -> tuple[int, ...]:
    """Chunks of about 4 MB of float32 for a zarr output: one index of S/T/C, up to 16 Z slices
    and 256 x 256 in Y and X (a tile of the default 256 prediction tile writes whole chunks)."""
    axes = axes.upper() if axes else "?" * (len(shape) - 2) + "YX"
    return tuple(min(int(s), CHUNK_LIMITS.get(a, 1)) for s, a in zip(shape, axes))


def ome_metadata(axes: str, scale: Sequence[float] | None = None, name: str = "image") -> dict:
    """OME-NGFF 0.4 ``multiscales`` attributes for one resolution level ``"0"``."""
    ax = axes.upper()
    scale = [1.0] * len(ax) if scale is None else [float(v) for v in scale]
    if len(scale) != len(ax):
        raise DataError(f"scale {list(scale)} does not have one value per axis of {ax!r}")
    entries = []
    for a in ax:
        entry = {"name": _OME_NAME[a]}
        if a in _OME_TYPE:
            entry["type"] = _OME_TYPE[a]
        if a in "ZYX":
            entry["unit"] = "micrometer"
        entries.append(entry)
    return {
        "multiscales": [
            {
                "version": "0.4",
                "name": name,
                "axes": entries,
                "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
            }
        ]
    }


def create_ome_zarr(
    folder: str | Path,
    shape: Sequence[int],
    *,
    axes: str | None = None,
    scale: Sequence[float] | None = None,
    chunks: Sequence[int] | None = None,
) -> Any:
    """A new float32 OME-Zarr image at ``folder`` (zarr format 2, level ``"0"``, zeros until
    written), created in place: for a result that is read while it is written (a napari layer).
    :func:`~napari_structn2v.io.images.open_output` wraps it to replace a file only when complete."""
    zarr = import_zarr()
    shape = tuple(int(s) for s in shape)
    group = _zarr_group(zarr, Path(folder))
    kw = dict(shape=shape, chunks=tuple(chunks) if chunks else default_chunks(shape, axes), dtype="float32", fill_value=0.0)
    array = group.create_array("0", **kw) if hasattr(group, "create_array") else group.create_dataset("0", **kw)
    attrs = ome_metadata(axes, scale) if axes else {}
    if axes:
        attrs["napari_structn2v"] = {"axes": axes.upper()}
    group.attrs.update(attrs)
    return array


def _zarr_group(zarr, folder: Path):
    """A new zarr group at ``folder`` in zarr format 2 (what OME-Zarr 0.4 readers expect)."""
    try:
        return zarr.open_group(str(folder), mode="w", zarr_format=2)
    except TypeError:  # zarr-python 2 has no zarr_format argument and writes format 2 anyway
        return zarr.open_group(str(folder), mode="w")



def settle_writes(timeout_s: float = 10.0) -> None:
    """Wait for chunk writes zarr still runs in the background. zarr 3 writes a region's chunks
    concurrently and raises at the first failure (``asyncio.gather``) while the others go on; one of
    them re-created a removed ``.part`` folder in 2 of 4 full-disk runs. zarr 2 writes in the
    calling thread: nothing to wait for."""
    try:
        from zarr.core.sync import sync  # zarr 3
    except ImportError:
        return
    import asyncio

    async def pending() -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=timeout_s)

    try:
        sync(pending())
    except Exception:  # noqa: BLE001 - cleanup goes on whatever zarr's loop says
        pass
