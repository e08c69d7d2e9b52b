"""Noise analysis dock widget: autocorrelation of a noise ROI or dark frame, and a mask suggestion.

What is read lives in ``_noise_roi`` (the ROI's pixels), what is shown in ``_noise_display`` (the
autocorrelation and spectrum layers, the report); a large region is analysed as a background job.
"""
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

from ..errors import StructN2VError
from ..method.masks import describe_mask
from ..noise import analysis as noise
from ._acf_view import AutocorrView
from ._choice import share_layer_choice
from ._job import JobWidget
from ._layers import (
    LayerCombo,
    dark_layer_axes,
    find_layer,
    hide_form_row,
    install_scroll_layout,
    layer_array,
    layer_axes,
    layer_data,
    notify_error,
    notify_info,
    notify_warning,
    report_error,
)
from ._noise_display import report_text, verdict_text
from ._noise_roi import ROI_LAYER, background_rectangles, current_plane, roi_crops
from ._plot import LinePlot
from ._signals import Connections

if TYPE_CHECKING:
    import napari

#: noise regions with more pixels than this are analysed in a worker thread (a 30x256x256 dark
#: stack takes about 1 s); smaller ones, such as drawn ROIs, take milliseconds and stay inline
ASYNC_PIXELS = 1 << 20
DEBOUNCE_MS = 300


#: Z slices above and below the current one that a 3D ROI takes by default: lags +-3 along Z,
#: enough to see noise correlated over a few slices (0 gave a 2D estimate that could not)
DEFAULT_Z_RANGE = 3


