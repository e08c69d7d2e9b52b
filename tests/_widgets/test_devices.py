"""The device probe (napari_structn2v._widgets._devices): closing the viewer while the docks probe."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def test_closing_viewer_at_once_exits_cleanly():
    # was exit 134: the device probe's Qt signals were deleted while its thread still ran
    code = textwrap.dedent(
        """
        import napari
        v = napari.Viewer(show=False)
        v.window.add_plugin_dock_widget("napari-structn2v", "Train")
        v.window.add_plugin_dock_widget("napari-structn2v", "Predict")
        v.close()
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_device_list_offers_cpu_at_once_and_lists_before_the_training_warm_up(qtbot, monkeypatch):
    """'auto' and 'cpu' are there when the combo opens; the probe's list does not wait for the
    training stack's import (it used to run first: the list took 7.2 s to appear)."""
    import threading
    from concurrent.futures import Future

    from napari_structn2v._widgets import _devices

    order = []
    release = threading.Event()
    monkeypatch.setattr(_devices, "_probe", None)
    monkeypatch.setattr(_devices, "_warm_started", False)
    monkeypatch.setattr(_devices, "probe_devices", lambda: order.append("list") or ["cpu", "cuda:0"])
    monkeypatch.setattr(_devices, "warm_up_training", lambda: (release.wait(10), order.append("warm")))
    combo = _devices.DeviceCombo(warm_training=True)
    assert [combo.itemText(i) for i in range(combo.count())][:2] == ["auto", "cpu"]
    qtbot.waitUntil(lambda: combo.ready, timeout=5000)  # while the warm-up is still held back
    assert [combo.itemText(i) for i in range(combo.count())] == ["auto", "cpu", "cuda:0"]
    assert order == ["list"]
    release.set()
    qtbot.waitUntil(lambda: order == ["list", "warm"], timeout=5000)
    assert isinstance(_devices._probe, Future)
