"""Predict dock widget: tiled denoising in a background worker, streamed into the output layer.

An in-memory layer gets an in-memory output layer. A lazy layer (dask, zarr, memmap) is never
loaded: it is read tile by tile and its output layer is an OME-Zarr store on disk, filled tile by
tile, in the chosen output folder or else a temporary folder removed when Python exits.
"""
from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
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
    layer_data,
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
#: layer metadata key: the temporary folder holding a zarr output layer's store (ours to remove)
TEMP_STORE_KEY = "napari_structn2v_temporary_store"
#: values kept per finished tile of a zarr output for its contrast limits: 4096 x 242 tiles of a
#: 64 x 2048 x 2048 volume are 1M values (4 MB), and the store is never read back
CONTRAST_SAMPLES_PER_TILE = 4096


def output_layer_name(source: str) -> str:
    return f"{source} (StructN2V)"


def zarr_output_name(source: str) -> str:
    """File name of a zarr output in the chosen folder: ``<layer>_structn2v.ome.zarr``."""
    return re.sub(r"[^\w.-]+", "_", source).strip("_") + "_structn2v.ome.zarr"


@dataclass
class Warned:
    """A warning from the input checks that ran in the worker (lazy layers)."""

    message: str


class _Discard:
    """An ``out=`` that keeps nothing: the widget writes each tile into the layer on the main
    thread (so the viewer never reads a half-written chunk) and no second result is allocated."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _remove_temp(folder: str | None) -> None:
    """Remove a temporary output folder of ours (a replaced zarr output layer's)."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _contrast_limits(values: np.ndarray) -> tuple[float, float] | None:
    """0.5 and 99.5 percentiles of ``values``, or None when they are equal."""
    lo, hi = np.percentile(values, (0.5, 99.5))
    return (float(lo), float(hi)) if hi > lo else None


def _run_export(model, path, image, axes, overwrite):
    """Worker body: write the BioImage Model Zoo package; yields its path."""
    from ..bmz import export_bmz

    yield export_bmz(model, path, image=image, axes=axes, overwrite=overwrite)


def _run_prediction(model, image, axes, tile, overlap, device, tta, should_stop, check=False):
    """Worker body: plain data in, core ``TileDone``/``PredictDone`` events out. With ``check`` the
    input checks run here, off the main thread (a lazy input's NaN check reads all of it once);
    their warnings come out as :class:`Warned` events."""
    from ..errors import StructN2VWarning

    if check:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StructN2VWarning)
            model.check_input(image, axes)
        for warning in caught:
            if issubclass(warning.category, StructN2VWarning):
                yield Warned(str(warning.message))
    return (
        yield from model.predict_iter(
            image, axes, tile=tile, overlap=overlap, device=device, tta=tta, should_stop=should_stop, check=False,
            out=_Discard(image.shape),
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
        self._zarr_output = False  # the output layer is a zarr store (the source is lazy)
        self._contrast_samples: list[np.ndarray] = []
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

        self.load_button.clicked.connect(on_click(self._load_dialog))
        self.export_button.clicked.connect(on_click(self._export_dialog))
        self.out_folder_button.clicked.connect(on_click(self._out_folder_dialog))
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

    def _out_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for zarr results", self.out_folder.text())
        if path:
            self.out_folder.setText(path)

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
        from ..prediction import is_lazy

        image = layer_data(source)
        lazy = is_lazy(image)
        axes = self.axes_edit.text().strip().upper() or None
        try:
            if lazy:  # the full checks run in the worker: they read the whole input
                axes = self._lazy_axes(model, image, axes)
            else:
                image = np.asarray(image)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", StructN2VWarning)
                    axes = model.check_input(image, axes)
                for warning in caught:
                    if issubclass(warning.category, StructN2VWarning):
                        notify_warning(str(warning.message))
            self._output = self._output_layer(source, tuple(image.shape), axes if lazy else None)
        except StructN2VError as exc:
            return self._refuse(describe_error(exc))
        except OSError as exc:
            return self._refuse(f"cannot write the zarr output: {exc}")
        overlap = self.overlap.value()
        self._zarr_output = lazy
        self._contrast_samples = []
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
            lazy,
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

    def _lazy_axes(self, model: Any, image: Any, axes: str | None) -> str:
        """The axes of a lazy input, with the checks that read no data (dtype, axes, RGB-like)."""
        from ..prediction import check_dtype, check_rgb_like, resolve_axes

        check_dtype(image)
        arch = model.config.architecture
        resolved = resolve_axes(len(image.shape), model.axes, axes, arch.spatial_ndim, arch.in_channels)
        if axes is None:
            check_rgb_like(tuple(image.shape), resolved)
        return resolved

    def _output_layer(self, source: Any, shape: tuple[int, ...], zarr_axes: str | None = None) -> Any:
        """Reuse or add ``"<source> (StructN2V)"`` filled with zeros, aligned with ``source``: a
        float32 array, or with ``zarr_axes`` a new OME-Zarr store (see :meth:`_new_zarr_output`)."""
        from napari.layers import Image

        name = output_layer_name(source.name)
        layer = find_layer(self.viewer, name)
        data, temp = self._new_zarr_output(source, shape, zarr_axes) if zarr_axes else (None, None)
        if layer is not None and isinstance(layer, Image) and layer.ndim == len(shape):
            old_temp = layer.metadata.get(TEMP_STORE_KEY)
            if data is None and isinstance(layer.data, np.ndarray) and layer.data.shape == tuple(shape) and (
                layer.data.dtype == np.float32
            ):
                layer.data[...] = 0
                layer.refresh()
            else:
                layer.data = np.zeros(shape, dtype=np.float32) if data is None else data
            self._mark_temp(layer, temp)
            _remove_temp(old_temp)
            layer.scale = source.scale
            layer.translate = source.translate
            self._fresh_output = False  # a re-run keeps the contrast the user set
            return layer
        if layer is not None:
            self.viewer.layers.remove(layer)
            _remove_temp(layer.metadata.get(TEMP_STORE_KEY))
        self._fresh_output = True  # contrast from the result once it is complete
        layer = self.viewer.add_image(
            np.zeros(shape, dtype=np.float32) if data is None else data,
            name=name,
            scale=source.scale,
            translate=source.translate,
            contrast_limits=tuple(source.contrast_limits),
            colormap=source.colormap.name if hasattr(source, "colormap") else "gray",
        )
        self._mark_temp(layer, temp)
        return layer

    def _new_zarr_output(self, source: Any, shape: tuple[int, ...], axes: str) -> tuple[Any, str | None]:
        """A zero OME-Zarr store for the result: ``<folder>/<layer>_structn2v.ome.zarr`` in the chosen
        folder (an earlier one replaced), else in a new temporary folder, removed when Python exits
        (returned as the second item)."""
        from ..io import check_output, create_ome_zarr

        folder = self.out_folder.text().strip()
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

    @staticmethod
    def _mark_temp(layer: Any, temp: str | None) -> None:
        if temp is None:
            layer.metadata.pop(TEMP_STORE_KEY, None)
        else:
            layer.metadata[TEMP_STORE_KEY] = temp

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
            if self._zarr_output:  # a strided sample of each tile: the store is never read back
                flat = event.data.reshape(-1)
                self._contrast_samples.append(flat[:: max(1, flat.size // CONTRAST_SAMPLES_PER_TILE)].copy())
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
                    values = np.concatenate([np.empty(0, np.float32), *self._contrast_samples]) if self._zarr_output else layer.data
                    limits = _contrast_limits(values) if np.size(values) else None
                    if limits is not None:
                        layer.contrast_limits = limits
                layer.refresh()
            verb = "Stopped" if event.stopped else "Done"
            self.status.setText(
                f"{verb}: {self.tiles_done}/{self.tiles_total} tiles in {elapsed:.1f} s "
                f"({self.tiles_per_s:.1f} tiles/s)"
            )
        elif isinstance(event, Warned):
            notify_warning(event.message)
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

