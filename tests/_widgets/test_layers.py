"""Layer helpers (napari_structn2v._widgets._layers): magicgui layer pickers that follow the layer list."""
from __future__ import annotations

import numpy as np
import pytest

from tests._widgets.helpers import open_widget
from tests.helpers import structured_image

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def names(combo) -> list[str]:
    return [layer.name if layer is not None else "" for layer in combo.choices]


def test_layer_pickers_are_magicgui_and_follow_the_layer_list(viewer, qtbot):
    from magicgui.widgets import ComboBox

    from napari_structn2v._widgets._layers import add_or_update_image

    viewer.add_image(structured_image(32), name="a")
    predict = open_widget(viewer, "Predict", qtbot)
    noise = open_widget(viewer, "Noise analysis")
    train = open_widget(viewer, "Train", qtbot)
    pickers = (predict.image_combo, noise.source_combo, noise.dark_combo)
    assert all(isinstance(p, ComboBox) for p in pickers)
    viewer.add_image(structured_image(32), name="b")  # inserted
    assert names(predict.image_combo) == ["a", "b"] and names(noise.dark_combo) == ["", "a", "b"]
    train.layers.set_checked(["a", "b"])
    predict.image_combo.set_layer("b")  # one image choice for all docks: b is checked in Train, which keeps a too
    viewer.layers["b"].name = "b renamed"  # renamed: listed under the new name, still chosen and checked
    assert names(predict.image_combo) == ["a", "b renamed"] and predict.image_combo.currentText() == "b renamed"
    assert predict.image_combo.native.currentText() == "b renamed"
    assert train.layers.checked_names() == ["a", "b renamed"] and predict.state.image == "b renamed"
    viewer.layers.move(1, 0)  # moved
    assert names(noise.source_combo) == ["b renamed", "a"]
    add_or_update_image(viewer, "display only", np.zeros((8, 8), np.float32))  # the plugin's helper layers stay out
    assert "display only" not in names(predict.image_combo) and "display only" not in train.layers.checked_names()
    viewer.layers.remove("b renamed")  # removed: the picker falls back on a layer that exists
    assert names(predict.image_combo) == ["a"] and predict.image_combo.layer() is viewer.layers["a"]
    assert train.layers.checked_names() == ["a"]


def test_updating_a_helper_layer_sets_only_what_changed(viewer):
    """Each set of scale, translate or contrast limits re-slices and repaints: a preview update
    that set them all again cost the GUI thread 190-250 ms while training."""
    from napari_structn2v._widgets._layers import add_or_update_image

    kw = dict(scale=[2.0, 2.0], translate=[10.0, 5.0], contrast_limits=(0.0, 1.0), colormap="magma")
    layer = add_or_update_image(viewer, "preview", np.zeros((8, 8), np.float32), **kw)
    emitted = []
    for name in ("scale", "translate", "contrast_limits", "colormap"):
        getattr(layer.events, name).connect(lambda e, n=name: emitted.append(n))
    add_or_update_image(viewer, "preview", np.ones((8, 8), np.float32), **kw)
    assert emitted == [] and np.all(layer.data == 1)
    add_or_update_image(viewer, "preview", np.ones((8, 8), np.float32), **{**kw, "translate": [0.0, 0.0]})
    assert emitted == ["translate"]
