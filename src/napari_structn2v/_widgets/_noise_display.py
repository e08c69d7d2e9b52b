"""How the noise analysis is shown: its layers beside the image, and its text.

The normalised autocorrelation is added as ``"autocorrelation: <source>"`` beside the image,
zoomed, with a red cross on its zero lag and optionally the power spectrum below it; re-runs update
the layers in place. Everything here runs on the Qt main thread.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..masks import describe_mask
from ._layers import HELPER_KEY, add_or_update_image, find_layer

if TYPE_CHECKING:
    import napari

#: world pixels per autocorrelation lag, so that a 9-pixel line is plainly visible
AUTOCORR_ZOOM = 8.0


# Layer names put the distinguishing word first, so they stay readable when napari cuts them.
def autocorr_layer_name(source: str) -> str:
    return f"autocorrelation: {source}"


def spectrum_layer_name(source: str) -> str:
    return f"power spectrum: {source}"


def lag0_layer_name(source: str) -> str:
    return f"lag 0: {source}"


def placement(viewer: napari.Viewer, source: Any, shape: tuple[int, ...]) -> tuple[list[float], list[float]]:
    """Scale and translate that put an array of ``shape`` beside ``source``, zoomed."""
    extent = np.asarray(source.extent.world, dtype=float)  # (2, ndim): min, max
    top, right = extent[0][-2], extent[1][-1]
    gap = 2 * AUTOCORR_ZOOM
    scale = [AUTOCORR_ZOOM, AUTOCORR_ZOOM]
    translate = [top, right + gap]
    if len(shape) == 3:  # centre plane on the current slice of the source
        sz = float(source.scale[-3]) if source.ndim >= 3 else 1.0
        z_now = float(viewer.dims.point[-3]) if viewer.dims.ndim >= 3 else 0.0
        scale = [sz, *scale]
        translate = [z_now - (shape[0] // 2) * sz, *translate]
    return scale, translate


def show_analysis_layers(viewer: napari.Viewer, source: Any, analysis: Any, spectrum: np.ndarray | None) -> None:
    """Add or update the autocorrelation (with its zero-lag cross) and the power spectrum layers."""
    ac = np.asarray(analysis.autocorrelation, dtype=np.float32)
    scale, translate = placement(viewer, source, ac.shape)
    first = find_layer(viewer, autocorr_layer_name(source.name)) is None
    add_or_update_image(
        viewer,
        autocorr_layer_name(source.name),
        ac,
        scale=scale,
        translate=translate,
        colormap="magma",
        contrast_limits=(0.0, 1.0),
        interpolation2d="nearest",
    )
    show_lag0(viewer, source.name, ac.shape, scale, translate)
    if first:  # bring the new layer into view, beside the image
        viewer.reset_view()
    if spectrum is not None:
        show_spectrum(viewer, source.name, np.asarray(spectrum, dtype=np.float32), ac.shape, scale, translate)


def show_spectrum(
    viewer: napari.Viewer, source: str, ps: np.ndarray, ac_shape: tuple[int, ...], scale: list[float],
    translate: list[float],
) -> None:
    """The power spectrum below the autocorrelation (placed by ``scale``/``translate``), as wide."""
    zoom = AUTOCORR_ZOOM * ac_shape[-1] / ps.shape[-1]
    ps_scale = [*scale[:-2], zoom, zoom]
    ps_translate = [*translate[:-2], translate[-2] + (ac_shape[-2] + 2) * AUTOCORR_ZOOM, translate[-1]]
    if ps.ndim == 3 and len(ac_shape) == 2:
        ps = ps[ps.shape[0] // 2]
    elif ps.ndim == 2 and len(ac_shape) == 3:
        ps_scale, ps_translate = ps_scale[1:], ps_translate[1:]
    finite = ps[np.isfinite(ps)]
    limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if limits[1] <= limits[0]:
        limits = (limits[0], limits[0] + 1)
    add_or_update_image(
        viewer,
        spectrum_layer_name(source),
        ps,
        scale=ps_scale,
        translate=ps_translate,
        colormap="viridis",
        contrast_limits=limits,
    )


def show_lag0(viewer: napari.Viewer, source: str, shape: tuple[int, ...], scale: list[float],
              translate: list[float]) -> None:
    """A red cross on the zero-lag pixel of the autocorrelation layer."""
    centre = [t + (n // 2) * sc for n, sc, t in zip(shape, scale, translate)]
    name = lag0_layer_name(source)
    layer = find_layer(viewer, name)
    previous = viewer.layers.selection.active
    if layer is not None and (type(layer).__name__ != "Points" or layer.ndim != len(shape)):
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        viewer.add_points(
            [centre], name=name, symbol="cross", size=AUTOCORR_ZOOM * 0.8, face_color="red",
            border_color="red", metadata={HELPER_KEY: True},
        )
    else:
        layer.data = [centre]
    if previous is not None and previous in viewer.layers:
        viewer.layers.selection.active = previous


def report_text(analysis: Any) -> str:
    """The suggested mask, threshold and noise floor, and how reliable the estimate is."""
    return (
        f"Suggested mask: {describe_mask(analysis.mask)} (W x H{' x D' if analysis.mask.ndim == 3 else ''})\n"
        f"threshold {analysis.threshold:.3f}, noise floor {analysis.floor:.4f}\n"
        f"{getattr(analysis, 'reliability', lambda: '')()}"
    )


def verdict_text(analysis: Any) -> str:
    """What to make of an analysis: its reliability warnings, and the Z advice for 3D masks."""
    lines = [f"⚠ {w[0].upper()}{w[1:]}." for w in getattr(analysis, "warnings", [])]
    mask = np.asarray(analysis.mask)
    if mask.ndim == 3 and mask.shape[0] == 1 and analysis.autocorrelation.shape[0] > 1:
        lines.append(
            "The noise is independent across Z: a 2D mask over the slices (train with axes "
            f"SYX and mask {mask.shape[2]}x{mask.shape[1]}) is the better choice; it trains faster too."
        )
    if not lines:
        lines.append("✓ Reliable: enough pixels, no signal detected.")
    return "\n".join(lines)