class NoiseAnalysisWidget(JobWidget):
    """Analyse the noise of an image: a rectangle ROI on an empty area, or a dark-frame layer.

    Shows the normalised autocorrelation with the blind mask's outline, its line profiles and
    optionally the power spectrum in the dock (no layers are added), and pushes the suggested
    blind mask to the shared state.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        self.analysis: Any = None
        self._roi_layer: Any = None
        self._roi_links = Connections()  # to the ROI layer's data events, while it is followed
        self._pressed = False  # the mouse button is down on the ROI layer (a shape being drawn)
        self._build_controls()
        self._build_layout()
        self.job = self._new_job(
            "Noise analysis", self._on_background_result, on_finished=self._on_background_finished
        )
        self._worker_source = ""
        self._pending = False
        # superqt's debounce: one analysis DEBOUNCE_MS after the last of a burst of ROI edits
        self._debounced_analyze = qdebounced(self._auto_analyze, timeout=DEBOUNCE_MS, parent=self)
        self._connect_signals()
        share_layer_choice(self, self.source_combo, "image")
        share_layer_choice(self, self.dark_combo, "dark")
        existing = find_layer(napari_viewer, ROI_LAYER)
        if existing is not None and type(existing).__name__ == "Shapes":
            self._follow_roi(existing)
        self._pick_dark()

    def _build_controls(self) -> None:
        """The layer pickers, ROI buttons, settings, plot and report."""
        self.source_combo = LayerCombo(self.viewer, ("image",))
        self.mode_roi = QRadioButton("Noise ROI (rectangle on an empty area)")
        self.mode_dark = QRadioButton("Dark-frame layer")
        self.mode_roi.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.mode_roi)
        group.addButton(self.mode_dark)
        # empty by default: the image being denoised is never a dark frame
        self.dark_combo = LayerCombo(self.viewer, ("image",), allow_none=True)
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
        self.acf_view = AutocorrView()
        self.plot = LinePlot("Autocorrelation profiles (lag in pixels)")
        self.report = QLabel("Draw a rectangle on an area without structure, or pick a dark frame.")
        self.report.setWordWrap(True)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.report.setFont(font)
        self.suggest_button = QPushButton("Suggest mask")
        self.suggest_button.setEnabled(False)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)

    def _build_layout(self) -> None:
        """The controls in a form, the buttons, the report and the plot, in a scroll area."""
        form = self._form = QFormLayout()
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
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.verdict)
        layout.addWidget(self.acf_view)
        layout.addWidget(self.report)
        layout.addWidget(self.plot)
        layout.addStretch(1)
        install_scroll_layout(self, layout)

    def _connect_signals(self) -> None:
        self.roi_button.clicked.connect(self.add_roi_layer)
        self.background_button.clicked.connect(self.find_background)
        self.source_combo.changed.connect(self._pick_dark)
        self._listen(self.viewer.layers.events.inserted, self._pick_dark)
        self.analyze_button.clicked.connect(self.analyze)
        self.suggest_button.clicked.connect(self.suggest)
        self.spectrum_check.toggled.connect(self.schedule)
        self.max_lag.valueChanged.connect(self.schedule)
        self.z_range.valueChanged.connect(self.schedule)
        self._listen(self.viewer.layers.events.removed, self._on_layer_removed)
        self._listen(self.state.events.mask, self.acf_view.set_mask)
        self.acf_view.set_mask(self.state.mask)

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
                edge_width=max(1.0, min(layer_data(source).shape[-2:]) / 128),
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
        self._roi_links.connect(layer.events.data, self.schedule)
        self._roi_links.connect(layer.events.data, self._after_draw)
        layer.mouse_drag_callbacks.append(self._track_press)

    def _unfollow_roi(self) -> None:
        self._roi_links.release()
        layer, self._roi_layer = self._roi_layer, None
        if layer is not None and self._track_press in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._track_press)
        self._pressed = False

    def _track_press(self, layer: Any, event: Any) -> Any:
        """A drag callback of the ROI layer: ``_pressed`` is True while the mouse button is down."""
        self._pressed = True
        yield
        while event.type == "mouse_move":
            yield
        self._pressed = False
        self.schedule()  # the finished shape (napari's release event may have come first)

    def _after_draw(self, event: Any = None) -> None:
        """Back to pan/zoom once a rectangle is drawn, so a stray click adds no 2-pixel ROI."""
        if getattr(event, "action", "added") != "added":
            return  # napari 0.5+: 'adding' precedes 'added'
        layer = self._roi_layer
        if layer is not None and layer.mode == "add_rectangle":
            # napari emits 'added' on the press too, with the rectangle still being dragged: switch
            # only once the drawing is over (the release's 'added' comes just before that)
            QTimer.singleShot(0, lambda: setattr(layer, "mode", "pan_zoom")
                              if layer.mode == "add_rectangle" and not self._pressed else None)

    def find_background(self) -> Any:
        """Put the darkest, flattest tiles of the image on the ROI layer and analyse them pooled."""
        source = self.source_combo.layer()
        if source is None:
            notify_error("Choose an image layer first; its background is searched.")
            return None
        axes = layer_axes(source)
        data = layer_data(source)  # current_plane reads only the plane shown
        try:
            plane, plane_axes = current_plane(self.viewer, data, axes)
            background = noise.find_background(plane, axes=plane_axes)
        except StructN2VError as exc:
            report_error(exc)
            return None
        layer = self.add_roi_layer()
        if layer is None:
            return None
        lead = list(np.asarray(self.viewer.dims.point, dtype=float)[-source.ndim :][: source.ndim - 2])
        rects = background_rectangles(background, lead, layer.ndim)
        layer.mode = "pan_zoom"
        layer.data = rects  # the data event analyses them, pooled
        t = background.tile
        notify_info(f"{len(rects)} background tiles of {t}x{t} px chosen; delete or move any you disagree with.")
        return background

    def _on_layer_removed(self, event: Any) -> None:
        if event.value is self._roi_layer:
            self._unfollow_roi()

    def schedule(self, *args: Any) -> None:
        """Recompute after the ROI stops changing for :data:`DEBOUNCE_MS`."""
        self._debounced_analyze()

    def _auto_analyze(self) -> None:
        roi = self._roi_layer
        if self._pressed:
            # a rectangle still being dragged (napari adds it on the press, 1 px wide): its release
            # sends another data event, which schedules the analysis again. Analysed, it raised
            # "The noise ROI is too small (1 px along Y)" 0.3 s into every drag
            return
        if self.mode_dark.isChecked() or (roi is not None and len(roi.data)):
            self.analyze()

    # analysis ----------------------------------------------------------------------
    def _start_background(self, source: Any, crop: np.ndarray, axes: str) -> None:
        """Analyse a large region off the GUI thread; the result is shown when it arrives."""
        if self.job.running:  # one at a time: redo once the running one ends
            self._pending = True
            return
        self._pending = False
        self._worker_source = source.name
        self.report.setText("Analysing the noise in the background…")
        self.job.start(_analysis_job, crop, axes, self.max_lag.value(), self.spectrum_check.isChecked(), self._dark_mode(crop))

    def _on_background_result(self, result: Any) -> None:
        source = find_layer(self.viewer, self._worker_source)
        if source is None:
            return
        analysis, spectrum = result
        self.analysis = analysis
        self._show(source, analysis, spectrum)

    def _on_background_finished(self) -> None:
        if self._pending:
            self._pending = False
            self.analyze()

    def _dark_mode(self, crop: Any) -> bool:
        """A dark-frame layer (one array, not ROI rectangles): its frames may show a camera's
        fixed pattern, which the analysis then finds and removes (the Train dock subtracts it)."""
        return self.mode_dark.isChecked() and not isinstance(crop, list)

    @property
    def busy(self) -> bool:
        """True while a background analysis runs."""
        return self.job.running

    def analyze(self) -> Any:
        """Analyse the current ROI (or dark frame); returns the core ``NoiseAnalysis`` or None."""
        source = self.source_combo.layer()
        if source is None:
            notify_error("Choose an image layer to analyse.")
            return None
        try:
            region = self._region(source)
            if region is None:
                return None
            crop, axes = region
            if sum(np.size(c) for c in (crop if isinstance(crop, list) else [crop])) > ASYNC_PIXELS:
                self._start_background(source, crop, axes)
                return None
            analysis, spectrum = _analyse(crop, axes, self.max_lag.value(), self.spectrum_check.isChecked(), self._dark_mode(crop))
        except StructN2VError as exc:  # a user mistake: its own sentence
            report_error(exc)
            return None
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            report_error(exc, "Noise analysis failed: ")
            return None
        self.analysis = analysis
        self._show(source, analysis, spectrum)
        return analysis

    def _region(self, source: Any) -> tuple[Any, str] | None:
        """The noise to analyse: the dark frame, or the ROI's rectangles over ``source`` (pooled);
        None after a notification when the dark frame is missing or is the image itself."""
        if not self.mode_dark.isChecked():
            return roi_crops(self.viewer, self._roi_layer, source, self.z_range.value())
        dark = self.dark_combo.layer()
        if dark is None:
            notify_error("Choose a dark-frame layer, or switch to a noise ROI.")
            return None
        if dark is source:
            notify_error("The dark frame cannot be the image being denoised; choose a pure-noise layer.")
            return None
        return layer_array(dark), dark_layer_axes(dark, layer_axes(source))

    def _show(self, source: Any, analysis: Any, spectrum: np.ndarray | None) -> None:
        self.acf_view.set_analysis(analysis)  # in the dock: no layers added to the viewer
        self.acf_view.set_spectrum(spectrum)
        self.plot.clear()
        for letter, profile in analysis.profiles.items():
            half = profile.size // 2
            self.plot.set_series(letter, np.arange(-half, half + 1), profile)
        self.plot.set_hline(float(analysis.threshold), "threshold")
        self.report.setText(report_text(analysis))
        self.verdict.setText(verdict_text(analysis))
        self.verdict.setStyleSheet("" if getattr(analysis, "reliable", True) else "color: #ffb74d;")
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
        notify_info(f"Blind mask set to the suggestion {describe_mask(mask)}.")
        return mask

    def embed(self) -> None:
        """Inside the StructN2V dock: the image is chosen once there, so this dock's picker goes."""
        hide_form_row(self._form, self.source_combo.native)
        hide_form_row(self._form, self.dark_combo.native)

    # cleanup -----------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop timers and workers and disconnect every viewer callback."""
        self._debounced_analyze.cancel()
        super().cleanup()
        self._unfollow_roi()
        self.source_combo.disconnect_viewer()
        self.dark_combo.disconnect_viewer()


def _analyse(crop: Any, axes: str, max_lag: int, spectrum: bool, dark: bool = False) -> tuple[Any, np.ndarray | None]:
    """The core analysis of the crop(s), and the power spectrum of the largest when asked;
    ``dark``: the crop is a dark-frame layer (looked at for a fixed pattern too)."""
    analysis = noise.analyze_noise(crop, axes=axes, max_lag=max_lag, dark=dark)
    return analysis, (noise.power_spectrum(_largest(crop), axes=axes) if spectrum else None)


def _analysis_job(crop: Any, axes: str, max_lag: int, spectrum: bool, dark: bool = False):
    """Worker body: :func:`_analyse` off the main thread, its result as the one event."""
    yield _analyse(crop, axes, max_lag, spectrum, dark)


def _largest(crop: Any) -> np.ndarray:
    """The largest of several pooled regions (the power spectrum shows one)."""
    if isinstance(crop, list):
        return max(crop, key=np.size)
    return crop
