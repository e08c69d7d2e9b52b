"""Noise analysis dock widget: autocorrelation of a noise ROI or dark frame, and a mask suggestion."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtGui import QFont
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced

from ._layers import (
    HELPER_KEY,
    LayerCombo,
    add_or_update_image,
    describe_error,
    find_layer,
    install_scroll_layout,
    layer_array,
    layer_axes,
    notify_error,
    notify_info,
    notify_warning,
)
from ._plot import LinePlot
from ._state import get_state
from ._worker import CleanupMixin, Failed, detach_worker, start_generator_worker

if TYPE_CHECKING:
    import napari

ROI_LAYER = "noise ROI"
#: world pixels per autocorrelation lag, so that a 9-pixel line is plainly visible
AUTOCORR_ZOOM = 8.0
#: smallest ROI side, in pixels, worth analysing
MIN_ROI = 8
#: noise regions with more pixels than this are analysed in a worker thread (a 30x256x256 dark
#: stack takes about 1 s); smaller ones, such as drawn ROIs, take milliseconds and stay inline
ASYNC_PIXELS = 1 << 20
DEBOUNCE_MS = 300


#: Z slices above and below the current one that a 3D ROI takes by default: lags +-3 along Z,
#: enough to see noise correlated over a few slices (0 gave a 2D estimate that could not)
DEFAULT_Z_RANGE = 3


# Layer names put the distinguishing word first, so they stay readable when napari cuts them.
def autocorr_layer_name(source: str) -> str:
    return f"autocorrelation: {source}"


def spectrum_layer_name(source: str) -> str:
    return f"power spectrum: {source}"


def lag0_layer_name(source: str) -> str:
    return f"lag 0: {source}"


class NoiseAnalysisWidget(CleanupMixin, QWidget):
    """Analyse the noise of an image: a rectangle ROI on an empty area, or a dark-frame layer.

    Shows the normalised autocorrelation as ``"<source> autocorrelation"`` (beside the image,
    zoomed), its line profiles in the widget, optionally the power spectrum, and pushes the
    suggested blind mask to the shared state.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.analysis: Any = None
        self._roi_layer: Any = None

        self.source_combo = LayerCombo(napari_viewer, ("image",))
        self.mode_roi = QRadioButton("Noise ROI (rectangle on an empty area)")
        self.mode_dark = QRadioButton("Dark-frame layer")
        self.mode_roi.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.mode_roi)
        group.addButton(self.mode_dark)
        # empty by default: the image being denoised is never a dark frame
        self.dark_combo = LayerCombo(napari_viewer, ("image",), allow_none=True)
        self.roi_button = QPushButton("Draw noise ROI")
        self.roi_button.setToolTip(
            "Adds a 'noise ROI' Shapes layer in rectangle mode; every rectangle counts (they are pooled)"
        )
        self.background_button = QPushButton("Find background")
        self.background_button.setToolTip(
            "Puts rectangles on the darkest, flattest 32x32 tiles of the image and analyses them"
        )
        self.z_range = QSpinBox()
        self.z_range.setRange(0, 256)
        self.z_range.setValue(DEFAULT_Z_RANGE)
        self.z_range.setToolTip("3D: also use this many slices above and below the current one")
        self.max_lag = QSpinBox()
        self.max_lag.setRange(2, 64)
        self.max_lag.setValue(16)
        self.spectrum_check = QCheckBox("Show power spectrum")
        self.analyze_button = QPushButton("Analyse")
        self.plot = LinePlot("Autocorrelation profiles (lag in pixels)")
        self.report = QLabel("Draw a rectangle on an area without structure, or pick a dark frame.")
        self.report.setWordWrap(True)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.report.setFont(font)
        self.suggest_button = QPushButton("Suggest mask")
        self.suggest_button.setEnabled(False)

        form = QFormLayout()
        form.addRow("Image", self.source_combo.native)
        form.addRow(self.mode_roi)
        roi_buttons = QHBoxLayout()
        roi_buttons.addWidget(self.roi_button)
        roi_buttons.addWidget(self.background_button)
        form.addRow(roi_buttons)
        form.addRow(self.mode_dark)
        form.addRow("Dark frame", self.dark_combo.native)
        form.addRow("Z range ±", self.z_range)
        form.addRow("Max lag", self.max_lag)
        form.addRow(self.spectrum_check)
        buttons = QHBoxLayout()
        buttons.addWidget(self.analyze_button)
        buttons.addWidget(self.suggest_button)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.report)
        layout.addWidget(self.verdict)
        layout.addWidget(self.plot)
        layout.addStretch(1)
        install_scroll_layout(self, layout)

        self._worker: Any = None
        self._worker_source = ""
        self._pending = False
        # superqt's debounce: one analysis DEBOUNCE_MS after the last of a burst of ROI edits
        self._debounced_analyze = qdebounced(self._auto_analyze, timeout=DEBOUNCE_MS, parent=self)

        self.roi_button.clicked.connect(self.add_roi_layer)
        self.background_button.clicked.connect(self.find_background)
        self.source_combo.changed.connect(self._pick_dark)
        napari_viewer.layers.events.inserted.connect(self._pick_dark)
        self.analyze_button.clicked.connect(self.analyze)
        self.suggest_button.clicked.connect(self.suggest)
        self.spectrum_check.toggled.connect(self.schedule)
        self.max_lag.valueChanged.connect(self.schedule)
        self.z_range.valueChanged.connect(self.schedule)
        napari_viewer.layers.events.removed.connect(self._on_layer_removed)
        existing = find_layer(napari_viewer, ROI_LAYER)
        if existing is not None and type(existing).__name__ == "Shapes":
            self._follow_roi(existing)
        self._pick_dark()

    def _pick_dark(self, *args: Any) -> None:
        """Offer a layer called '...dark...' as the dark frame; never the image being analysed."""
        source = self.source_combo.layer()
        dark = self.dark_combo.layer()
        if dark is not None and dark is source:
            self.dark_combo.value = None  # the empty choice
            dark = None
        if dark is None:
            for layer in self.dark_combo.choices:
                if layer is not None and layer is not source and "dark" in layer.name.lower():
                    self.dark_combo.value = layer
                    break

    # ROI ---------------------------------------------------------------------------
    def add_roi_layer(self) -> Any:
        """Add (or reuse) the ``noise ROI`` Shapes layer and switch it to rectangle mode."""
        source = self.source_combo.layer()
        if source is None:
            notify_error("Choose an image layer first; the noise ROI is drawn over it.")
            return None
        layer = find_layer(self.viewer, ROI_LAYER)
        if layer is None or type(layer).__name__ != "Shapes":
            layer = self.viewer.add_shapes(
                name=ROI_LAYER,
                ndim=source.ndim,
                scale=source.scale,
                translate=source.translate,
                edge_color="yellow",
                face_color="transparent",
                edge_width=max(1.0, min(layer_array(source).shape[-2:]) / 128),
            )
        self._follow_roi(layer)
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"
        self.mode_roi.setChecked(True)
        return layer

    def _follow_roi(self, layer: Any) -> None:
        if self._roi_layer is layer:
            return
        self._unfollow_roi()
        self._roi_layer = layer
        layer.events.data.connect(self.schedule)
        layer.events.data.connect(self._after_draw)

    def _unfollow_roi(self) -> None:
        if self._roi_layer is not None:
            try:
                self._roi_layer.events.data.disconnect(self.schedule)
                self._roi_layer.events.data.disconnect(self._after_draw)
            except Exception:  # noqa: BLE001 - layer already torn down
                pass
        self._roi_layer = None

    def _after_draw(self, event: Any = None) -> None:
        """Back to pan/zoom once a rectangle is drawn, so a stray click adds no 2-pixel ROI."""
        if getattr(event, "action", "added") != "added":
            return  # napari 0.5+: 'adding' precedes 'added'
        layer = self._roi_layer
        if layer is not None and layer.mode == "add_rectangle":
            QTimer.singleShot(0, lambda: setattr(layer, "mode", "pan_zoom") if layer.mode == "add_rectangle" else None)

    def find_background(self) -> Any:
        """Put the darkest, flattest tiles of the image on the ROI layer and analyse them pooled."""
        from ..errors import StructN2VError
        from ..noise import find_background

        source = self.source_combo.layer()
        if source is None:
            notify_error("Choose an image layer first; its background is searched.")
            return None
        axes = layer_axes(source)
        data = layer_array(source)
        try:
            plane, plane_axes = self._current_plane(data, axes)
            background = find_background(plane, axes=plane_axes)
        except StructN2VError as exc:
            notify_error(describe_error(exc))
            return None
        layer = self.add_roi_layer()
        if layer is None:
            return None
        t = background.tile
        lead = list(np.asarray(self.viewer.dims.point, dtype=float)[-source.ndim :][: source.ndim - 2])
        rects = []
        for y, x in background.corners:
            corners = [(y - 0.5, x - 0.5), (y - 0.5, x + t - 0.5), (y + t - 0.5, x + t - 0.5), (y + t - 0.5, x - 0.5)]
            rects.append(np.array([[*lead, *c] for c in corners], dtype=float)[:, -layer.ndim :])
        layer.mode = "pan_zoom"
        layer.data = rects  # the data event analyses them, pooled
        notify_info(f"{len(rects)} background tiles of {t}x{t} px chosen; delete or move any you disagree with.")
        return background

    def _current_plane(self, data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
        """The image at the viewer's current S/T/C position (Z kept), for the background search."""
        index: list[Any] = []
        kept = ""
        point = np.asarray(self.viewer.dims.point, dtype=float)[-data.ndim :]
        for i, letter in enumerate(axes):
            if letter in "ZYX":
                index.append(slice(None))
                kept += letter
            else:
                index.append(int(np.clip(round(point[i]), 0, data.shape[i] - 1)))
        return np.asarray(data[tuple(index)]), kept

    def _on_layer_removed(self, event: Any) -> None:
        if event.value is self._roi_layer:
            self._unfollow_roi()

    def schedule(self, *args: Any) -> None:
        """Recompute after the ROI stops changing for :data:`DEBOUNCE_MS`."""
        self._debounced_analyze()

    def _auto_analyze(self) -> None:
        if self.mode_dark.isChecked() or (self._roi_layer is not None and len(self._roi_layer.data)):
            self.analyze()

    def _roi_crops(self, source: Any) -> tuple[list[np.ndarray], str]:
        """The pixels of every rectangle of the ROI layer in ``source`` (pooled) and their axes."""
        from ..errors import DataError

        roi = self._roi_layer
        if roi is None or len(roi.data) == 0:
            raise DataError("Draw a rectangle on the 'noise ROI' layer over an area without structure.")
        crops = [self._roi_crop(source, np.asarray(verts, dtype=float)) for verts in roi.data]
        return [c[0] for c in crops], crops[0][1]

    def _roi_crop(self, source: Any, verts: np.ndarray) -> tuple[np.ndarray, str]:
        """The pixels of one rectangle in ``source`` and their axes (indexed axes dropped)."""
        from ..errors import DataError

        roi = self._roi_layer
        data = layer_array(source)
        axes = layer_axes(source)
        if not axes:
            raise DataError(f"Cannot tell the axes of layer {source.name!r}.")
        pts = []
        for v in verts:
            world = np.asarray(roi.data_to_world(v))
            if world.size < source.ndim:  # a 2D ROI over a stack: take the slice from the viewer
                point = np.asarray(self.viewer.dims.point, dtype=float)[-source.ndim :]
                point[-world.size :] = world
                world = point
            pts.append(np.asarray(source.world_to_data(world[-source.ndim :]), dtype=float))
        pts = np.array(pts)
        index: list[Any] = []
        kept = ""
        for i, letter in enumerate(axes):
            size = data.shape[i]
            if letter in "YX":
                lo = int(np.floor(pts[:, i].min() + 0.5))
                hi = int(np.floor(pts[:, i].max() + 0.5))
                if hi <= 0 or lo >= size:
                    raise DataError("The noise ROI lies outside the image; draw it over the image.")
                lo, hi = max(lo, 0), min(hi, size)
                if hi - lo < MIN_ROI:
                    raise DataError(
                        f"The noise ROI is too small ({hi - lo} px along {letter}); "
                        f"draw at least {MIN_ROI}x{MIN_ROI} pixels."
                    )
                index.append(slice(lo, hi))
                kept += letter
            elif letter == "C":
                index.append(slice(None))
                kept += letter
            else:
                centre = int(np.clip(np.round(pts[:, i].mean()), 0, size - 1))
                half = self.z_range.value() if letter == "Z" else 0
                if half:
                    index.append(slice(max(centre - half, 0), min(centre + half + 1, size)))
                    kept += letter
                else:
                    index.append(centre)
        return np.asarray(data[tuple(index)]), kept

    # analysis ----------------------------------------------------------------------
    def _start_background(self, source: Any, crop: np.ndarray, axes: str) -> None:
        """Analyse a large region off the GUI thread; the result is shown when it arrives."""
        if self._worker is not None:  # one at a time: redo once the running one ends
            self._pending = True
            return
        self._pending = False
        self._worker_source = source.name
        self.report.setText("Analysing the noise in the background…")
        self._worker = start_generator_worker(
            _analysis_job,
            crop,
            axes,
            self.max_lag.value(),
            self.spectrum_check.isChecked(),
            on_event=self._on_background_result,
            on_finished=self._on_background_finished,
            on_error=self._on_background_finished,
        )

    def _on_background_result(self, result: Any) -> None:
        if isinstance(result, Failed):
            notify_error(f"Noise analysis failed: {describe_error(result.error)}")
            return
        source = find_layer(self.viewer, self._worker_source)
        if source is None:
            return
        analysis, spectrum = result
        self.analysis = analysis
        self._show(source, analysis, spectrum)

    def _on_background_finished(self, *args: Any) -> None:
        self._worker = None
        if self._pending:
            self._pending = False
            self.analyze()

    @property
    def busy(self) -> bool:
        """True while a background analysis runs."""
        return self._worker is not None

    def analyze(self) -> Any:
        """Analyse the current ROI (or dark frame); returns the core ``NoiseAnalysis`` or None."""
        from ..errors import StructN2VError
        from ..noise import analyze_noise

        source = self.source_combo.layer()
        if source is None:
            notify_error("Choose an image layer to analyse.")
            return None
        try:
            if self.mode_dark.isChecked():
                dark = self.dark_combo.layer()
                if dark is None:
                    notify_error("Choose a dark-frame layer, or switch to a noise ROI.")
                    return None
                if dark is source:
                    notify_error("The dark frame cannot be the image being denoised; choose a pure-noise layer.")
                    return None
                crop, axes = layer_array(dark), layer_axes(dark)
            else:
                crop, axes = self._roi_crops(source)
            if sum(np.size(c) for c in (crop if isinstance(crop, list) else [crop])) > ASYNC_PIXELS:
                self._start_background(source, crop, axes)
                return None
            analysis = analyze_noise(crop, axes=axes, max_lag=self.max_lag.value())
            spectrum = None
            if self.spectrum_check.isChecked():
                from ..noise import power_spectrum

                spectrum = power_spectrum(_largest(crop), axes=axes)
        except StructN2VError as exc:
            notify_error(describe_error(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            notify_error(f"Noise analysis failed: {describe_error(exc)}")
            return None
        self.analysis = analysis
        self._show(source, analysis, spectrum)
        return analysis

    def _placement(self, source: Any, shape: tuple[int, ...]) -> tuple[list[float], list[float]]:
        """Scale and translate that put an array of ``shape`` beside ``source``, zoomed."""
        extent = np.asarray(source.extent.world, dtype=float)  # (2, ndim): min, max
        top, right = extent[0][-2], extent[1][-1]
        gap = 2 * AUTOCORR_ZOOM
        scale = [AUTOCORR_ZOOM, AUTOCORR_ZOOM]
        translate = [top, right + gap]
        if len(shape) == 3:  # centre plane on the current slice of the source
            sz = float(source.scale[-3]) if source.ndim >= 3 else 1.0
            z_now = float(self.viewer.dims.point[-3]) if self.viewer.dims.ndim >= 3 else 0.0
            scale = [sz, *scale]
            translate = [z_now - (shape[0] // 2) * sz, *translate]
        return scale, translate

    def _show(self, source: Any, analysis: Any, spectrum: np.ndarray | None) -> None:
        ac = np.asarray(analysis.autocorrelation, dtype=np.float32)
        scale, translate = self._placement(source, ac.shape)
        first = find_layer(self.viewer, autocorr_layer_name(source.name)) is None
        add_or_update_image(
            self.viewer,
            autocorr_layer_name(source.name),
            ac,
            scale=scale,
            translate=translate,
            colormap="magma",
            contrast_limits=(0.0, 1.0),
            interpolation2d="nearest",
        )
        self._show_lag0(source.name, ac.shape, scale, translate)
        if first:  # bring the new layer into view, beside the image
            self.viewer.reset_view()
        if spectrum is not None:
            ps = np.asarray(spectrum, dtype=np.float32)
            zoom = AUTOCORR_ZOOM * ac.shape[-1] / ps.shape[-1]
            ps_scale = [*scale[:-2], zoom, zoom]
            ps_translate = [*translate[:-2], translate[-2] + (ac.shape[-2] + 2) * AUTOCORR_ZOOM, translate[-1]]
            if ps.ndim == 3 and ac.ndim == 2:
                ps = ps[ps.shape[0] // 2]
            elif ps.ndim == 2 and ac.ndim == 3:
                ps_scale, ps_translate = ps_scale[1:], ps_translate[1:]
            finite = ps[np.isfinite(ps)]
            limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if limits[1] <= limits[0]:
                limits = (limits[0], limits[0] + 1)
            add_or_update_image(
                self.viewer,
                spectrum_layer_name(source.name),
                ps,
                scale=ps_scale,
                translate=ps_translate,
                colormap="viridis",
                contrast_limits=limits,
            )
        self.plot.clear()
        for letter, profile in analysis.profiles.items():
            half = profile.size // 2
            self.plot.set_series(letter, np.arange(-half, half + 1), profile)
        self.plot.set_hline(float(analysis.threshold), "threshold")
        from ..masks import describe_mask

        self.report.setText(
            f"Suggested mask: {describe_mask(analysis.mask)} (W x H{' x D' if analysis.mask.ndim == 3 else ''})\n"
            f"threshold {analysis.threshold:.3f}, noise floor {analysis.floor:.4f}\n"
            f"{getattr(analysis, 'reliability', lambda: '')()}"
        )
        self.verdict.setText(verdict_text(analysis))
        self.verdict.setStyleSheet("" if getattr(analysis, "reliable", True) else "color: #ffb74d;")
        self.suggest_button.setEnabled(True)
        self.state.analysis_source = source.name
        self.state.analysis = analysis

    def _show_lag0(self, source: str, shape: tuple[int, ...], scale: list[float], translate: list[float]) -> None:
        """A red cross on the zero-lag pixel of the autocorrelation layer."""
        centre = [t + (n // 2) * sc for n, sc, t in zip(shape, scale, translate)]
        name = lag0_layer_name(source)
        layer = find_layer(self.viewer, name)
        previous = self.viewer.layers.selection.active
        if layer is not None and (type(layer).__name__ != "Points" or layer.ndim != len(shape)):
            self.viewer.layers.remove(layer)
            layer = None
        if layer is None:
            self.viewer.add_points(
                [centre], name=name, symbol="cross", size=AUTOCORR_ZOOM * 0.8, face_color="red",
                border_color="red", metadata={HELPER_KEY: True},
            )
        else:
            layer.data = [centre]
        if previous is not None and previous in self.viewer.layers:
            self.viewer.layers.selection.active = previous

    def suggest(self) -> np.ndarray | None:
        """Push the suggested mask to the shared state (the mask designer and training use it)."""
        if self.analysis is None:
            notify_warning("Analyse the noise first (draw a noise ROI or choose a dark frame).")
            return None
        mask = np.asarray(self.analysis.mask, dtype=bool)
        self.state.suggested_mask = mask
        self.state.mask = mask
        from ..masks import describe_mask

        notify_info(f"Blind mask set to the suggestion {describe_mask(mask)}.")
        return mask

    # cleanup -----------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop timers and workers and disconnect every viewer callback."""
        self._debounced_analyze.cancel()
        if self._worker is not None:
            detach_worker(self._worker, self._on_background_result, self._on_background_finished, self._on_background_finished)
            self._worker = None
        self._unfollow_roi()
        for emitter, callback in ((self.viewer.layers.events.removed, self._on_layer_removed),
                                  (self.viewer.layers.events.inserted, self._pick_dark)):
            try:
                emitter.disconnect(callback)
            except Exception:  # noqa: BLE001
                pass
        self.source_combo.disconnect_viewer()
        self.dark_combo.disconnect_viewer()


def _analysis_job(crop: np.ndarray, axes: str, max_lag: int, spectrum: bool):
    """Worker body: the core analysis (and power spectrum) of plain arrays."""
    from ..noise import analyze_noise, power_spectrum

    analysis = analyze_noise(crop, axes=axes, max_lag=max_lag)
    yield analysis, (power_spectrum(_largest(crop), axes=axes) if spectrum else None)


def _largest(crop: Any) -> np.ndarray:
    """The largest of several pooled regions (the power spectrum shows one)."""
    if isinstance(crop, list):
        return max(crop, key=np.size)
    return crop


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
