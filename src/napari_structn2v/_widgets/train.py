"""Train dock widget: StructN2V training in a background worker with live loss and preview.

What a run shows (progress, loss plot, preview layer) is ``_train_progress``'s; saving the model
and its loss history is ``_train_files``'s; the setting widgets are ``_form``'s.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
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

from ..axes import spatial_axes, validate_axes
from ..config import TrainConfig
from ..errors import AxesError, DataError, StructN2VError
from ..method.masks import describe_mask, validate_mask
from ..training.checks import check_patch_fits, patch_shape
from ._choice import share_layer_checklist
from ._form import SettingsForm
from ._job import JobWidget
from ._layers import (
    LayerChecklist,
    describe_error,
    hide_form_row,
    install_scroll_layout,
    layer_array,
    layer_axes,
    notify_error,
    notify_info,
    notify_warning,
)
from ._plot import LinePlot
from ._train_files import ModelFilesMixin
from ._train_progress import PREVIEW_MS, REDRAW_MS, TrainProgressMixin
from ._worker import ask_yes_no, guard_slot, on_click

if TYPE_CHECKING:
    import napari


def _run_training(images, axes, mask, config, preview_image, resume, pattern=None, *, should_stop):
    """Worker body: plain data in, core training events out (imports torch here, not at load)."""
    from ..training.loop import train_iter

    return (
        yield from train_iter(
            images,
            axes,
            mask,
            config,
            should_stop=should_stop,
            preview_image=preview_image,
            resume=resume,
            fixed_pattern=pattern,
        )
    )


class TrainWidget(TrainProgressMixin, ModelFilesMixin, JobWidget):
    """Train a StructN2V model on image layers with the blind mask from the shared state.

    Training runs the core's ``train_iter`` generator in a napari thread worker; its events update
    the progress bar, the loss plot and the ``"<source> (StructN2V preview)"`` layer on the main
    thread. Stop keeps the model trained so far; Resume continues it.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        #: asks before a file is replaced; tests put a function answering True or False here
        self.ask_yes_no = ask_yes_no
        self.job = self._new_job(
            "Training", self._on_event, on_finished=self._on_finished, on_failed=self._on_failed,
            stoppable=True, reserve_core=True,
        )
        self._preview_info: dict[str, Any] | None = None
        self._pending_preview: Any = None
        # superqt's throttles: the first call runs at once, later ones at most every timeout, and the
        # last call of a burst is never dropped (the final step and preview are always shown)
        self._redraw = qthrottled(self._show_step, timeout=REDRAW_MS, leading=True, parent=self)
        self._preview_throttle = qthrottled(self._flush_preview, timeout=PREVIEW_MS, leading=True, parent=self)
        self.finished_at: float | None = None
        self.last_event: Any = None
        self._last_step: Any = None  # the latest TrainStep, redrawn in full when training ends
        self._first_preview_step = 0  # previews of earlier steps are not shown (an untrained net)
        self._per_mille = False  # the bar counts per mille of a time budget's estimated steps (see start)

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
        self._listen(self.state.events.mask, self._show_mask)
        self._listen(self.state.events.model, self._update_buttons)
        share_layer_checklist(self, self.layers)
        self._guess_axes()
        self._show_mask(self.state.mask)
        self._update_buttons()

    def _build_layout(self) -> None:
        """Main settings, *Advanced*, buttons, progress, status and loss plot, in a scroll area."""
        form = self._form = QFormLayout()
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
        if mask is None:
            self.mask_label.setText("none chosen (N2V 1×1 will be used)")
        else:
            self.mask_label.setText(describe_mask(np.asarray(mask, dtype=bool)))

    def _update_buttons(self, *args: Any) -> None:
        running = self.running
        self.train_button.setEnabled(not running)
        self.resume_button.setEnabled(not running and self.state.model is not None)
        self.save_button.setEnabled(not running and self.state.model is not None)
        self.loss_button.setEnabled(not running and self.state.model is not None)
        self.stop_button.setEnabled(running)

    def config(self):
        """The :class:`~napari_structn2v.config.TrainConfig` set in the widget."""
        return TrainConfig(**self.form.values())

    # inputs (main thread) ------------------------------------------------------------------
    def _inputs(self) -> tuple[list[np.ndarray], str, np.ndarray, Any, np.ndarray | None, bool, int]:
        """Read layers and settings into plain data; raises StructN2VError on user mistakes.

        Also returns whether a 2D network runs over the Z slices and the neighbour slices it reads
        (:func:`~napari_structn2v.training.zcontext.network_mask`, the core's rule)."""
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
        from ..training.zcontext import network_mask  # imports torch

        config = self.config()
        mask = self.state.mask
        if mask is None:
            notify_warning("No blind mask chosen: training plain N2V (1×1). Use 'Blind mask' to choose one.")
            mask = np.ones((1, 1), dtype=bool)
        mask = np.asarray(mask, dtype=bool)
        # the core's rule: a 2D network over the Z slices sees only YX patches and its slice's mask.
        # The mask itself goes to training whole: its Z extent decides the neighbour slices there too
        pattern = self._fixed_pattern(images, axes)
        seen, slices, z_context = network_mask(axes, mask, config, None)
        spatial = "YX" if slices else spatial_axes(axes)
        patch = patch_shape(config, len(spatial))
        validate_mask(seen, spatial_ndim=len(spatial), patch_shape=patch)
        check_patch_fits([[arr.shape[axes.index(a)] for a in spatial] for arr in images], patch, spatial)
        preview = self._preview_crop(layers[0], images[0], axes, config) if config.preview_every > 0 else None
        return images, axes, mask, config, preview, slices, z_context, pattern

    def _fixed_pattern(self, images: list, axes: str) -> np.ndarray | None:
        """The camera's fixed pattern the last noise analysis found in a dark stack (None: none);
        the images' frames must have its size."""
        fixed = getattr(self.state.analysis, "fixed_pattern", None)
        if fixed is None or not fixed.found:
            return None
        frame = tuple(images[0].shape[axes.index(a)] for a in "YX")
        if any(tuple(arr.shape[axes.index(a)] for a in "YX") != frame for arr in images) or frame != fixed.pattern.shape:
            raise DataError(f"the dark frames' fixed pattern is {fixed.pattern.shape[0]}x{fixed.pattern.shape[1]} (YxX) but "
                            f"the image's frames are {frame[0]}x{frame[1]}: analyse dark frames of the same camera size")
        return fixed.pattern

    # run --------------------------------------------------------------------------------
    def start(self, *, resume: bool = False) -> Any:
        """Start (or with ``resume`` continue) training; returns the worker or None on error."""
        if self.running:
            notify_warning("Training is already running; stop it first.")
            return None
        model = self.state.model if resume else None
        if resume and model is None:
            notify_error("There is no model to resume; train one first.")
            return None
        try:
            images, axes, mask, config, preview, slices, z_context, pattern = self._inputs()
        except StructN2VError as exc:
            return self._refuse(describe_error(exc))
        self.stop_requested_at = None
        self.finished_at = None
        self.last_event = None
        self._last_step = None
        self._pending_preview = None
        # the core previews step 1 too: from a fresh network that is a flat square over the image
        # for the first preview_every steps (~20 s on a CPU), read as if the data had vanished
        self._first_preview_step = 0 if resume else 2
        if not resume:
            self.plot.clear()
        self._per_mille = config.steps is None  # a time budget: its step total is an estimate
        self.progress.setFormat("%p %" if self._per_mille else "%v / %m steps")
        self.progress.setRange(0, config.steps or 0)  # a time budget: busy until the first estimate
        self.progress.setValue(0)
        if not resume and slices:
            near = f", reading {z_context} neighbouring slice(s) on each side" if z_context else ""
            self.status.setText(f"Starting a 2D network over the Z slices{near} (the mask does not extend along Z)…")
        else:
            self.status.setText("Starting…")
        worker = self.job.start(_run_training, images if len(images) > 1 else images[0], axes, mask, config, preview,
                                model, pattern)
        if preview is not None and self._preview_info is not None:
            # add the layer now, so that training updates only its data; after the start, whose
            # frozen garbage collector keeps a full collection out of napari's add_image
            self._show_preview(preview)
        if pattern is not None:
            notify_info("Training with the camera's fixed pattern of the dark frames subtracted (the model stores it).")
        return worker

    def resume(self) -> Any:
        """Continue training the current model for the number of steps set."""
        return self.start(resume=True)

    def embed(self) -> None:
        """Inside the StructN2V dock: the image is chosen once there, so this dock's picker goes."""
        hide_form_row(self._form, self.layers)

    # cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop a running worker and disconnect every callback."""
        super().cleanup()
        self.device.stop_probe()
        self._redraw.cancel()
        self._preview_throttle.cancel()
        self.layers.disconnect_viewer()

