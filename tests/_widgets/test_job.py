"""The job-widget base (issue 6): one Job owns start, events, stop, the error path, the end of a run
and letting go of the worker; signal connections are recorded and released in one place."""
from __future__ import annotations

import logging
import sys
import threading
import time

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from psygnal import Signal
from qtpy.QtWidgets import QLabel, QPushButton, QWidget

from napari_structn2v._widgets._job import Job, JobWidget
from napari_structn2v._widgets._signals import Connections
from napari_structn2v._widgets._worker import CleanupMixin
from napari_structn2v.errors import DataError


@pytest.fixture
def errors(monkeypatch):
    """The error notifications shown, instead of showing them."""
    from napari.utils import notifications

    seen: list[str] = []
    monkeypatch.setattr(notifications, "show_error", lambda m: seen.append(str(m)))
    return seen


class Recorder:
    """The job's hooks, recording what they were called with and whether the job ran then."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.job: Job | None = None

    def hooks(self) -> dict:
        return {
            "on_event": lambda e: self.calls.append(("event", e)),
            "on_finished": lambda: self.calls.append(("finished", self.job.running)),
            "on_failed": lambda m: self.calls.append(("failed", m)),
            "on_change": lambda: self.calls.append(("change", self.job.running)),
        }


def counting(n, *, should_stop=None):
    for i in range(n):
        if should_stop is not None and should_stop():
            return
        time.sleep(0.005)
        yield i


def gated(done: threading.Event):
    """Yields a few times, then says it has ended."""
    try:
        yield from counting(20)
    finally:
        done.set()


def failing():
    yield 1
    raise DataError("The image is too small.")


def make_job(qtbot, rec, **options) -> Job:
    rec.job = Job("Counting", **rec.hooks(), **options)
    return rec.job


def test_events_reach_the_widget_and_the_end_is_reported_once(qtbot, errors):
    rec = Recorder()
    job = make_job(qtbot, rec)
    job.start(counting, 3)
    assert job.running
    qtbot.waitUntil(lambda: ("finished", False) in rec.calls, timeout=10_000)
    assert rec.calls == [("change", True), ("event", 0), ("event", 1), ("event", 2), ("finished", False),
                         ("change", False)]
    assert not job.running and job.worker is None and errors == []


def test_a_failure_is_one_notification_never_an_event(qtbot, errors):
    rec = Recorder()
    job = make_job(qtbot, rec)
    job.start(failing)
    qtbot.waitUntil(lambda: not job.running, timeout=10_000)
    assert errors == ["Counting failed: The image is too small."]
    assert ("failed", "The image is too small.") in rec.calls
    assert [c for c in rec.calls if c[0] == "event"] == [("event", 1)]


def test_the_errored_safety_net_takes_the_same_path(qtbot, errors):
    rec = Recorder()
    job = make_job(qtbot, rec)
    job._errored(RuntimeError("boom"))
    assert errors == ["Counting failed: RuntimeError: boom"] and rec.calls == [("failed", "RuntimeError: boom")]


def test_a_stoppable_job_gets_a_fresh_flag_and_stops(qtbot, errors):
    rec = Recorder()
    job = make_job(qtbot, rec, stoppable=True)
    first_flag = job.should_stop
    worker = job.start(counting, 100_000)
    assert job.should_stop is not first_flag
    qtbot.waitUntil(lambda: any(c[0] == "event" for c in rec.calls), timeout=10_000)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        job.stop()
    assert len([c for c in rec.calls if c[0] == "event"]) < 100_000 and errors == []


def test_detach_hears_nothing_more_and_quits_the_worker(qtbot, errors):
    rec = Recorder()
    job = make_job(qtbot, rec, stoppable=True)
    worker = job.start(counting, 100_000)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        job.detach()
    qtbot.wait(50)
    assert job.worker is None and ("finished", False) not in rec.calls and errors == []


def test_full_garbage_collections_skip_the_old_objects_while_jobs_run(qtbot, errors):
    """A full collection walks every object with the GIL held (95-250 ms with a viewer open): while
    any job runs the objects from before are frozen out of it, and handed back when the last ends."""
    import gc

    from napari_structn2v._widgets import _worker

    qtbot.waitUntil(lambda: not _worker._live_workers, timeout=30_000)  # an earlier test's job ending
    assert gc.get_freeze_count() == 0
    first, second = Recorder(), Recorder()
    a = make_job(qtbot, first, stoppable=True)
    b = make_job(qtbot, second, stoppable=True)
    worker_a = a.start(counting, 100_000)
    assert gc.get_freeze_count() > 0
    worker_b = b.start(counting, 100_000)
    with qtbot.waitSignal(worker_a.finished, timeout=10_000):
        a.stop()
    assert gc.get_freeze_count() > 0, "the second job still runs"
    with qtbot.waitSignal(worker_b.finished, timeout=10_000):
        b.stop()
    qtbot.waitUntil(lambda: gc.get_freeze_count() == 0, timeout=5_000)
    assert errors == []


def own_priority():
    import os
    import threading

    yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are set on Linux only")
def test_a_job_runs_below_the_gui_threads_priority(qtbot, errors):
    import os
    import threading

    from napari_structn2v._widgets._worker import WORKER_NICE

    rec = Recorder()
    job = make_job(qtbot, rec)
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job.start(own_priority)
    qtbot.waitUntil(lambda: not job.running, timeout=10_000)
    assert [c[1] for c in rec.calls if c[0] == "event"] == [max(gui, WORKER_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui and errors == []


def test_a_job_dies_with_its_widget(qtbot, errors):
    # napari deletes the docks when the viewer closes, without closing them: their job must then
    # call nothing of theirs (it did: a preview layer was added to the closed viewer)
    rec = Recorder()
    parent = QWidget()
    rec.job = job = Job("Counting", **rec.hooks(), parent=parent)
    done = threading.Event()
    job.start(gated, done)
    parent.deleteLater()
    qtbot.waitUntil(done.is_set, timeout=10_000)
    qtbot.wait(100)  # the worker's queued signals are delivered (or not)
    assert ("finished", False) not in rec.calls and errors == []


class _Source:
    changed = Signal(int)


def test_connections_are_released_together(qtbot, caplog):
    source, seen = _Source(), []
    button = QPushButton()
    links = Connections()
    links.connect(source.changed, seen.append)
    links.connect(button.clicked, lambda *_: seen.append("click"))
    assert len(links) == 2
    source.changed.emit(1)
    button.click()
    links.release()
    source.changed.emit(2)
    button.click()
    assert seen == [1, "click"] and len(links) == 0
    links.release()  # again: nothing to do
    gone = QPushButton()
    links.connect(gone.clicked, seen.append)
    gone.deleteLater()
    qtbot.wait(1)
    with caplog.at_level(logging.DEBUG, logger="napari_structn2v._widgets._signals"):
        links.release()  # the emitter went with its widget: logged, not raised
    assert "not disconnecting" in caplog.text


class _Docked(CleanupMixin, QWidget):
    def __init__(self, state):
        super().__init__()
        self._listen(state.changed, self.on_changed)
        self.seen: list[int] = []
        self.cleanups = 0

    def on_changed(self, value):
        self.seen.append(value)

    def cleanup(self):
        self.cleanups += 1


def test_cleanup_releases_the_recorded_connections_once(qtbot):
    state = _Source()
    widget = _Docked(state)
    state.changed.emit(1)
    widget.close()
    widget.close()
    state.changed.emit(2)
    assert widget.seen == [1] and widget.cleanups == 1


class _Viewer:
    """Enough of a viewer for the shared state (a weak-referenceable key)."""


class _Counter(JobWidget):
    def __init__(self):
        super().__init__(_Viewer())
        self.stop_button = QPushButton("Stop")
        self.status = QLabel("Idle")
        self.job = self._new_job("Counting", lambda e: None, stoppable=True)
        self.buttons_updated = 0

    def _update_buttons(self, *args):
        self.buttons_updated += 1


def test_job_widget_refuses_stops_and_lets_go(qtbot, errors):
    widget = _Counter()
    qtbot.addWidget(widget)
    assert widget._refuse("Choose an image layer.") is None
    assert errors == ["Choose an image layer."] and widget.status.text() == "Failed: Choose an image layer."
    widget.stop()  # nothing runs: nothing to stop
    assert widget.stop_requested_at is None and widget.stop_button.isEnabled()
    worker = widget.job.start(counting, 100_000)
    assert widget.running and widget.worker is worker and widget.buttons_updated == 1
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        widget.stop()
        assert widget.status.text() == "Stopping…" and not widget.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not widget.running, timeout=5000)
    assert widget.stop_requested_at is not None and widget.buttons_updated == 2
    widget.job.start(counting, 100_000)
    widget.close()  # cleanup: the job lets go of its worker
    assert not widget.running and widget.job.should_stop()
