"""One base for the dock widgets that run background jobs: Train, Predict and the noise analysis.

A :class:`Job` is one kind of background job of a widget (training; prediction; a BioImage Model
Zoo export; a large noise analysis), at most one run at a time. It owns the plumbing that each
widget used to copy: starting the core's generator in a napari worker (one CPU core left to the
GUI for torch jobs), routing its events to the widget on the main thread, the stop flag, the single
error path (a :class:`~._worker.Failed` event or the worker's ``errored``: one notification
"<label> failed: <sentence>", never a traceback), the end of the run, and letting go of the worker
when the widget goes. The widget writes only what its job does: the worker body and what to show.

:class:`JobWidget` is the widgets' base: it keeps the viewer and the shared state, makes the jobs,
stops the main one, refuses a run with a notification and a status line, and releases the jobs
and the recorded signal connections once when the widget goes (:class:`~._worker.CleanupMixin`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QObject
from qtpy.QtWidgets import QWidget

from ._layers import notify_error, report_error
from ._state import get_state
from ._worker import CleanupMixin, Failed, StopFlag, detach_worker, guard_slot, reserve_ui_core, start_generator_worker

if TYPE_CHECKING:
    import napari


def _nothing(*args: Any) -> None:
    """The default of a hook a widget does not need."""


class Job(QObject):
    """One kind of background job of a widget.

    A QObject child of its widget, so that the worker's signals stop reaching it when the widget is
    deleted (napari deletes the docks when the viewer closes, without closing them first).

    Parameters
    ----------
    label : str
        What the job is, as the start of its failure notification ("Training" gives
        "Training failed: <sentence>").
    on_event : callable
        Gets each event the job yields, on the main thread (never a ``Failed``).
    on_finished : callable, optional
        Called when a run has ended (done, stopped or failed), after ``running`` turned False.
    on_failed : callable, optional
        Gets the sentence of a failure after its notification (for a status line).
    on_change : callable, optional
        Called when a run starts and after it ends (to enable the right buttons).
    stoppable : bool
        Pass a fresh ``should_stop`` flag to the job body on each start (as a keyword).
    reserve_core : bool
        Leave one CPU core to the GUI before starting (torch jobs; see :func:`reserve_ui_core`).
    parent : QObject, optional
        The widget.
    """

    def __init__(
        self,
        label: str,
        *,
        on_event: Callable[[Any], None],
        on_finished: Callable[[], None] = _nothing,
        on_failed: Callable[[str], None] = _nothing,
        on_change: Callable[[], None] = _nothing,
        stoppable: bool = False,
        reserve_core: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.label = label
        self._on_event = on_event
        self._on_finished = on_finished
        self._on_failed = on_failed
        self._on_change = on_change
        self.stoppable = stoppable
        self.reserve_core = reserve_core
        self.worker: Any = None
        self.should_stop = StopFlag()

    @property
    def running(self) -> bool:
        """True while a run of this job is under way."""
        return self.worker is not None

    def start(self, body: Callable[..., Generator], *args: Any, **kwargs: Any) -> Any:
        """Run ``body(*args, **kwargs)`` in a napari worker; returns the worker.

        ``body`` gets plain data only (arrays, configs, models), never layers or widgets.
        """
        if self.stoppable:
            self.should_stop = StopFlag()
            kwargs["should_stop"] = self.should_stop
        if self.reserve_core:
            reserve_ui_core()
        self.worker = start_generator_worker(
            body, *args, on_event=self._yielded, on_finished=self._ended, on_error=self._errored, **kwargs
        )
        self._on_change()
        return self.worker

    def stop(self) -> None:
        """Ask the running job to stop at its next check of ``should_stop``."""
        self.should_stop.set()

    def detach(self) -> None:
        """Let go of the worker (the widget is going): stop it and hear nothing more from it."""
        self.should_stop.set()
        if self.worker is not None:
            detach_worker(self.worker, self._yielded, self._ended, self._errored)
            self.worker = None

    @guard_slot
    def _yielded(self, event: Any) -> None:
        if isinstance(event, Failed):
            self._fail(event.error)
        else:
            self._on_event(event)

    @guard_slot
    def _errored(self, exc: BaseException) -> None:
        # a safety net: the job's exceptions arrive as Failed events (see _worker._guarded)
        self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        self._on_failed(report_error(error, f"{self.label} failed: "))

    @guard_slot
    def _ended(self) -> None:
        self.worker = None
        self._on_finished()
        self._on_change()


class JobWidget(CleanupMixin, QWidget):
    """Base of the dock widgets that run background jobs.

    Subclasses make their jobs with :meth:`_new_job` and set ``self.job`` to the main one: the one
    ``running``, ``worker`` and :meth:`stop` (the Stop button) refer to. Widgets with a Stop button
    have ``stop_button`` and a ``status`` label, and override :meth:`_update_buttons`.
    """

    job: Job

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self._jobs: list[Job] = []
        self.stop_requested_at: float | None = None

    def _new_job(self, label: str, on_event: Callable[[Any], None], **options: Any) -> Job:
        """A :class:`Job` of this widget (``options`` as there), released with the widget."""
        job = Job(label, on_event=on_event, on_change=self._update_buttons, parent=self, **options)
        self._jobs.append(job)
        return job

    @property
    def running(self) -> bool:
        """True while the main job runs."""
        return self.job.running

    @property
    def worker(self) -> Any:
        """The main job's napari worker while it runs, else None."""
        return self.job.worker

    def _update_buttons(self, *args: Any) -> None:
        """Enable the buttons that fit the current state (widgets with buttons override this)."""

    def _refuse(self, message: str) -> None:
        """A user mistake before the run: notification and status (not the last run's "Done")."""
        notify_error(message)
        self.status.setText(f"Failed: {message}")
        return None

    def stop(self) -> None:
        """Ask the main job to stop after its current step (or tile); what it made so far is kept."""
        if not self.running:
            return
        self.stop_requested_at = time.perf_counter()
        self.job.stop()
        self.stop_button.setEnabled(False)
        self.status.setText("Stopping…")

    def cleanup(self) -> None:
        """Let go of every job's worker; subclasses release their own extras and call this."""
        for job in self._jobs:
            job.detach()
