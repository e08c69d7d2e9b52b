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
