"""Plain helpers of the widget tests: open a dock through the manifest, fill the Train dock, check that
the user's layers are unchanged."""
from __future__ import annotations

import numpy as np

PLUGIN = "napari-structn2v"
TRAIN_KW = dict(steps=30, patch=32, batch=4, preview_every=10, base_filters=8, val_every=10)


def open_widget(viewer, name, qtbot=None):
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    if qtbot is not None and hasattr(widget, "devices_ready"):
        # the device list is probed (and torch imported) in the background when the widget opens
        qtbot.waitUntil(lambda: widget.devices_ready, timeout=60_000)
    return widget


def set_train(widget, layer_names, *, steps, patch, batch, preview_every, base_filters, val_every):
    widget.layers.set_checked(layer_names)
    widget.steps.setValue(steps)
    widget.patch.setValue(patch)
    widget.batch.setValue(batch)
    widget.preview_every.setValue(preview_every)
    widget.base_filters.setValue(base_filters)
    widget.val_every.setValue(val_every)
    widget.device.setCurrentText("cpu")


def snapshot(viewer):
    return {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}


def assert_unchanged(viewer, before, names=None):
    names = names if names is not None else before.keys()
    for name in names:
        assert name in viewer.layers, f"layer {name!r} lost"
        np.testing.assert_array_equal(np.asarray(viewer.layers[name].data), before[name])
