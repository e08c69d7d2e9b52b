"""Glue between the core's event generators and napari's thread workers.

The core's long jobs (``train_iter``, ``predict_iter``) are generators that yield typed events and
take a ``should_stop`` callable. :func:`start_generator_worker` runs one in a napari
``GeneratorWorker``; every event arrives on the main thread through ``on_event``. Exceptions raised
by the job are caught in the worker thread and delivered as a :class:`Failed` event, so the GUI shows
one clear notification instead of a traceback; ``errored`` stays connected as a safety net.
"""
from __future__ import annotations

import atexit
import functools
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from napari.qt.threading import create_worker
from qtpy.QtCore import QEvent, QObject, QThreadPool
from qtpy.QtWidgets import QMainWindow, QMessageBox, QWidget

from ._layers import report_error
from ._signals import Connections, disconnect_quietly

F = TypeVar("F", bound=Callable[..., Any])
_log = logging.getLogger(__name__)

#: the longest an exiting interpreter waits for a stopped worker to end its current step (ms)
EXIT_WAIT_MS = 30_000


@dataclass(frozen=True)
class Failed:
    """The job raised ``error``; it is the last event of the run."""

    error: BaseException


#: nice value of a worker thread on Linux (0 is the GUI's; 19 the lowest priority)
WORKER_NICE = 10


def background_priority() -> None:
    """Run the calling worker thread at a lower priority than the GUI thread (Linux only).

    On 2 cores the job's thread, the GUI thread and the X server's renderer compete for the CPU;
    when the GUI needs a core, the job yields it. The thread keeps the priority when the thread
    pool reuses it for the next job (an unprivileged thread cannot raise it again), which suits
    a pool of background jobs. Elsewhere ``setpriority`` would not address a thread (macOS reads
    the id as a process), so nothing is done.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < WORKER_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, WORKER_NICE)
    except OSError as exc:  # a sandbox may refuse; the job runs at the normal priority
        _log.debug("could not lower the worker thread's priority: %s", exc)


def _guarded(job: Callable[..., Generator], args: tuple, kwargs: dict) -> Generator:
    background_priority()
    try:
        result = yield from job(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - delivered to the GUI as an event
        yield Failed(exc)
        return None
    return result


def probe_devices() -> list[str]:
    """Import torch and list the devices; run off the main thread."""
    from ..devices import available_devices

    return available_devices()


def warm_up_training() -> None:
    """Import the training stack off the main thread, after the devices are listed.

    ``torch.optim`` imports ``torch._dynamo`` (and sympy) on first use, about a second with the GIL
    mostly held; importing it here, while the user sets up training, keeps that stall out of the
    first training run. It used to run before the device list, which then took 7.2 s to appear.
    """
    from ..training import loop as training  # noqa: F401

    try:
        import torch._dynamo  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - only a warm-up: training imports it again and reports
        _log.debug("warming up torch._dynamo failed: %s", exc)


def reserve_ui_core() -> None:
    """Leave one CPU core to the Qt main thread while a torch job runs in a worker.

    torch's intra-op thread pool busy-waits on every core by default, which starves the event
    loop on small machines: on 2 cores, Stop-to-idle went from about 1.2 s to 30 ms and streamed
    prediction from 4.5 to over 500 tiles/s with one core left free. Called on the main thread
    before a worker starts (the setting is process-wide).
    """
    import torch  # only once a job starts: napari's startup must not import torch

    cores = os.cpu_count() or 1
    wanted = max(1, cores - 1)
    if torch.get_num_threads() > wanted:
        torch.set_num_threads(wanted)


class StopFlag:
    """A thread-safe flag: ``flag()`` is the ``should_stop`` callable the core polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        """Arm the flag again (a job with two stoppable phases: the first stop is spent)."""
        self._event.clear()

    def __call__(self) -> bool:
        return self._event.is_set()


def start_generator_worker(
    job: Callable[..., Generator],
    *args: Any,
    on_event: Callable[[Any], None],
    on_finished: Callable[[], None],
    on_error: Callable[[BaseException], None],
    **kwargs: Any,
):
    """Run ``job(*args, **kwargs)`` (a generator function) in a napari thread worker.

    ``job`` must receive plain data only (arrays, configs, models), never layers or widgets.
    Returns the started ``GeneratorWorker``.
    """
    worker = create_worker(_guarded, job, args, kwargs, _start_thread=False)
    worker.yielded.connect(on_event)
    worker.errored.connect(on_error)
    worker.finished.connect(on_finished)
    _register_exit_wait()
    _live_workers.add(worker)
    worker.finished.connect(lambda: _job_ended(worker))
    if len(_live_workers) == 1:
        hold_gc()
    worker.start()
    return worker


