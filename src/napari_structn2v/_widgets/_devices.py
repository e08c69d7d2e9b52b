"""Device picker shared by the Train and Predict widgets."""
from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox

from ._layers import describe_error, notify_warning
from ._worker import Failed, detach_worker, probe_devices, start_generator_worker


class DeviceCombo(QComboBox):
    """``auto`` at once; CPU, each CUDA device and MPS once a background probe has listed them.

    The probe imports torch off the GUI thread (and, with ``warm_training``, the training stack),
    so opening a widget never stalls the viewer. ``ready`` turns True when the probe is done.
    """

    def __init__(self, *, warm_training: bool = False, parent: Any = None) -> None:
        super().__init__(parent)
        self.addItem("auto")
        self.ready = False
        self._probe = start_generator_worker(
            probe_devices,
            warm_training=warm_training,
            on_event=self._on_devices,
            on_finished=self._on_finished,
            on_error=self._on_finished,
        )

    def _on_devices(self, devices: Any) -> None:
        if isinstance(devices, Failed):
            notify_warning(f"Cannot list devices: {describe_error(devices.error)}")
            return
        for name in devices:
            if self.findText(name) < 0:
                self.addItem(name)

    def _on_finished(self, *args: Any) -> None:
        self.ready = True
        self._probe = None

    def stop_probe(self) -> None:
        """Detach and quit the probe if it is still running (the widget is going away)."""
        if self._probe is not None:
            detach_worker(self._probe, self._on_devices, self._on_finished, self._on_finished)
            self._probe = None
