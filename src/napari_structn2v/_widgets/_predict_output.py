"""The Predict dock's output layer: in memory, or an OME-Zarr store on disk for a lazy source.

An in-memory layer gets an in-memory output layer. A lazy layer (dask, zarr, memmap) is never
loaded: its output layer is an OME-Zarr store, filled tile by tile, in the chosen output folder or
else a temporary folder removed when Python exits. Re-runs reuse the layer. Main thread only.
"""
from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image

from ..io.images import check_output, create_ome_zarr
from ._layers import find_layer

if TYPE_CHECKING:
    import napari

    from ..events import TileDone

#: layer metadata key: the temporary folder holding a zarr output layer's store (ours to remove)
TEMP_STORE_KEY = "napari_structn2v_temporary_store"
#: values kept per finished tile for the output's contrast limits: 4096 x 242 tiles of a
#: 64 x 2048 x 2048 volume are 1M values (4 MB); a zarr store is never read back, and the
#: percentiles of a whole 2048 x 2048 array took the GUI thread 100 ms at the end of a run
CONTRAST_SAMPLES_PER_TILE = 4096
#: at most one output-layer redraw per this many milliseconds while tiles stream in: a redraw costs
#: 30-60 ms of the GUI thread (re-slice and repaint under Mesa), so at 100 ms it took up to half of it
REFRESH_MS = 250
#: the slice size that REFRESH_MS paces: a larger slice on view is redrawn less often, in proportion
REFRESH_PIXELS = 512 * 512
#: the longest wait between two redraws of a large slice (ms)
REFRESH_MAX_MS = 3000


def refresh_interval_ms(pixels: int) -> int:
    """How often (ms) to redraw an output layer whose slice on view has ``pixels`` pixels.

    Under Xvfb on 2 cores a redraw costs the GUI thread 25-140 ms whatever changed (napari's
    re-slice, the whole texture's upload, Qt composing the window with software OpenGL), so the
    share of the time the GUI spends drawing, and the chance that a click waits for a draw, grows
    with how often it redraws. A 512 x 512 slice is redrawn every 250 ms; a 2048 x 2048 image
    every 3 s (16 x the pixels, capped), so that a tile stream of a large image stays under one
    redraw per 150 ticks of a 20 ms timer.
    """
    return int(min(REFRESH_MAX_MS, max(REFRESH_MS, REFRESH_MS * pixels / REFRESH_PIXELS)))


def output_layer_name(source: str) -> str:
    return f"{source} (StructN2V)"


def zarr_output_name(source: str) -> str:
    """File name of a zarr output in the chosen folder: ``<layer>_structn2v.ome.zarr``."""
    return re.sub(r"[^\w.-]+", "_", source).strip("_") + "_structn2v.ome.zarr"


class Discard:
    """An ``out=`` that keeps nothing: the widget writes each tile into the layer on the main
    thread (so the viewer never reads a half-written chunk) and no second result is allocated."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Drop the tile: the widget has its own copy from the TileDone event."""


