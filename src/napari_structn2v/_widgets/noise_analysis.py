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

from ._layers import (
    LayerCombo,
    add_or_update_image,
    describe_error,
    find_layer,
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


def autocorr_layer_name(source: str) -> str:
    return f"{source} autocorrelation"


def spectrum_layer_name(source: str) -> str:
    return f"{source} power spectrum"


class NoiseAnalysisWidget(CleanupMixin, QWidget):
    """Analyse the noise of an image: a rectangle ROI on an empty area, or a dark-frame layer.

    Shows the normalised autocorrelation as ``"<source> autocorrelation"`` (beside the image,
    zoomed), its line profiles in the widget, optionally the power spectrum, and pushes the
    suggested blind mask to the shared state.
    """

    def __init__(self, napari_viewer: "napari.Viewer", parent: QWidget | None = None):
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
        self.dark_combo = LayerCombo(napari_viewer, ("image",))
        self.roi_button = QPushButton("Draw noise ROI")
        self.roi_button.setToolTip("Adds a 'noise ROI' Shapes layer in rectangle mode")
        self.z_range = QSpinBox()
        self.z_range.setRange(0, 256)
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
        form.addRow("Image", self.source_combo)
        form.addRow(self.mode_roi)
        form.addRow(self.roi_button)
        form.addRow(self.mode_dark)
        form.addRow("Dark frame", self.dark_combo)
        form.addRow("Z range ±", self.z_range)
        form.addRow("Max lag", self.max_lag)
        form.addRow(self.spectrum_check)
        buttons = QHBoxLayout()
        buttons.addWidget(self.analyze_button)
        buttons.addWidget(self.suggest_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.plot)
        layout.addWidget(self.report)
        layout.addStretch(1)

        self._worker: Any = None
        self._worker_source = ""
        self._pending = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._auto_analyze)

        self.roi_button.clicked.connect(self.add_roi_layer)
        self.analyze_button.clicked.connect(self.analyze)
        self.suggest_button.clicked.connect(self.suggest)
        self.spectrum_check.toggled.connect(self.schedule)
        self.max_lag.valueChanged.connect(self.schedule)
        self.z_range.valueChanged.connect(self.schedule)
        napari_viewer.layers.events.removed.connect(self._on_layer_removed)
        existing = find_layer(napari_viewer, ROI_LAYER)
        if existing is not None and type(existing).__name__ == "Shapes":
            self._follow_roi(existing)

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

    def _unfollow_roi(self) -> None:
        if self._roi_layer is not None:
            try:
                self._roi_layer.events.data.disconnect(self.schedule)
            except Exception:  # noqa: BLE001 - layer already torn down
                pass
        self._roi_layer = None

    def _on_layer_removed(self, event: Any) -> None:
        if event.value is self._roi_layer:
            self._unfollow_roi()

    def schedule(self, *args: Any) -> None:
        """Recompute after the ROI stops changing for :data:`DEBOUNCE_MS`."""
        self._timer.start()

    def _auto_analyze(self) -> None:
        if self.mode_dark.isChecked() or (self._roi_layer is not None and len(self._roi_layer.data)):
            self.analyze()

    def _roi_crop(self, source: Any) -> tuple[np.ndarray, str]:
        """The ROI's pixels in ``source`` and their axes (indexed axes dropped)."""
        from ..errors import DataError

        roi = self._roi_layer
        if roi is None or len(roi.data) == 0:
            raise DataError("Draw a rectangle on the 'noise ROI' layer over an area without structure.")
        data = layer_array(source)
        axes = layer_axes(source)
        if not axes:
            raise DataError(f"Cannot tell the axes of layer {source.name!r}.")
        verts = np.asarray(roi.data[-1], dtype=float)
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
                crop, axes = layer_array(dark), layer_axes(dark)
            else:
                crop, axes = self._roi_crop(source)
            if np.size(crop) > ASYNC_PIXELS:
                self._start_background(source, crop, axes)
                return None
            analysis = analyze_noise(crop, axes=axes, max_lag=self.max_lag.value())
            spectrum = None
            if self.spectrum_check.isChecked():
                from ..noise import power_spectrum

                spectrum = power_spectrum(crop, axes=axes)
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
            f"threshold {analysis.threshold:.3f}, noise floor {analysis.floor:.4f}"
        )
        self.suggest_button.setEnabled(True)
        self.state.analysis_source = source.name
        self.state.analysis = analysis

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
        self._timer.stop()
        if self._worker is not None:
            detach_worker(self._worker, self._on_background_result, self._on_background_finished, self._on_background_finished)
            self._worker = None
        self._unfollow_roi()
        try:
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        except Exception:  # noqa: BLE001
            pass
        self.source_combo.disconnect_viewer()
        self.dark_combo.disconnect_viewer()


def _analysis_job(crop: np.ndarray, axes: str, max_lag: int, spectrum: bool):
    """Worker body: the core analysis (and power spectrum) of plain arrays."""
    from ..noise import analyze_noise, power_spectrum

    analysis = analyze_noise(crop, axes=axes, max_lag=max_lag)
    yield analysis, (power_spectrum(crop, axes=axes) if spectrum else None)
