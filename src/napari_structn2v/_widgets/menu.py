"""Layers → Filter → "Denoise with a saved StructN2V model…": the selected image layer, a model file.

The command asks for a model file (ours, ``.pt``, or our bioimage.io package, ``.zip``), opens the
Predict dock with that model and the selected layer, and starts the prediction there, so the output
layer, the progress, Stop and the activity entry are the Predict dock's own.
"""
from __future__ import annotations

from typing import Any

from napari.layers import Image
from napari.viewer import Viewer
from qtpy.QtWidgets import QApplication, QFileDialog

from ._layers import is_helper, notify_error

PLUGIN = "napari-structn2v"
TITLE = "Denoise with a saved StructN2V model"


def ask_model_path(parent: Any = None) -> str:
    """The model file the user chooses, or "" when cancelled (tests replace this function)."""
    path, _ = QFileDialog.getOpenFileName(parent, TITLE, "", "StructN2V model (*.pt *.zip);;All files (*)")
    return path


def denoise_with_saved_model(viewer: Viewer) -> None:
    """The Layers-menu command: denoise the selected image layer with a model file."""
    denoise_selected_layer(viewer)


def denoise_selected_layer(viewer: Viewer) -> Any:
    """Ask for a model file and predict the selected image layer in the Predict dock.

    Returns the Predict widget (prediction running), or None when there is no image layer selected
    (a notification says so), the dialog was cancelled, or the model file cannot be used (the
    Predict dock notifies why).
    """
    layer = viewer.layers.selection.active
    if not isinstance(layer, Image):
        notify_error(f"{TITLE}: select an image layer first (in the layer list).")
        return None
    if is_helper(layer):
        notify_error(f"{TITLE}: {layer.name!r} is a display layer of the plugin; select the image to denoise.")
        return None
    path = ask_model_path(QApplication.activeWindow())  # napari's window, without its private attribute
    if not path:
        return None
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Predict")
    if not widget.load_model(path):
        return None
    widget.image_combo.value = layer
    return widget if widget.start() is not None else None