class PredictOutput:
    """The output layer ``"<source> (StructN2V)"`` of one run, filled as tiles finish.

    It is created at once, filled with zeros, with the source's shape, scale and translate: a
    float32 array, or with ``zarr_axes`` a new OME-Zarr store in ``folder`` (a temporary folder
    when ""). A new layer takes its contrast from the result once complete; a reused one keeps the
    contrast the user set.
    """

    def __init__(self, viewer: napari.Viewer, source: Any, shape: tuple[int, ...], *,
                 zarr_axes: str | None = None, folder: str = "") -> None:
        self.viewer = viewer
        self._samples: list[np.ndarray] = []  # a strided sample of each tile, for the contrast
        self._pending: list[tuple[slice, ...]] = []  # regions written since the last redraw
        data, temp = new_zarr_output(source, shape, zarr_axes, folder) if zarr_axes else (None, None)
        self.layer, self.fresh = _reuse_or_add(viewer, source, shape, data, temp)
        # the layer was drawn as it was added (or zeroed): the first tiles wait like the later ones,
        # instead of a redraw of the whole slice while the run starts (the GUI's longest gaps of a
        # 2048 x 2048 stream, 117 and 122 ms, came in its first 0.3 s)
        self._redrawn_at = time.perf_counter()  # of the last redraw

    @property
    def refresh_ms(self) -> int:
        """How often to redraw while tiles stream in: :func:`refresh_interval_ms` of the slice on view."""
        shape = self.layer.data.shape
        offset = self.viewer.dims.ndim - len(shape)
        on_view = [shape[d - offset] for d in self.viewer.dims.displayed if d >= offset]
        return refresh_interval_ms(int(np.prod(on_view)) if on_view else 1)

    @property
    def shown(self) -> bool:
        """True while the layer is in the viewer (the user may delete it during a run)."""
        return self.layer in self.viewer.layers

    def write(self, event: TileDone) -> None:
        """Put a finished tile into the layer."""
        if self.shown:
            self.layer.data[event.region] = event.data
            self._pending.append(tuple(event.region))
        flat = event.data.reshape(-1)  # a strided sample of each tile, for the contrast at the end
        self._samples.append(flat[:: max(1, flat.size // CONTRAST_SAMPLES_PER_TILE)].copy())

    def refresh(self, *, force: bool = False) -> None:
        """Redraw the layer if a tile written since the last redraw is on the slice shown, at most
        every :attr:`refresh_ms` (counted from the layer's creation) unless ``force``.

        A redraw re-slices the layer and repaints the canvas: 25-140 ms of the GUI thread under
        Xvfb on 2 cores. Tiles of other slices of a volume need none (and are drawn when the user
        moves there, from the layer's data).
        """
        now = time.perf_counter()
        if not force and (now - self._redrawn_at) * 1000 < self.refresh_ms:
            return  # the tiles stay pending
        pending, self._pending = self._pending, []
        if self.shown and any(self._on_view(region) for region in pending):
            self.layer.refresh()
            self._redrawn_at = now

    def _on_view(self, region: tuple[slice, ...]) -> bool:
        """True when ``region`` (of the layer's data) covers the slice the viewer shows."""
        dims = self.viewer.dims
        layer = self.layer
        point = np.asarray(layer.world_to_data(np.asarray(dims.point, dtype=float)[-layer.ndim :]), dtype=float)
        offset = dims.ndim - layer.ndim
        for i, sl in enumerate(region[: layer.ndim]):
            if i + offset in dims.displayed or not isinstance(sl, slice):
                continue
            index = int(np.round(point[i]))
            start, stop, _ = sl.indices(layer.data.shape[i])
            if not start <= index < stop:
                return False
        return True

    def finish(self, stopped: bool) -> None:
        """The run is over: a new layer gets the result's contrast (unless stopped); redraw."""
        self._pending = []
        if not self.shown:
            return
        if self.fresh and not stopped:
            # the source's limits span its noise; the denoised image needs its own
            values = np.concatenate([np.empty(0, np.float32), *self._samples])
            limits = _contrast_limits(values) if values.size else None
            if limits is not None:
                self.layer.contrast_limits = limits
        self.layer.refresh()


def camera(viewer: napari.Viewer) -> Any:
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def view_focus(viewer: napari.Viewer, layer: Any, axes: str) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """Where the viewer looks in ``layer``'s data (axes ``axes``), for the order of the tiles: the
    slice (the axes not displayed, e.g. ``{"Z": 15}``) and the middle of the canvas (the displayed
    axes), in data pixels clipped to the image; None for either when there is none (an RGB layer,
    whose axes do not match its dimensions, gets neither)."""
    if len(axes) != layer.ndim:
        return None, None
    dims = viewer.dims
    world = np.asarray(dims.point, dtype=float).copy()
    displayed = list(dims.displayed)
    centre = tuple(camera(viewer).center)[-len(displayed):]  # world coordinates of the displayed axes
    for d, c in zip(displayed, centre):
        world[d] = c
    offset = dims.ndim - layer.ndim
    data = np.asarray(layer.world_to_data(world[offset:]), dtype=float)
    shape = layer.data[0].shape if getattr(layer, "multiscale", False) else layer.data.shape
    focus: dict[str, float] = {}
    near: dict[str, float] = {}
    for i, a in enumerate(axes):
        if a != "C" and np.isfinite(data[i]):
            (near if i + offset in displayed else focus)[a] = float(np.clip(np.round(data[i]), 0, shape[i] - 1))
    return focus or None, near or None


class ViewFocus:
    """:func:`view_focus` of one layer, kept current on the main thread (call :meth:`update` from
    the viewer's events); calling it returns the latest ``(focus, near)``, so a worker can read
    where the user looks when its prediction starts without touching the viewer."""

    def __init__(self, viewer: napari.Viewer, layer: Any, axes: str) -> None:
        self.viewer, self.layer, self.axes = viewer, layer, axes
        self.value = view_focus(viewer, layer, axes)

    def update(self, *args: Any) -> None:
        self.value = view_focus(self.viewer, self.layer, self.axes)

    def __call__(self) -> tuple[dict[str, float] | None, dict[str, float] | None]:
        return self.value


def _reuse_or_add(viewer: napari.Viewer, source: Any, shape: tuple[int, ...], data: Any,
                  temp: str | None) -> tuple[Any, bool]:
    """Reuse or add the zero output layer for ``source`` (``data`` is a zarr store or None for an
    array); returns it and whether it is new."""
    name = output_layer_name(source.name)
    layer = find_layer(viewer, name)
    if layer is not None and isinstance(layer, Image) and layer.ndim == len(shape):
        old_temp = layer.metadata.get(TEMP_STORE_KEY)
        if data is None and isinstance(layer.data, np.ndarray) and layer.data.shape == tuple(shape) and (
            layer.data.dtype == np.float32
        ):
            layer.data[...] = 0
            layer.refresh()
        else:
            layer.data = np.zeros(shape, dtype=np.float32) if data is None else data
        _mark_temp(layer, temp)
        _remove_temp(old_temp)
        layer.scale = source.scale
        layer.translate = source.translate
        return layer, False  # a re-run keeps the contrast the user set
    if layer is not None:
        viewer.layers.remove(layer)
        _remove_temp(layer.metadata.get(TEMP_STORE_KEY))
    layer = viewer.add_image(
        np.zeros(shape, dtype=np.float32) if data is None else data,
        name=name,
        scale=source.scale,
        translate=source.translate,
        contrast_limits=tuple(source.contrast_limits),
        colormap=source.colormap.name if hasattr(source, "colormap") else "gray",
    )
    _mark_temp(layer, temp)
    return layer, True  # contrast from the result once it is complete


def new_zarr_output(source: Any, shape: tuple[int, ...], axes: str, folder: str) -> tuple[Any, str | None]:
    """A zero OME-Zarr store for the result: ``<folder>/<layer>_structn2v.ome.zarr`` in the chosen
    folder (an earlier one replaced), else in a new temporary folder, removed when Python exits
    (returned as the second item)."""
    temp = None
    if folder:
        path = check_output(Path(folder) / zarr_output_name(source.name), option="zarr output", overwrite=True)
        if path.exists():
            shutil.rmtree(path)  # check_output refused anything but a zarr store
    else:
        temp = tempfile.mkdtemp(prefix="structn2v-predict-")
        atexit.register(shutil.rmtree, temp, True)
        path = Path(temp) / zarr_output_name(source.name)
    scale = tuple(float(v) for v in source.scale)
    # chunks one plane deep: napari redraws one YX plane per refresh, which then reads 64 chunks
    # of 256 KB for 2048 x 2048 (16 MB), not 64 of 4 MB 16-plane chunks (256 MB)
    chunks = (1,) * (len(shape) - 2) + tuple(min(256, s) for s in shape[-2:])
    return create_ome_zarr(path, shape, axes=axes, scale=scale, chunks=chunks), temp


def _mark_temp(layer: Any, temp: str | None) -> None:
    if temp is None:
        layer.metadata.pop(TEMP_STORE_KEY, None)
    else:
        layer.metadata[TEMP_STORE_KEY] = temp


def _remove_temp(folder: str | None) -> None:
    """Remove a temporary output folder of ours (a replaced zarr output layer's)."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _contrast_limits(values: np.ndarray) -> tuple[float, float] | None:
    """0.5 and 99.5 percentiles of ``values``, or None when they are equal."""
    lo, hi = np.percentile(values, (0.5, 99.5))
    return (float(lo), float(hi)) if hi > lo else None
