"""The blind mask drawn over the autocorrelation of the last analysed image, as outlines.

Outlines, not a wash: the autocorrelation under the hidden pixels stays readable.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._layers import HELPER_KEY, find_layer
from ._noise_display import autocorr_layer_name

if TYPE_CHECKING:
    import napari


def overlay_layer_name(source: str) -> str:
    return f"mask outline: {source}"


def show_mask_overlay(viewer: napari.Viewer, source: str, mask: np.ndarray, visible: bool) -> None:
    """Draw ``mask`` over the autocorrelation layer of ``source`` (hide it when not ``visible`` or
    when there is no such layer); the active layer stays active."""
    name = overlay_layer_name(source)
    ac_layer = find_layer(viewer, autocorr_layer_name(source))
    if not visible or ac_layer is None:
        existing = find_layer(viewer, name)
        if existing is not None:
            existing.visible = False
        return
    overlay = mask_overlay(mask, tuple(ac_layer.data.shape))
    rects = outline_rectangles(overlay, np.asarray(ac_layer.scale), np.asarray(ac_layer.translate))
    existing = find_layer(viewer, name)
    if existing is not None and (type(existing).__name__ != "Shapes" or existing.ndim != overlay.ndim):
        viewer.layers.remove(existing)
        existing = None
    previous = viewer.layers.selection.active
    if existing is None:
        viewer.add_shapes(
            rects, shape_type="rectangle", name=name, edge_color="cyan", face_color="transparent",
            edge_width=max(1.0, float(ac_layer.scale[-1]) / 6), metadata={HELPER_KEY: True},
        )
    else:
        existing.data = rects
        existing.visible = True
    if previous is not None and previous in viewer.layers:
        viewer.layers.selection.active = previous


def mask_overlay(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` centred in a float32 array of ``shape`` (cropped if larger), for display.

    A 3D mask over a 2D autocorrelation shows its central plane; a 2D mask over a 3D
    autocorrelation sits on the central plane.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 3 and len(shape) == 2:
        m = m[m.shape[0] // 2]
    elif m.ndim == 2 and len(shape) == 3:
        m = m[None]
    out = np.zeros(shape, dtype=np.float32)
    src, dst = [], []
    for n, s in zip(m.shape, shape):
        cm, cs = n // 2, s // 2
        half = min(cm, cs)
        src.append(slice(cm - half, cm + half + 1))
        dst.append(slice(cs - half, cs + half + 1))
    out[tuple(dst)] = m[tuple(src)]
    return out


def outline_rectangles(plane_mask: np.ndarray, scale: np.ndarray, translate: np.ndarray) -> list[np.ndarray]:
    """World-coordinate rectangles around the runs of hidden pixels of each row of a mask image.

    ``plane_mask`` is the mask placed in the autocorrelation's array (:func:`mask_overlay`);
    a 3D one gives rectangles on each of its Z planes.
    """
    m = np.asarray(plane_mask) > 0.5
    rects = []
    for idx in zip(*np.nonzero(m[..., :, :].any(axis=-1))):
        row = m[idx]
        lead, y = idx[:-1], idx[-1]
        x = 0
        while x < row.size:
            if not row[x]:
                x += 1
                continue
            x0 = x
            while x < row.size and row[x]:
                x += 1
            corners = [(y - 0.5, x0 - 0.5), (y + 0.5, x - 0.5)]
            data = np.array([[*lead, *c] for c in corners], dtype=float)
            rects.append(data * scale + translate)
    return rects
