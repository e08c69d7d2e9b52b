"""Predict dock widget: tiled denoising in a background worker, streamed into the output layer."""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from ._devices import DeviceCombo
from ._layers import (
    LayerCombo,
    describe_error,
    find_layer,
    install_scroll_layout,
    layer_array,
    layer_axes,
    notify_error,
    notify_info,
    notify_warning,
)
from ._state import get_state
from ._worker import (
    CleanupMixin,
    Failed,
    StopFlag,
    detach_worker,
    guard_slot,
    on_click,
    reserve_ui_core,
    start_generator_worker,
)

if TYPE_CHECKING:
    import napari

#: at most one output-layer refresh per this many milliseconds while tiles stream in
REFRESH_MS = 100


def output_layer_name(source: str) -> str:
    return f"{source} (StructN2V)"


def _run_export(model, path, image, axes, overwrite):
    """Worker body: write the BioImage Model Zoo package; yields its path."""
    from ..bmz import export_bmz

    yield export_bmz(model, path, image=image, axes=axes, overwrite=overwrite)


def _run_prediction(model, image, axes, tile, overlap, device, tta, should_stop):
    """Worker body: plain data in, core ``TileDone``/``PredictDone`` events out."""
    return (
        yield from model.predict_iter(
            image, axes, tile=tile, overlap=overlap, device=device, tta=tta, should_stop=should_stop, check=False
        )
    )


