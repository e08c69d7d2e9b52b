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


def test_one_image_choice_for_every_dock(viewer, qtbot):
    """The image chosen in one dock is the one the others show (and the dark frame too)."""
    from tests._widgets.helpers import open_widget
    from tests.helpers import structured_image

    for name in ("a", "b", "dark"):
        viewer.add_image(structured_image(48), name=name)
    noise = open_widget(viewer, "Noise analysis")
    train = open_widget(viewer, "Train", qtbot)
    predict = open_widget(viewer, "Predict", qtbot)
    noise.source_combo.set_layer("b")
    assert noise.state.image == "b"
    assert train.layers.checked_names() == ["b"] and predict.image_combo.currentText() == "b"
    predict.image_combo.set_layer("a")
    assert noise.source_combo.currentText() == "a" and train.layers.checked_names() == ["a"]
    train.layers.set_checked(["b", "a"])  # several layers to train on: the first is the shared one
    assert noise.state.image == "a" and predict.image_combo.currentText() == "a"
    predict.image_combo.set_layer("b")  # checked already: Train keeps both
    assert train.layers.checked_names() == ["a", "b"] and noise.source_combo.currentText() == "b"
    noise.dark_combo.set_layer("dark")
    assert noise.state.dark == "dark"
