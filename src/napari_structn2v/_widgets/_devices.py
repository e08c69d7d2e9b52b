"""Device picker shared by the Train and Predict widgets."""
from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QComboBox

from ._layers import describe_error, notify_warning
from ._worker import probe_devices, warm_up_training

#: ms between looks at the probe's result (a timer owned by the combo, so it dies with it)
POLL_MS = 50

_lock = threading.Lock()
_probe: Future | None = None  # the one device probe of the process, once started
_warm_started = False  # the training stack's import (after the probe) has been started


def device_probe(warm_training: bool) -> Future:
    """The (shared) background probe: one plain thread, started on first use. With
    ``warm_training`` (the Train dock) a second thread then imports the training stack, once the
    device list is ready: run first, that import delayed the list by seconds (7.2 s measured).

    The threads touch no Qt object: a Qt worker's signals emitted after its widget (or the
    interpreter) went away aborted Python (exit 134, "wrapped C/C++ object of type
    GeneratorWorkerSignals has been deleted") when the docks were opened and the viewer closed at
    once. They are not daemons, so an interpreter exit waits for an import to end instead of
    killing it half-way.
    """
    global _probe, _warm_started
    with _lock:
        future = _probe
        if future is None:
            future = _probe = Future()

            def run() -> None:
                try:
                    future.set_result(probe_devices())
                except BaseException as exc:  # noqa: BLE001 - reported by the combo
                    future.set_exception(exc)

            threading.Thread(target=run, name="structn2v-device-probe").start()
        if warm_training and not _warm_started:
            _warm_started = True

            def warm() -> None:
                if future.exception() is None:  # waits for the list; torch is imported by then
                    warm_up_training()

            threading.Thread(target=warm, name="structn2v-warm-up").start()
    return future


class DeviceCombo(QComboBox):
    """``auto`` and ``cpu`` at once; each CUDA device and MPS once a background probe has listed them.

    The probe imports torch off the GUI thread (and, with ``warm_training``, the training stack),
    so opening a widget never stalls the viewer. ``ready`` turns True when the probe is done.
    """

    def __init__(self, *, warm_training: bool = False, parent: Any = None) -> None:
        super().__init__(parent)
        self.addItems(["auto", "cpu"])  # every machine has a CPU: no wait for torch to list it
        self.ready = False
        self._future = device_probe(warm_training)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()
        self._poll()

    def _poll(self) -> None:
        if not self._future.done():
            return
        self._timer.stop()
        self.ready = True
        error = self._future.exception()
        if error is not None:
            notify_warning(f"Cannot list devices: {describe_error(error)}")
            return
        for name in self._future.result():
            if self.findText(name) < 0:
                self.addItem(name)

    def stop_probe(self) -> None:
        """Stop listening to the probe (the widget is going away); the shared thread ends alone."""
        self._timer.stop()