class PredictWidget(CleanupMixin, QWidget):
    """Denoise an image layer with the model from training (or a model file), tile by tile.

    The output layer ``"<source> (StructN2V)"`` is created at once with the source's shape, scale
    and translate and filled as tiles finish; re-runs reuse it.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.worker: Any = None
        self._stop = StopFlag()
        self._output: Any = None
        self._fresh_output = False
        # superqt's throttle: the first call runs at once, later ones at most every REFRESH_MS, and
        # the last call of a burst is never dropped
        self._refresh_view = qthrottled(self._show_progress, timeout=REFRESH_MS, leading=True, parent=self)
        self._activity: Any = None  # a napari.utils.progress in the activity dock while a run lasts
        self._started_at = 0.0
        self._streaming = False
        self.tiles_done = 0
        self.tiles_total = 0
        self.tiles_per_s: float | None = None
        self.stopped: bool | None = None
        self._auto_axes = ""  # the last axes filled in automatically (replaced while unedited)

        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.load_button = QPushButton("Load model…")
        self.export_button = QPushButton("Export to BioImage Model Zoo…")
        self.export_button.setToolTip("Write the model as a bioimage.io package (.zip) for Fiji/deepImageJ, ilastik, ...")
        self._export_worker: Any = None
        self.image_combo = LayerCombo(napari_viewer, ("image",))
        self.axes_edit = QLineEdit()
        self.axes_edit.setToolTip("Axes of the image over STCZYX; empty: derived from the model's axes")
        self.tile = QSpinBox()
        self.tile.setRange(16, 4096)
        self.tile.setSingleStep(32)
        self.tile.setValue(256)
        self.overlap = QSpinBox()
        self.overlap.setRange(-1, 512)
        self.overlap.setValue(-1)
        self.overlap.setSpecialValueText("auto")
        self.overlap.setToolTip("Overlap between tiles in pixels; auto: the network's receptive field")
        self.device = DeviceCombo(warm_training=False)
        self.tta = QCheckBox("Average flips (better, 4x slower)")
        self.tta.setChecked(True)
        self.tta.setToolTip("Mean over the flips that keep the blind mask's orientation: about +0.3 dB on the benchmarks")
        self.predict_button = QPushButton("Predict")
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m tiles")
        self.status = QLabel("Idle")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Model", self.model_label)
        form.addRow("", self.load_button)
        form.addRow("", self.export_button)
        form.addRow("Image", self.image_combo.native)
        form.addRow("Axes", self.axes_edit)
        form.addRow("Tile", self.tile)
        form.addRow("Overlap", self.overlap)
        form.addRow("Device", self.device)
        form.addRow("", self.tta)
        buttons = QHBoxLayout()
        buttons.addWidget(self.predict_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout()  # scrolls: see install_scroll_layout
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        install_scroll_layout(self, layout)

        self.load_button.clicked.connect(on_click(self._load_dialog))
        self.export_button.clicked.connect(on_click(self._export_dialog))
        self.predict_button.clicked.connect(on_click(self.start))
        self.stop_button.clicked.connect(on_click(self.stop))
        self.image_combo.changed.connect(self._guess_axes)
        self.state.events.model.connect(self._show_model)
        self._show_model(self.state.model)
        self._guess_axes()
        self._update_buttons()

    # UI helpers ------------------------------------------------------------------------
    @property
    def devices_ready(self) -> bool:
        """True once the device list is complete (torch has been imported in the background)."""
        return self.device.ready

    @guard_slot
    def _show_model(self, model: Any = None) -> None:
        if model is None:
            self.model_label.setText("none: train one or load a model file")
        else:
            from ..masks import describe_mask

            steps = model.config.training.get("steps_done", "?") if isinstance(model.config.training, dict) else "?"
            self.model_label.setText(
                f"{model.axes} model, mask {describe_mask(model.mask)}, {steps} steps"
            )
        self._update_buttons()
        if self.axes_edit.text() == self._auto_axes:  # the user has not typed over the guess
            self._guess_axes()

    @guard_slot
    def _guess_axes(self, *args: Any) -> None:
        layer = self.image_combo.layer()
        self._auto_axes = self.suggest_axes(layer) if layer is not None else ""
        self.axes_edit.setText(self._auto_axes)

    def suggest_axes(self, layer: Any) -> str:
        """Axes for ``layer``: its own (metadata, RGB) if it has them, else the model's adapted to its
        dimensions (a 3D stack for a model trained over slices is ``SYX``, not ``ZYX``), else a guess."""
        from ..errors import StructN2VError
        from ..prediction import resolve_axes

        model = self.state.model
        meta = layer.metadata.get("axes") if isinstance(layer.metadata, dict) else None
        if model is None or isinstance(meta, str) or getattr(layer, "rgb", False):
            return layer_axes(layer)
        shape = tuple((layer.data[0] if getattr(layer, "multiscale", False) else layer.data).shape)
        try:
            axes = resolve_axes(len(shape), model.axes, None, model.spatial_ndim, model.n_channels)
        except StructN2VError:
            return layer_axes(layer)
        return axes if not (len(shape) >= 3 and shape[-1] in (3, 4) and axes[-1] == "X") else layer_axes(layer)

    @property
    def running(self) -> bool:
        """True while a prediction worker runs."""
        return self.worker is not None

    def _update_buttons(self, *args: Any) -> None:
        self.predict_button.setEnabled(not self.running)
        self.stop_button.setEnabled(self.running)
        self.load_button.setEnabled(not self.running)
        self.export_button.setEnabled(self.state.model is not None and self._export_worker is None)

    # model file -------------------------------------------------------------------------
    def load_model(self, path: str | Path) -> bool:
        """Load a model file into the shared state; False and a notification on failure."""
        from ..model_io import load_model

        try:
            model = load_model(path)
        except Exception as exc:  # noqa: BLE001 - ModelFileError and anything else: a notification
            notify_error(describe_error(exc))
            return False
        self.state.model = model
        notify_info(f"Model loaded from {path}")
        return True

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load StructN2V model", "", "Model (*.pt *.zip);;All files (*)")
        if path:
            self.load_model(path)

    # BioImage Model Zoo ------------------------------------------------------------------
    def export_bmz(self, path: str | Path, *, overwrite: bool = False) -> Any:
        """Export the current model to ``path`` (a .zip) in a worker; the chosen image layer, if it
        fits the model, gives the test tensors and the cover. Returns the worker or None."""
        model = self.state.model
        if model is None:
            notify_error("There is no model to export: train one or load a model file first.")
            return None
        if self._export_worker is not None:
            notify_warning("An export is already running.")
            return None
        image, axes = None, self.axes_edit.text().strip().upper() or None
        source = self.image_combo.layer()
        if source is not None:
            from ..errors import StructN2VError
            from ..prediction import resolve_axes

            image = layer_array(source)
            try:
                axes = resolve_axes(image.ndim, model.axes, axes, model.spatial_ndim, model.n_channels)
            except StructN2VError:
                image, axes = None, None  # the layer does not fit: the synthetic sample instead
        self.status.setText("Exporting to BioImage Model Zoo…")
        self._export_worker = start_generator_worker(
            _run_export, model, str(path), image, axes, overwrite,
            on_event=self._on_export_event, on_finished=self._on_export_finished, on_error=self._on_error,
        )
        self._update_buttons()
        return self._export_worker

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to BioImage Model Zoo", "structn2v_model.zip", "bioimage.io package (*.zip)"
        )
        if path:  # the dialog asked before replacing the name it returned, not one we extend
            named_zip = path.lower().endswith(".zip")
            self.export_bmz(path if named_zip else path + ".zip", overwrite=named_zip)

    def _on_export_event(self, event: Any) -> None:
        if isinstance(event, Failed):
            notify_error(f"Export failed: {describe_error(event.error)}")
            self.status.setText(f"Export failed: {describe_error(event.error)}")
        else:
            notify_info(f"BioImage Model Zoo package written to {event}")
            self.status.setText(f"Exported to {event}")

    def _on_export_finished(self) -> None:
        self._export_worker = None
        self._update_buttons()

    # run --------------------------------------------------------------------------------
    def start(self) -> Any:
        """Start predicting the chosen layer; returns the worker or None on error."""
        from ..errors import StructN2VError, StructN2VWarning

        if self.running:
            notify_warning("Prediction is already running; stop it first.")
            return None
        model = self.state.model
        if model is None:
            return self._refuse("There is no model: train one or load a model file first.")
        source = self.image_combo.layer()
        if source is None:
            return self._refuse("Choose an image layer to denoise.")
        image = layer_array(source)
        axes = self.axes_edit.text().strip().upper() or None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", StructN2VWarning)
                axes = model.check_input(image, axes)
        except StructN2VError as exc:
            return self._refuse(describe_error(exc))
        for warning in caught:
            if issubclass(warning.category, StructN2VWarning):
                notify_warning(str(warning.message))
        overlap = self.overlap.value()
        self._output = self._output_layer(source, image.shape)
        self._stop = StopFlag()
        self.tiles_done = 0
        self.tiles_total = 0
        self.tiles_per_s = None
        self.stopped = None
        self._started_at = time.perf_counter()
        self._streaming = True
        self.progress.setRange(0, 0)
        self.status.setText("Starting…")
        reserve_ui_core()
        self.worker = start_generator_worker(
            _run_prediction,
            model,
            image,
            axes,
            self.tile.value(),
            None if overlap < 0 else overlap,
            self.device.currentText(),
            self.tta.isChecked(),
            self._stop,
            on_event=self._on_event,
            on_finished=self._on_finished,
            on_error=self._on_error,
        )
        self._update_buttons()
        return self.worker

    def _refuse(self, message: str) -> None:
        """A user mistake before the run: notification and status (not the last run's "Done")."""
        notify_error(message)
        self.status.setText(f"Failed: {message}")
        return None

    def _output_layer(self, source: Any, shape: tuple[int, ...]) -> Any:
        """Reuse or add ``"<source> (StructN2V)"`` filled with zeros, aligned with ``source``."""
        from napari.layers import Image

        name = output_layer_name(source.name)
        layer = find_layer(self.viewer, name)
        limits = tuple(source.contrast_limits)
        if layer is not None and isinstance(layer, Image) and layer.ndim == len(shape):
            if layer.data.shape == tuple(shape) and getattr(layer.data, "dtype", None) == np.float32 and isinstance(
                layer.data, np.ndarray
            ):
                layer.data[...] = 0
                layer.refresh()
            else:
                layer.data = np.zeros(shape, dtype=np.float32)
            layer.scale = source.scale
            layer.translate = source.translate
            self._fresh_output = False  # a re-run keeps the contrast the user set
            return layer
        if layer is not None:
            self.viewer.layers.remove(layer)
        self._fresh_output = True  # contrast from the result once it is complete
        return self.viewer.add_image(
            np.zeros(shape, dtype=np.float32),
            name=name,
            scale=source.scale,
            translate=source.translate,
            contrast_limits=limits,
            colormap=source.colormap.name if hasattr(source, "colormap") else "gray",
        )

    def stop(self) -> None:
        """Stop after the current tile; the tiles done so far stay in the output layer."""
        if self.running:
            self._stop.set()
            self.stop_button.setEnabled(False)
            self.status.setText("Stopping…")

    # events (main thread) ---------------------------------------------------------------
    @guard_slot
    def _on_event(self, event: Any) -> None:
        from ..events import PredictDone, TileDone

        layer = self._output
        if isinstance(event, TileDone):
            self.tiles_done += 1
            self.tiles_total = event.total
            if layer is not None and layer in self.viewer.layers:
                layer.data[event.region] = event.data
            if self._activity is None:
                from napari.utils import progress

                self._activity = progress(total=event.total, desc="StructN2V prediction")
            self._activity.update(1)
            self._refresh_view()
        elif isinstance(event, PredictDone):
            self._refresh_view.cancel()
            self._show_progress()
            self._streaming = False
            self.stopped = event.stopped
            elapsed = max(time.perf_counter() - self._started_at, 1e-9)
            self.tiles_per_s = self.tiles_done / elapsed
            if layer is not None and layer in self.viewer.layers:
                if self._fresh_output and not event.stopped:
                    # the source's limits span its noise; the denoised image needs its own
                    lo, hi = np.percentile(event.image, (0.5, 99.5))
                    if hi > lo:
                        layer.contrast_limits = (float(lo), float(hi))
                layer.refresh()
            verb = "Stopped" if event.stopped else "Done"
            self.status.setText(
                f"{verb}: {self.tiles_done}/{self.tiles_total} tiles in {elapsed:.1f} s "
                f"({self.tiles_per_s:.1f} tiles/s)"
            )
        elif isinstance(event, Failed):
            self._streaming = False
            notify_error(f"Prediction failed: {describe_error(event.error)}")
            self.status.setText(f"Failed: {describe_error(event.error)}")

    def _show_progress(self) -> None:
        """Redraw the output layer and the progress bar (throttled while tiles stream in)."""
        if self._output is not None and self._output in self.viewer.layers:
            self._output.refresh()
        elapsed = max(time.perf_counter() - self._started_at, 1e-9)
        self.progress.setRange(0, max(1, self.tiles_total))
        self.progress.setValue(self.tiles_done)
        if self._streaming:  # a throttled call can land after the final Done/Stopped/Failed text
            self.status.setText(f"tile {self.tiles_done}/{self.tiles_total} · {self.tiles_done / elapsed:.1f} tiles/s")

    def _close_activity(self) -> None:
        if self._activity is not None:
            self._activity.close()
            self._activity = None

    @guard_slot
    def _on_error(self, exc: BaseException) -> None:
        self._streaming = False
        notify_error(f"Prediction failed: {describe_error(exc)}")
        self.status.setText(f"Failed: {describe_error(exc)}")

    @guard_slot
    def _on_finished(self) -> None:
        self.worker = None
        self._refresh_view.cancel()
        self._close_activity()
        if self._output is not None and self._output in self.viewer.layers:
            self._output.refresh()
        self._update_buttons()

    # cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop a running worker and disconnect every callback."""
        self._stop.set()
        self._refresh_view.cancel()
        self._close_activity()
        if self.worker is not None:
            detach_worker(self.worker, self._on_event, self._on_finished, self._on_error)
            self.worker = None
        if self._export_worker is not None:
            detach_worker(self._export_worker, self._on_export_event, self._on_export_finished, self._on_error)
            self._export_worker = None
        self.device.stop_probe()
        self.image_combo.disconnect_viewer()
        try:
            self.state.events.model.disconnect(self._show_model)
        except Exception:  # noqa: BLE001
            pass

