"""Train dock widget: StructN2V training in a background worker with live loss and preview."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible
from superqt.utils import qthrottled

from ._form import SettingsForm
from ._layers import (
    LayerChecklist,
    add_or_update_image,
    describe_error,
    install_scroll_layout,
    layer_array,
    layer_axes,
    notify_error,
    notify_info,
    notify_warning,
)
from ._plot import LinePlot
from ._state import get_state
from ._worker import (
    CleanupMixin,
    Failed,
    StopFlag,
    ask_yes_no,
    detach_worker,
    guard_slot,
    on_click,
    reserve_ui_core,
    start_generator_worker,
)

if TYPE_CHECKING:
    import napari

#: side of the YX preview crop
PREVIEW_SIDE = 128
#: at most one preview layer update per this many milliseconds
PREVIEW_MS = 250
#: below this many steps a model is far from converged: on the 3D sample, 60 steps of a 3D net took
#: 16.0 dB to 9.9 dB (issue #8); the benchmarks' curves flatten only after ~1500 steps
FEW_STEPS = 500

#: at most one progress/plot redraw per this many milliseconds
REDRAW_MS = 100


def preview_layer_name(source: str) -> str:
    return f"{source} (StructN2V preview)"


def _run_training(images, axes, mask, config, should_stop, preview_image, resume):
    """Worker body: plain data in, core training events out (imports torch here, not at load)."""
    from ..training import train_iter

    return (
        yield from train_iter(
            images,
            axes,
            mask,
            config,
            should_stop=should_stop,
            preview_image=preview_image,
            resume=resume,
        )
    )


class TrainWidget(CleanupMixin, QWidget):
    """Train a StructN2V model on image layers with the blind mask from the shared state.

    Training runs the core's ``train_iter`` generator in a napari thread worker; its events update
    the progress bar, the loss plot and the ``"<source> (StructN2V preview)"`` layer on the main
    thread. Stop keeps the model trained so far; Resume continues it.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        #: asks before a file is replaced; tests put a function answering True or False here
        self.ask_yes_no = ask_yes_no
        self.worker: Any = None
        self._stop = StopFlag()
        self._preview_info: dict[str, Any] | None = None
        self._pending_preview: Any = None
        # superqt's throttles: the first call runs at once, later ones at most every timeout, and the
        # last call of a burst is never dropped (the final step and preview are always shown)
        self._redraw = qthrottled(self._show_step, timeout=REDRAW_MS, leading=True, parent=self)
        self._preview_throttle = qthrottled(self._flush_preview, timeout=PREVIEW_MS, leading=True, parent=self)
        self._started_at = 0.0
        self.stop_requested_at: float | None = None
        self.finished_at: float | None = None
        self.last_event: Any = None
        self._last_step: Any = None  # the latest TrainStep, redrawn in full when training ends

        # main settings
        self.layers = LayerChecklist(napari_viewer, ("image",))
        self.axes_edit = QLineEdit()
        self.axes_edit.setToolTip("Axes of the chosen layers over STCZYX, e.g. YX, SYX, TYX, ZYX, TZYX, CYX")
        self.mask_label = QLabel()
        # the training settings, from the settings table; each widget is also an attribute of the
        # dock under the table's name (self.steps, self.patch, self.device, self.lr, ...)
        self.form = SettingsForm()
        for name, widget in self.form.widgets.items():
            setattr(self, name, widget)
        self.budget_unit = self.form.budget_unit

        self.train_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.save_button = QPushButton("Save model…")
        self.loss_button = QPushButton("Save loss as CSV…")
        self.loss_button.setToolTip("The model's training and validation loss per step (step,train_loss,val_loss)")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.status = QLabel("Idle")
        self.status.setWordWrap(True)
        self.plot = LinePlot("Loss (log10)", log_y=True)

        self._build_layout()

        self.train_button.clicked.connect(on_click(self.start))
        self.stop_button.clicked.connect(on_click(self.stop))
        self.resume_button.clicked.connect(on_click(self.resume))
        self.save_button.clicked.connect(on_click(self._save_dialog))
        self.loss_button.clicked.connect(on_click(self._save_loss_dialog))
        self.layers.selection_changed.connect(self._guess_axes)
        self.state.events.mask.connect(self._show_mask)
        self.state.events.model.connect(self._update_buttons)
        self._guess_axes()
        self._show_mask(self.state.mask)
        self._update_buttons()

    def _build_layout(self) -> None:
        """Main settings, *Advanced*, buttons, progress, status and loss plot, in a scroll area."""
        form = QFormLayout()
        form.addRow("Images", self.layers)
        form.addRow("Axes", self.axes_edit)
        form.addRow("Blind mask", self.mask_label)
        self.form.add_rows(form, advanced=False)
        advanced = QCollapsible("Advanced")
        adv_widget = QWidget()
        self.form.add_rows(QFormLayout(adv_widget), advanced=True)
        advanced.addWidget(adv_widget)
        self.advanced = advanced
        buttons = QHBoxLayout()
        for b in (self.train_button, self.stop_button, self.resume_button, self.save_button):
            buttons.addWidget(b)
        layout = QVBoxLayout()  # scrolls: see install_scroll_layout
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.loss_button)
        install_scroll_layout(self, layout)

    # UI helpers ------------------------------------------------------------------------
    @property
    def devices_ready(self) -> bool:
        """True once the device list is complete (torch has been imported in the background)."""
        return self.device.ready

    @guard_slot
    def _guess_axes(self) -> None:
        layers = self.layers.layers()
        if layers:
            self.axes_edit.setText(layer_axes(layers[0]))

    @guard_slot
    def _show_mask(self, mask: Any = None) -> None:
        from ..masks import describe_mask

        if mask is None:
            self.mask_label.setText("none chosen (N2V 1×1 will be used)")
        else:
            self.mask_label.setText(describe_mask(np.asarray(mask, dtype=bool)))

    @property
    def running(self) -> bool:
        """True while a training worker runs."""
        return self.worker is not None

    def _update_buttons(self, *args: Any) -> None:
        running = self.running
        self.train_button.setEnabled(not running)
        self.resume_button.setEnabled(not running and self.state.model is not None)
        self.save_button.setEnabled(not running and self.state.model is not None)
        self.loss_button.setEnabled(not running and self.state.model is not None)
        self.stop_button.setEnabled(running)

    def config(self):
        """The :class:`~napari_structn2v.config.TrainConfig` set in the widget."""
        from ..config import TrainConfig

        return TrainConfig(**self.form.values())

    # inputs (main thread) ------------------------------------------------------------------
    def _inputs(self) -> tuple[list[np.ndarray], str, np.ndarray, Any, np.ndarray | None]:
        """Read layers and settings into plain data; raises StructN2VError on user mistakes."""
        from ..axes import spatial_axes, validate_axes
        from ..checks import check_patch_fits, patch_shape
        from ..errors import AxesError, DataError
        from ..masks import validate_mask

        layers = self.layers.layers()
        if not layers:
            raise DataError("Choose at least one image layer to train on.")
        text = self.axes_edit.text().strip().upper()
        if not text:
            raise AxesError("Give the axes of the chosen layers, e.g. YX, SYX or ZYX.")
        images = []
        for layer in layers:
            arr = layer_array(layer)
            try:
                validate_axes(text, arr.ndim)
            except AxesError as exc:
                raise AxesError(f"Layer {layer.name!r}: {exc}") from exc
            images.append(arr)
        axes = validate_axes(text, images[0].ndim)
        from ..training import over_slices

        config = self.config()
        mask = self.state.mask
        if mask is None:
            notify_warning("No blind mask chosen: training plain N2V (1×1). Use 'Blind mask' to choose one.")
            mask = np.ones((1, 1), dtype=bool)
        mask = np.asarray(mask, dtype=bool)
        # a 2D network over the Z slices sees only YX patches (TrainConfig.z_net)
        spatial = "YX" if over_slices(axes, mask, config.z_net) else spatial_axes(axes)
        if len(spatial) == 2 and mask.ndim == 3:
            mask = mask[mask.shape[0] // 2]
        patch = patch_shape(config, len(spatial))
        mask = validate_mask(mask, spatial_ndim=len(spatial), patch_shape=patch)
        check_patch_fits([[arr.shape[axes.index(a)] for a in spatial] for arr in images], patch, spatial)
        preview = self._preview_crop(layers[0], images[0], axes, config) if config.preview_every > 0 else None
        return images, axes, mask, config, preview

    def _preview_crop(self, layer: Any, data: np.ndarray, axes: str, config: Any) -> np.ndarray:
        """Crop of the displayed slice around the image centre; records where it goes."""
        point = np.asarray(self.viewer.dims.point, dtype=float)[-layer.ndim :]
        current = np.asarray(layer.world_to_data(point), dtype=float)
        index, offset, kept_dims = [], [], []
        for i, letter in enumerate(axes):
            size = data.shape[i]
            if letter in "ST":
                index.append(int(np.clip(np.round(current[i]), 0, size - 1)))
                continue
            if letter == "C":
                lo, hi = 0, size
            elif letter == "Z":
                side = min(size, config.patch_size_z)
                centre = int(np.clip(np.round(current[i]), 0, size - 1))
                lo = int(np.clip(centre - side // 2, 0, size - side))
                hi = lo + side
            else:
                side = min(size, PREVIEW_SIDE)
                lo = (size - side) // 2
                hi = lo + side
            index.append(slice(lo, hi))
            offset.append(lo)
            kept_dims.append(i)
        crop = np.ascontiguousarray(data[tuple(index)])
        # an RGB layer's colour axis (last) is no layer dimension: scale/translate have one entry less
        layer_dims = [i for i in kept_dims if i < layer.ndim]
        offsets = np.asarray([o for o, i in zip(offset, kept_dims) if i < layer.ndim], dtype=float)
        scale = np.asarray(layer.scale, dtype=float)[layer_dims]
        translate = np.asarray(layer.translate, dtype=float)[layer_dims] + offsets * scale
        self._preview_info = {
            "name": preview_layer_name(layer.name),
            "scale": list(scale),
            "translate": list(translate),
            "contrast_limits": tuple(layer.contrast_limits),
        }
        return crop

    # run --------------------------------------------------------------------------------
    def start(self, *, resume: bool = False) -> Any:
        """Start (or with ``resume`` continue) training; returns the worker or None on error."""
        from ..errors import StructN2VError

        if self.running:
            notify_warning("Training is already running; stop it first.")
            return None
        model = self.state.model if resume else None
        if resume and model is None:
            notify_error("There is no model to resume; train one first.")
            return None
        try:
            images, axes, mask, config, preview = self._inputs()
        except StructN2VError as exc:
            notify_error(describe_error(exc))
            self.status.setText(f"Failed: {describe_error(exc)}")
            return None
        self._stop = StopFlag()
        self.stop_requested_at = None
        self.finished_at = None
        self.last_event = None
        self._last_step = None
        self._pending_preview = None
        self._started_at = time.perf_counter()
        if not resume:
            self.plot.clear()
        self.progress.setRange(0, config.steps or 0)  # a time budget: busy until the first estimate
        self.progress.setValue(0)
        from ..training import over_slices

        if not resume and over_slices(axes, mask, config.z_net):
            near = f", reading {config.z_context} neighbouring slice(s) on each side" if config.z_context else ""
            self.status.setText(f"Starting a 2D network over the Z slices{near} (the mask does not extend along Z)…")
        else:
            self.status.setText("Starting…")
        if preview is not None and self._preview_info is not None:
            # add the layer now (a one-off ~0.1 s in napari), so that training updates only its data
            self._show_preview(preview)
        reserve_ui_core()
        self.worker = start_generator_worker(
            _run_training,
            images if len(images) > 1 else images[0],
            axes,
            mask,
            config,
            self._stop,
            preview,
            model,
            on_event=self._on_event,
            on_finished=self._on_finished,
            on_error=self._on_error,
        )
        self._update_buttons()
        return self.worker

    def resume(self) -> Any:
        """Continue training the current model for the number of steps set."""
        return self.start(resume=True)

    def stop(self) -> None:
        """Ask the worker to stop after the current step; the model trained so far is kept."""
        if not self.running:
            return
        self.stop_requested_at = time.perf_counter()
        self._stop.set()
        self.stop_button.setEnabled(False)
        self.status.setText("Stopping…")

    # events (main thread) ---------------------------------------------------------------
    @guard_slot
    def _on_event(self, event: Any) -> None:
        from ..events import Preview, TrainDone, TrainStep, Validation

        self.last_event = event
        if isinstance(event, TrainStep):
            self._last_step = event
            self.plot.append("train", event.step, event.loss, redraw=False)
            self._redraw(event)
        elif isinstance(event, Validation):
            self.plot.append("validation", event.step, event.val_loss)
        elif isinstance(event, Preview):
            self._pending_preview = event
            self._preview_throttle()
        elif isinstance(event, TrainDone):
            self._redraw.cancel()  # a late throttled redraw would overwrite "Finished"
            if self._last_step is not None:
                self._show_step(self._last_step)
            self.state.model = event.model
            self.progress.setValue(event.step)
            verb = "Stopped" if event.stopped else "Finished"
            self.status.setText(f"{verb} at step {event.step}; the model is ready for Predict and Save.")
            if event.step < FEW_STEPS:
                notify_warning(
                    f"Only {event.step} training steps: the network is far from converged and its output can be "
                    f"worse than the input. Train for a few minutes ('Train for … minutes') before trusting it."
                )
        elif isinstance(event, Failed):
            self._redraw.cancel()
            notify_error(f"Training failed: {describe_error(event.error)}")
            self.status.setText(f"Failed: {describe_error(event.error)}")

    @guard_slot
    def _show_step(self, event: Any) -> None:
        """Progress bar, status line and loss plot for a step (throttled to every REDRAW_MS)."""
        if self.progress.maximum() != event.total_steps:
            self.progress.setRange(0, event.total_steps)
        self.progress.setValue(event.step)
        eta = f"ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
        self.status.setText(
            f"step {event.step}/{event.total_steps} · loss {event.loss:.4g} · {event.patches_per_s:.0f} patches/s · {eta}"
        )
        self.plot.update()

    @guard_slot
    def _flush_preview(self) -> None:
        event, self._pending_preview = self._pending_preview, None
        if event is None or self._preview_info is None:
            return
        self._show_preview(event.image)

    def _show_preview(self, image: np.ndarray) -> None:
        info = self._preview_info
        add_or_update_image(
            self.viewer,
            info["name"],
            np.asarray(image, dtype=np.float32),
            scale=info["scale"],
            translate=info["translate"],
            contrast_limits=info["contrast_limits"],
        )

    @guard_slot
    def _on_error(self, exc: BaseException) -> None:
        self._redraw.cancel()
        notify_error(f"Training failed: {describe_error(exc)}")
        self.status.setText(f"Failed: {describe_error(exc)}")

    @guard_slot
    def _on_finished(self) -> None:
        self._preview_throttle.cancel()
        self._flush_preview()
        self.worker = None
        self.finished_at = time.perf_counter()
        self._update_buttons()

    # model file -------------------------------------------------------------------------
    def save_model(self, path: str | Path) -> bool:
        """Save the current model; False and a notification on failure."""
        model = self.state.model
        if model is None:
            notify_error("There is no model to save; train one first.")
            return False
        return self._write_confirmed(path, "model file", "the model", lambda: model.save(path, overwrite=True),
                                     f"Model saved to {path}")

    def _write_confirmed(self, path: str | Path, kind: str, what: str, write, done: str) -> bool:
        """Ask before replacing ``path``, run ``write()``, and say how it went; False on refusal or failure."""
        if Path(path).exists() and not self.ask_yes_no(self, f"Replace {kind}?", f"{path} exists. Replace it?"):
            notify_info(f"Not saved: {path} is kept as it was.")
            return False
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            notify_error(f"Cannot save {what}: {describe_error(exc)}")
            return False
        notify_info(done)
        return True

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save StructN2V model", "structn2v.pt", "Model (*.pt)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # save_model asks, once
        )
        if path:
            self.save_model(path)

    def save_loss_csv(self, path: str | Path) -> bool:
        """Write the current model's loss history as CSV; False and a notification on failure."""
        from ..history import save_loss_csv

        model = self.state.model
        if model is None:
            notify_error("There is no model whose loss to save; train one first.")
            return False
        return self._write_confirmed(path, "CSV file", "the loss", lambda: save_loss_csv(model, path, overwrite=True),
                                     f"Loss history saved to {path}")

    def _save_loss_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save loss history", "structn2v_loss.csv", "CSV (*.csv)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # save_loss_csv asks, once
        )
        if path:
            self.save_loss_csv(path if Path(path).suffix else path + ".csv")

    # cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop a running worker and disconnect every callback."""
        self._stop.set()
        if self.worker is not None:
            detach_worker(self.worker, self._on_event, self._on_finished, self._on_error)
            self.worker = None
        self.device.stop_probe()
        self._redraw.cancel()
        self._preview_throttle.cancel()
        self.layers.disconnect_viewer()
        try:
            self.state.events.mask.disconnect(self._show_mask)
            self.state.events.model.disconnect(self._update_buttons)
        except Exception:  # noqa: BLE001
            pass

