"""Device picker shared by the Train and Predict widgets."""
from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QComboBox

from ._layers import describe_error, notify_warning
from ._worker import probe_devices

#: ms between looks at the probe's result (a timer owned by the combo, so it dies with it)
POLL_MS = 50

_lock = threading.Lock()
_probes: dict[bool, Future] = {}


def device_probe(warm_training: bool) -> Future:
    """The (shared) background probe: one plain thread per kind, started on first use.

    The thread touches no Qt object: a Qt worker's signals emitted after its widget (or the
    interpreter) went away aborted Python (exit 134, "wrapped C/C++ object of type
    GeneratorWorkerSignals has been deleted") when the docks were opened and the viewer closed at
    once. The thread is not a daemon, so an interpreter exit waits for the import to end
    instead of killing it half-way.
    """
    with _lock:
        future = _probes.get(warm_training)
        if future is None:
            future = _probes[warm_training] = Future()

            def run() -> None:
                try:
                    future.set_result(probe_devices(warm_training=warm_training))
                except BaseException as exc:  # noqa: BLE001 - reported by the combo
                    future.set_exception(exc)

            threading.Thread(target=run, name="structn2v-device-probe").start()
    return future


class DeviceCombo(QComboBox):
    """``auto`` at once; CPU, each CUDA device and MPS once a background probe has listed them.

    The probe imports torch off the GUI thread (and, with ``warm_training``, the training stack),
    so opening a widget never stalls the viewer. ``ready`` turns True when the probe is done.
    """

    def __init__(self, *, warm_training: bool = False, parent: Any = None) -> None:
        super().__init__(parent)
        self.addItem("auto")
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
