"""What the Train dock shows of a run: progress, status, loss plot and the preview layer.

The training job's events arrive here on the main thread (see :class:`~._job.Job`); redraws are
throttled with superqt so that a fast run does not flood the event loop.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..events import Preview, TrainDone, TrainStep, Validation
from ._layers import add_or_update_image, notify_warning
from ._worker import guard_slot

#: side of the YX preview crop
PREVIEW_SIDE = 128
#: at most one preview layer update per this many milliseconds
PREVIEW_MS = 250
#: at most one progress/plot redraw per this many milliseconds
REDRAW_MS = 100
#: a time budget's progress bar counts per mille of the estimated total steps, in a range that never
#: changes: the estimate changes every step, and a new range at each redraw re-laid the dock out
#: (training's p99 GUI-thread gap 48 ms under Xvfb; 35 ms with a fixed range)
PER_MILLE = 1000
#: below this many steps a model is far from converged: on the 3D sample, 60 steps of a 3D net took
#: 16.0 dB to 9.9 dB (issue #8); the benchmarks' curves flatten only after ~1500 steps
FEW_STEPS = 500


def preview_layer_name(source: str) -> str:
    return f"{source} (StructN2V preview)"


def preview_crop(layer: Any, data: np.ndarray, axes: str, patch_size_z: int,
                 point: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Crop of the slice at the viewer's ``point`` around the image centre (YX at most
    PREVIEW_SIDE, Z one patch deep, C whole), and where it goes (the preview layer's name, scale,
    translate and contrast limits)."""
    current = np.asarray(layer.world_to_data(np.asarray(point, dtype=float)[-layer.ndim :]), dtype=float)
    index, offset, kept_dims = [], [], []
    for i, letter in enumerate(axes):
        size = data.shape[i]
        if letter in "ST":
            index.append(int(np.clip(np.round(current[i]), 0, size - 1)))
            continue
        if letter == "C":
            lo, hi = 0, size
        elif letter == "Z":
            side = min(size, patch_size_z)
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
    info = {
        "name": preview_layer_name(layer.name),
        "scale": list(scale),
        "translate": list(translate),
        "contrast_limits": tuple(layer.contrast_limits),
    }
    return crop, info


class TrainProgressMixin:
    """The run display of :class:`~.train.TrainWidget`: its ``progress``, ``status``, ``plot``,
    the throttles ``_redraw`` and ``_preview_throttle``, and the shared ``state``."""

    def _preview_crop(self, layer: Any, data: np.ndarray, axes: str, config: Any) -> np.ndarray:
        """Crop of the displayed slice around the image centre; records where it goes."""
        crop, self._preview_info = preview_crop(layer, data, axes, config.patch_size_z, self.viewer.dims.point)
        return crop

    def _on_event(self, event: Any) -> None:
        self.last_event = event
        if isinstance(event, TrainStep):
            self._last_step = event
            self.plot.append("train", event.step, event.loss, redraw=False)
            self._redraw(event)
        elif isinstance(event, Validation):
            self.plot.append("validation", event.step, event.val_loss)
        elif isinstance(event, Preview):
            if event.step < self._first_preview_step:
                return  # the untrained network's output: the crop of the input stays shown
            self._pending_preview = event
            self._preview_throttle()
        elif isinstance(event, TrainDone):
            self._on_done(event)

    def _on_done(self, event: TrainDone) -> None:
        self._redraw.cancel()  # a late throttled redraw would overwrite "Finished"
        if self._last_step is not None:
            self._show_step(self._last_step)
        self.state.model = event.model
        if self._per_mille:
            total = self._last_step.total_steps if event.stopped and self._last_step is not None else event.step
            self._set_progress(event.step, total)
        else:
            self.progress.setValue(event.step)
        verb = "Stopped" if event.stopped else "Finished"
        self.status.setText(f"{verb} at step {event.step}; the model is ready for Predict and Save.")
        if event.step < FEW_STEPS:
            notify_warning(
                f"Only {event.step} training steps: the network is far from converged and its output can be "
                f"worse than the input. Train for a few minutes ('Train for … minutes') before trusting it."
            )

    @guard_slot
    def _show_step(self, event: Any) -> None:
        """Progress bar, status line and loss plot for a step (throttled to every REDRAW_MS)."""
        self._set_progress(event.step, event.total_steps)
        eta = f"ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
        self.status.setText(
            f"step {event.step}/{event.total_steps} · loss {event.loss:.4g} · {event.patches_per_s:.0f} patches/s · {eta}"
        )
        self.plot.update()

    def _set_progress(self, step: int, total: int) -> None:
        """``step`` of ``total`` on the bar: per mille for a time budget (see :data:`PER_MILLE`)."""
        if self._per_mille:
            if self.progress.maximum() != PER_MILLE:
                self.progress.setRange(0, PER_MILLE)
            self.progress.setValue(min(PER_MILLE, round(PER_MILLE * step / max(1, total))))
            return
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
        self.progress.setValue(step)

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

    def _on_failed(self, message: str) -> None:
        self._redraw.cancel()
        self.status.setText(f"Failed: {message}")

    def _on_finished(self) -> None:
        self._preview_throttle.cancel()
        self._flush_preview()
        self.finished_at = time.perf_counter()
