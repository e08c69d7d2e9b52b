"""Predict dock widget: tiled denoising in a background worker, streamed into the output layer.

The output layer (in memory, or an OME-Zarr store for a lazy source) is ``_predict_output``'s; the
BioImage Model Zoo export is ``_predict_export``'s.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils import progress as napari_progress
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

from ..errors import StructN2VError, StructN2VWarning
from ..events import PredictDone, TileDone
from ..method.masks import describe_mask
from ._choice import share_layer_choice
from ._devices import DeviceCombo
from ._job import JobWidget
from ._layers import (
    LayerCombo,
    describe_error,
    hide_form_row,
    install_scroll_layout,
    layer_axes,
    layer_data,
    notify_info,
    notify_warning,
    report_error,
)
from ._predict_export import BmzExportMixin
from ._predict_output import REFRESH_MS, TEMP_STORE_KEY, Discard, PredictOutput, view_focus
from ._worker import guard_slot, on_click

if TYPE_CHECKING:
    import napari

# TEMP_STORE_KEY: where callers have always found the metadata key of a temporary zarr output
__all__ = ["PredictWidget", "TEMP_STORE_KEY"]



@dataclass
class Warned:
    """A warning from the input checks that ran in the worker (lazy layers)."""

    message: str


def _checked_input(model: Any, image: Any, axes: str | None) -> tuple[str, list[str]]:
    """The model's input checks (``check_input``): the resolved axes and the
    StructN2VWarning messages they raised, for the caller to show its own way."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StructN2VWarning)
        axes = model.check_input(image, axes)
    return axes, [str(w.message) for w in caught if issubclass(w.category, StructN2VWarning)]


def _run_prediction(model, image, axes, tile, overlap, device, tta, check=False, focus=(None, None), *, should_stop):
    """Worker body: plain data in, core ``TileDone``/``PredictDone`` events out. With ``check`` the
    input checks run here, off the main thread (a lazy input's NaN check reads all of it once);
    their warnings come out as :class:`Warned` events. ``focus`` is ``(focus, near)``: the tiles
    where the user looks come first."""
    if check:
        for message in _checked_input(model, image, axes)[1]:
            yield Warned(message)
    return (
        yield from model.predict_iter(
            image, axes, tile=tile, overlap=overlap, device=device, tta=tta, should_stop=should_stop, check=False,
            out=Discard(image.shape), focus=focus[0], near=focus[1],
        )
    )


