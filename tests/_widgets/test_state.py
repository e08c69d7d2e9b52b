"""The evented state shared by the docks of one viewer (napari_structn2v._widgets._state)."""
from __future__ import annotations

import pytest

from tests._widgets.helpers import open_widget

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def test_widgets_share_one_state(viewer, qtbot):
    noise = open_widget(viewer, "Noise analysis")
    train = open_widget(viewer, "Train", qtbot)
    assert noise.state is train.state
