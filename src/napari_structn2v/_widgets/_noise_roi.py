"""The pixels the noise analysis reads: rectangles of the noise ROI layer, the current plane.

Plain functions of the viewer's position and the layers, run on the Qt main thread.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from ._layers import layer_axes, layer_data

if TYPE_CHECKING:
    import napari

ROI_LAYER = "noise ROI"
#: smallest ROI side, in pixels, worth analysing
MIN_ROI = 8


def roi_crops(viewer: napari.Viewer, roi: Any, source: Any, z_range: int) -> tuple[list[np.ndarray], str]:
    """The pixels of every rectangle of the ROI layer ``roi`` in ``source`` (pooled) and their axes."""
    if roi is None or len(roi.data) == 0:
        raise DataError("Draw a rectangle on the 'noise ROI' layer over an area without structure.")
    crops = [roi_crop(viewer, roi, source, np.asarray(verts, dtype=float), z_range) for verts in roi.data]
    return [c[0] for c in crops], crops[0][1]


def roi_crop(viewer: napari.Viewer, roi: Any, source: Any, verts: np.ndarray, z_range: int) -> tuple[np.ndarray, str]:
    """The pixels of one rectangle in ``source`` and their axes (indexed axes dropped).

    Along Z it takes ``z_range`` slices above and below the rectangle's; along S and T its own.
    """
    data = layer_data(source)  # a lazy layer is read only inside the rectangle (np.asarray below)
    axes = layer_axes(source)
    if not axes:
        raise DataError(f"Cannot tell the axes of layer {source.name!r}.")
    pts = _data_points(viewer, roi, source, verts)
    index: list[Any] = []
    kept = ""
    for i, letter in enumerate(axes):
        size = data.shape[i]
        if letter in "YX":
            index.append(_side(pts[:, i], size, letter))
            kept += letter
        elif letter == "C":
            index.append(slice(None))
            kept += letter
        else:
            centre = int(np.clip(np.round(pts[:, i].mean()), 0, size - 1))
            half = z_range if letter == "Z" else 0
            if half:
                index.append(slice(max(centre - half, 0), min(centre + half + 1, size)))
                kept += letter
            else:
                index.append(centre)
    return np.asarray(data[tuple(index)]), kept


def _data_points(viewer: napari.Viewer, roi: Any, source: Any, verts: np.ndarray) -> np.ndarray:
    """The rectangle's corners in ``source``'s data coordinates."""
    pts = []
    for v in verts:
        world = np.asarray(roi.data_to_world(v))
        if world.size < source.ndim:  # a 2D ROI over a stack: take the slice from the viewer
            point = np.asarray(viewer.dims.point, dtype=float)[-source.ndim :]
            point[-world.size :] = world
            world = point
        pts.append(np.asarray(source.world_to_data(world[-source.ndim :]), dtype=float))
    return np.array(pts)


def _side(coords: np.ndarray, size: int, letter: str) -> slice:
    """The pixels a rectangle covers along Y or X, inside the image and at least MIN_ROI wide."""
    lo = int(np.floor(coords.min() + 0.5))
    hi = int(np.floor(coords.max() + 0.5))
    if hi <= 0 or lo >= size:
        raise DataError("The noise ROI lies outside the image; draw it over the image.")
    lo, hi = max(lo, 0), min(hi, size)
    if hi - lo < MIN_ROI:
        raise DataError(
            f"The noise ROI is too small ({hi - lo} px along {letter}); "
            f"draw at least {MIN_ROI}x{MIN_ROI} pixels."
        )
    return slice(lo, hi)


def current_plane(viewer: napari.Viewer, data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """The image at the viewer's current S/T/C position (Z kept), for the background search."""
    index: list[Any] = []
    kept = ""
    point = np.asarray(viewer.dims.point, dtype=float)[-data.ndim :]
    for i, letter in enumerate(axes):
        if letter in "ZYX":
            index.append(slice(None))
            kept += letter
        else:
            index.append(int(np.clip(round(point[i]), 0, data.shape[i] - 1)))
    return np.asarray(data[tuple(index)]), kept


def background_rectangles(background: Any, lead: list[float], ndim: int) -> list[np.ndarray]:
    """Rectangles (corner arrays of a Shapes layer of ``ndim`` dimensions) around the background
    tiles found by :func:`~napari_structn2v.noise.background.find_background`; ``lead`` are the coordinates
    before Y and X (the current slice)."""
    t = background.tile
    rects = []
    z_starts = background.z_starts or [None] * len(background.corners)
    for (y, x), z in zip(background.corners, z_starts):
        before = list(lead)
        if z is not None and before:  # a volume's tile: the rectangle on its middle slice
            before[-1] = z + background.depth // 2
        corners = [(y - 0.5, x - 0.5), (y - 0.5, x + t - 0.5), (y + t - 0.5, x + t - 0.5), (y + t - 0.5, x - 0.5)]
        rects.append(np.array([[*before, *c] for c in corners], dtype=float)[:, -ndim:])
    return rects
