"""The StructN2V dock: the whole workflow in one place, and ``Auto-denoise``.

The image (and an optional dark frame) is chosen once at the top; the steps follow as tabs
(1 Noise, 2 Mask, 3 Train, 4 Predict), each the matching dock embedded without its own image
picker, so a laptop screen shows one step at a time in full instead of four stacked docks of
67-180 px. Every dock of the viewer shares one state (image, dark frame, mask, model): the
separate docks, opened beside this one, follow it.

``Auto-denoise`` runs the core's :func:`~napari_structn2v.pipeline.denoise_iter` in a worker:
the mask from the dark frame or the image's background (it stops with the reason when that
suggestion is not reliable), training for the chosen budget (live loss in the Train tab), then
prediction streamed into ``"<image> (StructN2V)"``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from ..axes import validate_axes
from ..errors import DataError, StructN2VError
from ..events import PredictDone, TileDone, TrainDone, TrainStep, Validation
from ..method.masks import describe_mask
from ._choice import share_layer_choice
from ._form import SECONDS_PER, TIME_UNITS, set_time_unit
from ._job import JobWidget
from ._layers import LayerCombo, dark_layer_axes, describe_error, layer_array, layer_axes, notify_error, notify_info
from ._predict_output import REFRESH_MS, PredictOutput, ViewFocus, camera, output_layer_name
from ._worker import on_click
from .mask_designer import BlindMaskWidget
from .noise_analysis import NoiseAnalysisWidget
from .predict import PredictWidget
from .train import TrainWidget

if TYPE_CHECKING:
    import napari

#: the Auto-denoise budget the dock starts with: 3 minutes give the 2D dev set about 3000 steps on
#: 2 CPU cores, past the knee of its PSNR curve; seconds allow a first 30 s try
START_UNIT, START_BUDGET = "minutes", 3
#: share of the progress bar for training (the mask takes a moment before it, prediction the rest)
TRAIN_SHARE = 85


class Unreliable:
    """The pipeline stopped before training: the suggested mask cannot be trusted (an event)."""

    def __init__(self, error: Any) -> None:
        self.chosen = error.chosen
        self.message = str(error)


def _run_denoise(image, axes, dark, dark_axes, config, tta, focus=None, *, should_stop):
    """Worker body: plain data in, the pipeline's events out; an untrustworthy mask suggestion ends
    the run as one :class:`Unreliable` event (a user's situation, not a failure). ``focus`` returns
    where the user looks (a :class:`ViewFocus`), read when prediction starts."""
    from ..pipeline import UnreliableNoiseError, denoise_iter

    try:
        yield from denoise_iter(image, axes, dark=dark, dark_axes=dark_axes, config=config, tta=tta,
                                should_stop=should_stop, focus=focus)
    except UnreliableNoiseError as exc:
        yield Unreliable(exc)


class StructN2VWidget(JobWidget):
    """One dock for the whole StructN2V workflow: image and dark frame, Auto-denoise, and the
    Noise, Mask, Train and Predict steps as tabs."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        self.job = self._new_job(
            "Auto-denoise", self._on_event, on_finished=self._on_finished, on_failed=self._on_failed,
            stoppable=True, reserve_core=True,
        )
        self._output: PredictOutput | None = None
        self._focus: ViewFocus | None = None  # where the user looks, for the order of the tiles
        self._source_name = ""
        self._shape: tuple[int, ...] = ()
        self._budget_s = 0.0
        self.result_event: Any = None  # the run's DenoiseDone (or Unreliable), for scripts and tests
        self._refresh = qthrottled(self._refresh_output, timeout=REFRESH_MS, leading=True, parent=self)
        self.noise = NoiseAnalysisWidget(napari_viewer)
        self.mask = BlindMaskWidget(napari_viewer)
        self.train = TrainWidget(napari_viewer)
        self.predict = PredictWidget(napari_viewer)
        self.steps = (self.noise, self.mask, self.train, self.predict)
        for step in (self.noise, self.train, self.predict):
            step.embed()
        self._build_controls()
        self._build_layout()
        share_layer_choice(self, self.image_combo, "image")
        share_layer_choice(self, self.dark_combo, "dark")
        self.image_combo.changed.connect(self._guess_axes)
        self.dark_combo.changed.connect(self._dark_chosen)
        self.budget_unit.currentTextChanged.connect(lambda unit: set_time_unit(self.budget, unit))
        self._listen(self.viewer.dims.events.current_step, self._update_focus)
        self._listen(camera(self.viewer).events.center, self._update_focus)
        self.auto_button.clicked.connect(on_click(self.start))
        self.stop_button.clicked.connect(on_click(self.stop))
        self._guess_axes()
        self._dark_chosen()
        self._update_buttons()

    def _build_controls(self) -> None:
        self.image_combo = LayerCombo(self.viewer, ("image",))
        self.image_combo.native.setToolTip("The noisy image to denoise; every step below works on it")
        self.dark_combo = LayerCombo(self.viewer, ("image",), allow_none=True)
        self.dark_combo.native.setToolTip(
            "Optional: a dark frame (pure noise from the same camera). Without one, Auto-denoise analyses the "
            "image's darkest, flattest tiles"
        )
        self.axes_edit = QLineEdit()
        self.axes_edit.setToolTip("Axes of the image over STCZYX, e.g. YX, SYX, TYX, ZYX (guessed from the layer)")
        self.auto_button = QPushButton("Auto-denoise")
        self.auto_button.setToolTip(
            "Suggest the blind mask from the noise, train for the budget, and denoise the image into "
            "'<image> (StructN2V)'; stops with the reason when the suggested mask cannot be trusted"
        )
        self.budget = QSpinBox()
        self.budget_unit = QComboBox()
        self.budget_unit.addItems(list(TIME_UNITS))
        self.budget_unit.setCurrentText(START_UNIT)
        set_time_unit(self.budget, START_UNIT)
        self.budget.setValue(START_BUDGET)
        self.budget.setToolTip("Training time of Auto-denoise (validation included); prediction comes after")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop training and denoise with the model so far; press again to stop predicting")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status = QLabel("Choose an image, then press Auto-denoise, or go through the steps below.")
        self.status.setWordWrap(True)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for i, (step, title) in enumerate(zip(self.steps, ("Noise", "Mask", "Train", "Predict")), 1):
            self.tabs.addTab(step, f"{i} {title}")

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Image", self.image_combo.native)
        form.addRow("Dark frame", self.dark_combo.native)
        form.addRow("Axes", self.axes_edit)
        auto = QHBoxLayout()
        auto.addWidget(self.auto_button, 1)
        auto.addWidget(QLabel("for"))
        auto.addWidget(self.budget)
        auto.addWidget(self.budget_unit)
        auto.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(auto)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)

    # UI helpers ------------------------------------------------------------------------
    def budget_s(self) -> float:
        """The Auto-denoise training budget in seconds."""
        return float(self.budget.value()) * SECONDS_PER[self.budget_unit.currentText()]

    def _guess_axes(self, *args: Any) -> None:
        layer = self.image_combo.layer()
        self.axes_edit.setText(layer_axes(layer) if layer is not None else "")

    def _dark_chosen(self, *args: Any) -> None:
        """A dark frame chosen here is what the Noise step analyses."""
        if self.dark_combo.layer() is not None:
            self.noise.mode_dark.setChecked(True)

    def _busy(self) -> str:
        """Which step's job runs now ("" when none): one job at a time over the whole dock."""
        for step, name in ((self.train, "Training"), (self.predict, "Prediction"), (self.noise, "A noise analysis")):
            if step.job.running:
                return name
        return ""

    def _update_buttons(self, *args: Any) -> None:
        self.auto_button.setEnabled(not self.running)
        self.stop_button.setEnabled(self.running)

    # inputs (main thread) ----------------------------------------------------------------
    def _inputs(self) -> tuple[np.ndarray, str, np.ndarray | None, str | None, Any]:
        """The image, its axes, the dark frame and its axes, and the training settings."""
        from ..config import TrainConfig

        source = self.image_combo.layer()
        if source is None:
            raise DataError("Choose the image to denoise.")
        text = self.axes_edit.text().strip().upper()
        if not text:
            raise DataError("Give the axes of the image, e.g. YX, SYX or ZYX.")
        image = layer_array(source)
        axes = validate_axes(text, image.ndim)
        dark_layer = self.dark_combo.layer()
        if dark_layer is source:
            raise DataError("The dark frame cannot be the image being denoised; choose a pure-noise layer or none.")
        dark = layer_array(dark_layer) if dark_layer is not None else None
        dark_axes = dark_layer_axes(dark_layer, axes) if dark_layer is not None else None
        # the Train step's settings (its defaults unless changed there), with this budget
        values = {**self.train.form.values(), "steps": None, "max_time_s": self.budget_s(), "preview_every": 0}
        return image, axes, dark, dark_axes, TrainConfig(**values)

    # run --------------------------------------------------------------------------------
    def start(self) -> Any:
        """Run Auto-denoise on the chosen image; returns the worker, or None after a notification."""
        if self.running:
            notify_error("Auto-denoise is already running; stop it first.")
            return None
        busy = self._busy()
        if busy:
            return self._refuse(f"{busy} is running in a step below; stop it first.")
        try:
            image, axes, dark, dark_axes, config = self._inputs()
        except StructN2VError as exc:
            return self._refuse(describe_error(exc))
        self._source_name = self.image_combo.layer().name
        # read by the worker when prediction starts: the slice on view then is denoised first
        self._focus = ViewFocus(self.viewer, self.image_combo.layer(), axes)
        self._shape = image.shape
        self._budget_s = config.max_time_s
        self._output = None
        self.result_event = None
        self.stop_requested_at = None
        self.progress.setValue(0)
        self.train.plot.clear()
        where = "the dark frame" if dark is not None else "the image's background"
        self.status.setText(f"Analysing the noise of {where}…")
        return self.job.start(_run_denoise, image, axes, dark, dark_axes, config, self.predict.tta.isChecked(),
                              self._focus)

    def _update_focus(self, *args: Any) -> None:
        if self._focus is not None and self.running:
            self._focus.update()

    def _on_event(self, event: Any) -> None:
        from ..pipeline import DenoiseDone, MaskChosen

        if isinstance(event, MaskChosen):
            self._show_mask(event)
        elif isinstance(event, Unreliable):
            self._show_unreliable(event)
        elif isinstance(event, (TrainStep, Validation)):
            self.train._on_event(event)  # the live loss plot of the Train tab
            if isinstance(event, TrainStep):
                done = min(1.0, event.elapsed_s / self._budget_s) if self._budget_s else 0.0
                self.progress.setValue(int(5 + (TRAIN_SHARE - 5) * done))
                self.status.setText(
                    f"Training: step {event.step} · loss {event.loss:.3g} · {max(0.0, self._budget_s - event.elapsed_s):.0f} s left"
                )
        elif isinstance(event, TrainDone):
            self._trained(event)
        elif isinstance(event, TileDone):
            if self._output is not None:
                self._output.write(event)
            self.progress.setValue(TRAIN_SHARE + int((100 - TRAIN_SHARE) * (event.index + 1) / event.total))
            self.status.setText(f"Denoising: tile {event.index + 1}/{event.total}")
            self._refresh()
        elif isinstance(event, PredictDone):
            self._refresh.cancel()
            if self._output is not None:
                self._output.finish(event.stopped)
        elif isinstance(event, DenoiseDone):
            self._denoised(event)

    def _show_mask(self, event: Any) -> None:
        """The suggested mask becomes the shared mask; the Noise tab shows it over the autocorrelation."""
        self._show_analysis(event.analysis)
        mask = np.asarray(event.analysis.mask, dtype=bool)
        self.state.suggested_mask = mask
        self.state.mask = mask
        self.progress.setValue(5)
        self.status.setText(f"Blind mask {describe_mask(mask)} from {event.source}. Training…")

    def _show_unreliable(self, event: Unreliable) -> None:
        """No training: show the untrustworthy suggestion and say what to do."""
        self._show_analysis(event.chosen.analysis)
        self.result_event = event
        self.progress.setValue(0)
        message = (
            f"Auto-denoise stopped: {event.message[0].upper()}{event.message[1:]}. Choose a dark frame above, or draw "
            f"a rectangle on an empty area in the Noise step and press Suggest mask, then Train."
        )
        self.status.setText(message)
        notify_error(message)

    def _show_analysis(self, analysis: Any) -> None:
        """The Noise tab shows ``analysis`` as its own (report, verdict, autocorrelation and mask;
        the shared state's analysis with them) and comes to the front."""
        self.noise.analysis = analysis
        source = self.image_combo.layer()
        if source is not None:
            self.noise._show(source, analysis, None)
        self.tabs.setCurrentWidget(self.noise)

    def _trained(self, event: TrainDone) -> None:
        self.train._on_event(event)  # the model goes to the shared state (Predict, Save, Resume)
        self.job.should_stop.clear()  # a Stop during training is spent: the next one stops prediction
        if event.step == 0:
            return
        self.stop_button.setEnabled(True)
        source = self.image_combo.layer()
        if source is not None:
            self._output = PredictOutput(self.viewer, source, tuple(self._shape))
        self.progress.setValue(TRAIN_SHARE)
        verb = "stopped" if event.stopped else "done"
        self.status.setText(f"Training {verb} at step {event.step}; denoising…")

    def _refresh_output(self, *, force: bool = False) -> None:
        if self._output is not None:
            self._output.refresh(force=force)

    def _denoised(self, event: Any) -> None:
        self.result_event = event
        if event.image is None:
            self.status.setText("Stopped before the first training step; nothing was denoised.")
            return
        self.progress.setValue(100)
        name = output_layer_name(self._source_name)
        state = "partly (stopped)" if event.stopped else "done"
        self.status.setText(f"Denoised into '{name}' ({state}). The model is in the Train and Predict steps.")
        notify_info(f"Auto-denoise {state}: '{name}'.")

    def _on_failed(self, message: str) -> None:
        self.progress.setValue(0)
        self.status.setText(f"Failed: {message}")

    def _on_finished(self) -> None:
        self._refresh.cancel()
        self._refresh_output(force=True)  # a failed run's last tiles

    # cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop the run and let every embedded step go."""
        super().cleanup()
        self._refresh.cancel()
        self.image_combo.disconnect_viewer()
        self.dark_combo.disconnect_viewer()
        for step in self.steps:
            step._cleanup_once()