_live_workers: set = set()


def _job_ended(worker: Any) -> None:
    if worker in _live_workers:
        _live_workers.discard(worker)
        if not _live_workers:
            release_gc()


def hold_gc() -> None:
    """Leave the objects that exist now out of Python's full garbage collections (``gc.freeze``).

    A full collection walks every object the collector tracks (280,000 in a viewer with the
    plugin's sample open, more once torch is loaded) with the GIL held, whichever thread triggers
    it: 100-300 ms on 2 cores, one in each training start before (``benchmarks/ui_latency.py``
    counts them). While our jobs run, the collections only walk what was made since. Frozen
    objects that become cyclic garbage meanwhile wait for :func:`release_gc`, called when the
    last job ends.
    """
    gc.freeze()


def release_gc() -> None:
    """Hand the objects frozen by :func:`hold_gc` back to the collector."""
    gc.unfreeze()


_exit_wait_registered = False


def _register_exit_wait() -> None:
    """At interpreter exit, stop our workers and wait for them: a worker thread that emits after
    its Qt signals object was collected aborts the process (exit 134)."""
    global _exit_wait_registered
    if not _exit_wait_registered:
        _exit_wait_registered = True
        atexit.register(_stop_workers_at_exit)


def _stop_workers_at_exit() -> None:
    if not _live_workers:
        return
    for worker in list(_live_workers):
        worker.quit()
    QThreadPool.globalInstance().waitForDone(EXIT_WAIT_MS)


def guard_slot(method: F) -> F:
    """Let no exception escape a Qt slot: report it as an error notification instead.

    Outside napari's exception hook an exception in a slot aborts the process (PyQt5 >= 5.5).
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the last line of defence, shown to the user
            report_error(exc)
            return None

    return wrapper  # type: ignore[return-value]


def on_click(method: Callable[[], Any]) -> Callable[..., Any]:
    """A guarded slot for ``clicked``: drops the ``checked`` argument, reports exceptions."""
    return guard_slot(lambda *_: method())


def ask_yes_no(parent: QWidget | None, title: str, question: str) -> bool:
    """A modal Yes/No question (No is the default); widgets keep it as an attribute so tests can
    replace it."""
    answer = QMessageBox.question(
        parent, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def detach_worker(worker: Any, on_event: Callable, on_finished: Callable, on_error: Callable) -> None:
    """Disconnect a widget's slots from ``worker`` and ask it to quit (used when the widget goes)."""
    for signal, slot in ((worker.yielded, on_event), (worker.finished, on_finished), (worker.errored, on_error)):
        disconnect_quietly(signal, slot)
    worker.quit()


class CleanupMixin:
    """Call ``self.cleanup()`` once when the widget goes away, then release its connections.

    Covers the three ways a dock widget ends: its own close, removal from the dock (napari
    re-parents it to None) and the viewer window closing (an event filter on the main window).
    Put it before ``QWidget`` in the bases; subclasses implement an idempotent ``cleanup``.
    Slots connected to what outlives the widget (the shared state, the viewer's layer list) go
    through :meth:`_listen`, which records them so that they are all disconnected here.
    """

    _cleaned = False
    _was_docked = False
    _close_watcher: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections = Connections()

    def _listen(self, emitter: Any, slot: Callable) -> None:
        """Connect ``slot`` to ``emitter`` until the widget goes."""
        self._connections.connect(emitter, slot)

    def cleanup(self) -> None:
        """What else the widget releases (workers, timers, layer pickers); idempotent."""

    def _cleanup_once(self) -> None:
        if not self._cleaned:
            self._cleaned = True
            self.cleanup()
            self._connections.release()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)  # type: ignore[misc]
        self._watch_main_window()

    def event(self, event: Any) -> bool:
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is None:  # type: ignore[attr-defined]
                if self._was_docked:
                    self._cleanup_once()
            else:
                self._was_docked = True
        return super().event(event)  # type: ignore[misc]

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self._cleanup_once()
        super().closeEvent(event)  # type: ignore[misc]

    def _watch_main_window(self) -> None:
        if self._close_watcher is not None:
            return
        w = self.parentWidget()  # type: ignore[attr-defined]
        while w is not None and not isinstance(w, QMainWindow):
            w = w.parentWidget()
        if w is not None:
            self._close_watcher = _CloseWatcher(self._cleanup_once, parent=self)  # type: ignore[arg-type]
            w.installEventFilter(self._close_watcher)


class _CloseWatcher(QObject):
    """Event filter calling ``callback`` when the watched window closes."""

    def __init__(self, callback: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Close:
            self._callback()
        return False