class PredictWidget(BmzExportMixin, JobWidget):
    """Denoise an image layer with the model from training (or a model file), tile by tile.

    The output layer ``"<source> (StructN2V)"`` is created at once with the source's shape, scale
    and translate and filled as tiles finish; re-runs reuse it.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        self.job = self._new_job(
            "Prediction", self._on_event, on_finished=self._on_finished, on_failed=self._on_failed,
            stoppable=True, reserve_core=True,
        )
        self._new_export_job()
        self._output: PredictOutput | None = None
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
        self._build_controls()
        self._build_layout()
        self.load_button.clicked.connect(on_click(self._load_dialog))
        self.export_button.clicked.connect(on_click(self._export_dialog))
        self.out_folder_button.clicked.connect(on_click(self._out_folder_dialog))
        self.predict_button.clicked.connect(on_click(self.start))
        self.stop_button.clicked.connect(on_click(self.stop))
        self.image_combo.changed.connect(self._guess_axes)
        share_layer_choice(self, self.image_combo, "image")
        self._listen(self.state.events.model, self._show_model)
        self._show_model(self.state.model)
        self._guess_axes()
        self._update_buttons()

    def _build_controls(self) -> None:
        """The model line, the image picker, the tiling settings, the buttons and the progress."""
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.load_button = QPushButton("Load model…")
        self.export_button = QPushButton("Export to BioImage Model Zoo…")
        self.export_button.setToolTip("Write the model as a bioimage.io package (.zip) for Fiji/deepImageJ, ilastik, ...")
        self.image_combo = LayerCombo(self.viewer, ("image",))
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
        self.out_folder = QLineEdit()
        self.out_folder.setPlaceholderText("temporary folder")
        self.out_folder.setToolTip(
            "Where the result of a dask/zarr-backed (lazy) layer is written, tile by tile, as an OME-Zarr store "
            "'<layer>_structn2v.ome.zarr' (replaced by a re-run); empty: a temporary folder removed when napari "
            "quits. In-memory layers get an in-memory result."
        )
        self.out_folder_button = QPushButton("…")
        self.predict_button = QPushButton("Predict")
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m tiles")
        self.status = QLabel("Idle")
        self.status.setWordWrap(True)

    def _build_layout(self) -> None:
        """The controls in a form, then buttons, progress and status, in a scroll area."""
        form = self._form = QFormLayout()
        form.addRow("Model", self.model_label)
        form.addRow("", self.load_button)
        form.addRow("", self.export_button)
        form.addRow("Image", self.image_combo.native)
        form.addRow("Axes", self.axes_edit)
        form.addRow("Tile", self.tile)
        form.addRow("Overlap", self.overlap)
        form.addRow("Device", self.device)
        form.addRow("", self.tta)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.out_folder)
        folder_row.addWidget(self.out_folder_button)
        form.addRow("Zarr output folder", folder_row)
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
        model = self.state.model
        meta = layer.metadata.get("axes") if isinstance(layer.metadata, dict) else None
        if model is None or isinstance(meta, str) or getattr(layer, "rgb", False):
            return layer_axes(layer)
        # only with a model (torch is loaded then): opening the dock, the GUI thread waited 2.1 s
        # here for the device probe's import of torch to finish
        from ..prediction.predict import resolve_axes
        shape = tuple((layer.data[0] if getattr(layer, "multiscale", False) else layer.data).shape)
        try:
            axes = resolve_axes(len(shape), model.axes, None, model.spatial_ndim, model.n_channels)
        except StructN2VError:
            return layer_axes(layer)
        return axes if not (len(shape) >= 3 and shape[-1] in (3, 4) and axes[-1] == "X") else layer_axes(layer)

    def _update_buttons(self, *args: Any) -> None:
        self.predict_button.setEnabled(not self.running)
        self.stop_button.setEnabled(self.running)
        self.load_button.setEnabled(not self.running)
        self.export_button.setEnabled(self.state.model is not None and not self.export.running)

    # model file -------------------------------------------------------------------------
    def load_model(self, path: str | Path) -> bool:
        """Load a model file into the shared state; False and a notification on failure."""
        from ..model import load_model  # imports torch

        try:
            model = load_model(path)
        except Exception as exc:  # noqa: BLE001 - ModelFileError and anything else: a notification
            report_error(exc)
            return False
        self.state.model = model
        notify_info(f"Model loaded from {path}")
        return True

    def _out_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for zarr results", self.out_folder.text())
        if path:
            self.out_folder.setText(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load StructN2V model", "", "Model (*.pt *.zip);;All files (*)")
        if path:
            self.load_model(path)

    # run --------------------------------------------------------------------------------
    def start(self) -> Any:
        """Start predicting the chosen layer; returns the worker or None on error."""
        if self.running:
            notify_warning("Prediction is already running; stop it first.")
            return None
        model = self.state.model
        if model is None:
            return self._refuse("There is no model: train one or load a model file first.")
        source = self.image_combo.layer()
        if source is None:
            return self._refuse("Choose an image layer to denoise.")
        from ..prediction.predict import is_lazy  # imports torch

        image = layer_data(source)
        lazy = is_lazy(image)
        axes = self.axes_edit.text().strip().upper() or None
        try:
            if lazy:  # the full checks run in the worker: they read the whole input
                axes = self._lazy_axes(model, image, axes)
            else:
                image = np.asarray(image)
                axes = self._checked_axes(model, image, axes)
            self._output = PredictOutput(
                self.viewer, source, tuple(image.shape), zarr_axes=axes if lazy else None,
                folder=self.out_folder.text().strip(),
            )
        except StructN2VError as exc:
            return self._refuse(describe_error(exc))
        except OSError as exc:
            return self._refuse(f"cannot write the zarr output: {exc}")
        self._reset_progress()
        # napari's activity bar now, with the click, not with the first tile, where its widgets'
        # creation (and its processEvents) made one of the GUI's two longest gaps of a run
        self._close_activity()
        self._activity = napari_progress(total=0, desc="StructN2V prediction")
        overlap = self.overlap.value()
        # the slice on view first: a 64-slice volume filled from z = 0 left slice 40 grey for most of the run
        return self.job.start(
            _run_prediction, model, image, axes, self.tile.value(), None if overlap < 0 else overlap,
            self.device.currentText(), self.tta.isChecked(), lazy, view_focus(self.viewer, source, axes),
        )

    def _reset_progress(self) -> None:
        self.tiles_done = 0
        self.tiles_total = 0
        self.tiles_per_s = None
        self.stopped = None
        self._started_at = time.perf_counter()
        self._streaming = True
        self.progress.setRange(0, 0)
        self.status.setText("Starting…")

    @staticmethod
    def _checked_axes(model: Any, image: np.ndarray, axes: str | None) -> str:
        """The axes of an in-memory input after all the model's checks; their warnings notified."""
        axes, messages = _checked_input(model, image, axes)
        for message in messages:
            notify_warning(message)
        return axes

    def _lazy_axes(self, model: Any, image: Any, axes: str | None) -> str:
        """The axes of a lazy input, with the checks that read no data (dtype, axes, RGB-like)."""
        from ..prediction.predict import check_dtype, check_rgb_like  # imports torch

        check_dtype(image)
        # the model's own rule: the data's channels (not its Z-context inputs), and a Z axis for those
        resolved = model.resolve_axes(len(image.shape), axes)
        if axes is None:
            check_rgb_like(tuple(image.shape), resolved)
        return resolved

    # events (main thread) ---------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        if isinstance(event, TileDone):
            self.tiles_done += 1
            self.tiles_total = event.total
            self._output.write(event)
            if self._activity is not None and self._activity.total != event.total:
                self._activity.total = event.total
            self._refresh_view()  # the activity bar too: one update per tile cost a repaint each
        elif isinstance(event, PredictDone):
            self._refresh_view.cancel()
            self._show_progress()
            self._streaming = False
            self.stopped = event.stopped
            elapsed = max(time.perf_counter() - self._started_at, 1e-9)
            self.tiles_per_s = self.tiles_done / elapsed
            self._output.finish(event.stopped)
            verb = "Stopped" if event.stopped else "Done"
            self.status.setText(
                f"{verb}: {self.tiles_done}/{self.tiles_total} tiles in {elapsed:.1f} s "
                f"({self.tiles_per_s:.1f} tiles/s)"
            )
        elif isinstance(event, Warned):
            notify_warning(event.message)

    def _show_progress(self) -> None:
        """Redraw the output layer and the progress bar (throttled while tiles stream in)."""
        if self._output is not None:
            self._output.refresh()
        elapsed = max(time.perf_counter() - self._started_at, 1e-9)
        self.progress.setRange(0, max(1, self.tiles_total))
        self.progress.setValue(self.tiles_done)
        if self._activity is not None and self.tiles_done > self._activity.n:
            self._activity.update(self.tiles_done - self._activity.n)
        if self._streaming:  # a throttled call can land after the final Done/Stopped/Failed text
            self.status.setText(f"tile {self.tiles_done}/{self.tiles_total} · {self.tiles_done / elapsed:.1f} tiles/s")

    def _close_activity(self) -> None:
        if self._activity is not None:
            self._activity.close()
            self._activity = None

    def _on_failed(self, message: str) -> None:
        self._streaming = False
        self.status.setText(f"Failed: {message}")

    def _on_finished(self) -> None:
        self._refresh_view.cancel()
        self._close_activity()
        if self._output is not None:
            self._output.refresh(force=True)  # a failed run's last tiles

    def embed(self) -> None:
        """Inside the StructN2V dock: the image is chosen once there, so this dock's picker goes."""
        hide_form_row(self._form, self.image_combo.native)

    # cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop the running workers and disconnect every callback."""
        self._refresh_view.cancel()
        self._close_activity()
        super().cleanup()
        self.device.stop_probe()
        self.image_combo.disconnect_viewer()
